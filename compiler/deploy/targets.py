"""Flash targets: a directory (an SD card's mounted root filesystem, or any folder) or `ssh://`.

Both run the same POSIX sh scripts on the target, so what is tested on a folder is what runs on a Pi:

    <root>/opt/tinyr1/releases/<id>/     one directory per release
    <root>/opt/tinyr1/current  -> releases/<id>     the running release
    <root>/opt/tinyr1/previous -> releases/<old>    kept for --rollback

1. PREPARE unpacks into `releases/.incoming-<id>` (deleting what an interrupted flash left there);
2. ACTIVATE checks every file against MANIFEST.sha256, renames the directory to `releases/<id>`, then
   replaces the `current` link with rename(2) (`mv -T`), which is atomic: a flash killed at any
   point leaves `current` on a complete release, and the next flash starts clean.
"""
import os
import shlex
import subprocess
from dataclasses import dataclass, field
from urllib.parse import urlparse

from runtime.errors import ConfigError, TinyR1Error


class FlashError(TinyR1Error, RuntimeError):
    """Copying, verifying or switching a release on a target failed; the running release is untouched."""


PREPARE = r"""set -eu
base="${1%/}/opt/tinyr1"; id="$2"
mkdir -p "$base/releases"
cd "$base/releases"
for d in .incoming-*; do [ -e "$d" ] && rm -rf -- "$d"; done
mkdir ".incoming-$id"
if [ -n "${3:-}" ]; then tar -x -f "$3" -C ".incoming-$id"; else tar -x -f - -C ".incoming-$id"; fi
"""

ACTIVATE = r"""set -eu
base="${1%/}/opt/tinyr1"; id="$2"
cd "$base/releases/.incoming-$id"
sha256sum --check --quiet --strict MANIFEST.sha256
sync
cd "$base/releases"
rm -rf -- "$id"
mv ".incoming-$id" "$id"
cd "$base"
old=$(readlink current 2>/dev/null || true)
ln -sfn "releases/$id" current.new && mv -T current.new current
if [ -n "$old" ] && [ "$old" != "releases/$id" ]; then ln -sfn "$old" previous.new && mv -T previous.new previous; fi
sync
cur=$(readlink current); prev=$(readlink previous 2>/dev/null || true)
for d in releases/*; do [ "$d" = "$cur" ] || [ "$d" = "$prev" ] || rm -rf -- "$d"; done
echo "active: $id"
"""

ROLLBACK = r"""set -eu
base="${1%/}/opt/tinyr1"
cd "$base" 2>/dev/null || { echo "nothing flashed under $base" >&2; exit 3; }
prev=$(readlink previous 2>/dev/null) || { echo "no previous release to roll back to" >&2; exit 3; }
[ -d "$prev" ] || { echo "the previous release $prev is gone" >&2; exit 3; }
cur=$(readlink current)
ln -sfn "$prev" current.new && mv -T current.new current
ln -sfn "$cur" previous.new && mv -T previous.new previous
sync
echo "active: ${prev#releases/}"
"""

RESTART = r"""if command -v systemctl >/dev/null 2>&1 && systemctl is-enabled --quiet tinyr1-kiosk 2>/dev/null; then
  if [ "$(id -u)" = 0 ]; then systemctl restart tinyr1-kiosk; else sudo -n systemctl restart tinyr1-kiosk; fi
  echo "restarted tinyr1-kiosk"
fi
"""


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
        return self.root if self.kind == "dir" else f"ssh://{self.user + '@' if self.user else ''}{self.host}:{self.port}{self.root}"

    def command(self, script, *args):
        """argv that runs `script` with `args` on the target."""
        if self.kind == "dir":
            return ["sh", "-c", script, "sh", *args]
        remote = " ".join(shlex.quote(x) for x in ["sh", "-c", script, "sh", *args])
        dest = f"{self.user}@{self.host}" if self.user else self.host
        return ["ssh", "-p", str(self.port), "-o", "BatchMode=yes", *self.ssh_options, dest, remote]

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
            p.stdin.close()
        except BrokenPipeError:
            pass
        out, err = p.stdout.read(), p.stderr.read()
        if p.wait() != 0:
            said = (out + err).decode(errors="replace").strip()
            raise FlashError(f"{self}: {said or f'exit status {p.returncode}'}; the running release is untouched")
        return out.decode(errors="replace")


def parse_target(text, ssh_options=()):
    """"DIR" or "ssh://[user@]host[:port][/root]" -> Target."""
    if text.startswith("ssh://"):
        u = urlparse(text)
        if not u.hostname:
            raise ConfigError(f"--target {text!r}: expected ssh://[user@]host[:port][/root]")
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
