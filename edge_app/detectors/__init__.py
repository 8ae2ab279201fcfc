"""Object detectors for the edge: ONNX Runtime and OpenVINO backends behind one `Detector`.

Examples:
    >>> from edge_app.detectors import load_detector
    >>> # detector = load_detector("best.onnx")            # ONNX Runtime
    >>> # detector = load_detector("best_openvino_model")  # OpenVINO
    >>> # detections = detector.detect(frame_bgr, conf=0.25, iou=0.45)
"""

from edge_app.detectors.base import (
    PERFORMANCE_HINTS,
    InferenceBackend,
    InferenceJob,
    default_thread_count,
)
from edge_app.detectors.core import (
    BACKENDS,
    Detector,
    backend_for_path,
    load_backend,
    load_detector,
)
from edge_app.detectors.metadata import (
    ModelMetadata,
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
    "PERFORMANCE_HINTS",
    "Detector",
    "InferenceBackend",
    "InferenceJob",
    "LetterboxInfo",
    "ModelMetadata",
    "backend_for_path",
    "batched_nms",
    "default_thread_count",
    "frame_to_tensor",
    "letterbox",
    "load_backend",
    "load_detector",
    "non_max_suppression",
    "read_metadata_yaml",
    "read_onnx_metadata",
]
