"""The llama.cpp that `make test` builds (Makefile: LLAMA_CMAKE) runs on any x86-64-v3 CPU, not only on the
one that compiled it: no AVX-512 and no AMX instruction in its libraries (on arm64: no SVE, which a
Raspberry Pi's Cortex-A72/A76 lacks), and its own system-info line says the same. A native build (pip's
default, GGML_NATIVE=ON) on an AVX-512 machine fails both checks."""
import glob
import os
import platform
import re
import shutil
import subprocess
import sys

import pytest

from conftest import need_peer

FORBIDDEN = {"x86_64": {"AVX-512": r"%zmm|%k[1-7]\b", "AMX": r"\btdpb|\btileload|\bldtilecfg"},
             "aarch64": {"SVE": r"\bz\d+\.[bhsdq]\b|\bp\d+/[zm]\b"}}


@pytest.fixture(scope="module")
def libraries():
    spec = need_peer("llama_cpp", "llama-cpp-python")
    libs = sorted(glob.glob(os.path.join(os.path.dirname(spec.origin), "lib", "libggml*.so")))
    assert libs, f"no ggml libraries beside {spec.origin}"
    return libs


def test_no_instruction_beyond_the_portable_set_in_the_ggml_libraries(libraries):
    if shutil.which("objdump") is None:
        pytest.skip("objdump (binutils) is needed to read the libraries' instructions")
    for lib in libraries:
        text = subprocess.run(["objdump", "-d", "--no-show-raw-insn", lib], capture_output=True, text=True,
                              check=True).stdout
        assert len(text) > 1000, lib
        for name, pattern in FORBIDDEN[platform.machine()].items():
            hits = re.findall(rf"^.*(?:{pattern}).*$", text, re.M)
            assert not hits, f"{os.path.basename(lib)} has {len(hits)} {name} instructions, e.g. {hits[0].strip()}"


def test_system_info_names_the_portable_instruction_set(libraries):
    code = "import llama_cpp; print(llama_cpp.llama_print_system_info().decode())"
    info = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout
    print(f"\nllama.cpp system info: {info.strip()}")
    assert "CPU :" in info
    assert not re.search(r"AVX512\w* = 1|AMX\w* = 1|SVE\w* = 1", info), info
    if platform.machine() == "x86_64" and "avx2" in open("/proc/cpuinfo").read():
        assert "AVX2 = 1" in info and "FMA = 1" in info                 # x86-64-v3, not the bare baseline


# An older CPU, emulated: qemu's TCG implements no AVX-512 (nor SVE), so an instruction beyond the portable set
# dies there with SIGILL, exactly as on such a CPU. `make test` installs qemu-user-static.
OLD_CPU = {"x86_64": ("qemu-x86_64-static", "Haswell"), "aarch64": ("qemu-aarch64-static", "cortex-a72")}


def test_llama_cpp_computes_the_same_logits_on_an_emulated_older_cpu(libraries, tmp_path, tiny_model_file):
    from export.gguf_export import export
    from export.isolated import Peer
    qemu, cpu = OLD_CPU[platform.machine()]
    if shutil.which(qemu) is None:
        pytest.skip(f"{qemu} (Debian's qemu-user-static) emulates an older CPU")
    gguf = str(tmp_path / "tiny.gguf")
    export(tiny_model_file, gguf, weights="int8")                    # Q8_0: ggml's SIMD dot products
    ids = list(range(1, 12))
    with Peer("llama.cpp", gguf) as here:
        want = here.prefill(ids)
    with Peer("llama.cpp", gguf, python=[qemu, "-cpu", cpu, sys.executable]) as old:
        got = old.prefill(ids)
    print(f"\nllama.cpp under {qemu} -cpu {cpu}: max |logit diff| against this CPU {abs(got - want).max():.1e}")
    assert abs(got - want).max() <= 1e-4                             # the same kernels' instruction set
