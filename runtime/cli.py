"""The `tinyr1` command.

Each subcommand lives in its own package and is imported only when it runs, so the runtime's
commands work on a Pi where only `runtime/` and its Debian-packaged dependencies are installed.
"""
import importlib

import click

# name -> (module, attribute, one-line help shown by `tinyr1 --help` without importing the module)
COMMANDS = {
    "train": ("trainer.cli", "train", "Train from a recipe: SFT, GRPO, or a pipeline of stages (resumable)."),
    "eval": ("trainer.cli", "eval_cmd", "Evaluate a checkpoint on held-out problems of every task family."),
    "ask": ("trainer.cli", "ask", "Answer questions with a trainer checkpoint (greedy)."),
    "bench-train": ("trainer.cli", "bench_train", "Time one SFT step against transformers' DeepseekV3 in torch."),
    "compile": ("compiler.cli", "compile_cmd", "Compile a checkpoint or HF directory into one int8 msgpack model file."),
    "export": ("compiler.cli", "export_cmd", "Export a compiled model to ONNX, GGUF or TFLite for other runtimes."),
    "run": ("runtime.commands", "run", "Stream the answer to one question from a compiled model."),
    "chat": ("runtime.commands", "chat", "Ask a compiled model questions in a loop."),
    "bench": ("runtime.commands", "bench", "Runtime speed on one thread: load, prefill, decode, first token, RSS."),
    "inspect": ("runtime.commands", "inspect_cmd", "Show a model file's sizes, ops, quantization error, provenance."),
    "validate": ("runtime.kiosk.commands", "validate", "Check a kiosk config and its model (keys, pins, display, questions)."),
    "kiosk": ("runtime.kiosk.commands", "kiosk", "Run the kiosk on a Raspberry Pi: GPIO buttons ask, the display answers."),
    "simulate": ("runtime.kiosk.commands", "simulate", "Run the kiosk on this computer with mock buttons; write frames/GIF."),
    "flash": ("compiler.deploy.cli", "flash", "Put a model, kiosk config and the runtime on a Pi, SD card or fleet."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return sorted(COMMANDS)

    def format_commands(self, ctx, formatter):
        """`tinyr1 --help` from COMMANDS' one-liners: listing a command must not import it (click's default
        would import every module to read its help)."""
        with formatter.section("Commands"):
            formatter.write_dl([(name, COMMANDS[name][2]) for name in self.list_commands(ctx)])

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        module, attr, short_help = COMMANDS[name]
        try:
            mod = importlib.import_module(module)
        except ImportError as e:
            package = module.split(".")[0]
            return _missing(name, short_help, f"`tinyr1 {name}` needs the `{package}` package and its "
                                              f"dependencies ({e}); install with: pip install 'tinyr1[train]'")
        return getattr(mod, attr)


def _missing(name, short_help, message):
    @click.command(name, help=short_help, short_help=short_help,
                   context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
    def cmd():
        raise click.ClickException(message)
    return cmd


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="tinyr1")
def main():
    """tinyr1: a tiny DeepSeek-R1-style reasoning model, trained in numpy, for a Raspberry Pi kiosk."""


if __name__ == "__main__":
    main()
