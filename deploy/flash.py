"""`tinyr1 flash`: build a release bundle and put it on one target, or on a fleet through Ansible."""
import os
import shutil
import subprocess
import sys
import tempfile
import time

import yaml

from deploy.bundle import build, tar_bytes
from deploy.errors import FlashError
from deploy.scripts import ELEVATE, FLASH, RESTART, ROLLBACK

STALL_ENV = "TINYR1_FLASH_STALL_AFTER_BYTES"       # tests: freeze mid-transfer so they can kill -9 the flash


def _stall_hook():
    limit = os.environ.get(STALL_ENV)
    if not limit:
        return None

    def hook(sent):
        if sent >= int(limit):
            print("stalled", flush=True)
            time.sleep(3600)
    return hook


def flash(cfg, model_path, target, restart=False, echo=print):
    """Build a release, copy, verify and activate it on `target` -> its directory name under releases/.
    FlashError leaves `current` as it was."""
    rid, files = build(cfg, model_path)
    data = tar_bytes(files)
    echo(f"release {rid}: {len(files)} files, {len(data):,} bytes -> {target}")
    return put(target, rid, data, restart, echo)


def put(target, rid, data, restart=False, echo=print):
    """Stream the bundle `data` to `target` and switch to it (sudo -n where this user cannot write
    opt/tinyr1) -> the release's directory name (`rid`, or `rid-N` if a different releases/`rid` is there)."""
    out = target.run(ELEVATE, FLASH, target.root, rid, data=data, on_chunk=_stall_hook()).strip()
    echo(out)
    if restart:
        _restart(target, echo)
    return _active(out)


def rollback(target, restart=False, echo=print):
    """Switch `target` back to its previous release, after checking its sha256 -> its name."""
    out = target.run(ELEVATE, ROLLBACK, target.root).strip()
    echo(out)
    if restart:
        _restart(target, echo)
    return _active(out)


def _restart(target, echo):
    out = target.run(RESTART).strip()
    if out:
        echo(out)


def _active(out):
    """The release the scripts' last line, "active: NAME [(note)]", names."""
    return out.splitlines()[-1].split()[1]


def playbook(rid, bundle_name, restart):
    """The fleet playbook: the same FLASH script as a single flash, run by Ansible on every host (20% of the
    fleet at a time; a host that fails stops there with its running release untouched). A host whose
    opt/tinyr1 belongs to root needs `become` in the inventory (the script's error says so)."""
    bundle = f"/tmp/tinyr1-{rid}.tar"
    tasks = [
        {"name": "Copy, verify and switch", "block": [
            {"name": "Upload the release bundle", "ansible.builtin.copy": {
                "src": bundle_name, "dest": bundle, "mode": "0600"}},
            {"name": "Unpack, verify sha256 and switch current atomically", "ansible.builtin.script": {
                "cmd": f"flash.sh {{{{ tinyr1_root | default('/') | quote }}}} {rid} {bundle}",
                "executable": "/bin/sh"}, "register": "activate"},
        ], "always": [
            {"name": "Remove the uploaded bundle", "ansible.builtin.file": {"path": bundle, "state": "absent"}},
        ]},
        {"name": "Report", "ansible.builtin.debug": {"msg": "{{ activate.stdout | default('') | trim }}"}},
    ]
    if restart:
        tasks.append({"name": "Restart the kiosk service", "ansible.builtin.script": {
            "cmd": "restart.sh", "executable": "/bin/sh"}, "become": True})
    return [{"name": f"Flash tinyr1 release {rid}", "hosts": "all", "gather_facts": False,
             "serial": "20%", "any_errors_fatal": False, "tasks": tasks}]


def flash_fleet(cfg, model_path, inventory, restart=False, check=False, echo=print, extra_args=()):
    """Render the playbook and bundle into a temp dir and run ansible-playbook -> release id."""
    if shutil.which("ansible-playbook") is None and not os.path.exists(os.path.join(os.path.dirname(sys.executable),
                                                                                     "ansible-playbook")):
        raise FlashError("--inventory needs Ansible: pip install 'tinyr1[deploy]' (ansible-core)")
    rid, files = build(cfg, model_path)
    with tempfile.TemporaryDirectory(prefix="tinyr1-flash-") as d:
        with open(os.path.join(d, "bundle.tar"), "wb") as f:
            f.write(tar_bytes(files))
        for name, script in (("flash.sh", FLASH), ("restart.sh", RESTART)):
            with open(os.path.join(d, name), "w") as f:
                f.write(script)
        book = os.path.join(d, "flash.yml")
        with open(book, "w") as f:
            yaml.safe_dump(playbook(rid, "bundle.tar", restart), f, sort_keys=False)
        exe = shutil.which("ansible-playbook") or os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
        cmd = [exe, "-i", os.path.abspath(inventory), book, *(["--check", "--diff"] if check else []), *extra_args]
        echo(f"release {rid}: ansible-playbook on {inventory}")
        r = subprocess.run(cmd, cwd=d, capture_output=True, text=True,
                           env={**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_RETRY_FILES_ENABLED": "0"})
        echo(r.stdout.rstrip())
        if r.returncode != 0:
            raise FlashError(f"ansible-playbook failed (exit {r.returncode}) on some hosts; their running "
                             f"release is untouched:\n{r.stderr.strip()[-2000:]}")
    return rid
