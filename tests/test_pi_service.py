"""What runs on the Pi: the systemd unit and install.sh. The unit's ExecStart is run here as systemd would
run it: as an unprivileged user, from the unit's WorkingDirectory, with its Environment and StateDirectory,
in a root-owned release, with lgpio installed and gpiozero choosing its default pin factory."""
import os
import pathlib
import pwd
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile

import pytest

from conftest import ROOT

UNIT = os.path.join(ROOT, "deploy", "tinyr1-kiosk.service")
INSTALL = os.path.join(ROOT, "deploy", "install.sh")
OLED = os.path.join(ROOT, "firmware_configs", "pi5-ssd1306.yaml")
USER = "nobody"
# setpriv drops to USER with no capability but reading and searching any file (so this host's Python, which
# lives under /root, can start): writing stays the user's own, which is what lgpio trips over.
UNPRIVILEGED = ["setpriv", f"--reuid={USER}", "--regid=nogroup", "--clear-groups",
                "--inh-caps=-all,+dac_read_search", "--ambient-caps=+dac_read_search", "--"]


def service_section():
    """The unit's [Service] keys -> values (Environment as a dict)."""
    keys, env, section = {}, {}, None
    for line in open(UNIT):
        line = line.strip()
        if line.startswith("["):
            section = line
        elif section == "[Service]" and "=" in line and not line.startswith("#"):
            k, v = line.split("=", 1)
            if k == "Environment":
                env.update(kv.split("=", 1) for kv in shlex.split(v))
            else:
                keys[k] = v
    keys["Environment"] = env
    return keys


def test_unit_verifies_and_runs_from_the_state_directory():
    if shutil.which("systemd-analyze") is None:
        pytest.fail("systemd-analyze is needed to check the unit (Debian package systemd)")
    r = subprocess.run(["systemd-analyze", "verify", UNIT], capture_output=True, text=True)
    assert r.returncode == 0 and r.stderr.strip() == "", r.stderr
    s = service_section()
    assert (s["Type"], s["User"], s["Restart"], s["StateDirectory"]) == ("notify", "tinyr1", "on-failure", "tinyr1")
    assert s["WorkingDirectory"] == s["Environment"]["LG_WD"] == "/var/lib/" + s["StateDirectory"]
    assert "gpio" in s["SupplementaryGroups"].split() and "i2c" in s["SupplementaryGroups"].split()


@pytest.fixture
def release(tiny_model_file):
    """A release flashed by `tinyr1 flash` into a root-owned, world-readable directory, as on an SD card
    (pytest's own temporary directories are private to root)."""
    root = pathlib.Path(tempfile.mkdtemp(prefix="tinyr1-pi-"))
    os.chmod(root, 0o755)
    r = subprocess.run([sys.executable, "-m", "tinyr1.cli", "flash", "--force", "--problems", "1", "--config", OLED, "--model", tiny_model_file,
                        "--target", str(root)], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert os.stat(root / "opt" / "tinyr1" / "current").st_uid == 0
    yield root
    shutil.rmtree(root)


def lgpio_installed():
    pytest.importorskip("lgpio", reason="lgpio (PyPI wheels) is part of the dev extra")
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv (util-linux) to run as an unprivileged user")


def test_lgpio_fails_in_a_directory_its_user_cannot_write(release):
    """The Pi 5 failure, reproduced: importing lgpio as an unprivileged user in the root-owned release."""
    lgpio_installed()
    cwd = release / "opt" / "tinyr1" / "current"
    env = {k: v for k, v in os.environ.items() if k != "LG_WD"}
    r = subprocess.run(UNPRIVILEGED + [sys.executable, "-c", "import lgpio"], cwd=cwd, env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "xCreatePipe: Can't set permissions" in r.stdout + r.stderr


def test_execstart_reaches_ready_as_an_unprivileged_user_with_lgpio(release):
    lgpio_installed()
    s = service_section()
    here = lambda path: str(release) + path if path.startswith(("/opt/", "/var/lib/")) else path
    state = here("/var/lib/" + s["StateDirectory"])
    os.makedirs(state, mode=0o700)                                    # what systemd's StateDirectory= makes
    os.chown(state, pwd.getpwnam(USER).pw_uid, pwd.getpwnam(USER).pw_gid)
    argv = [here(a) for a in shlex.split(s["ExecStart"])]
    assert argv[0] == "/usr/bin/python3"
    argv[0] = sys.executable                                          # this host's Python has the packages
    sock_path = str(release / "notify")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    srv.bind(sock_path)
    os.chmod(sock_path, 0o666)
    srv.settimeout(0.5)
    env = {"PATH": os.environ["PATH"], "NOTIFY_SOCKET": sock_path, "STATE_DIRECTORY": state,
           "JOURNAL_STREAM": "8:1234", **{k: here(v) for k, v in s["Environment"].items()}}
    p = subprocess.Popen(UNPRIVILEGED + argv, cwd=here(s["WorkingDirectory"]), env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
    got = "(nothing)"
    for _ in range(240):                                              # up to 2 minutes, while it runs
        try:
            got = srv.recv(64).decode()
            break
        except socket.timeout:
            if p.poll() is not None:
                break
    p.send_signal(signal.SIGTERM)
    out = p.communicate(timeout=60)[0]
    srv.close()
    assert got == "READY=1", out
    assert p.returncode == 0, out
    assert "xCreatePipe" not in out and "Can't set permissions" not in out, out
    assert [f for f in os.listdir(state) if f.startswith(".lgd-nfy")], "lgpio made its pipe in the state dir"
    # this host has no GPIO chip, so gpiozero finds no pin factory: one clear error, and the kiosk still runs;
    # the OLED's I2C bus is missing too: one error that says how to enable I2C
    print(out)
    assert out.count("GPIO unavailable (BadPinFactory") == 1 and "Traceback" not in out, out
    assert out.count("I2C is off") == 1, out


def test_install_script_uses_apt_only_with_openblas_and_says_what_debian_lacks():
    subprocess.run(["sh", "-n", INSTALL], check=True)
    r = subprocess.run(["sh", INSTALL, "--dry-run"], capture_output=True, text=True, check=True)
    lines = r.stdout.splitlines()
    assert lines.index("+ apt-get update") < next(i for i, x in enumerate(lines) if "apt-get install" in x)
    apt = next(x for x in lines if "apt-get install" in x)
    pkgs = apt.split("--no-install-recommends")[1].split()
    assert "libopenblas0-pthread" in pkgs and "python3-numpy" in pkgs and "pip" not in r.stdout
    assert all(p.startswith(("python3-", "libopenblas")) for p in pkgs)
    policy = subprocess.run(["apt-cache", "policy", "python3-lgpio"], capture_output=True, text=True).stdout
    has_lgpio = bool(re.search(r"Candidate: (?!\(none\))", policy))
    assert ("python3-lgpio" in pkgs) == has_lgpio
    if not has_lgpio:                                                 # plain Debian, like this host
        assert "python3-lgpio is not in this system's apt sources" in r.stderr
    assert "+ install -m 0644" in r.stdout and "tinyr1-kiosk.service" in r.stdout
