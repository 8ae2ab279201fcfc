"""`Detector`: a model behind a backend, plus the pre- and post-processing around it."""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from edge_app.detections import Detections, class_ids_of
from edge_app.detectors.base import InferenceBackend, InferenceJob
from edge_app.detectors.config import AutoInferenceConfig, InferenceConfig, inference_config
from edge_app.detectors.processing import (
    LetterboxInfo,
    check_frame,
    decode_end2end_output,
    decode_yolo_output,
    frame_to_tensor,
    rect_input_hw,
)
from kit.core.contracts.control import DEFAULT_IOU, DEFAULT_MAX_DETECTIONS

BACKENDS: dict[str, str] = {
    "onnxruntime": "edge_app.detectors.onnxruntime_backend:OnnxRuntimeBackend",
    "openvino": "edge_app.detectors.openvino_backend:OpenVinoBackend",
}
"""Backend name -> ``module:class`` of its `InferenceBackend`, imported on first use; each takes
``(model_path, config, class_names=...)`` with its config from `edge_app.detectors.config`."""


class Detector:
    """An object detector: letterbox, run the backend, decode, NMS, boxes in frame pixels.

    The three stages are separate methods so that a pipeline can overlap them: `submit` starts
    inference and returns at once, so the next frame is preprocessed (or the previous one
    tracked) while this one is inferred; up to ``max_in_flight`` inferences run at once.
    `detect` runs the stages in turn with one reusable input buffer, so it must not be called
    from several threads at once; give each thread its own buffer (`new_input_buffer`) and call
    the stages instead.

    The defaults are ultralytics predict's (``conf=0.25``, ``iou=0.7``, ``max_det=300``), so a
    model counts here what it counts in ultralytics.

    Args:
        backend: The loaded model.
        max_det: Most detections returned per frame, unless a call says otherwise.

    Examples:
        >>> # detector = load_detector("models/fish/3/best.onnx")
        >>> # detections = detector.detect(frame_bgr, conf=0.4, classes=["fish"])
    """

    def __init__(self, backend: InferenceBackend, max_det: int = DEFAULT_MAX_DETECTIONS) -> None:
        backend.metadata.check_supported()
        self.backend = backend
        self.metadata = backend.metadata
        self.max_det = max_det
        self._input = self.new_input_buffer()

    def __repr__(self) -> str:
        return f"Detector({self.backend!r}, classes={len(self.class_names)}, imgsz={self.imgsz})"

    def close(self) -> None:
        """Release the threads the backend holds; the detector must not be used afterwards."""
        self.backend.close()

    @property
    def class_names(self) -> dict[int, str]:
        """Class names by class id, from the model's metadata."""
        return self.metadata.class_names

    @property
    def imgsz(self) -> tuple[int, int]:
        """Network input size ``(height, width)`` (for a model with dynamic height and width,
        the size a frame is scaled to fit)."""
        return self.metadata.imgsz

    @property
    def rectangular(self) -> bool:
        """Whether frames are inferred at their own aspect ratio: the model takes any height and
        width (a ``dynamic`` export), so a frame is padded only up to the stride, as ultralytics'
        rectangular inference does (`rect_input_hw`), instead of to a square ``imgsz``."""
        return self.backend.dynamic_hw

    def input_hw(self, frame_hw: tuple[int, int]) -> tuple[int, int]:
        """The network input size ``(height, width)`` for frames of ``frame_hw``."""
        if self.rectangular:
            return rect_input_hw(frame_hw, self.imgsz, self.metadata.stride)
        return self.imgsz

    def new_input_buffer(self) -> np.ndarray:
        """A ``(1, 3, H, W)`` float32 buffer of the square ``imgsz`` for `preprocess` to write
        into (a rectangular model's frames replace it with one of their size)."""
        return np.empty((1, 3, *self.imgsz), dtype=np.float32)

    def preprocess(
        self, frame: np.ndarray, out: np.ndarray | None = None
    ) -> tuple[np.ndarray, LetterboxInfo]:
        """Letterbox a BGR uint8 frame into the network input tensor.

        Args:
            frame: ``(H, W, 3)`` uint8 BGR image.
            out: Buffer from `new_input_buffer` to fill; a new one when omitted, or when its
                shape is not the one this frame needs (a rectangular model's input follows the
                frame's aspect ratio).

        Returns:
            The input tensor (``out`` when it was used) and where the frame sits in it.

        Raises:
            ValueError: for an image that is not an ``(H, W, 3)`` uint8 frame.
        """
        if not self.rectangular:  # frame_to_tensor checks the frame
            return frame_to_tensor(frame, self.imgsz, out=out)
        check_frame(frame)  # before its shape is used
        input_hw = self.input_hw(frame.shape[:2])
        if out is not None and out.shape[2:] != input_hw:
            out = None
        return frame_to_tensor(frame, input_hw, out=out, fit_hw=self.imgsz)

    @property
    def max_in_flight(self) -> int:
        """How many inferences the backend runs at once."""
        return self.backend.max_in_flight

    def infer(self, tensor: np.ndarray) -> np.ndarray:
        """The backend's raw output for a preprocessed tensor."""
        return self.backend.infer(tensor)

    def submit(self, tensor: np.ndarray) -> InferenceJob:
        """Start inference on a preprocessed tensor; ``job.result()`` is what `infer` returns.

        ``tensor`` is not copied: leave it unchanged until the job is done.
        """
        return self.backend.submit(tensor)

    def postprocess(
        self,
        raw: np.ndarray,
        info: LetterboxInfo,
        conf: float = 0.25,
        iou: float = DEFAULT_IOU,
        classes: Iterable[int | str] | None = None,
        max_det: int | None = None,
    ) -> Detections:
        """Decode raw output into `Detections` in pixels of the original frame.

        Args:
            raw: Output of `infer`: ``(1, 4 + nc, N)`` (YOLOv8/11) or ``(1, max_det, 6)``
                (NMS-free heads and exports with NMS).
            info: Letterbox placement from `preprocess`.
            conf: Keep boxes with a confidence above this.
            iou: NMS IoU threshold (boxes of the same class overlapping more are dropped).
            classes: Keep only these classes (ids or names).
            max_det: Most detections kept, most confident first (default: the detector's).

        Raises:
            ValueError: for thresholds outside 0..1, a ``max_det`` below 1, unknown class names
                or an output layout that is not a detection head.
        """
        _check_fraction("conf", conf)
        _check_fraction("iou", iou)
        max_det = self.max_det if max_det is None else max_det
        if max_det < 1:
            raise ValueError(f"max_det must be 1 or more, got {max_det!r}")
        wanted = None if classes is None else class_ids_of(classes, self.class_names)
        num_classes = len(self.class_names)
        if raw.ndim == 3 and raw.shape[1] == 4 + num_classes:
            decoded = decode_yolo_output(raw, num_classes, conf, iou, wanted, max_det)
        elif raw.ndim == 3 and raw.shape[2] == 6:
            decoded = decode_end2end_output(raw, conf, wanted, max_det)
        else:
            raise ValueError(
                f"cannot decode output of shape {raw.shape} for {num_classes} classes: expected "
                f"(1, {4 + num_classes}, N) or (1, max_det, 6)"
            )
        return Detections(
            xyxy=info.boxes_to_frame(decoded.xyxy),
            confidence=decoded.confidence,
            class_id=decoded.class_id,
            class_names=self.class_names,
        )

    def detect(
        self,
        frame: np.ndarray,
        conf: float = 0.25,
        iou: float = DEFAULT_IOU,
        classes: Iterable[int | str] | None = None,
        max_det: int | None = None,
    ) -> Detections:
        """Detect objects in one BGR frame (preprocess, infer, postprocess).

        Examples:
            >>> # detections = detector.detect(frame, conf=0.4)
            >>> # detections.counts()  -> {"bottle": 3, "person": 0}
        """
        tensor, info = self.preprocess(frame, out=self._input)
        self._input = tensor  # a rectangular model's next frame of this size reuses it
        return self.postprocess(
            self.infer(tensor), info, conf=conf, iou=iou, classes=classes, max_det=max_det
        )


def _check_fraction(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be between 0 and 1, got {value!r}")


def backend_for_path(path: str | Path) -> str:
    """The backend `load_detector` picks for a model path.

    ``.onnx`` -> ``"onnxruntime"``; a ``.xml`` or a directory holding one (an ultralytics
    ``*_openvino_model``) -> ``"openvino"``; a directory holding one ``.onnx`` -> ``"onnxruntime"``.

    Raises:
        FileNotFoundError: when the path does not exist.
        ValueError: when no backend reads that kind of file.

    Examples:
        >>> backend_for_path("models/best.onnx")
        'onnxruntime'
    """
    path = Path(path)
    if path.suffix == ".onnx":
        return "onnxruntime"
    if path.suffix == ".xml":
        return "openvino"
    if path.is_dir():
        if any(path.glob("*.xml")):
            return "openvino"
        if len(list(path.glob("*.onnx"))) == 1:
            return "onnxruntime"
        raise ValueError(f"{path} holds no .xml (OpenVINO) and not exactly one .onnx model")
    if not path.exists():
        raise FileNotFoundError(f"no model at {path}")
    raise ValueError(
        f"cannot tell the backend for {path.name!r}: expected a .onnx file, an OpenVINO .xml "
        "or a *_openvino_model directory"
    )


def load_backend(
    path: str | Path,
    config: InferenceConfig | None = None,
    class_names: Mapping[int, str] | None = None,
) -> InferenceBackend:
    """Load a model file with the backend ``config`` names (for ``auto``, `backend_for_path`'s).

    Raises:
        FileNotFoundError: when there is no model at ``path``.
        BackendUnavailableError: a device or execution provider this machine does not have.
        ImportError: when the backend's runtime package is not installed.
    """
    config = config or AutoInferenceConfig()
    if isinstance(config, AutoInferenceConfig):
        config = config.for_backend(backend_for_path(path))
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no model at {path}")
    if config.backend == "onnxruntime" and path.is_dir():
        candidates = sorted(path.glob("*.onnx"))
        if len(candidates) != 1:
            found = [c.name for c in candidates] or "none"
            raise FileNotFoundError(f"expected exactly one .onnx model in {path}, found {found}")
        path = candidates[0]
    module_name, class_name = BACKENDS[config.backend].split(":")
    backend_class = getattr(importlib.import_module(module_name), class_name)
    return backend_class(path, config, class_names=class_names)


def load_detector(
    path: str | Path,
    inference: InferenceConfig | Mapping[str, Any] | None = None,
    *,
    class_names: Mapping[int, str] | None = None,
    max_det: int = DEFAULT_MAX_DETECTIONS,
    **fields: Any,
) -> Detector:
    """Load a detector from a model file, reading classes and input size from its metadata.

    Args:
        path: ``.onnx`` file, OpenVINO ``.xml`` or ``*_openvino_model`` directory.
        inference: How to run it: a device config's ``inference`` (`OnnxRuntimeConfig`,
            `OpenVinoConfig`, `AutoInferenceConfig`) or its mapping; ``auto`` when omitted.
        class_names: Names by class id for models without ultralytics metadata.
        max_det: Most detections per frame.
        **fields: Fields of the inference config, over ``inference``'s: ``backend`` (``auto``,
            ``onnxruntime``, ``openvino``), ``threads``, ``performance_hint``, and per backend
            ``device``, ``precision`` (OpenVINO), ``execution_providers`` (ONNX Runtime).

    Raises:
        FileNotFoundError: when there is no model at ``path``.
        ValueError: a bad inference config (`kit.core.contracts.ContractError`, naming the field
            and what is allowed), or a model that is not an object detector.
        BackendUnavailableError: a device or execution provider this machine does not have.
        ImportError: when the backend's runtime package is not installed.

    Examples:
        >>> # detector = load_detector("runs/detect/train/weights/best_openvino_model")
        >>> # detector = load_detector("best.onnx", backend="openvino", device="GPU", precision="f16")
        >>> # detector.class_names -> {0: "person", 1: "helmet"}
    """
    config = inference_config(inference, **fields)
    return Detector(load_backend(path, config, class_names=class_names), max_det=max_det)
