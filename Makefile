# Two commands on a fresh Linux machine:  make demo  and  make test.
# Each creates or updates its virtualenv and installs what it needs (stamp files skip pip when
# setup.py has not changed).
PYTHON ?= python3
VENV   := .venv
FLOOR  := .venv-floor
PY     := $(VENV)/bin/python
MODEL  := build/student.msgpack
export OPENBLAS_NUM_THREADS ?= 1
export PYTHONHASHSEED := 0

# What Raspberry Pi OS bookworm ships as Debian packages: the runtime's floor, tested in CI.
# (Debian has luma.oled 3.10.0, which is not on PyPI: 3.9.0 is the nearest release below it.)
FLOOR_PINS := numpy==1.24.4 msgpack==1.0.3 pyyaml==6.0.1 click==8.1.3 pillow==9.4.0 gpiozero==2.0.1 \
  luma.core==2.4.0 luma.oled==3.9.0 luma.lcd==2.10.0 smbus2==0.4.2
# tflite-runtime (2.14, its last release) runs only with numpy < 2: the floor environment checks TFLite exports too
FLOOR_PEERS := tflite-runtime==2.14.0

SEED_QUESTIONS := "What is 47+38?" "How many r in strawberry?" "Solve 3x+5=20" \
  "A train travels 300 km in 5 hours. What is its average speed?" "Solve x^2-5x+6=0" "What is fib(10)?" "Sort 5 3 9 1"

.PHONY: demo test clean system-tools

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.demo: setup.py | $(VENV)/bin/python
	$(PY) -m pip install --quiet -e '.[train,kiosk]'
	touch $@

$(VENV)/.test: setup.py | $(VENV)/bin/python
	$(PY) -m pip install --quiet -e '.[train,kiosk,dev,deploy,oracle,interop]'
	touch $@

$(FLOOR)/.stamp: setup.py Makefile
	$(PYTHON) -m venv $(FLOOR)
	$(FLOOR)/bin/python -m pip install --quiet $(FLOOR_PINS) $(FLOOR_PEERS) pytest hypothesis
	$(FLOOR)/bin/python -m pip install --quiet --no-deps -e .
	touch $@

$(MODEL): $(VENV)/.demo trainer/checkpoints/student/model.npz
	mkdir -p build
	$(VENV)/bin/tinyr1 compile trainer/checkpoints/student -o $(MODEL)

demo: $(VENV)/.demo $(MODEL)
	@for q in $(SEED_QUESTIONS); do echo "Q: $$q"; $(VENV)/bin/tinyr1 run $(MODEL) --prompt "$$q"; echo; done
	@echo "--- the kiosk, simulated: firmware_configs/pi5-ssd1306.yaml, every button pressed once"
	$(VENV)/bin/tinyr1 simulate --config firmware_configs/pi5-ssd1306.yaml --model $(MODEL) --gif kiosk.gif

# The flashing tests need a real sshd on 127.0.0.1 and systemd-analyze (Debian packages).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
system-tools:
	@command -v /usr/sbin/sshd >/dev/null && command -v systemd-analyze >/dev/null || { \
	  echo "installing openssh-server and systemd (for systemd-analyze) with apt-get"; \
	  $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -qq --no-install-recommends openssh-server openssh-client systemd >/dev/null; }

test: $(VENV)/.test $(FLOOR)/.stamp system-tools
	$(PY) -m pytest -n 2 -q tests
	@echo "--- runtime on the Raspberry Pi OS floor: $(FLOOR_PINS)"
	$(FLOOR)/bin/python -m pytest -q -p no:xdist tests/test_tokenizer.py tests/test_tasks.py \
	  tests/test_compile_runtime.py tests/test_model_file.py tests/test_floor.py \
	  tests/test_kiosk.py tests/test_kiosk_display.py tests/test_kiosk_config.py

clean:
	rm -rf $(VENV) $(FLOOR) build .pytest_cache
