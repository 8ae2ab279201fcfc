"""Object detectors for the edge: ONNX Runtime and OpenVINO backends behind one `Detector`.

Examples:
    >>> from edge_app.detectors import load_detector
    >>> # detector = load_detector("best.onnx")            # ONNX Runtime
    >>> # detector = load_detector("best_openvino_model")  # OpenVINO
    >>> # detector = load_detector("best.onnx", OpenVinoConfig(device="GPU", precision="f16"))
    >>> # detections = detector.detect(frame_bgr, conf=0.25, iou=0.7)
"""

from edge_app.detectors.base import BackendUnavailableError, InferenceBackend, InferenceJob
from edge_app.detectors.config import (
    AutoInferenceConfig,
    InferenceConfig,
    OnnxRuntimeConfig,
    OpenVinoConfig,
    default_thread_count,
    inference_config,
)
from edge_app.detectors.core import (
    BACKENDS,
    Detector,
    backend_for_path,
    load_backend,
    load_detector,
)
from edge_app.detectors.metadata import (
    DetectorMetadata,
    read_metadata_yaml,
    read_onnx_metadata,
)
from edge_app.detectors.processing import (
    LetterboxInfo,
    batched_nms,
    frame_to_tensor,
    letterbox,
    non_max_suppression,
)

__all__ = [
    "BACKENDS",
    "AutoInferenceConfig",
    "BackendUnavailableError",
    "Detector",
    "DetectorMetadata",
    "InferenceBackend",
    "InferenceConfig",
    "InferenceJob",
    "LetterboxInfo",
    "OnnxRuntimeConfig",
    "OpenVinoConfig",
    "backend_for_path",
    "batched_nms",
    "default_thread_count",
    "frame_to_tensor",
    "inference_config",
    "letterbox",
    "load_backend",
    "load_detector",
    "non_max_suppression",
    "read_metadata_yaml",
    "read_onnx_metadata",
]
