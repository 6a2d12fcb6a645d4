"""tinyr1: a tiny DeepSeek-R1-style reasoning model, trained, compiled and run on a Raspberry Pi kiosk.

install_requires is the runtime's floor: only packages Raspberry Pi OS bookworm ships as Debian
packages. Training, tests and oracles are extras.
"""
import re

from setuptools import find_packages, setup

VERSION = re.search(r'__version__ = "([^"]+)"', open("runtime/__init__.py").read()).group(1)

KIOSK = ["pillow>=9.4", "gpiozero>=2.0", "luma.core>=2.4", "luma.oled>=3.9", "luma.lcd>=2.10", "smbus2>=0.4"]

setup(
    name="tinyr1",
    version=VERSION,
    description="Train, compile and run a tiny DeepSeek-R1-style reasoning model on a Raspberry Pi kiosk",
    python_requires=">=3.9",
    # the pipeline's stages: trainer -> compiler -> export -> deploy -> runtime; tinyr1 is the host's command
    packages=find_packages(include=["trainer", "trainer.*", "compiler", "compiler.*", "export", "export.*",
                                    "deploy", "deploy.*", "runtime", "runtime.*", "tinyr1", "tinyr1.*"]),
    package_data={
        "runtime": ["tasks/*.yaml", "tasks/*.txt"],
        "deploy": ["install.sh", "tinyr1-kiosk.service"],
        "trainer": ["recipes/*.yaml", "checkpoints/*/*"],
    },
    install_requires=["numpy>=1.24", "msgpack>=1.0.3", "pyyaml>=5.4", "click>=8.0"],
    extras_require={
        "train": ["tqdm>=4.60", "matplotlib>=3.6", "threadpoolctl>=3.1"],
        # the kiosk's hardware libraries; on the Pi they come from apt (python3-gpiozero, python3-luma.*)
        "kiosk": KIOSK,
        # lgpio: gpiozero's pin library on a Pi 5, imported on the host to test the service's start
        "dev": ["pytest>=7", "pytest-xdist>=3", "hypothesis>=6.80", "tqdm>=4.60", "matplotlib>=3.6",
                "lgpio>=0.2"] + KIOSK,
        # `tinyr1 flash --inventory`: fleets through an Ansible playbook
        "deploy": ["ansible-core>=2.15"],
        # numerical oracle and speed peer: HF transformers' DeepseekV3ForCausalLM on CPU torch
        "oracle": ["torch==2.13.0", "transformers>=5.6", "safetensors>=0.4"],
        # `tinyr1 export` and the independent runtimes that check the exports (tests and benchmarks only);
        # llama-cpp-python builds llama.cpp from source (~7 min on 2 cores, cached by pip afterwards)
        "interop": ["onnx>=1.16", "onnxruntime>=1.18", "gguf>=0.10", "llama-cpp-python>=0.3.0",
                    "ai-edge-litert>=1.0", "flatbuffers>=24.3", "tflite>=2.18"],
    },
    entry_points={"console_scripts": ["tinyr1=tinyr1.cli:main"]},
)
