"""The `tinyr1` of a Raspberry Pi release: only the commands that ship with runtime/ (a release's launcher
runs `python3 -m runtime.cli`). The host's `tinyr1` offers these and every other stage's commands.
"""
import click

from runtime import __version__
from runtime.run_cli import bench, chat, inspect_cmd, run
from runtime.kiosk.kiosk_cli import kiosk, simulate, validate

COMMANDS = {c.name: c for c in (run, chat, bench, inspect_cmd, validate, kiosk, simulate)}


def group(commands, help_text):
    """A `tinyr1` command group of these commands, with --version from runtime.__version__ (no installed
    package metadata needed: a release is a folder, not a pip install)."""
    @click.group(commands=commands, help=help_text, context_settings={"help_option_names": ["-h", "--help"]})
    @click.version_option(__version__, prog_name="tinyr1")
    def main():
        pass
    return main


main = group(COMMANDS, "tinyr1 on the kiosk: run the model, check the config, run or simulate the kiosk.")


if __name__ == "__main__":
    main()
