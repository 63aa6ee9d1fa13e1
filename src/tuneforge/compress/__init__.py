"""Compression: ONNX export, int8 quantization, measured trade-offs and a recommendation."""
