"""Command-line tools and distribution: checkpoint conversion, ONNX export, Hub release, remote code, model cards."""
