"""The POSIX sh scripts a flash runs on its target: a Pi over ssh, an SD card's root, or an Ansible host.

    <root>/opt/tinyr1/releases/<id>/        a release; made only by renaming a verified releases/.incoming-<id>,
                                            removed only by renaming it to releases/.trash-<id> first
    <root>/opt/tinyr1/current  -> releases/<id>     the running release
    <root>/opt/tinyr1/previous -> releases/<old>    kept for --rollback
    <root>/opt/tinyr1/.lock                         flock(1): one flash or rollback at a time per target

FLASH root id [tarball, default stdin]: lock; clear what killed flashes left; unpack into .incoming-<id>;
    sha256sum -c; sync; rename it to releases/<id> (reusing an identical verified releases/<id>; a live
    release is never deleted or overwritten); sync; previous <- old current, current <- new, one rename(2)
    each; sync; replace the systemd unit if install.sh put an older one there; prune the rest.
ROLLBACK root: lock; verify previous; current <- previous; previous <- old current.
ELEVATE script root ...: runs the script through `sudo -n` when this user cannot write <root>/opt/tinyr1.
RESTART: systemctl daemon-reload, then restart tinyr1-kiosk, if it is installed.

A kill -9 at any moment leaves `current` and `previous` on complete, verified releases. Any failure exits
non-zero with a line naming the step, the path and the cause (read-only file system, permission denied,
immutable), and removes what this run made. A second flash waits for the lock up to TINYR1_LOCK_WAIT seconds
(default 120; the variable reaches directory targets only), then fails naming it.
"""

FUNCTIONS = r"""
say() { echo "tinyr1: $*" >&2; }
die() { say "$*"; exit 1; }
# try DIR WHAT CMD...: run CMD, which changes DIR; on failure die naming WHAT and the cause
try() {
  dir=$1 what=$2; shift 2
  err=$("$@" 2>&1) && return 0
  # one line: the first that names a cause (tar writes one per file it could not write), then how many more
  n=$(printf '%s\n' "$err" | wc -l)
  line=$(printf '%s\n' "$err" | grep -m 1 -E 'No space left|Read-only file system|Permission denied|Operation not permitted|Disk quota' \
    || printf '%s\n' "$err" | head -n 1)
  [ "$n" -gt 1 ] && line="$line (and $((n - 1)) more lines)"
  case $(lsattr -d -- "$dir" 2>/dev/null) in ????i*) line="$line ($dir is immutable: chattr -i $dir)";; esac
  die "$what failed: $line"
}
verify() { (cd "$1" && sha256sum --check --quiet --strict MANIFEST.sha256); }
# relink LINK DEST: one rename(2), so LINK always names the old or the new release, never nothing
relink() {
  try "$base" "making $base/$1.new" ln -sfn -- "$2" "$1.new"
  try "$base" "switching $base/$1 to $2" mv -T -- "$1.new" "$1"
}
# discard DIR: out of releases/* first, so a kill never leaves half a release under a release's name
discard() { t="releases/.trash-${1##*/}"; mv -T -- "$1" "$t" && rm -rf -- "$t"; }
# lock: hold $base/.lock until this shell exits; the kernel drops it when the shell is killed
lock() {
  command -v flock >/dev/null || die "flock is missing on the target (Debian package util-linux)"
  [ -e .lock ] || try "$base" "creating the lock $base/.lock" touch .lock
  exec 9<.lock
  flock -n 9 && return 0
  secs=${TINYR1_LOCK_WAIT:-120}
  say "waiting up to $secs s for another flash into $base (it holds $base/.lock)"
  flock -w "$secs" 9 || die "another flash or rollback into $base still holds $base/.lock after $secs s"
}
# unwritable: the first directory a flash changes that is someone else's and not writable by this user
# (opt/tinyr1 or its nearest existing parent, then releases/), e.g. after flashing the SD card as root
unwritable() {
  d=$base; while [ ! -e "$d" ]; do d=$(dirname -- "$d"); done
  for d in "$d" "$base/releases"; do
    if [ -e "$d" ] && [ ! -w "$d" ] && [ "$(stat -c %u -- "$d")" != "$(id -u)" ]; then echo "$d"; return 0; fi
  done
  return 1
}
need_write() {
  d=$(unwritable) || return 0
  u=$(id -un 2>/dev/null || id -u)
  if [ -e "$base" ]; then fix="sudo chown -R $u $base"; else fix="sudo install -d -o $u $base"; fi
  die "$d belongs to $(stat -c %U -- "$d"): $u cannot write it and has no passwordless sudo;" \
    "fix: $fix (on the Pi), or flash as root"
}
# on a failure: remove what this run made, and say where current is
on_exit() {
  [ "$1" != 0 ] || return 0
  rm -f -- current.new previous.new 2>/dev/null || true
  if [ -n "$id" ] && [ -e "releases/.incoming-$id" ]; then
    rm -rf -- "releases/.incoming-$id" 2>/dev/null && say "removed $base/releases/.incoming-$id" || true
  fi
  if [ "$created" = 1 ] && [ ! "releases/$name" -ef current ] && [ ! "releases/$name" -ef previous ]; then
    discard "releases/$name" 2>/dev/null && say "removed the new release $base/releases/$name" || true
  fi
  say "current is $(readlink current 2>/dev/null || echo 'not set')"
}
# sync_unit: replace the unit install.sh copied, if it differs from current's (temp file + rename, synced)
sync_unit() {
  unit="$root/etc/systemd/system/tinyr1-kiosk.service"
  [ -f "$unit" ] && ! cmp -s current/tinyr1-kiosk.service "$unit" || return 0
  put='t="${2%/*}/.tinyr1-kiosk.service.tmp"
    cp -- "$1" "$t" && chmod 644 -- "$t" && sync && mv -f -- "$t" "$2" && sync || { rm -f -- "$t"; exit 1; }'
  src="$PWD/current/tinyr1-kiosk.service"
  if err=$(sh -c "$put" sh "$src" "$unit" 2>&1) ||
     { [ "$(id -u)" != 0 ] && err=$(sudo -n sh -c "$put" sh "$src" "$unit" 2>&1); }; then
    echo "unit file updated: $unit"
  else
    echo "warning: $unit differs from this release's and was not replaced ($err);" \
      "run: sudo /opt/tinyr1/current/install.sh"
  fi
}
# prune: keep current and previous; a failure here is reported, the switch stands
prune() {
  for d in releases/*; do
    [ -d "$d" ] || continue
    [ "$d" -ef current ] || [ "$d" -ef previous ] || discard "$d" || echo "warning: could not remove $base/$d"
  done
}
"""

SETUP = r"""set -eu
root=${1%/}; base="$root/opt/tinyr1"; id=""; name=""; created=0
""" + FUNCTIONS

TRAPS = r"""
trap 'on_exit $?' EXIT; trap 'exit 129' HUP; trap 'exit 130' INT; trap 'exit 143' TERM
"""

FLASH = SETUP + r"""
id=$2; src=${3:--}
case $id in ""|.*|*/*) die "bad release id '$id'";; esac
need_write
try "$base" "creating $base/releases" mkdir -p -- "$base/releases"
cd "$base"
lock
""" + TRAPS + r"""
# 1. unpack and verify releases/.incoming-<id>, after clearing what killed flashes left
try "$base/releases" "clearing leftovers in $base/releases" \
  rm -rf -- releases/.incoming-* releases/.trash-* current.new previous.new
in="releases/.incoming-$id"
try "$base/releases" "creating $base/$in" mkdir -- "$in"
try "$base/$in" "unpacking into $base/$in" tar -x -f "$src" -C "$in"
verify "$in" || die "$base/$in does not match its MANIFEST.sha256 (a corrupt transfer?); nothing was switched"
sync

# 2. its name: releases/<id>, the identical verified release already there, or a free releases/<id>-N
name=$id; n=1; note=""
while [ -e "releases/$name" ] || [ -L "releases/$name" ]; do
  if cmp -s "releases/$name/MANIFEST.sha256" "$in/MANIFEST.sha256" && verify "releases/$name" >/dev/null 2>&1; then
    break
  fi
  n=$((n + 1)); name="$id-$n"
done
if [ -e "releases/$name" ]; then
  rm -rf -- "$in"; note=" (identical to the verified release already there)"
else
  try "$base/releases" "renaming $base/$in to releases/$name" mv -T -- "$in" "releases/$name"; created=1
  sync
fi

# 3. previous <- the old current (if it still verifies), then current <- the new release
new="releases/$name"; old=$(readlink current 2>/dev/null || true)
if [ "$new" -ef current ]; then
  note=" (already current)"
else
  if [ -n "$old" ] && verify "$old" >/dev/null 2>&1; then
    relink previous "$old"
  elif [ -n "$old" ]; then
    echo "warning: the old release $base/$old fails its sha256 check; previous is left as it was"
  fi
  relink current "$new"
fi
sync
sync_unit
prune
echo "active: $name$note"
"""

ROLLBACK = SETUP + r"""
[ -d "$base" ] || die "nothing flashed under $base"
need_write
cd "$base"
lock
""" + TRAPS + r"""
prev=$(readlink previous 2>/dev/null) || die "no previous release to roll back to in $base"
[ -d "$prev" ] || die "the previous release $base/$prev is gone"
[ ! "$prev" -ef current ] || die "previous and current are the same release ($prev): nothing to roll back to"
verify "$prev" || die "the previous release $base/$prev does not match its MANIFEST.sha256: refusing to roll back to it"
cur=$(readlink current 2>/dev/null || true)
relink current "$prev"
if [ -n "$cur" ] && [ -d "$cur" ]; then relink previous "$cur"; fi
sync
sync_unit
echo "active: ${prev#releases/}"
"""

ELEVATE = r"""set -eu
script=$1; shift; base="${1%/}/opt/tinyr1"
""" + FUNCTIONS + r"""
if [ "$(id -u)" != 0 ] && unwritable >/dev/null && sudo -n true 2>/dev/null; then
  exec sudo -n sh -c "$script" sh "$@"
fi
exec sh -c "$script" sh "$@"
"""

RESTART = r"""set -eu
command -v systemctl >/dev/null 2>&1 && systemctl is-enabled --quiet tinyr1-kiosk 2>/dev/null || exit 0
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi; }
as_root systemctl daemon-reload || { echo "tinyr1: systemctl daemon-reload failed" >&2; exit 1; }
as_root systemctl restart tinyr1-kiosk || { echo "tinyr1: systemctl restart tinyr1-kiosk failed" >&2; exit 1; }
echo "restarted tinyr1-kiosk"
"""
