"""Runs in both environments; in the floor one it proves the pins took effect."""
import os
import sys

import msgpack
import numpy as np


def test_versions_are_what_the_environment_claims():
    if os.path.basename(sys.prefix) == ".venv-floor":
        assert np.__version__.startswith("1.24.") and msgpack.version[:3] == (1, 0, 3)
    assert tuple(int(x) for x in np.__version__.split(".")[:2]) >= (1, 24)
    if os.path.basename(sys.prefix) == ".venv-floor":
        import PIL
        from importlib.metadata import version
        assert PIL.__version__ == "9.4.0" and version("gpiozero") == "2.0.1"
        assert version("luma.core") == "2.4.0" and version("luma.oled") == "3.9.0" and version("luma.lcd") == "2.10.0"
