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
DEMO_QUESTIONS := $(SEED_QUESTIONS) "Hello"

.PHONY: demo test clean system-tools pi-check

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.demo: setup.py | $(VENV)/bin/python
	$(PY) -m pip install --quiet -e '.[train,kiosk]'
	touch $@

# llama.cpp (the `interop` extra's llama-cpp-python) compiles from source, by default with the build
# machine's own instructions (GGML_NATIVE=ON): such a wheel can die with SIGILL on another CPU, and on an
# Intel CPU with AMX even on the one that built it. We build one wheel with a fixed instruction set instead:
# x86-64-v3 (AVX2, FMA, F16C: every Intel since Haswell, 2013, and AMD since Excavator, 2015) where the CPU
# has AVX2, the plain x86-64 baseline where it has not, and ggml's portable default on arm64. The wheel is
# kept under .wheels/<variant>-<hash>/ so that pip's own cache (keyed by version, not by flags) never serves a
# native build in its place.
LLAMA_CPP     := llama-cpp-python==0.3.36
ARCH          := $(shell uname -m)
LLAMA_VARIANT := $(if $(filter x86_64,$(ARCH)),$(if $(shell grep -qw avx2 /proc/cpuinfo && echo y),x86-64-v3,x86-64),$(ARCH))
LLAMA_CMAKE_x86-64-v3 := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
  -DGGML_AVX512=OFF -DGGML_AVX_VNNI=OFF -DGGML_BMI2=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF
LLAMA_CMAKE_x86-64    := -DGGML_NATIVE=OFF -DGGML_AVX=OFF -DGGML_AVX2=OFF -DGGML_FMA=OFF -DGGML_F16C=OFF \
  -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF
LLAMA_CMAKE_aarch64   := -DGGML_NATIVE=OFF
LLAMA_CMAKE   := $(LLAMA_CMAKE_$(LLAMA_VARIANT)) -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF
# the directory is named by the version and flags, so only a change of those rebuilds
LLAMA_WHEELS  := .wheels/$(LLAMA_VARIANT)-$(shell echo '$(LLAMA_CPP) $(LLAMA_CMAKE)' | sha256sum | cut -c1-8)

$(LLAMA_WHEELS)/.stamp: | $(VENV)/bin/python
	@echo "building $(LLAMA_CPP) for $(LLAMA_VARIANT) (about 5 minutes on 2 cores, once): $(LLAMA_CMAKE)"
	rm -rf $(LLAMA_WHEELS) && mkdir -p $(LLAMA_WHEELS)
	CMAKE_ARGS="$(LLAMA_CMAKE)" $(PY) -m pip wheel --quiet --no-deps --no-cache-dir -w $(LLAMA_WHEELS) $(LLAMA_CPP)
	touch $@

$(VENV)/.test: setup.py $(LLAMA_WHEELS)/.stamp | $(VENV)/bin/python
	$(PY) -m pip install --quiet --force-reinstall --no-deps $(LLAMA_WHEELS)/llama_cpp_python-*.whl
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
	@for q in $(DEMO_QUESTIONS); do echo "Q: $$q"; $(VENV)/bin/tinyr1 run $(MODEL) --prompt "$$q"; echo; done
	@echo "--- the kiosk, simulated: firmware_configs/pi5-ssd1306.yaml, every button pressed once"
	$(VENV)/bin/tinyr1 simulate --config firmware_configs/pi5-ssd1306.yaml --model $(MODEL) --gif kiosk.gif

# The flashing tests need a real sshd on 127.0.0.1 and systemd-analyze; the portable-build test runs
# llama.cpp on an emulated older CPU with qemu-user-static, and reads its instructions with objdump
# (Debian packages).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
QEMU := $(if $(filter x86_64,$(ARCH)),qemu-x86_64-static,qemu-aarch64-static)
system-tools:
	@command -v /usr/sbin/sshd >/dev/null && command -v systemd-analyze >/dev/null && \
	  command -v $(QEMU) >/dev/null && command -v objdump >/dev/null || { \
	  echo "installing openssh-server, systemd (for systemd-analyze), qemu-user-static and binutils with apt-get"; \
	  $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -qq --no-install-recommends openssh-server openssh-client systemd qemu-user-static \
	    binutils >/dev/null; }

test: $(VENV)/.test $(FLOOR)/.stamp system-tools
	$(PY) -m pytest -n 2 -q tests
	@echo "--- runtime on the Raspberry Pi OS floor: $(FLOOR_PINS)"
	$(FLOOR)/bin/python -m pytest -q -p no:xdist tests/test_tokenizer.py tests/test_tasks.py \
	  tests/test_compile_runtime.py tests/test_model_file.py tests/test_floor.py tests/test_generation_options.py \
	  tests/test_kiosk.py tests/test_kiosk_display.py tests/test_kiosk_config.py tests/test_kiosk_inputs.py

# The release on a Raspberry Pi OS-like userland: a Debian bookworm arm64 root under qemu-user-static (built
# once into build/pi-root, ~10 min), flashed, set up by the release's install.sh, then the seven seed
# questions and a simulated press of every button, compared with this host's answers. Needs root.
pi-check: $(VENV)/.demo $(MODEL)
	@command -v debootstrap >/dev/null && command -v qemu-aarch64-static >/dev/null && \
	  command -v update-binfmts >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) env \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap qemu-user-static binfmt-support >/dev/null; }
	$(SUDO) env OPENBLAS_NUM_THREADS=1 $(PY) -m deploy.pi_check --model $(MODEL)

clean:
	rm -rf $(VENV) $(FLOOR) build .pytest_cache .wheels
