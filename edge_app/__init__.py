"""The edge runtime: cameras -> detector -> tracker -> zones -> annotator -> publisher.

Imports only light dependencies (numpy, opencv, onnxruntime/openvino, boto3); never torch or
ultralytics, so that it fits a small device image.
"""

__version__ = "0.1.0"
