"""Peers in a child process. llama.cpp, onnxruntime and LiteRT are native code that can die: SIGILL on a
CPU its build did not expect, SIGSEGV on a graph it mishandles. Tests and `tinyr1 bench` call them only
through a child Python process, so a crash is one `PeerError` naming the engine and the signal
("llama.cpp died with SIGILL"), never a dead test worker or a lost benchmark.

    with Peer("llama.cpp", "model.gguf", all_logits=True) as r:
        logits = r.logits(ids)          # LlamaRunner.logits, run in the child
        n = r.get("max_positions")      # an attribute's value

Engines and the runner each one opens (the runners live beside their exporters):
    llama.cpp       llama_runner.LlamaRunner(path, threads=1, all_logits=False)
    onnxruntime     onnx_export.OrtRunner(out_dir, threads=1)
    litert          tflite_export.LiteRtRunner(path, threads=1)                      # ai-edge-litert
    tflite-runtime  tflite_export.LiteRtRunner(path, threads=1, package="tflite_runtime")
`python=` starts the child with another interpreter (the numpy-1.24 floor environment for tflite-runtime),
or a command line ending in one (`["qemu-x86_64-static", "-cpu", "Haswell", sys.executable]`: an older CPU).

Protocol: frames on the child's stdin and on a private copy of its stdout; the child points fd 1 at
stderr, so text a native library prints cannot corrupt a frame. A frame is a 4-byte little-endian length,
a JSON header, then every array the header refers to as an 8-byte length and its .npy bytes (read back
with allow_pickle=False). An exception in the child is raised again in the parent with its own class
when the parent has that class loaded (ContextOverflowError, ValueError, ...), else as a PeerError.

Fault injection: TINYR1_CRASH_PEER=ENGINE[:SIGNAL] makes ENGINE's child kill itself with SIGNAL
(default SIGILL) as it opens the engine, here and in `tinyr1 bench`; tests use it to show that a crash
stays one failure.
"""
import io
import json
import os
import signal
import struct
import subprocess
import sys
import tempfile

import numpy as np
from export.errors import PeerError


ENGINES = ("llama.cpp", "onnxruntime", "litert", "tflite-runtime")
CRASH_ENV = "TINYR1_CRASH_PEER"
MAX_HEADER = 1 << 20                   # bytes of JSON in one frame
MAX_ARRAY = 1 << 31                    # bytes of one .npy blob
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def crash_if_asked(engine):
    """Kill this process with the signal TINYR1_CRASH_PEER names, if it names this engine."""
    want, _, sig = os.environ.get(CRASH_ENV, "").partition(":")
    if want == engine:
        import resource
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))             # no core file for a staged crash
        os.kill(os.getpid(), getattr(signal, sig or "SIGILL"))


def open_runner(engine, *args, **kwargs):
    """The engine's runner object, in this process (the child's side of Peer; bench's child too)."""
    crash_if_asked(engine)
    if engine == "llama.cpp":
        from export.llama_runner import LlamaRunner
        return LlamaRunner(*args, **kwargs)
    if engine == "onnxruntime":
        from export.onnx_export import OrtRunner
        return OrtRunner(*args, **kwargs)
    if engine in ("litert", "tflite-runtime"):
        from export.tflite_export import LiteRtRunner
        package = "tflite_runtime" if engine == "tflite-runtime" else "ai_edge_litert"
        return LiteRtRunner(*args, package=package, **kwargs)
    raise ValueError(f"unknown engine {engine!r}; engines: {', '.join(ENGINES)}")


def death(engine, returncode):
    """'llama.cpp died with SIGILL' for a negative return code, else 'exited with status N'."""
    if returncode is not None and returncode < 0:
        try:
            return f"{engine} died with {signal.Signals(-returncode).name}"
        except ValueError:
            return f"{engine} died with signal {-returncode}"
    return f"{engine} exited with status {returncode}"


# ---------------------------------------------------------------- frames
def _encode(value, blobs):
    if isinstance(value, np.ndarray):
        buf = io.BytesIO()
        np.save(buf, value, allow_pickle=False)
        blobs.append(buf.getvalue())
        return {"__array__": len(blobs) - 1}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {str(k): _encode(v, blobs) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encode(v, blobs) for v in value]
    return value


def _decode(value, arrays):
    if isinstance(value, dict):
        if set(value) == {"__array__"}:
            return arrays[value["__array__"]]
        return {k: _decode(v, arrays) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v, arrays) for v in value]
    return value


def write_frame(f, message):
    blobs = []
    header = json.dumps({"body": _encode(message, blobs), "arrays": len(blobs)}).encode()
    f.write(struct.pack("<I", len(header)) + header)
    for b in blobs:
        f.write(struct.pack("<Q", len(b)) + b)
    f.flush()


def read_frame(f):
    """-> the message, or None at a clean end of stream. Sizes are bounded before anything is read."""
    raw = f.read(4)
    if not raw:
        return None
    (n,) = struct.unpack("<I", _exact(f, 4, raw))
    if n > MAX_HEADER:
        raise PeerError(f"peer frame header of {n} bytes exceeds {MAX_HEADER}")
    header = json.loads(_exact(f, n))
    arrays = []
    for _ in range(int(header["arrays"])):
        (size,) = struct.unpack("<Q", _exact(f, 8))
        if size > MAX_ARRAY:
            raise PeerError(f"peer array of {size} bytes exceeds {MAX_ARRAY}")
        arrays.append(np.load(io.BytesIO(_exact(f, size)), allow_pickle=False))
    return _decode(header["body"], arrays)


def _exact(f, n, have=b""):
    data = have
    while len(data) < n:
        more = f.read(n - len(data))
        if not more:
            raise EOFError("the peer's stream ended inside a frame")
        data += more
    return data


# ---------------------------------------------------------------- parent side
class Peer:
    """An engine's runner in a child process; its methods are called as if it were local."""

    def __init__(self, engine, *args, python=None, **kwargs):
        if engine not in ENGINES:
            raise ValueError(f"unknown engine {engine!r}; engines: {', '.join(ENGINES)}")
        self.engine = engine
        self._stderr = tempfile.TemporaryFile()
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])))
        python = [python] if isinstance(python, str) else list(python or [sys.executable])
        self._proc = subprocess.Popen(python + ["-m", "export.isolated"],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
                                      env=env, cwd=ROOT)
        self._request({"op": "open", "engine": engine, "args": list(args), "kwargs": kwargs})

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return lambda *args, **kwargs: self.call(name, *args, **kwargs)

    def call(self, name, *args, **kwargs):
        """runner.name(*args, **kwargs) in the child (also for names Peer has itself, like close)."""
        return self._request({"op": "call", "name": name, "args": list(args), "kwargs": kwargs})

    def get(self, name):
        """The value of the runner's attribute `name`."""
        return self._request({"op": "get", "name": name})

    def close(self):
        """Close the runner and end the child (harmless twice)."""
        if self._proc is None:
            return
        try:
            self._request({"op": "close"})
        except PeerError:
            pass                                      # the child is gone already
        finally:
            self._end()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        if getattr(self, "_proc", None) is not None:
            self._proc.kill()

    def _request(self, message):
        if self._proc is None:
            raise PeerError(f"{self.engine}: the peer is closed")
        try:
            write_frame(self._proc.stdin, message)
            reply = read_frame(self._proc.stdout)
        except (BrokenPipeError, EOFError):
            reply = None
        if reply is None:
            raise self._died()
        if "error" in reply:
            raise _rebuild(self.engine, *reply["error"])
        return reply["ok"]

    def _died(self):
        code = self._proc.wait(timeout=60)
        self._stderr.seek(0)
        tail = self._stderr.read()[-1500:].decode(errors="replace").strip()
        self._end()
        return PeerError(death(self.engine, code) + (f"; its stderr ends:\n{tail}" if tail else ""))

    def _end(self):
        if self._proc is not None:
            for stream in (self._proc.stdin, self._proc.stdout):
                try:
                    stream.close()
                except OSError:                       # unflushed bytes to a child that has died
                    pass
            self._proc.wait(timeout=60)
            self._proc = None
        self._stderr.close()


def _rebuild(engine, module, name, text):
    """The child's exception as the same class when this process has it loaded, else a PeerError."""
    cls = getattr(sys.modules.get(module), name, None)
    if isinstance(cls, type) and issubclass(cls, Exception):
        try:
            return cls(text)
        except TypeError:
            pass
    return PeerError(f"{engine}: {module}.{name}: {text}")


# ---------------------------------------------------------------- child side
def serve(inp, out):
    """Answer frames until the parent closes stdin: open, call, get, close."""
    runner = None
    while True:
        msg = read_frame(inp)
        if msg is None:
            return
        try:
            op = msg["op"]
            if op == "open":
                runner, result = open_runner(msg["engine"], *msg["args"], **msg["kwargs"]), None
            elif op == "close":
                result = runner.close() if hasattr(runner, "close") else None
            elif msg["name"].startswith("_"):
                raise AttributeError(f"{msg['name']} is private")
            elif op == "get":
                result = getattr(runner, msg["name"])
            else:
                result = getattr(runner, msg["name"])(*msg["args"], **msg["kwargs"])
            reply = {"ok": result}
        except Exception as e:                      # any failure goes back to the parent, typed
            reply = _error(e)
        try:
            write_frame(out, reply)
        except TypeError as e:                      # a result JSON cannot carry; nothing was written yet
            write_frame(out, _error(e))


def _error(e):
    return {"error": [type(e).__module__, type(e).__qualname__, str(e)]}


def main():
    out = os.fdopen(os.dup(1), "wb")               # frames go here; fd 1 becomes stderr for native prints
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    serve(sys.stdin.buffer, out)


if __name__ == "__main__":
    main()
