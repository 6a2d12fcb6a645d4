"""Flashing: into a directory, over a real sshd on 127.0.0.1, through Ansible on localhost; kill -9
mid-transfer, corrupt transfers and rollback; ssh targets ssh could misread; the systemd unit checked by
systemd-analyze and updated by a re-flash. Faults (kill -9 at random, locks, full disks): test_flash_faults.py."""
import os
import shutil
import signal
import socket
import subprocess
import sys

import pytest
from click.testing import CliRunner

from conftest import FORCE, ROOT
from deploy.bundle import build, tar_bytes
from deploy.errors import FlashError
from deploy.flash import STALL_ENV
from deploy.scripts import FLASH
from deploy.targets import Target, parse_target
from runtime.errors import ConfigError
from runtime.kiosk.config import check_model, load_config
from tinyr1.cli import main

OLED = os.path.join(ROOT, "firmware_configs", "pi5-ssd1306.yaml")
LCD = os.path.join(ROOT, "firmware_configs", "pizero2w-lcd1602.yaml")
ENV = {**os.environ, "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]}




def flash(*args):
    r = CliRunner().invoke(main, ["flash", *FORCE, *args])
    assert r.exit_code == 0, r.output
    return r.output


def base(root):
    return os.path.join(str(root), "opt", "tinyr1")


def current(root):
    return os.readlink(os.path.join(base(root), "current"))


def check_release(root):
    """The active release is complete, its files match the manifest, and its own runtime runs it."""
    cur = os.path.join(base(root), "current")
    subprocess.run(["sha256sum", "--check", "--quiet", "--strict", "MANIFEST.sha256"], cwd=cur, check=True)
    r = subprocess.run(["./tinyr1", "validate", "--no-answers", "kiosk.yaml"], cwd=cur, env=ENV, capture_output=True, text=True)
    assert r.returncode == 0 and "ok: board" in r.stdout, r.stderr
    code = "import runtime, sys; sys.stdout.write(runtime.__file__)"
    where = subprocess.run([sys.executable, "-c", code], cwd="/", capture_output=True, text=True,
                           env={**ENV, "PYTHONPATH": cur}).stdout
    assert where.startswith(cur), where                              # the release's copy, not the checkout's


def test_flash_a_directory_keep_previous_and_roll_back(tmp_path, tiny_model_file):
    out = flash("--config", OLED, "--model", tiny_model_file, "--target", str(tmp_path))
    first = current(tmp_path)
    assert "active:" in out and first.startswith("releases/")
    check_release(tmp_path)
    cfg = load_config(os.path.join(base(tmp_path), "current", "kiosk.yaml"))
    assert os.path.basename(cfg.model) == "model.msgpack" and check_model(cfg)
    flash("--config", LCD, "--model", tiny_model_file, "--target", str(tmp_path))
    second = current(tmp_path)
    assert second != first and os.readlink(os.path.join(base(tmp_path), "previous")) == first
    flash("--config", OLED, "--model", tiny_model_file, "--target", str(tmp_path))
    assert sorted(os.listdir(os.path.join(base(tmp_path), "releases"))) == sorted(
        [current(tmp_path)[9:], second[9:]])                         # the oldest is pruned
    flash("--rollback", "--target", str(tmp_path))
    assert current(tmp_path) == second
    check_release(tmp_path)


def test_corrupt_transfer_is_refused_and_current_kept(tmp_path, tiny_model_file):
    flash("--config", OLED, "--model", tiny_model_file, "--target", str(tmp_path))
    before = current(tmp_path)
    rid, files = build(load_config(OLED, tiny_model_file), tiny_model_file)
    data, mode = files["model.msgpack"]
    files["model.msgpack"] = (data[:-1] + bytes([data[-1] ^ 1]), mode)   # one bit flipped on the way
    t = Target("dir", str(tmp_path))
    with pytest.raises(FlashError, match=r"model.msgpack: FAILED"):
        t.run(FLASH, t.root, rid, data=tar_bytes(files))
    assert current(tmp_path) == before
    assert sorted(os.listdir(os.path.join(base(tmp_path), "releases"))) == [before[9:]]   # nothing left behind
    check_release(tmp_path)


def test_rollback_without_previous_and_bad_targets(tmp_path):
    r = CliRunner().invoke(main, ["flash", "--rollback", "--target", str(tmp_path)])
    assert r.exit_code == 1 and "nothing flashed under" in r.output
    with pytest.raises(ConfigError, match="no such directory"):
        parse_target(str(tmp_path / "absent"))
    with pytest.raises(ConfigError, match="only directories and ssh://"):
        parse_target("ftp://pi/")
    t = parse_target("ssh://pi@kiosk.local:2200/mnt/root")
    assert (t.user, t.host, t.port, t.root) == ("pi", "kiosk.local", 2200, "/mnt/root")
    r = CliRunner().invoke(main, ["flash", "--config", OLED])
    assert r.exit_code == 2 and "exactly one of --target or --inventory" in r.output


def kill_mid_transfer(args, env_extra=None):
    """Start `tinyr1 flash`, let it send 64 KiB of the bundle (of ~200 KiB), then kill -9 it."""
    p = subprocess.Popen([sys.executable, "-m", "tinyr1.cli", "flash", *FORCE, *args], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, cwd=ROOT, start_new_session=True,
                         env={**ENV, STALL_ENV: str(64 * 1024), **(env_extra or {})})
    for line in p.stdout:                                            # blocks until the flash has stalled
        if line.strip() == "stalled":
            break
    else:
        raise AssertionError(p.stderr.read())
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()


def test_kill_9_mid_transfer_leaves_the_running_release(tmp_path, tiny_model_file):
    flash("--config", OLED, "--model", tiny_model_file, "--target", str(tmp_path))
    before = current(tmp_path)
    kill_mid_transfer(["--config", LCD, "--model", tiny_model_file, "--target", str(tmp_path)])
    assert current(tmp_path) == before
    check_release(tmp_path)
    stale = os.path.join(base(tmp_path), "releases", ".incoming-20260101T000000Z-deadbeef")
    os.makedirs(stale, exist_ok=True)                                # what a kill during unpacking leaves
    open(os.path.join(stale, "model.msgpack"), "wb").write(b"half")
    flash("--config", LCD, "--model", tiny_model_file, "--target", str(tmp_path))
    assert current(tmp_path) != before
    assert not any(d.startswith(".incoming-") for d in os.listdir(os.path.join(base(tmp_path), "releases")))
    check_release(tmp_path)


# ---------------------------------------------------------------- a real sshd on 127.0.0.1
@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    exe = shutil.which("sshd") or "/usr/sbin/sshd"
    if not os.path.exists(exe) or os.geteuid() != 0:
        if os.environ.get("CI"):
            pytest.fail("CI must run these as root with openssh-server installed (make test installs it)")
        pytest.skip("needs root and openssh-server")
    d = tmp_path_factory.mktemp("sshd")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / "host")], check=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / "client")], check=True)
    shutil.copy(d / "client.pub", d / "authorized_keys")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (d / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {d / 'host'}\nAuthorizedKeysFile {d / 'authorized_keys'}\n"
        f"PidFile {d / 'pid'}\nStrictModes no\nUsePAM no\nPasswordAuthentication no\n"
        f"PermitRootLogin prohibit-password\nSubsystem sftp internal-sftp\n")
    os.makedirs("/run/sshd", exist_ok=True)
    proc = subprocess.Popen([exe, "-D", "-e", "-f", str(d / "sshd_config")], stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:                                         # sshd says when it listens
        if "Server listening" in line:
            break
    else:
        raise AssertionError("sshd did not start")
    opts = ["-i", str(d / "client"), "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "LogLevel=ERROR"]
    yield port, [f"--ssh-option={o}" for o in opts]
    proc.terminate()
    proc.wait()


def test_flash_over_ssh_interrupted_then_again_and_rollback(sshd, tmp_path, tiny_model_file):
    port, opts = sshd
    url = f"ssh://root@127.0.0.1:{port}{tmp_path}"
    out = flash("--config", OLED, "--model", tiny_model_file, "--target", url, *opts)
    assert f"-> {url.replace(str(tmp_path), '')}" in out or "active:" in out
    first = current(tmp_path)
    check_release(tmp_path)
    kill_mid_transfer(["--config", LCD, "--model", tiny_model_file, "--target", url, *opts])
    assert current(tmp_path) == first
    check_release(tmp_path)
    flash("--config", LCD, "--model", tiny_model_file, "--target", url, *opts)
    assert current(tmp_path) != first
    flash("--rollback", "--target", url, *opts)
    assert current(tmp_path) == first
    check_release(tmp_path)


def test_ssh_errors_are_reported(tmp_path, tiny_model_file):
    with socket.socket() as s:                                       # a port where nothing listens
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = CliRunner().invoke(main, ["flash", *FORCE, "--config", OLED, "--model", tiny_model_file, "--target",
                                  f"ssh://root@127.0.0.1:{port}/tmp/x", "--ssh-option=-oConnectTimeout=5"])
    assert r.exit_code == 1 and "Connection refused" in r.output


@pytest.mark.parametrize("text, what, value", [
    ("ssh://-oProxyCommand=touch%20x/", "host", "-oproxycommand=touch%20x"),
    ("ssh://-oProxyCommand=x@pi/", "user", "-oProxyCommand=x"),
    ("ssh://pi@kiosk local/", "host", "kiosk local"),
    ("ssh://p i@kiosk/", "user", "p i"),
])
def test_ssh_hosts_and_users_that_ssh_would_read_as_options_are_refused(text, what, value):
    with pytest.raises(ConfigError) as e:
        parse_target(text)
    assert str(e.value).startswith(f"--target {text!r}: the {what} {value!r} may not begin with '-'"), str(e.value)


def test_ssh_target_control_characters_and_the_end_of_options():
    with pytest.raises(ConfigError, match=r"--target 'ssh://pi@kiosk\\n-oProxyCommand=x/': control characters"):
        parse_target("ssh://pi@kiosk\n-oProxyCommand=x/")
    argv = parse_target("ssh://pi@kiosk.local:2200/").command("true")
    assert argv[argv.index("--") + 1] == "pi@kiosk.local"            # ssh stops reading options before the host


# ---------------------------------------------------------------- a fleet through Ansible
def test_fleet_flash_with_ansible_on_localhost(tmp_path, tiny_model_file):
    if shutil.which("ansible-playbook", path=ENV["PATH"]) is None:
        pytest.fail("ansible-core is part of the test extras: pip install -e '.[dev,deploy]'")
    roots = [tmp_path / "pi-a", tmp_path / "pi-b"]
    inv = tmp_path / "hosts.ini"
    inv.write_text("[kiosks]\n" + "".join(
        f"{r.name} ansible_connection=local ansible_python_interpreter={sys.executable} tinyr1_root={r}\n"
        for r in roots))
    r = CliRunner().invoke(main, ["flash", *FORCE, "--config", OLED, "--model", tiny_model_file, "--inventory", str(inv)],
                           env={"PATH": ENV["PATH"]})
    assert r.exit_code == 0, r.output
    assert "failed=0" in r.output and r.output.count("ok=") == 2
    for root in roots:
        assert current(root).startswith("releases/")
        check_release(root)


# ---------------------------------------------------------------- what runs on the Pi
def test_a_reflash_updates_the_installed_unit_file_and_restart_reloads(tmp_path, tiny_model_file, monkeypatch):
    """install.sh copied an older release's unit to /etc/systemd/system: the flash replaces it (temp file and
    rename in its directory) and --restart runs daemon-reload first; where it cannot, one line says what to run."""
    unit = tmp_path / "etc" / "systemd" / "system" / "tinyr1-kiosk.service"
    unit.parent.mkdir(parents=True)
    unit.write_text("[Service]\nExecStart=/old\n")
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "systemctl").write_text(f'#!/bin/sh\necho "$*" >> {tmp_path}/systemctl.log\n')
    (fake / "systemctl").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}:{os.environ['PATH']}")
    out = flash("--config", OLED, "--model", tiny_model_file, "--target", str(tmp_path), "--restart")
    assert f"\nunit file updated: {unit}\nactive: " in out and out.endswith("\nrestarted tinyr1-kiosk\n"), out
    assert unit.read_bytes() == open(os.path.join(base(tmp_path), "current", "tinyr1-kiosk.service"), "rb").read()
    assert oct(unit.stat().st_mode & 0o777) == "0o644" and os.listdir(unit.parent) == ["tinyr1-kiosk.service"]
    assert (tmp_path / "systemctl.log").read_text().splitlines() == [
        "is-enabled --quiet tinyr1-kiosk", "daemon-reload", "restart tinyr1-kiosk"]
    assert "unit file" not in flash("--config", LCD, "--model", tiny_model_file, "--target", str(tmp_path))
    if os.geteuid() != 0:
        if os.environ.get("CI"):
            pytest.fail("CI runs as root: this test makes the unit directory immutable")
        pytest.skip("needs root for chattr +i")
    unit.write_text("[Service]\nExecStart=/old\n")
    subprocess.run(["chattr", "+i", str(unit.parent)], check=True)   # a unit directory the flash cannot write
    try:
        out = flash("--config", OLED, "--model", tiny_model_file, "--target", str(tmp_path))
    finally:
        subprocess.run(["chattr", "-i", str(unit.parent)], check=True)
    assert f"warning: {unit} differs from this release's and was not replaced (cp: cannot create" in out, out
    assert "run: sudo /opt/tinyr1/current/install.sh" in out and unit.read_text().endswith("/old\n")
