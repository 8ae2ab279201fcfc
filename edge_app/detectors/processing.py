"""Pre- and post-processing of YOLO detectors in numpy and OpenCV, matching ultralytics.

`letterbox` resizes and pads exactly as ultralytics' ``LetterBox`` (same rounding, linear
interpolation, padding 114, centred), `decode_yolo_output` and `non_max_suppression` reproduce
``ultralytics.utils.nms.non_max_suppression`` with class-aware NMS done by offsetting each class
by ``MAX_WH`` pixels, so results match ``YOLO(model).predict`` on the same frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from kit.core.boxes import clip_boxes

PAD_VALUE = 114
"""Grey level of letterbox padding, as ultralytics trains and predicts with."""
MAX_WH = 7680
"""Per-class box offset (pixels) that turns one NMS into a class-aware NMS."""
MAX_NMS = 30000
"""Most candidate boxes kept (by confidence) before NMS."""
_UNIT_SCALE = (np.arange(256, dtype=np.float32) / np.float32(255.0)).reshape(1, 256)


@dataclass(frozen=True)
class LetterboxInfo:
    """How a frame was placed into the network input, to map boxes back.

    Attributes:
        frame_hw: Original frame size ``(height, width)``.
        resized_hw: Size of the resized frame inside the input ``(height, width)``.
        input_hw: Network input size ``(height, width)``.
        pad_top: Padding rows above the resized frame.
        pad_left: Padding columns left of the resized frame.

    Examples:
        >>> info = LetterboxInfo.compute((480, 640), (320, 320))
        >>> info.resized_hw, info.pad_top, info.pad_left
        ((240, 320), 40, 0)
    """

    frame_hw: tuple[int, int]
    resized_hw: tuple[int, int]
    input_hw: tuple[int, int]
    pad_top: int
    pad_left: int

    @classmethod
    def compute(
        cls,
        frame_hw: tuple[int, int],
        input_hw: tuple[int, int],
        fit_hw: tuple[int, int] | None = None,
    ) -> LetterboxInfo:
        """The placement ultralytics' ``LetterBox(center=True)`` chooses.

        Args:
            frame_hw: the frame's ``(height, width)``.
            input_hw: the network input's.
            fit_hw: the size the frame is scaled to fit (default ``input_hw``); a rectangular
                input (:func:`rect_input_hw`) is the frame fitted into the model's ``imgsz``
                plus the padding up to the stride, so the scale comes from ``imgsz``.
        """
        height, width = frame_hw
        if height <= 0 or width <= 0:
            raise ValueError(f"frame size must be positive, got height={height}, width={width}")
        fit_hw = input_hw if fit_hw is None else fit_hw
        ratio = min(fit_hw[0] / height, fit_hw[1] / width)
        # Python's round() (half to even) on Python floats, exactly as ultralytics does.
        resized_w, resized_h = max(round(width * ratio), 1), max(round(height * ratio), 1)
        pad_w, pad_h = (input_hw[1] - resized_w) / 2, (input_hw[0] - resized_h) / 2
        return cls(
            frame_hw=(height, width),
            resized_hw=(resized_h, resized_w),
            input_hw=(input_hw[0], input_hw[1]),
            pad_top=round(pad_h - 0.1),
            pad_left=round(pad_w - 0.1),
        )

    @property
    def pad_bottom(self) -> int:
        """Padding rows below the resized frame."""
        return self.input_hw[0] - self.resized_hw[0] - self.pad_top

    @property
    def pad_right(self) -> int:
        """Padding columns right of the resized frame."""
        return self.input_hw[1] - self.resized_hw[1] - self.pad_left

    def boxes_to_frame(self, xyxy: np.ndarray) -> np.ndarray:
        """Map ``(N, 4)`` boxes from network input pixels to frame pixels, clipped to the frame.

        Modifies and returns ``xyxy`` (float32).
        """
        gain_y = self.resized_hw[0] / self.frame_hw[0]
        gain_x = self.resized_hw[1] / self.frame_hw[1]
        xyxy[:, 0::2] -= self.pad_left
        xyxy[:, 1::2] -= self.pad_top
        xyxy[:, 0::2] /= gain_x
        xyxy[:, 1::2] /= gain_y
        return clip_boxes(xyxy, (self.frame_hw[1], self.frame_hw[0]), out=xyxy)


def rect_input_hw(
    frame_hw: tuple[int, int], imgsz: tuple[int, int], stride: int
) -> tuple[int, int]:
    """The smallest input a model with dynamic height and width needs for a ``frame_hw`` frame:
    the frame scaled to fit ``imgsz`` and padded up to a multiple of ``stride`` only, as
    ultralytics' ``LetterBox(auto=True)`` (its rectangular inference) does.

    A 640x480 camera at ``imgsz`` 320 is inferred at 320x256 instead of 320x320: a fifth fewer
    pixels, so a fifth less inference.

    Examples:
        >>> rect_input_hw((480, 640), (320, 320), 32)
        (256, 320)
        >>> rect_input_hw((1080, 1920), (640, 640), 32)
        (384, 640)
    """
    height, width = frame_hw
    if height <= 0 or width <= 0:
        raise ValueError(f"frame size must be positive, got height={height}, width={width}")
    ratio = min(imgsz[0] / height, imgsz[1] / width)
    resized_w, resized_h = max(round(width * ratio), 1), max(round(height * ratio), 1)
    return (
        resized_h + (imgsz[0] - resized_h) % stride,
        resized_w + (imgsz[1] - resized_w) % stride,
    )


def letterbox(
    frame: np.ndarray, input_hw: tuple[int, int], pad_value: int = PAD_VALUE
) -> tuple[np.ndarray, LetterboxInfo]:
    """Resize ``frame`` keeping its aspect ratio and pad it to ``input_hw`` (uint8 image).

    Examples:
        >>> import numpy as np
        >>> image, info = letterbox(np.zeros((480, 640, 3), np.uint8), (320, 320))
        >>> image.shape, int(image[0, 0, 0])
        ((320, 320, 3), 114)
    """
    info = LetterboxInfo.compute(frame.shape[:2], input_hw)
    resized = _resize(frame, info)
    image = cv2.copyMakeBorder(
        resized,
        info.pad_top,
        info.pad_bottom,
        info.pad_left,
        info.pad_right,
        cv2.BORDER_CONSTANT,
        value=(pad_value,) * 3,
    )
    return image, info


def _resize(frame: np.ndarray, info: LetterboxInfo) -> np.ndarray:
    if frame.shape[:2] == info.resized_hw:
        return frame
    return cv2.resize(frame, info.resized_hw[::-1], interpolation=cv2.INTER_LINEAR)


def check_frame(frame: np.ndarray) -> None:
    """Raise `ValueError` unless ``frame`` is an ``(H, W, 3)`` uint8 BGR image."""
    if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] != 3:
        shape = getattr(frame, "shape", type(frame).__name__)
        raise ValueError(f"expected a BGR frame of shape (height, width, 3), got {shape}")
    if frame.dtype != np.uint8:
        raise ValueError(f"expected a uint8 frame, got dtype {frame.dtype}")


def frame_to_tensor(
    frame: np.ndarray,
    input_hw: tuple[int, int],
    out: np.ndarray | None = None,
    fit_hw: tuple[int, int] | None = None,
) -> tuple[np.ndarray, LetterboxInfo]:
    """Letterbox a BGR uint8 frame into a ``(1, 3, H, W)`` float32 RGB tensor scaled to 0..1.

    Writes straight into ``out`` when given (a preallocated input buffer): the resized frame
    goes into the middle and only the padding strips are filled, so no padded uint8 image and
    no second float copy are made. ``fit_hw`` is :meth:`LetterboxInfo.compute`'s (the size the
    frame is scaled to fit, when ``input_hw`` is a rectangular input).

    Examples:
        >>> import numpy as np
        >>> tensor, info = frame_to_tensor(np.zeros((480, 640, 3), np.uint8), (320, 320))
        >>> tensor.shape, tensor.dtype, info.pad_top
        ((1, 3, 320, 320), dtype('float32'), 40)
    """
    check_frame(frame)
    info = LetterboxInfo.compute(frame.shape[:2], input_hw, fit_hw)
    shape = (1, 3, *input_hw)
    if out is None:
        out = np.empty(shape, dtype=np.float32)
    elif out.shape != shape or out.dtype != np.float32 or not out.flags.c_contiguous:
        raise ValueError(
            f"out must be a C-contiguous float32 array of shape {shape}, got {out.dtype} {out.shape}"
        )
    resized = _resize(frame, info)
    top, left = info.pad_top, info.pad_left
    height, width = info.resized_hw
    pad = _UNIT_SCALE[0, PAD_VALUE]
    planes = out[0]
    planes[:, :top, :] = pad
    planes[:, top + height :, :] = pad
    planes[:, top : top + height, :left] = pad
    planes[:, top : top + height, left + width :] = pad
    # BGR -> RGB and HWC -> CHW: split into planes, then a 256-entry table maps each uint8 to
    # its float32 value / 255 straight into the buffer (bit-identical to ultralytics' division,
    # and faster than numpy's strided divide).
    for channel, plane in enumerate(reversed(cv2.split(resized))):
        cv2.LUT(plane, _UNIT_SCALE, dst=planes[channel, top : top + height, left : left + width])
    return out, info


def non_max_suppression(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Indices of the boxes greedy NMS keeps, highest score first (torchvision's semantics).

    A box is dropped when its IoU with a kept, higher-scoring box is above ``iou_threshold``;
    boxes of equal score are taken in input order. OpenCV's ``cv2.dnn.NMSBoxes`` does the work
    (the same greedy rule in C++: about a quarter of the time of a numpy loop on the 50 or so
    candidates of a typical frame); the tests check it against ``torchvision.ops.nms``.

    Examples:
        >>> import numpy as np
        >>> boxes = np.array([[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30]], np.float32)
        >>> non_max_suppression(boxes, np.array([0.9, 0.8, 0.7], np.float32), 0.5).tolist()
        [0, 2]
    """
    xywh = np.array(boxes, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float32).reshape(-1)
    if len(xywh) != len(scores):
        raise ValueError(f"{len(xywh)} boxes but {len(scores)} scores")
    if not len(xywh):
        return np.empty(0, dtype=np.int64)
    xywh[:, 2:] -= xywh[:, :2]
    # NMSBoxes only takes scores above a threshold >= 0, so it is given ranks instead (n for the
    # best box down to 1): every box takes part whatever its score, and ties go in input order.
    ranks = np.empty(len(scores), dtype=np.float32)
    ranks[np.argsort(-scores, kind="stable")] = np.arange(len(scores), 0, -1)
    keep = cv2.dnn.NMSBoxes(xywh, ranks, 0.0, float(iou_threshold))
    return np.asarray(keep, dtype=np.int64).reshape(-1)


def batched_nms(
    boxes: np.ndarray, scores: np.ndarray, class_ids: np.ndarray, iou_threshold: float
) -> np.ndarray:
    """Class-aware NMS: boxes only suppress boxes of their own class.

    Offsets each box by ``class_id * MAX_WH`` and runs one `non_max_suppression`, as
    ultralytics does (boxes must lie within ``MAX_WH`` pixels).

    Examples:
        >>> import numpy as np
        >>> boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 10]], np.float32)
        >>> batched_nms(boxes, np.array([0.9, 0.8]), np.array([0, 1]), 0.5).tolist()
        [0, 1]
    """
    offsets = (np.asarray(class_ids, dtype=np.float32) * np.float32(MAX_WH))[:, None]
    return non_max_suppression(np.asarray(boxes, dtype=np.float32) + offsets, scores, iou_threshold)


@dataclass(frozen=True)
class RawDetections:
    """Decoded boxes in network-input pixels, before they are mapped back to the frame."""

    xyxy: np.ndarray
    confidence: np.ndarray
    class_id: np.ndarray


def decode_yolo_output(
    output: np.ndarray,
    num_classes: int,
    conf_threshold: float,
    iou_threshold: float,
    classes: np.ndarray | None = None,
    max_det: int = 300,
) -> RawDetections:
    """Boxes from a YOLOv8/11 detection head output ``(1, 4 + nc, N)`` (cx, cy, w, h, scores).

    Keeps the best class of each anchor above ``conf_threshold`` (strictly greater, as
    ultralytics), optionally only ``classes``, then class-aware NMS and at most ``max_det``.
    """
    predictions = output[0]
    if predictions.shape[0] != 4 + num_classes:
        raise ValueError(
            f"detection output has {predictions.shape[0]} rows, expected 4 + {num_classes} classes "
            f"(output shape {output.shape})"
        )
    scores = predictions[4:]
    best = scores.max(axis=0)
    candidates = np.flatnonzero(best > conf_threshold)
    confidence = best[candidates]
    class_id = scores[:, candidates].argmax(axis=0)
    if classes is not None:
        wanted = np.isin(class_id, classes)
        candidates, confidence, class_id = candidates[wanted], confidence[wanted], class_id[wanted]
    if candidates.size > MAX_NMS:
        top = np.argsort(-confidence, kind="stable")[:MAX_NMS]
        candidates, confidence, class_id = candidates[top], confidence[top], class_id[top]
    cxcywh = predictions[:4, candidates].T
    half_wh = cxcywh[:, 2:] / 2
    xyxy = np.concatenate((cxcywh[:, :2] - half_wh, cxcywh[:, :2] + half_wh), axis=1)
    keep = batched_nms(xyxy, confidence, class_id, iou_threshold)[:max_det]
    return RawDetections(xyxy=xyxy[keep], confidence=confidence[keep], class_id=class_id[keep])


def decode_end2end_output(
    output: np.ndarray,
    conf_threshold: float,
    classes: np.ndarray | None = None,
    max_det: int = 300,
) -> RawDetections:
    """Boxes from an NMS-free output ``(1, max_det, 6)`` (x1, y1, x2, y2, score, class)."""
    predictions = output[0]
    keep = predictions[:, 4] > conf_threshold
    if classes is not None:
        keep &= np.isin(predictions[:, 5].astype(np.int64), classes)
    predictions = predictions[keep][:max_det]
    return RawDetections(
        xyxy=predictions[:, :4].astype(np.float32, copy=True),
        confidence=predictions[:, 4].astype(np.float32),
        class_id=predictions[:, 5].astype(np.int64),
    )
