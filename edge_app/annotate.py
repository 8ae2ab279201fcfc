"""Drawing and privacy on frames with OpenCV: boxes, labels, zones, lines, header, blur, crops.

Every annotator has ``annotate(scene, detections)`` and draws into ``scene`` in place; the
top-level `annotate` copies the frame first, so the caller's frame is never changed.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

import cv2
import numpy as np

from edge_app.detections import ClassNames, Detections, class_ids_of, class_items, class_name_of
from edge_app.zones import LineCounter, PolygonZone
from kit.core.boxes import clip_boxes

FONT = cv2.FONT_HERSHEY_SIMPLEX

# A colour-blind-friendly palette (Okabe-Ito, then Tableau), BGR.
PALETTE: tuple[tuple[int, int, int], ...] = (
    (0, 159, 230), (233, 180, 86), (115, 158, 0), (66, 228, 240), (178, 114, 0),
    (0, 94, 213), (167, 121, 204), (40, 39, 214), (180, 119, 31), (14, 127, 255),
    (44, 160, 44), (189, 103, 148), (75, 86, 140), (194, 119, 227), (34, 189, 188),
)  # fmt: skip


def color_for(index: int) -> tuple[int, int, int]:
    """A stable BGR colour for a class id, track id or zone index.

    Examples:
        >>> color_for(0) == color_for(len(PALETTE))
        True
    """
    return PALETTE[int(index) % len(PALETTE)]


def _scale_for(scene: np.ndarray) -> tuple[float, int]:
    """Font scale and line thickness that read well at this frame size."""
    short_side = min(scene.shape[:2])
    font_scale = max(0.35, short_side / 1000)
    return font_scale, max(1, round(short_side / 400))


def _text_with_background(
    scene: np.ndarray,
    text: str,
    origin: tuple[int, int],
    color: tuple[int, int, int],
    font_scale: float,
    thickness: int = 1,
) -> None:
    """Text whose top-left corner is at ``origin``, on a filled box of ``color``."""
    (width, height), baseline = cv2.getTextSize(text, FONT, font_scale, thickness)
    x = int(np.clip(origin[0], 0, max(0, scene.shape[1] - width - 4)))
    y = int(np.clip(origin[1], 0, max(0, scene.shape[0] - height - baseline - 4)))
    cv2.rectangle(scene, (x, y), (x + width + 4, y + height + baseline + 4), color, cv2.FILLED)
    luminance = 0.114 * color[0] + 0.587 * color[1] + 0.299 * color[2]
    text_color = (0, 0, 0) if luminance > 140 else (255, 255, 255)
    cv2.putText(
        scene, text, (x + 2, y + height + 2), FONT, font_scale, text_color, thickness, cv2.LINE_AA
    )


class BoxAnnotator:
    """Box outlines, coloured by class (or by track with ``color_by_track=True``)."""

    def __init__(self, thickness: int | None = None, color_by_track: bool = False) -> None:
        self.thickness = thickness
        self.color_by_track = color_by_track

    def annotate(self, scene: np.ndarray, detections: Detections) -> np.ndarray:
        thickness = self.thickness or _scale_for(scene)[1]
        keys = detections.tracker_id if self.color_by_track else detections.class_id
        for box, key in zip(
            detections.xyxy.round().astype(int).tolist(), keys.tolist(), strict=True
        ):
            cv2.rectangle(scene, (box[0], box[1]), (box[2], box[3]), color_for(key), thickness)
        return scene


class LabelAnnotator:
    """``class 0.87 #12`` labels above each box (the track id only for tracked boxes).

    Args:
        class_names: the model's class names (default: the detections' own).
        show_confidence: add the confidence to each label.
        min_top: no label starts above this row (the header band's height, so that no label
            hides under it): a box whose label would, gets it inside its top edge, below that row.
    """

    def __init__(
        self,
        class_names: ClassNames | None = None,
        show_confidence: bool = True,
        min_top: int = 0,
    ) -> None:
        self.class_names = class_names
        self.show_confidence = show_confidence
        self.min_top = min_top

    def annotate(self, scene: np.ndarray, detections: Detections) -> np.ndarray:
        font_scale, _ = _scale_for(scene)
        names = self.class_names if self.class_names is not None else detections.class_names
        (_, text_height), baseline = cv2.getTextSize("Ag", FONT, font_scale, 1)
        for box, confidence, class_id, track_id in zip(
            detections.xyxy.tolist(),
            detections.confidence.tolist(),
            detections.class_id.tolist(),
            detections.tracker_id.tolist(),
            strict=True,
        ):
            label = class_name_of(names, class_id)
            if self.show_confidence:
                label += f" {confidence:.2f}"
            if track_id >= 0:
                label += f" #{track_id}"
            top = int(box[1]) - text_height - baseline - 4
            if top < self.min_top:
                top = max(int(box[1]), self.min_top)
            _text_with_background(scene, label, (int(box[0]), top), color_for(class_id), font_scale)
        return scene


class ZoneAnnotator:
    """A translucent polygon with its name and current per-class counts."""

    def __init__(
        self, zone: PolygonZone, color: tuple[int, int, int] | None = None, opacity: float = 0.25
    ) -> None:
        self.zone = zone
        self.color = color or color_for(7)
        self.opacity = opacity

    def annotate(self, scene: np.ndarray, detections: Detections | None = None) -> np.ndarray:
        height, width = scene.shape[:2]
        polygon = self.zone.polygon_pixels((width, height)).round().astype(np.int32)
        x1, y1 = np.clip(polygon.min(axis=0), 0, [width - 1, height - 1])
        x2, y2 = np.clip(polygon.max(axis=0) + 1, 1, [width, height])
        if x2 > x1 and y2 > y1:
            # Blend only the zone's bounding rectangle, not the whole frame.
            region = scene[y1:y2, x1:x2]
            overlay = region.copy()
            cv2.fillPoly(overlay, [polygon - [x1, y1]], self.color)
            cv2.addWeighted(overlay, self.opacity, region, 1 - self.opacity, 0, dst=region)
        font_scale, thickness = _scale_for(scene)
        cv2.polylines(scene, [polygon], True, self.color, thickness, cv2.LINE_AA)
        counts = ", ".join(f"{name} {n}" for name, n in self.zone.counts().items())
        text = (
            f"{self.zone.name}: {counts}"
            if counts
            else f"{self.zone.name}: {self.zone.current_count}"
        )
        _text_with_background(scene, text, (int(x1) + 4, int(y1) + 4), self.color, font_scale)
        return scene


class LineAnnotator:
    """A counting line with its in/out totals."""

    def __init__(self, line: LineCounter, color: tuple[int, int, int] = (255, 255, 255)) -> None:
        self.line = line
        self.color = color

    def annotate(self, scene: np.ndarray, detections: Detections | None = None) -> np.ndarray:
        height, width = scene.shape[:2]
        start, end = self.line.points_pixels((width, height)).round().astype(int).tolist()
        font_scale, thickness = _scale_for(scene)
        cv2.line(scene, tuple(start), tuple(end), self.color, thickness + 1, cv2.LINE_AA)
        for point in (start, end):
            cv2.circle(scene, tuple(point), thickness + 3, self.color, cv2.FILLED, cv2.LINE_AA)
        text = f"{self.line.name}: in {self.line.in_count} / out {self.line.out_count}"
        middle = ((start[0] + end[0]) // 2, (start[1] + end[1]) // 2 + 4)
        _text_with_background(scene, text, middle, self.color, font_scale)
        return scene


class HeaderAnnotator:
    """A dark band at the top: camera, model and time (UTC), then the per-class counts."""

    def __init__(
        self, camera: str = "", model: str = "", class_names: ClassNames | None = None
    ) -> None:
        self.camera = camera
        self.model = model
        self.class_names = class_names

    @staticmethod
    def band_height(scene: np.ndarray) -> int:
        """The height in pixels of the band this draws on ``scene`` (two lines of text)."""
        font_scale, _ = _scale_for(scene)
        (_, text_height), baseline = cv2.getTextSize("Ag", FONT, font_scale, 1)
        return min(scene.shape[0], 2 * (text_height + baseline + 6) + 4)

    def annotate(
        self, scene: np.ndarray, detections: Detections, timestamp: float | None = None
    ) -> np.ndarray:
        font_scale, _ = _scale_for(scene)
        stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(timestamp))
        first = "  |  ".join(part for part in (self.camera, self.model, stamp) if part)
        counts = detections.counts(self.class_names)
        second = "  ".join(f"{name}: {n}" for name, n in counts.items()) or "no detections"
        (_, text_height), baseline = cv2.getTextSize("Ag", FONT, font_scale, 1)
        line_height = text_height + baseline + 6
        band = scene[: self.band_height(scene)]
        band //= 3  # darken in place: readable text on any scene
        for row, text in enumerate((first, second)):
            y = 4 + row * line_height + text_height
            cv2.putText(scene, text, (6, y), FONT, font_scale, (255, 255, 255), 1, cv2.LINE_AA)
        return scene


def annotate(
    frame: np.ndarray,
    detections: Detections,
    class_names: ClassNames | None = None,
    zones: Sequence[PolygonZone] = (),
    lines: Sequence[LineCounter] = (),
    camera: str = "",
    model: str = "",
    timestamp: float | None = None,
    header: bool = True,
) -> np.ndarray:
    """A new annotated frame: zones, lines, boxes, labels and a header; ``frame`` is untouched.

    Zones and lines show the counts of their last ``trigger``.

    Examples:
        >>> import numpy as np
        >>> frame = np.zeros((240, 320, 3), np.uint8)
        >>> d = Detections(np.array([[10, 20, 100, 200]]), np.array([0.9]), np.array([0]))
        >>> out = annotate(frame, d, class_names=["fish"], camera="tank-1")
        >>> out is frame, bool(frame.any()), bool(out.any())
        (False, False, True)
    """
    scene = frame.copy()
    for index, zone in enumerate(zones):
        ZoneAnnotator(zone, color=color_for(index + 7)).annotate(scene)
    for line in lines:
        LineAnnotator(line).annotate(scene)
    BoxAnnotator().annotate(scene, detections)
    below_header = HeaderAnnotator.band_height(scene) if header else 0
    LabelAnnotator(class_names, min_top=below_header).annotate(scene, detections)
    if header:
        HeaderAnnotator(camera, model, class_names).annotate(scene, detections, timestamp)
    return scene


def _boxes_of_classes(
    frame: np.ndarray,
    detections: Detections,
    classes: Iterable[int | str] | None,
    class_names: ClassNames | None,
    pad: int = 0,
) -> list[tuple[int, int, int, int]]:
    """Integer pixel boxes (clipped, padded, non-empty) of detections of ``classes``."""
    names = class_names if class_names is not None else detections.class_names
    selected = detections
    if classes is not None:
        selected = detections[np.isin(detections.class_id, class_ids_of(classes, names))]
    height, width = frame.shape[:2]
    boxes = np.empty((len(selected), 4), dtype=np.int64)
    boxes[:, :2] = np.floor(selected.xyxy[:, :2]) - pad
    boxes[:, 2:] = np.ceil(selected.xyxy[:, 2:]) + pad
    clip_boxes(boxes, (width, height), out=boxes)
    nonempty = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    return [tuple(box) for box in boxes[nonempty].tolist()]


def blur_classes(
    frame: np.ndarray,
    detections: Detections,
    class_names: ClassNames | None = None,
    classes: Iterable[int | str] = ("person",),
    method: str = "gaussian",
    inplace: bool = False,
) -> np.ndarray:
    """Blur the boxes of ``classes`` (privacy) and return the frame.

    Each box is shrunk to a few pixels across and scaled back: smoothly (``"gaussian"``, a
    Gaussian blur at about 16 pixels across) or in blocks (``"pixelate"``, about 8 across).
    Either way faces and text become unreadable, at well under a millisecond per box.

    Args:
        frame: BGR image.
        detections: This frame's detections.
        class_names: Names by class id (defaults to those of ``detections``).
        classes: Classes to blur (names or ids). Names the model does not know are skipped,
            so one privacy setting serves models with and without a ``person`` class.
        method: ``"gaussian"`` or ``"pixelate"``.
        inplace: Modify ``frame`` instead of returning a blurred copy.

    Raises:
        ValueError: for an unknown ``method``.

    Examples:
        >>> import numpy as np
        >>> frame = np.random.default_rng(0).integers(0, 255, (100, 100, 3), dtype=np.uint8)
        >>> d = Detections(np.array([[10, 10, 60, 60]]), np.array([0.9]), np.array([0]))
        >>> out = blur_classes(frame, d, class_names=["person"])
        >>> bool((out[10:60, 10:60] != frame[10:60, 10:60]).any()), bool((out[70:] == frame[70:]).all())
        (True, True)
    """
    if method not in ("gaussian", "pixelate"):
        raise ValueError(f"unknown blur method {method!r}; choose 'gaussian' or 'pixelate'")
    names = class_names if class_names is not None else detections.class_names
    known = {name for _, name in class_items(names)}
    wanted = [c for c in classes if not isinstance(c, str) or c in known]
    scene = frame if inplace else frame.copy()
    if not wanted or not len(detections):
        return scene
    for x1, y1, x2, y2 in _boxes_of_classes(scene, detections, wanted, names):
        region = scene[y1:y2, x1:x2]
        width, height = x2 - x1, y2 - y1
        # Work on a copy shrunk to ~8 (pixelate) or ~16 (gaussian) pixels across the shorter
        # side: the cost stays small for any box size and details cannot be recovered.
        across = 8 if method == "pixelate" else 16
        scale = min(1.0, across / min(width, height))
        small_size = (max(1, round(width * scale)), max(1, round(height * scale)))
        small = cv2.resize(region, small_size, interpolation=cv2.INTER_AREA)
        if method == "pixelate":
            region[:] = cv2.resize(small, (width, height), interpolation=cv2.INTER_NEAREST)
        else:
            small = cv2.GaussianBlur(small, (5, 5), 0)
            region[:] = cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)
    return scene


def crop(
    frame: np.ndarray,
    detections: Detections,
    classes: Iterable[int | str] | None = None,
    pad: int = 0,
    class_names: ClassNames | None = None,
) -> list[np.ndarray]:
    """Copies of the boxes of ``classes`` (all when None), ``pad`` pixels wider on each side.

    Examples:
        >>> import numpy as np
        >>> d = Detections(np.array([[10, 10, 30, 20]]), np.array([0.9]), np.array([0]))
        >>> [c.shape for c in crop(np.zeros((50, 50, 3), np.uint8), d, pad=2)]
        [(14, 24, 3)]
    """
    if pad < 0:
        raise ValueError(f"pad must be >= 0 pixels, got {pad}")
    return [
        frame[y1:y2, x1:x2].copy()
        for x1, y1, x2, y2 in _boxes_of_classes(frame, detections, classes, class_names, pad)
    ]


def encode_jpeg(frame: np.ndarray, quality: int = 80) -> bytes:
    """JPEG bytes of a BGR frame (do it only for frames that are published).

    Raises:
        ValueError: for a quality outside 1..100 or a frame OpenCV cannot encode.

    Examples:
        >>> import numpy as np
        >>> encode_jpeg(np.zeros((8, 8, 3), np.uint8))[:2]
        b'\\xff\\xd8'
    """
    if not 1 <= int(quality) <= 100:
        raise ValueError(f"JPEG quality must be between 1 and 100, got {quality}")
    ok, encoded = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError(f"OpenCV could not encode a frame of shape {frame.shape} as JPEG")
    return encoded.tobytes()
