#!/bin/sh
# First-time setup of a tinyr1 kiosk on Raspberry Pi OS (bookworm); run as root from the release:
#   sudo /opt/tinyr1/current/install.sh            (--dry-run prints what it would do)
# Uses only Debian packages: no pip, works offline from any Python package index.
set -eu
run() { if [ "${DRY_RUN:-0}" = 1 ]; then echo "+ $*"; else "$@"; fi; }
[ "${1:-}" = "--dry-run" ] && DRY_RUN=1
HERE=$(cd "$(dirname "$0")" && pwd)
PACKAGES="python3-numpy python3-msgpack python3-yaml python3-click python3-pil python3-gpiozero python3-lgpio \
python3-luma.oled python3-luma.lcd python3-luma.core python3-smbus2"
run apt-get install -y --no-install-recommends $PACKAGES
for g in gpio i2c video; do getent group "$g" >/dev/null || run groupadd --system "$g"; done
id tinyr1 >/dev/null 2>&1 || run useradd --system --no-create-home --home-dir /var/lib/tinyr1 \
  --shell /usr/sbin/nologin --groups gpio,i2c,video tinyr1
run install -m 0644 "$HERE/tinyr1-kiosk.service" /etc/systemd/system/tinyr1-kiosk.service
run systemctl daemon-reload
run systemctl enable --now tinyr1-kiosk.service
echo "tinyr1 kiosk installed; logs: journalctl -u tinyr1-kiosk -f"
