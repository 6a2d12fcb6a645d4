"""`tinyr1 flash`: put a compiled model, its kiosk config and the runtime on a Pi, an SD card or a fleet."""
import click

from runtime.errors import TinyR1Error
from runtime.kiosk.kiosk_cli import PROBLEMS


@click.command("flash")
@click.option("--config", "config", type=click.Path(dir_okay=False), default=None,
              help="Kiosk YAML file (see firmware_configs/); validated, with its model, before anything is copied.")
@click.option("--model", type=click.Path(dir_okay=False), default=None,
              help="Compiled model to flash instead of the config's `model:`.")
@click.option("--target", default=None, metavar="DIR|ssh://[user@]host[:port][/root]",
              help="A directory (e.g. an SD card's mounted root filesystem) or an ssh:// URL; the release goes "
                   "to ROOT/opt/tinyr1/releases/ID and ROOT/opt/tinyr1/current is switched to it atomically.")
@click.option("--inventory", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Flash every host of this Ansible inventory (ansible-core renders and runs a playbook; "
                   "per-host variable tinyr1_root sets ROOT, default /).")
@click.option("--rollback", is_flag=True,
              help="Switch --target back to the previous release (no copy), after checking its sha256.")
@click.option("--restart", is_flag=True,
              help="systemctl daemon-reload and restart tinyr1-kiosk afterwards, if it is installed.")
@click.option("--check", is_flag=True, help="With --inventory: ansible-playbook --check --diff (changes nothing).")
@click.option("--force", is_flag=True,
              help="Flash even when the pre-flight check finds a problem (a wrong, cut-off or falsely refused "
                   "canned answer, a task button under 90% right).")
@PROBLEMS
@click.option("--ssh-option", "ssh_options", multiple=True, metavar="OPT",
              help="Extra ssh argument, repeatable, e.g. --ssh-option=-i --ssh-option=~/.ssh/pi_key.")
def flash(config, model, target, inventory, rollback, restart, check, force, problems, ssh_options):
    """Copy a release (runtime, model, config, systemd unit, install script) to a target, verify its sha256
    there, and switch to it atomically; the previous release is kept for --rollback. First the pre-flight
    check (as `tinyr1 validate`) asks every button's question as the kiosk would: a wrong or cut-off answer
    stops the flash unless --force. An interrupted or failed flash leaves the running release untouched and
    removes what it copied; a second flash into the same target waits for the first. A unit file that install.sh put in /etc/systemd/system is updated.
    Where the ssh user cannot write /opt/tinyr1 (an SD card flashed as root), sudo -n is used.
    First install on a Pi: sudo /opt/tinyr1/current/install.sh"""
    from deploy.flash import flash as do_flash, flash_fleet, rollback as do_rollback
    from deploy.targets import parse_target
    if (target is None) == (inventory is None):
        raise click.UsageError("give exactly one of --target or --inventory")
    try:
        if rollback:
            if target is None:
                raise click.UsageError("--rollback needs --target")
            return do_rollback(parse_target(target, ssh_options), restart, click.echo)
        if config is None:
            raise click.UsageError("--config is required to flash")
        from runtime.kiosk.config import check_model, load_config
        from runtime.kiosk.kiosk_cli import run_preflight
        cfg = load_config(config, model)
        where = parse_target(target, ssh_options) if target is not None else None   # a typo fails first
        m = check_model(cfg)
        report = run_preflight(cfg, m, problems)
        if report.problems and not force:
            raise click.ClickException(f"not flashed: the pre-flight check found {len(report.problems)} "
                                       f"button(s) with a problem (above); fix them or flash anyway with --force")
        if inventory:
            flash_fleet(cfg, cfg.model, inventory, restart, check, click.echo)
        else:
            do_flash(cfg, cfg.model, where, restart, click.echo)
    except TinyR1Error as e:
        raise click.ClickException(str(e)) from None
