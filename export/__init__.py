"""`tinyr1 export {onnx,gguf,tflite} MODEL -o OUT`: the compiled graph in other runtimes' formats, so
that onnxruntime, llama.cpp and LiteRT can check our numbers and race our runtime (`race.py`), each in a
child process (`isolated.py`).

Each exporter reads a compiled `.msgpack` model through the runtime's validating loader
(`runtime.loader.read_document`) and exposes `export(model_path, out_path, weights) -> dict` (a short
report: bytes written, tensors, what was dequantized or re-laid out and why).
"""
FORMATS = ("onnx", "gguf", "tflite")


def exporter(fmt):
    """The exporter module of a format (imported here, so a missing peer package fails only its format)."""
    if fmt == "onnx":                  # prefill + decode-step graphs, int8 via DequantizeLinear
        from export import onnx_export
        return onnx_export
    if fmt == "gguf":                  # llama.cpp deepseek2, F32 or Q8_0
        from export import gguf_export
        return gguf_export
    if fmt == "tflite":                # prefill graph as a .tflite flatbuffer, no TensorFlow
        from export import tflite_export
        return tflite_export
    raise ValueError(f"unknown export format {fmt!r}; formats: {', '.join(FORMATS)}")
