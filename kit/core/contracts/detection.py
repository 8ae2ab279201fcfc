"""The detection payload: what an edge device sends for one published frame of one camera."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import Field, NonNegativeFloat, NonNegativeInt, PositiveInt, model_validator

from kit.core.contracts.base import (
    SCHEMA_VERSION,
    ClassName,
    Contract,
    Identifier,
    SchemaVersion,
    UtcDatetime,
)
from kit.core.contracts.model import ModelRef


def new_payload_id() -> str:
    """A fresh, globally unique payload id."""
    return uuid.uuid4().hex


class Box(Contract):
    """An axis-aligned box in pixels of the original frame (x1, y1 top-left; x2, y2 bottom-right)."""

    x1: NonNegativeFloat
    y1: NonNegativeFloat
    x2: NonNegativeFloat
    y2: NonNegativeFloat

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
    class_id: NonNegativeInt
    confidence: float = Field(ge=0.0, le=1.0)
    box: Box
    track_id: NonNegativeInt | None = None


class FrameSize(Contract):
    width: PositiveInt = Field(le=16384)
    height: PositiveInt = Field(le=16384)


class LineCount(Contract):
    """Cumulative crossings of a counting line since the edge app started it."""

    in_count: NonNegativeInt = Field(alias="in", default=0)
    out_count: NonNegativeInt = Field(alias="out", default=0)


class DetectionPayload(Contract):
    """One published frame of one camera: detections, counts, and where the annotated frame is.

    ``counts`` are per class over the whole frame; ``zone_counts`` per zone then per class;
    ``line_counts`` are cumulative in/out crossings per line.

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
    payload_id: str = Field(default_factory=new_payload_id, min_length=1, max_length=64)
    device_id: Identifier
    camera_id: Identifier
    model: ModelRef
    captured_at: UtcDatetime
    frame: FrameSize
    detections: list[Detection] = Field(default_factory=list, max_length=2000)
    counts: dict[ClassName, NonNegativeInt] = Field(default_factory=dict)
    zone_counts: dict[Identifier, dict[ClassName, NonNegativeInt]] = Field(default_factory=dict)
    line_counts: dict[Identifier, LineCount] = Field(default_factory=dict)
    frame_key: str | None = Field(default=None, min_length=1, max_length=1024)
    inference_ms: NonNegativeFloat = 0.0

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
