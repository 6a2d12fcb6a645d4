"""The Raspberry Pi kiosk: config (`config.py`), screen layout (`layout.py`), displays (`display.py`),
the button-driven app (`app.py`), systemd integration (`service.py`) and host simulation (`simulate.py`).

Needs gpiozero and luma.* on top of the runtime; all are Debian packages on Raspberry Pi OS bookworm.
"""
from runtime.kiosk.config import KioskConfig, check_model, config_from_dict, load_config

__all__ = ["KioskConfig", "load_config", "config_from_dict", "check_model"]
