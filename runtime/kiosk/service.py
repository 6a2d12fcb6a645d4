"""Running as a systemd service: sd_notify without a library, and logs that journald understands."""
import logging
import os
import socket
import sys
import tempfile
import time


def sd_notify(message, env=None):
    """Send `message` ("READY=1", "WATCHDOG=1", "STATUS=...") to systemd's $NOTIFY_SOCKET.
    -> True if sent; False when not run by systemd. A leading "@" is Linux's abstract namespace."""
    env = os.environ if env is None else env
    addr = env.get("NOTIFY_SOCKET")
    if not addr:
        return False
    if addr.startswith("@"):
        addr = "\0" + addr[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.connect(addr)
        s.sendall(message.encode())
    return True


def gpio_working_dir(env=None):
    """lgpio, gpiozero's pin library on a Pi 5, creates its notification pipe in $LG_WD (or the working
    directory) when it is imported, and fails in one this user cannot write: `xCreatePipe: Can't set
    permissions`, then gpiozero's BadPinFactory. Call before gpiozero is imported. Keeps a writable
    $LG_WD; else points it at systemd's $STATE_DIRECTORY or the working directory, when writable, or else
    a private temporary directory. -> the directory."""
    env = os.environ if env is None else env
    candidates = [env.get("LG_WD"), (env.get("STATE_DIRECTORY") or "").split(":")[0], os.getcwd()]
    for d in candidates:
        if d and os.path.isdir(d) and os.access(d, os.W_OK | os.X_OK):
            env["LG_WD"] = d
            return d
    env["LG_WD"] = tempfile.mkdtemp(prefix="tinyr1-lgpio-")
    return env["LG_WD"]


class Watchdog:
    """Pings WATCHDOG=1 every WATCHDOG_USEC/2 when `due()`; the kiosk calls `tick()` from its worker loop,
    so a hung worker stops the pings and systemd restarts the service."""

    def __init__(self, env=None, clock=time.monotonic):
        env = os.environ if env is None else env
        usec = int(env.get("WATCHDOG_USEC", "0") or 0)
        pid = env.get("WATCHDOG_PID")
        if pid and pid != str(os.getpid()):
            usec = 0                                   # meant for another process
        self.interval = usec / 2e6 if usec else None
        self.env, self.clock, self.last = env, clock, None
        self.pings = 0

    def tick(self):
        if self.interval is None:
            return
        now = self.clock()
        if self.last is None or now - self.last >= self.interval:
            sd_notify("WATCHDOG=1", self.env)
            self.last = now
            self.pings += 1

    def timeout(self, default):
        """How long the worker may block waiting for a press before it must ping."""
        return default if self.interval is None else min(default, self.interval)


class JournalFormatter(logging.Formatter):
    """`<3>message` style priority prefixes when stdout goes to journald (it sets $JOURNAL_STREAM)."""
    PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}

    def format(self, record):
        return f"<{self.PRIORITY.get(record.levelno, 6)}>{super().format(record)}"


def setup_logging(level="INFO", stream=None):
    stream = stream or sys.stdout
    handler = logging.StreamHandler(stream)
    if os.environ.get("JOURNAL_STREAM"):
        handler.setFormatter(JournalFormatter("%(name)s: %(message)s"))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    log = logging.getLogger("tinyr1")
    log.handlers[:] = [handler]
    log.setLevel(level.upper())
    log.propagate = False
    return log
