"""Flash targets: a directory (an SD card's mounted root filesystem, or any folder) or `ssh://`.

Both run the same POSIX sh scripts (`scripts.py`) on the target, so what is tested on a folder is what runs
on a Pi.
"""
import os
import shlex
import subprocess
from dataclasses import dataclass, field
from urllib.parse import urlparse

from deploy.errors import FlashError
from runtime.errors import ConfigError


@dataclass
class Target:
    """Where a release goes. `root` is the target's filesystem root ("/" on a running Pi)."""
    kind: str                                   # "dir" or "ssh"
    root: str
    host: str = ""
    user: str = ""
    port: int = 22
    ssh_options: list = field(default_factory=list)

    def __str__(self):
        if self.kind == "dir":
            return self.root
        return f"ssh://{self.user + '@' if self.user else ''}{self.host}:{self.port}{self.root}"

    def command(self, script, *args):
        """argv that runs `script` with `args` on the target."""
        if self.kind == "dir":
            return ["sh", "-c", script, "sh", *args]
        remote = " ".join(shlex.quote(x) for x in ["sh", "-c", script, "sh", *args])
        dest = f"{self.user}@{self.host}" if self.user else self.host
        return ["ssh", "-p", str(self.port), "-o", "BatchMode=yes", *self.ssh_options, "--", dest, remote]

    def run(self, script, *args, data=None, on_chunk=None):
        """Run a script, streaming `data` into its stdin in 64 KiB chunks -> its stdout. FlashError on failure."""
        try:
            p = subprocess.Popen(self.command(script, *args), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE)
        except OSError as e:
            raise FlashError(f"{self}: cannot start {e.filename}: {e.strerror}") from None
        try:
            if data is not None:
                for i in range(0, len(data), 1 << 16):
                    p.stdin.write(data[i:i + (1 << 16)])
                    if on_chunk:
                        on_chunk(min(len(data), i + (1 << 16)))
        except BrokenPipeError:                                     # the script failed early: its stderr says why
            pass
        out, err = p.communicate()
        if p.returncode != 0:
            said = (out + err).decode(errors="replace").strip()
            raise FlashError(f"{self}: {said or f'exit status {p.returncode}'}")
        return out.decode(errors="replace")


def _check_ssh_name(text, what, value):
    """A host or user that ssh could read as an option (`-oProxyCommand=...`) or split is refused."""
    if value.startswith("-") or any(c.isspace() or not c.isprintable() for c in value):
        raise ConfigError(f"--target {text!r}: the {what} {value!r} may not begin with '-' or contain spaces or "
                          f"control characters; expected ssh://[user@]host[:port][/root]")


def parse_target(text, ssh_options=()):
    """"DIR" or "ssh://[user@]host[:port][/root]" -> Target."""
    if text.startswith("ssh://"):
        if not text.isprintable():                                  # urlparse would silently drop tabs, newlines
            raise ConfigError(f"--target {text!r}: control characters are not allowed")
        u = urlparse(text)
        if not u.hostname:
            raise ConfigError(f"--target {text!r}: expected ssh://[user@]host[:port][/root]")
        _check_ssh_name(text, "host", u.hostname)
        _check_ssh_name(text, "user", u.username or "")
        try:
            port = u.port or 22
        except ValueError:
            raise ConfigError(f"--target {text!r}: the port is not a number in 1..65535") from None
        return Target("ssh", u.path or "/", host=u.hostname, user=u.username or "", port=port,
                      ssh_options=list(ssh_options))
    if "://" in text:
        raise ConfigError(f"--target {text!r}: only directories and ssh:// targets are supported")
    if not os.path.isdir(text):
        raise ConfigError(f"--target {text!r}: no such directory (mount the SD card's root filesystem first)")
    return Target("dir", os.path.abspath(text))
