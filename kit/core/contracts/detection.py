"""The detection payload: what an edge device sends for one published frame of one camera."""

from __future__ import annotations

import re
import uuid
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from kit.core.contracts.base import (
    SCHEMA_VERSION,
    SINGLE_LINE_PATTERN,
    ClassName,
    Contract,
    Identifier,
    NonNegativeInteger,
    NonNegativeReal,
    PositiveInteger,
    Real,
    SchemaVersion,
    UtcDatetime,
)
from kit.core.contracts.model import ModelRef

CAMERA_OBJECT_KINDS = ("frames", "crops")
"""The bucket prefixes under which a device stores a camera's objects:
``<kind>/<device>/<camera>/...`` (annotated frames, crops)."""
OBJECT_KEY_MAX_BYTES = 1024
"""S3's longest object key."""
_SINGLE_LINE = re.compile(SINGLE_LINE_PATTERN)


def new_payload_id() -> str:
    """A fresh, globally unique payload id."""
    return uuid.uuid4().hex


def camera_object_prefix(kind: str, device_id: str, camera_id: str) -> str:
    """Where ``device_id`` keeps ``camera_id``'s objects of ``kind`` (``frames``, ``crops``)."""
    return f"{kind}/{device_id}/{camera_id}/"


def camera_object_key_problem(
    key: str,
    *,
    device_id: str | None,
    camera_id: str,
    kinds: tuple[str, ...] = CAMERA_OBJECT_KINDS,
) -> str | None:
    """Why ``key`` is not one of the camera's own objects in the bucket; None when it is.

    A camera's object lies under ``<kind>/<device>/<camera>/`` (:func:`camera_object_prefix`),
    with no empty, ``.`` or ``..`` path segment, no backslash and no control character, so a
    payload cannot make the backend link (presign) another device's or camera's object, a
    dataset or a model.

    Examples:
        >>> camera_object_key_problem("frames/d1/c1/2026/01/31/x.jpg", device_id="d1", camera_id="c1")
        >>> camera_object_key_problem("datasets/private/secret.txt", device_id="d1", camera_id="c1",
        ...     kinds=("frames",))
        "must lie under frames/d1/c1/ (the sending camera's own objects)"
    """
    if not device_id:
        return "cannot be checked against the camera's own prefix: its device is unknown"
    prefixes = [camera_object_prefix(kind, device_id, camera_id) for kind in kinds]
    where = " or ".join(prefixes)
    prefix = next((p for p in prefixes if key.startswith(p)), None)
    if prefix is None:
        return f"must lie under {where} (the sending camera's own objects)"
    segments = key[len(prefix) :].split("/")
    if any(segment in ("", ".", "..") for segment in segments):
        return f"must lie under {where} with no empty, '.' or '..' path segment"
    if "\\" in key or not _SINGLE_LINE.match(key):
        return "must not contain a backslash or a control character"
    if len(key.encode()) > OBJECT_KEY_MAX_BYTES:
        return f"must be at most {OBJECT_KEY_MAX_BYTES} bytes (S3's limit)"
    return None


class Box(Contract):
    """An axis-aligned box in pixels of the original frame (x1, y1 top-left; x2, y2 bottom-right)."""

    x1: NonNegativeReal
    y1: NonNegativeReal
    x2: NonNegativeReal
    y2: NonNegativeReal

    @model_validator(mode="after")
    def _ordered(self) -> Box:
        if self.x2 < self.x1 or self.y2 < self.y1:
            raise ValueError(
                f"box corners must satisfy x1 <= x2 and y1 <= y2 (got x1={self.x1}, y1={self.y1}, "
                f"x2={self.x2}, y2={self.y2})"
            )
        return self


class Detection(Contract):
    """One detected object."""

    class_name: ClassName
    class_id: NonNegativeInteger
    confidence: Real = Field(ge=0.0, le=1.0)
    box: Box
    track_id: NonNegativeInteger | None = None


class FrameSize(Contract):
    width: PositiveInteger = Field(le=16384)
    height: PositiveInteger = Field(le=16384)


class LineCount(Contract):
    """Cumulative crossings of a counting line since the edge app started it."""

    in_count: NonNegativeInteger = Field(alias="in", default=0)
    out_count: NonNegativeInteger = Field(alias="out", default=0)


class DetectionPayload(Contract):
    """One published frame of one camera: detections, counts, and where the annotated frame is.

    ``counts`` are per class over the whole frame; ``zone_counts`` per zone then per class;
    ``line_counts`` are cumulative in/out crossings per line. ``frame_key`` must lie under the
    sending camera's own ``frames/<device>/<camera>/`` prefix (:func:`camera_object_key_problem`).

    Examples:
        >>> from kit.core.contracts import DetectionPayload, parse
        >>> p = parse(DetectionPayload, {
        ...     "device_id": "demo-1", "camera_id": "shelf-1",
        ...     "model": {"name": "shelf", "version": 1},
        ...     "captured_at": "2026-01-31T12:00:00Z", "frame": {"width": 640, "height": 480},
        ...     "counts": {"bottle": 0}})
        >>> p.counts["bottle"]
        0
    """

    kind: Literal["detection"] = "detection"
    schema_version: SchemaVersion = SCHEMA_VERSION
    payload_id: Identifier = Field(default_factory=new_payload_id)
    device_id: Identifier
    camera_id: Identifier
    model: ModelRef
    captured_at: UtcDatetime
    frame: FrameSize
    detections: list[Detection] = Field(default_factory=list, max_length=2000)
    counts: dict[ClassName, NonNegativeInteger] = Field(default_factory=dict)
    zone_counts: dict[Identifier, dict[ClassName, NonNegativeInteger]] = Field(default_factory=dict)
    line_counts: dict[Identifier, LineCount] = Field(default_factory=dict)
    frame_key: str | None = Field(
        default=None,
        min_length=1,
        max_length=OBJECT_KEY_MAX_BYTES,
        description="the annotated frame's key: frames/<device_id>/<camera_id>/...",
    )
    inference_ms: NonNegativeReal = 0.0

    @field_validator("frame_key")
    @classmethod
    def _own_frame(cls, key: str | None, info: ValidationInfo) -> str | None:
        device_id, camera_id = info.data.get("device_id"), info.data.get("camera_id")
        if key is None or device_id is None or camera_id is None:
            return key  # the id itself is reported
        problem = camera_object_key_problem(
            key, device_id=device_id, camera_id=camera_id, kinds=("frames",)
        )
        if problem:
            raise ValueError(problem)
        return key

    @model_validator(mode="after")
    def _boxes_inside_frame(self) -> DetectionPayload:
        # One pixel of slack: detectors clip to [0, size], rounding may add a hair.
        width, height = self.frame.width + 1, self.frame.height + 1
        for index, det in enumerate(self.detections):
            if det.box.x2 > width or det.box.y2 > height:
                raise ValueError(
                    f"detections[{index}].box ({det.box.x2}, {det.box.y2}) lies outside the "
                    f"{self.frame.width}x{self.frame.height} frame"
                )
        return self

    def count(self, class_name: str, zone: str | None = None) -> int:
        """The count of ``class_name`` in the frame, or in ``zone`` when given (0 when absent)."""
        if zone is None:
            return self.counts.get(class_name, 0)
        return self.zone_counts.get(zone, {}).get(class_name, 0)
