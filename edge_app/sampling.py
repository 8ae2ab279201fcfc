"""Frames worth labelling: each camera samples, rate-limited, what its model is unsure about.

:class:`FrameSampler` judges every analysed frame of one camera by its
:class:`~kit.core.contracts.sampling.SamplingSettings` (part of the camera's control settings):
a detection whose confidence lies in the band (``uncertain``), a class count that jumps from the
previous frame (``count_jump``), or chance (``random``). A token bucket on the frames' capture
times (not the wall clock, so a replayed or slowed-down source is judged by its own time) keeps
at most ``max_per_hour`` samples an hour, with bursts of up to
:attr:`~kit.core.contracts.sampling.SamplingSettings.burst`.

:func:`build_sample` makes what leaves the device: the frame with privacy classes blurred (as
every published frame), the model's own boxes as YOLO pre-labels, and a
:class:`~kit.core.contracts.sampling.SampleRecord`. The publisher sends the three through the
spool, so samples survive outages like frames do
(:meth:`edge_app.publisher.Publisher.publish_sample`).

Examples:
    >>> from datetime import UTC, datetime
    >>> import numpy as np
    >>> from kit.core.contracts.sampling import SamplingSettings
    >>> sampler = FrameSampler(SamplingSettings(enabled=True, confidence_band=(0.3, 0.6)))
    >>> sampler.decide(np.array([0.45]), {"bottle": 1}, datetime(2026, 1, 1, tzinfo=UTC))
    ('uncertain',)
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from edge_app.annotate import blur_classes, encode_jpeg
from edge_app.detections import ClassNames, Detections, class_items, class_name_of
from kit.core.contracts import ModelRef
from kit.core.contracts.sampling import SampleRecord, SamplingSettings, sample_prefix

SAMPLE_JPEG_QUALITY = 90
"""Samples are for labelling: sharper than the published frames (which use 80)."""


def sample_keys(device_id: str, camera_id: str, captured_at: datetime) -> tuple[str, str, str]:
    """The image, pre-label and record keys of a sample:
    ``samples/<device>/<camera>/<yyyy-mm-dd>/<id>.{jpg,txt,json}``, ``<id>`` the capture time
    to the millisecond (UTC).

    Examples:
        >>> from datetime import UTC, datetime
        >>> sample_keys("d1", "c1", datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC))[0]
        'samples/d1/c1/2026-01-02/20260102T030405678Z.jpg'
    """
    sample_id = sample_id_of(captured_at)
    base = f"{sample_prefix(device_id, camera_id)}{captured_at:%Y-%m-%d}/{sample_id}"
    return f"{base}.jpg", f"{base}.txt", f"{base}.json"


def sample_id_of(captured_at: datetime) -> str:
    """A sample's id: its capture time to the millisecond, ``20260102T030405678Z``."""
    return captured_at.strftime("%Y%m%dT%H%M%S") + f"{captured_at.microsecond // 1000:03d}Z"


class FrameSampler:
    """Decides, frame by frame, which frames of one camera to sample. Not thread-safe: one per
    camera, driven by the thread that analyses its frames.

    Args:
        settings: what to sample and how many at most.
        rng: the source of chance for ``random_share`` (default: a fresh unseeded one).
    """

    def __init__(self, settings: SamplingSettings, *, rng: random.Random | None = None):
        self.rng = rng or random.Random()
        self.settings = settings
        self._tokens = float(settings.burst)
        self._refilled_at: datetime | None = None
        self._previous_counts: dict[str, int] | None = None

    def configure(self, settings: SamplingSettings) -> None:
        """Take new settings; the bucket keeps its tokens, up to the new burst."""
        self.settings = settings
        self._tokens = min(self._tokens, float(settings.burst))

    def forget_counts(self) -> None:
        """Start count jumps afresh (a new model counts differently: its first frame is no jump)."""
        self._previous_counts = None

    def prelabel_threshold(self, confidence: float) -> float:
        """The lowest confidence a pre-label has: the camera's ``confidence``, or the band's low
        bound when lower (the box that made a frame ``uncertain`` is one to confirm or delete)."""
        low, high = self.settings.confidence_band
        return min(confidence, low) if low < high else confidence

    def decide(
        self, confidences: np.ndarray, counts: Mapping[str, int], captured_at: datetime
    ) -> tuple[str, ...]:
        """Why this frame is sampled; empty when it is not (off, nothing notable, or the hourly
        budget spent).

        Args:
            confidences: the confidences of the frame's detections.
            counts: the frame's count per class, as the camera reports them.
            captured_at: when the frame was captured (the rate limit's clock).
        """
        previous, self._previous_counts = self._previous_counts, dict(counts)
        settings = self.settings
        if not settings.enabled:
            return ()
        reasons = []
        low, high = settings.confidence_band
        if low < high and bool(np.any((confidences >= low) & (confidences < high))):
            reasons.append("uncertain")
        if settings.count_jump and previous is not None:
            classes = set(previous) | set(counts)
            jump = max((abs(counts.get(c, 0) - previous.get(c, 0)) for c in classes), default=0)
            if jump >= settings.count_jump:
                reasons.append("count_jump")
        if settings.random_share and self.rng.random() < settings.random_share:
            reasons.append("random")
        if reasons and self._take_token(captured_at):
            return tuple(reasons)
        return ()

    def _take_token(self, at: datetime) -> bool:
        """One token from the bucket, refilled by the capture time elapsed since the last frame
        (a clock that steps back refills nothing)."""
        if self._refilled_at is not None:
            elapsed_s = max(0.0, (at - self._refilled_at).total_seconds())
            rate_per_s = self.settings.max_per_hour / 3600.0
            self._tokens = min(float(self.settings.burst), self._tokens + elapsed_s * rate_per_s)
        if self._refilled_at is None or at > self._refilled_at:
            self._refilled_at = at
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True


@dataclass(frozen=True)
class Sample:
    """One sampled frame as it leaves the device.

    Attributes:
        jpeg: the frame, privacy classes blurred, not annotated.
        labels: the pre-labels, YOLO lines ``class cx cy w h`` (normalised to the frame).
        record: what the sample is; its ``image_key`` and ``labels_key`` say where the other two go.
        record_key: where the record goes (written last: a sample with a record is complete).
    """

    jpeg: bytes
    labels: str
    record: SampleRecord
    record_key: str


def yolo_label_lines(xyxy: np.ndarray, class_ids: Iterable[int], width: int, height: int) -> str:
    """YOLO label lines (``class cx cy w h``, normalised, clipped to the frame) of pixel boxes.

    Examples:
        >>> yolo_label_lines(np.array([[0, 0, 32, 24]]), [1], 64, 48)
        '1 0.250000 0.250000 0.500000 0.500000\\n'
    """
    lines = []
    for (x1, y1, x2, y2), class_id in zip(np.asarray(xyxy, float), class_ids, strict=True):
        x1, x2 = np.clip((x1, x2), 0, width)
        y1, y2 = np.clip((y1, y2), 0, height)
        if x2 <= x1 or y2 <= y1:
            continue
        cx, cy = (x1 + x2) / 2 / width, (y1 + y2) / 2 / height
        w, h = (x2 - x1) / width, (y2 - y1) / height
        lines.append(f"{int(class_id)} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}\n")
    return "".join(lines)


def build_sample(
    image: np.ndarray,
    detections: Detections,
    class_names: ClassNames,
    *,
    reasons: Iterable[str],
    model: ModelRef,
    device_id: str,
    camera_id: str,
    captured_at: datetime,
    blur: Iterable[str] = ("person",),
    blur_method: str = "gaussian",
) -> Sample:
    """The sample of one frame: blurred JPEG, pre-labels (``detections``) and record.

    Args:
        image: the frame as captured (BGR; left untouched).
        detections: the model's boxes to pre-label with (also those that are blurred).
        class_names: the model's class names by id.
        reasons: why the frame was sampled (:meth:`FrameSampler.decide`).
        blur: the privacy classes blurred in the image, as in every published frame.
    """
    height, width = image.shape[:2]
    private = blur_classes(image, detections, class_names, classes=tuple(blur), method=blur_method)
    # by position: a pre-label's class id indexes this list (ids a mapping skips get a name too)
    highest = max((class_id for class_id, _ in class_items(class_names)), default=0)
    names = [class_name_of(class_names, class_id) for class_id in range(highest + 1)]
    # clipped to the frame: a box over the edge keeps its visible part, one outside it goes
    boxes = np.clip(detections.xyxy, 0, [width, height, width, height]).astype(np.float32)
    visible = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    prelabels = detections[visible]
    prelabels.xyxy = boxes[visible]
    image_key, labels_key, record_key = sample_keys(device_id, camera_id, captured_at)
    record = SampleRecord(
        sample_id=sample_id_of(captured_at),
        device_id=device_id,
        camera_id=camera_id,
        captured_at=captured_at,
        model=model,
        reasons=list(reasons),
        frame={"width": width, "height": height},
        classes=names,
        detections=prelabels.to_list(class_names),
        image_key=image_key,
        labels_key=labels_key,
    )
    return Sample(
        jpeg=encode_jpeg(private, SAMPLE_JPEG_QUALITY),
        labels=yolo_label_lines(prelabels.xyxy, prelabels.class_id.tolist(), width, height),
        record=record,
        record_key=record_key,
    )
