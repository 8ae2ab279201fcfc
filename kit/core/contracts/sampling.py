"""Field data for training: which frames a camera samples for labelling, and what a sample says.

A camera with :class:`SamplingSettings` ``enabled`` keeps, rate-limited, the frames worth a
person's look: a detection whose confidence lies in ``confidence_band`` (the model hesitates),
a count of a class that jumps by ``count_jump`` or more from the previous frame, and a
``random_share`` of all frames (what the model sees, unbiased). Each sample goes to the bucket
as ``samples/<device>/<camera>/<yyyy-mm-dd>/<id>.jpg`` (the frame, privacy classes blurred),
``<id>.txt`` (the model's own boxes as YOLO pre-labels) and ``<id>.json``
(a :class:`SampleRecord`, written last: a sample with a record is complete).

Examples:
    >>> from kit.core.contracts.sampling import SamplingSettings
    >>> SamplingSettings(enabled=True, confidence_band=(0.3, 0.5)).max_per_hour
    60
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StrictBool, model_validator

from kit.core.contracts.base import (
    SCHEMA_VERSION,
    ClassName,
    Contract,
    Identifier,
    Integer,
    NonNegativeInteger,
    Real,
    SchemaVersion,
    UtcDatetime,
)
from kit.core.contracts.detection import Detection, FrameSize
from kit.core.contracts.model import ModelRef

SAMPLES_PREFIX = "samples"
"""The bucket prefix of every sample: ``samples/<device>/<camera>/<yyyy-mm-dd>/<id>.*``."""
MAX_PER_HOUR_LIMIT = 3600
"""Most samples an hour a camera may be set to keep (one a second)."""
COUNT_JUMP_LIMIT = 10_000
SAMPLE_REASONS = ("uncertain", "count_jump", "random")
"""Why a frame is sampled: a detection in the confidence band, a count that jumped, chance."""

SampleReason = Literal["uncertain", "count_jump", "random"]
Share = Annotated[Real, Field(ge=0.0, le=1.0)]


class SamplingSettings(Contract):
    """Which frames one camera samples for labelling, and how many at most.

    Each criterion is off at its neutral value: a band with equal bounds, ``count_jump`` 0,
    ``random_share`` 0.
    """

    enabled: StrictBool = Field(default=False, description="sample this camera's frames")
    confidence_band: tuple[Share, Share] = Field(
        default=(0.25, 0.6),
        description="[low, high): a frame with a detection this confident is sampled as "
        "'uncertain'; equal bounds switch it off",
    )
    count_jump: NonNegativeInteger = Field(
        default=2,
        le=COUNT_JUMP_LIMIT,
        description="a frame where a class's count differs by at least this much from the "
        "previous frame is sampled as 'count_jump'; 0 switches it off",
    )
    random_share: Share = Field(
        default=0.0, description="share of all analysed frames sampled at random (0 to 1)"
    )
    max_per_hour: Integer = Field(
        default=60,
        ge=1,
        le=MAX_PER_HOUR_LIMIT,
        description=f"most samples an hour (1 to {MAX_PER_HOUR_LIMIT}), judged by the frames' "
        "capture times; a short burst of up to a tenth of it is allowed",
    )

    @model_validator(mode="after")
    def _band_ordered(self) -> SamplingSettings:
        low, high = self.confidence_band
        if low > high:
            raise ValueError(
                f"confidence_band must be [low, high] with low <= high (got [{low}, {high}])"
            )
        return self

    @property
    def burst(self) -> int:
        """Samples the camera may take at once (the token bucket's size): a tenth of the
        hourly budget, at least one."""
        return max(1, self.max_per_hour // 10)


class SampleRecord(Contract):
    """What a sample is: ``<id>.json`` next to its frame and pre-labels."""

    schema_version: SchemaVersion = SCHEMA_VERSION
    sample_id: Identifier
    device_id: Identifier
    camera_id: Identifier
    captured_at: UtcDatetime
    model: ModelRef
    reasons: list[SampleReason] = Field(min_length=1, max_length=len(SAMPLE_REASONS))
    frame: FrameSize
    classes: list[ClassName] = Field(
        min_length=1,
        max_length=10_000,
        description="the model's class names by class id: what the pre-labels' ids mean",
    )
    detections: list[Detection] = Field(
        default_factory=list,
        max_length=1000,
        description="the pre-labels with their confidences, in the order of the .txt lines",
    )
    image_key: str = Field(min_length=1, max_length=1024)
    labels_key: str = Field(min_length=1, max_length=1024)

    @model_validator(mode="after")
    def _keys_under_the_cameras_prefix(self) -> SampleRecord:
        # a reader downloads these keys: only the sending camera's own samples, never another
        # object of the bucket (a model, another device's frames)
        prefix = sample_prefix(self.device_id, self.camera_id)
        for field_name in ("image_key", "labels_key"):
            key = getattr(self, field_name)
            if not key.startswith(prefix) or ".." in key.split("/"):
                raise ValueError(f"{field_name} {key!r} must lie under {prefix}")
        return self

    @model_validator(mode="after")
    def _class_ids_known(self) -> SampleRecord:
        for index, detection in enumerate(self.detections):
            if detection.class_id >= len(self.classes):
                raise ValueError(
                    f"detections[{index}].class_id {detection.class_id} is not a class id of "
                    f"classes (0..{len(self.classes) - 1})"
                )
        return self


def sample_prefix(device_id: str | None = None, camera_id: str | None = None) -> str:
    """``samples/``, ``samples/<device>/`` or ``samples/<device>/<camera>/``.

    Examples:
        >>> sample_prefix("demo-1", "shelf-1")
        'samples/demo-1/shelf-1/'
    """
    if camera_id is not None and device_id is None:
        raise ValueError(f"a camera ({camera_id!r}) is only found under its device; name both")
    parts = [SAMPLES_PREFIX, device_id, camera_id]
    return "/".join(part for part in parts if part is not None) + "/"
