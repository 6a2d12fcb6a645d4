"""`tinyr1 export {onnx,gguf,tflite} MODEL -o OUT`: the compiled graph in other runtimes' formats, so
that onnxruntime, llama.cpp and LiteRT can check our numbers and race our runtime.

Each exporter reads a compiled `.msgpack` model through the runtime's validating loader
(`runtime.loader.read_document`) and exposes `export(model_path, out_path, weights) -> dict` (a short
report: bytes written, tensors, what was dequantized or re-laid out and why).
"""
import importlib

FORMATS = {
    "onnx": "compiler.export.onnx_export",      # prefill + decode-step graphs, int8 via DequantizeLinear
    "gguf": "compiler.export.gguf_export",      # llama.cpp deepseek2, F32 or Q8_0
    "tflite": "compiler.export.tflite_export",  # prefill graph as a .tflite flatbuffer, no TensorFlow
}


def exporter(fmt):
    return importlib.import_module(FORMATS[fmt])
