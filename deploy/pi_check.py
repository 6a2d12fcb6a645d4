"""`make pi-check`: a release on a Raspberry Pi OS-like userland, on any Linux host (as root).

    python -m deploy.pi_check [--root build/pi-root] [--config firmware_configs/pi5-ssd1306.yaml]

1. ROOT: a Debian bookworm arm64 root (what Raspberry Pi OS 64-bit is built on), made once with debootstrap
   under qemu-user-static through binfmt_misc (about 10 minutes on 2 cores; kept for later runs);
2. `tinyr1 flash` of the config and the model into ROOT, then the release's own install.sh run there
   (chroot): apt-get update, the runtime's Debian packages, the tinyr1 user, the unit, enabled;
3. in ROOT as the tinyr1 user, with Debian's arm64 Python, numpy and OpenBLAS under qemu: the seven seed
   questions through the release's launcher (`tinyr1 run`), and a simulated press of every button
   (`tinyr1 simulate`, gpiozero's MockFactory);
4. the same on this host; every answer must match character for character; and the release's `tinyr1`
   reports its version and lists only the commands that ship. Exit status 1 otherwise.
Plain Debian has no python3-lgpio (only the Raspberry Pi archive has it): install.sh says so and goes on.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import time

from runtime.speed import QUESTIONS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MIRROR = "http://deb.debian.org/debian"
RELEASE = "/opt/tinyr1/current"


def sh(cmd, **kw):
    """Run, echoing the command; CalledProcessError on failure."""
    print("+ " + " ".join(cmd), flush=True)
    return subprocess.run(cmd, check=True, **kw)


def binfmt():
    """Register qemu-aarch64 with binfmt_misc (mounting it if needed) so the root's programs run here."""
    fs = "/proc/sys/fs/binfmt_misc"
    if not os.path.exists(os.path.join(fs, "register")):
        sh(["mount", "-t", "binfmt_misc", "binfmt_misc", fs])
    if not os.path.exists(os.path.join(fs, "qemu-aarch64")):
        sh(["update-binfmts", "--enable", "qemu-aarch64"])


def bootstrap(root):
    """The arm64 root, once: a marker file says the second stage finished."""
    done = os.path.join(root, ".tinyr1-bootstrapped")
    if os.path.exists(done):
        print(f"{root}: arm64 bookworm root already built")
        return
    shutil.rmtree(root, ignore_errors=True)
    t = time.monotonic()
    sh(["debootstrap", "--arch=arm64", "--variant=minbase", "--include=systemd", "bookworm", root, MIRROR])
    open(done, "w").close()
    print(f"{root}: built in {(time.monotonic() - t) / 60:.1f} min")


class Mounts:
    """/proc and /dev inside the root while it is used (chroot'd Python and apt need them)."""

    def __init__(self, root):
        self.points = [(os.path.join(root, "proc"), ["-t", "proc", "proc"]),
                       (os.path.join(root, "dev"), ["--bind", "/dev"])]

    def __enter__(self):
        for point, how in self.points:
            if not os.path.ismount(point):
                sh(["mount", *how, point])
        return self

    def __exit__(self, *exc):
        for point, _ in reversed(self.points):
            subprocess.run(["umount", "--lazy", point], check=False)


def flash_and_install(root, config, model):
    shutil.copy("/etc/resolv.conf", os.path.join(root, "etc", "resolv.conf"))
    sh([sys.executable, "-m", "tinyr1.cli", "flash", "--config", config, "--model", model, "--target", root],
       cwd=ROOT)
    sh(["chroot", root, RELEASE + "/install.sh"])


def in_root(root, args):
    """The release's launcher in ROOT as the tinyr1 user -> (stdout, stderr)."""
    env = {"PATH": "/usr/bin:/bin", "HOME": "/var/lib/tinyr1", "OPENBLAS_NUM_THREADS": "1", "LANG": "C.UTF-8"}
    chroot = shutil.which("chroot") or "/usr/sbin/chroot"
    r = subprocess.run([chroot, "--userspec=tinyr1:tinyr1", root, RELEASE + "/tinyr1", *args],
                       capture_output=True, text=True, env=env, timeout=900)
    if r.returncode:
        raise SystemExit(f"tinyr1 {' '.join(args)} failed in {root}:\n{r.stderr[-3000:]}")
    return r.stdout, r.stderr


def on_host(args):
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-m", "runtime.cli", *args], capture_output=True, text=True, env=env,
                       cwd=ROOT, check=True)
    return r.stdout, r.stderr


def answers(root, config, model):
    """[(what, expected, arm64 text)]: the release's own `tinyr1` (version, the commands it lists: only the
    shipped ones), then the seed questions and the simulated presses against this host's answers."""
    from runtime import __version__
    from runtime.cli import COMMANDS
    listed = re.findall(r"^  ([a-z-]+)  ", in_root(root, ["--help"])[0].split("Commands:")[1], re.M)
    rows = [("release: tinyr1 --version", f"tinyr1, version {__version__}", in_root(root, ["--version"])[0].strip()),
            ("release: tinyr1 --help lists", " ".join(sorted(COMMANDS)), " ".join(sorted(listed)))]
    for q in QUESTIONS:
        pi, _ = in_root(root, ["run", RELEASE + "/model.msgpack", "--prompt", q])
        host, _ = on_host(["run", model, "--prompt", q])
        rows.append((q, host.strip(), pi.strip()))
    pi, _ = in_root(root, ["simulate", "--config", RELEASE + "/kiosk.yaml"])
    host, _ = on_host(["simulate", "--config", config, "--model", model])
    strip = lambda text: [re.sub(r", [\d,]+ tok/s, first character after \d+ ms", "", line)   # timings differ
                          for line in text.splitlines() if line.startswith(("[GPIO", "  thinking:", "  answer:"))]
    rows += [(f"simulate, line {i + 1}", h, p) for i, (h, p) in enumerate(zip(strip(host), strip(pi)))]
    if len(strip(host)) != len(strip(pi)):
        rows.append(("simulate, transcript length", str(len(strip(host))), str(len(strip(pi)))))
    return rows


def versions(root):
    code = ("import sys, numpy; from importlib.metadata import version; "
            "print(sys.version.split()[0], numpy.__version__, version('gpiozero'))")
    r = subprocess.run(["chroot", root, "python3", "-c", code], capture_output=True, text=True, check=True)
    py, np, gz = r.stdout.split()
    blas = subprocess.run(["chroot", root, "sh", "-c", "readlink -f /usr/lib/aarch64-linux-gnu/libblas.so.3"],
                          capture_output=True, text=True).stdout.strip()
    return f"Python {py}, numpy {np} (BLAS {blas}), gpiozero {gz}, arm64 under qemu-user-static"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", default=os.path.join(ROOT, "build", "pi-root"), help="where the arm64 root lives")
    ap.add_argument("--config", default="firmware_configs/pi5-ssd1306.yaml", help="the kiosk config to flash")
    ap.add_argument("--model", default="build/student.msgpack", help="the compiled model to flash")
    a = ap.parse_args(argv)
    if os.geteuid() != 0:
        raise SystemExit("pi-check needs root (debootstrap, chroot, mount): sudo make pi-check")
    t = time.monotonic()
    binfmt()
    bootstrap(a.root)
    with Mounts(a.root):
        flash_and_install(a.root, a.config, a.model)
        print(versions(a.root))
        rows = answers(a.root, a.config, a.model)
    bad = [r for r in rows if r[1] != r[2]]
    for what, host, pi in rows:
        print(f"{'same' if host == pi else 'DIFFERENT'}  {what}: {pi.splitlines()[0] if pi else '(nothing)'}")
        if host != pi:
            print(f"          host: {host}\n          arm64: {pi}")
    print(f"pi-check: {len(rows) - len(bad)} of {len(rows)} answers identical on arm64 and this host "
          f"({(time.monotonic() - t) / 60:.1f} min)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
