"""The `tinyr1` command and the package layering (the Pi gets runtime/ alone)."""
import ast
import os
import re
import subprocess
import sys

from click.testing import CliRunner

from runtime.cli import COMMANDS, main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_help_lists_every_command_without_importing_them():
    r = CliRunner().invoke(main, ["--help"])
    assert r.exit_code == 0
    for name, (_, _, short_help) in COMMANDS.items():
        assert re.search(rf"^  {re.escape(name)} +{re.escape(short_help[:30])}", r.output, re.M), name
    # in a fresh interpreter: after `tinyr1 --help`, no command's module has been imported
    modules = sorted({module for module, _, _ in COMMANDS.values()})
    code = ("import sys\nfrom runtime.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            f"print([m for m in {modules!r} if m in sys.modules], file=sys.stderr)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert "Commands:" in out.stdout and out.stderr.strip().splitlines()[-1] == "[]"


def test_every_option_is_explained():
    for name in COMMANDS:
        r = CliRunner().invoke(main, [name, "--help"])
        assert r.exit_code == 0, r.output
        cmd = main.get_command(None, name)
        for p in cmd.params:
            if p.param_type_name == "option":
                assert p.help, f"tinyr1 {name} {p.opts[0]} has no help text"


def test_runtime_imports_nothing_from_trainer_or_compiler():
    for dirpath, _, files in os.walk(os.path.join(ROOT, "runtime")):
        for f in files:
            if not f.endswith(".py"):
                continue
            tree = ast.parse(open(os.path.join(dirpath, f)).read())
            for node in ast.walk(tree):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                    [node.module or ""] if isinstance(node, ast.ImportFrom) else []
                assert not any(n.split(".")[0] in ("trainer", "compiler") for n in names), (f, names)


def test_runtime_cli_loads_without_trainer_dependencies():
    code = ("import sys; import runtime.cli, runtime.tasks, runtime.tokenizer; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('trainer', 'compiler', 'tqdm', 'matplotlib', 'torch')];"
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_clear_errors_for_bad_input(tmp_path):
    r = CliRunner().invoke(main, ["eval", str(tmp_path)])
    assert r.exit_code == 1 and "not a checkpoint directory" in r.output
    r = CliRunner().invoke(main, ["eval", str(tmp_path), "--tasks", "add,algebra"])
    assert r.exit_code == 1 and "unknown family 'algebra'" in r.output
    bad = tmp_path / "r.yaml"
    bad.write_text("sft: {stepz: 3}\n")
    r = CliRunner().invoke(main, ["train", "--recipe", str(bad)])
    assert r.exit_code == 1 and "unknown key 'stepz'" in r.output and str(bad) in r.output
