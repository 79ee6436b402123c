"""Exporters: the ONNX file (`rnngraph.exporters.onnx`) and views of it."""
