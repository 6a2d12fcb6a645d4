#!/bin/sh
# First-time setup of a tinyr1 kiosk on Raspberry Pi OS (bookworm), and again after a flash that changed the
# unit; run as root from the release:
#   sudo /opt/tinyr1/current/install.sh            (--dry-run prints what it would do)
# Debian packages only (no pip): it needs the network once, for apt.
#   1. apt: the runtime's packages, numpy with OpenBLAS, and python3-lgpio when the archive has it
#   2. the tinyr1 user and its groups
#   3. I2C on, when the kiosk's display is on I2C
#   4. the systemd unit, enabled (and started, when systemd is running: not in an image being prepared)
set -eu
run() { if [ "${DRY_RUN:-0}" = 1 ]; then echo "+ $*"; else "$@"; fi; }
say() { echo "install.sh: $*" >&2; }
[ "${1:-}" = "--dry-run" ] && DRY_RUN=1
HERE=$(cd "$(dirname "$0")" && pwd)
if [ "$(id -u)" != 0 ] && [ "${DRY_RUN:-0}" != 1 ]; then say "run it as root: sudo $0"; exit 1; fi

# 1. packages. libopenblas0-pthread: python3-numpy without its recommends links the reference BLAS,
#    which made the first token 17-30 ms against 7 ms and decoding 0.6x as fast.
PACKAGES="python3-numpy libopenblas0-pthread python3-msgpack python3-yaml python3-click python3-pil \
python3-gpiozero python3-luma.oled python3-luma.lcd python3-luma.core python3-smbus2"
run apt-get update
if [ -n "$(apt-cache policy python3-lgpio 2>/dev/null | sed -n 's/^ *Candidate: *//p' | grep -v '(none)')" ]; then
  PACKAGES="$PACKAGES python3-lgpio"
else
  say "python3-lgpio is not in this system's apt sources: it comes from the Raspberry Pi OS archive"
  say "(archive.raspberrypi.com), which Raspberry Pi OS has and plain Debian has not. Without it the buttons"
  say "do not work on a Raspberry Pi 5 (gpiozero needs lgpio there). Installing everything else."
fi
run env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $PACKAGES

# 2. the service user: no login, no home but its state directory (systemd's StateDirectory=)
for g in gpio i2c video; do getent group "$g" >/dev/null || run groupadd --system "$g"; done
id tinyr1 >/dev/null 2>&1 || run useradd --system --no-create-home --home-dir /var/lib/tinyr1 \
  --shell /usr/sbin/nologin --groups gpio,i2c,video tinyr1

# 3. I2C, for the OLEDs and the LCD backpack (the kiosk names the same fix if it finds no bus)
display=""
[ -f "$HERE/kiosk.yaml" ] && display=$(sed -n '/^display:/,/^[^ ]/s/^ *type: *\([a-z0-9_]*\).*/\1/p' "$HERE/kiosk.yaml" | head -n 1)
case "$display" in
  ssd1306|sh1106|hd44780)
    if command -v raspi-config >/dev/null 2>&1; then
      run raspi-config nonint do_i2c 0
    elif ! ls /dev/i2c-* >/dev/null 2>&1; then
      say "the $display display needs I2C, which is off and raspi-config is not here: add the line"
      say "dtparam=i2c_arm=on to /boot/firmware/config.txt and reboot"
    fi ;;
esac

# 4. the unit (a re-flash that changes it updates it, and so does running this again)
run install -m 0644 "$HERE/tinyr1-kiosk.service" /etc/systemd/system/tinyr1-kiosk.service
if [ -d /run/systemd/system ]; then
  run systemctl daemon-reload
  run systemctl enable --now tinyr1-kiosk.service
  echo "tinyr1 kiosk installed and started; logs: journalctl -u tinyr1-kiosk -f"
else
  run systemctl enable tinyr1-kiosk.service
  echo "tinyr1 kiosk installed; it starts at the next boot (systemd is not running here)"
fi
