"""The `tinyr1` commands and the package layering: the host's tinyr1 offers every stage; the Pi's entry point
(runtime/cli.py, what a release runs) knows only what ships, and runtime/ names no other stage."""
import ast
import io
import os
import re
import subprocess
import sys
import sysconfig
import tarfile

from click.testing import CliRunner

from runtime import __version__
from runtime.cli import COMMANDS, main as pi_main
from tinyr1.cli import HOST, main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STAGES = ("trainer", "compiler", "export", "deploy", "tinyr1")     # everything that stays on the host


def listed(group, help_text=None):
    """The command names a group's --help lists."""
    if help_text is None:
        r = CliRunner().invoke(group, ["--help"])
        assert r.exit_code == 0, r.output
        help_text = r.output
    return re.findall(r"^  ([a-z-]+)  ", help_text.split("Commands:")[1], re.M)


def test_host_help_lists_every_command_and_the_pi_only_its_own():
    assert sorted(listed(main)) == sorted({**COMMANDS, **HOST})
    assert sorted(listed(pi_main)) == sorted(COMMANDS) == ["bench", "chat", "inspect", "kiosk", "run", "simulate",
                                                           "validate"]
    for group in (main, pi_main):
        r = CliRunner().invoke(group, ["--version"])
        assert r.exit_code == 0 and r.output.strip() == f"tinyr1, version {__version__}"


def test_every_option_is_explained():
    for name, cmd in main.commands.items():
        r = CliRunner().invoke(main, [name, "--help"])
        assert r.exit_code == 0, r.output
        for p in cmd.params:
            if p.param_type_name == "option":
                assert p.help, f"tinyr1 {name} {p.opts[0]} has no help text"


def runtime_sources():
    for dirpath, _, files in os.walk(os.path.join(ROOT, "runtime")):
        for f in sorted(files):
            if f.endswith(".py"):
                yield os.path.join(dirpath, f)


def test_runtime_names_no_other_stage_not_even_in_a_string():
    """No import of another stage, and no string that could import one (importlib, __import__, a module
    path in a string): the only way to find an arrow back up the pipeline is to read the code."""
    for path in runtime_sources():
        tree = ast.parse(open(path).read())
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not any(n.split(".")[0] in STAGES for n in names), (path, names)
            if isinstance(node, ast.Constant) and isinstance(node.value, str):       # "compiler.bench", ...
                for stage, module in re.findall(rf"\b({'|'.join(STAGES)})\.([a-z_]+)", node.value):
                    # "tinyr1.kiosk" is a logger's name; tinyr1.<module> is a module path only where one exists
                    assert stage == "tinyr1" and not os.path.exists(os.path.join(ROOT, stage, module + ".py")), \
                        f"{path}:{node.lineno}: the string {node.value[:80]!r} names the module {stage}.{module}"


def test_a_release_runs_its_own_tinyr1_without_the_host_packages(tmp_path, tiny_model_file):
    """A flashed release's launcher: --help lists only the shipped commands, --version works, and neither
    the host stages nor tinyr1's package metadata are importable (python -S: site-packages is on the path
    as a plain directory, without the editable install's finder)."""
    from deploy.bundle import build, tar_bytes
    from runtime.kiosk.config import load_config
    cfg = load_config(os.path.join(ROOT, "firmware_configs", "pi5-ssd1306.yaml"), tiny_model_file)
    with tarfile.open(fileobj=io.BytesIO(tar_bytes(build(cfg, tiny_model_file)[1]))) as tar:
        tar.extractall(tmp_path)
    site = sysconfig.get_paths()["purelib"]
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": site}
    run = lambda *args: subprocess.run([sys.executable, "-S", "-m", "runtime.cli", *args], cwd=tmp_path, env=env,
                                       capture_output=True, text=True)
    r = run("--help")
    assert r.returncode == 0, r.stderr
    assert sorted(listed(None, r.stdout)) == sorted(COMMANDS)
    assert run("--version").stdout.strip() == f"tinyr1, version {__version__}"
    probe = subprocess.run([sys.executable, "-S", "-c", "import importlib.util as u; "
                            f"print([m for m in {STAGES!r} if u.find_spec(m)])"], cwd=tmp_path, env=env,
                           capture_output=True, text=True)
    assert probe.stdout.strip() == "[]", probe.stdout + probe.stderr    # the check above could not cheat


def test_runtime_cli_loads_without_trainer_dependencies():
    code = ("import sys; import runtime.cli, runtime.tasks, runtime.tokenizer; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('trainer', 'compiler', 'export', 'deploy', "
            "'tinyr1', 'tqdm', 'matplotlib', 'torch')]; assert not bad, bad")
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
