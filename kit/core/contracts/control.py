"""The control config: which model each camera runs, its rules, zones, lines and refresh rate.

A config holds global ``defaults`` and per-camera ``cameras`` overrides; :meth:`ControlConfig.for_camera`
resolves the settings one camera runs with. Zones and lines use coordinates normalised to the frame
(0..1), so a config does not depend on the camera's resolution. Each rule evaluates itself
(``rule.evaluate(observation)``, :mod:`kit.core.rules`).
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, StrictBool, model_validator

from kit.core.contracts.base import (
    SCHEMA_VERSION,
    ClassName,
    Contract,
    Identifier,
    Integer,
    NonNegativeInteger,
    PositiveInteger,
    Real,
    SchemaVersion,
    SingleLine,
    UtcDatetime,
    utc_now,
)
from kit.core.contracts.model import ModelRef
from kit.core.contracts.sampling import SamplingSettings
from kit.core.rules import (
    Evaluation,
    Observation,
    count_above,
    count_below,
    evaluate_ppe,
    evaluate_rising_trend,
    evaluate_silence,
)

Point = tuple[Annotated[Real, Field(ge=0.0, le=1.0)], Annotated[Real, Field(ge=0.0, le=1.0)]]
"""(x, y) normalised to the frame: (0, 0) top-left, (1, 1) bottom-right."""

REFRESH_MIN_S = 1
REFRESH_MAX_S = 3600
DEFAULT_IOU = 0.7
"""NMS IoU threshold by default: ultralytics predict's, so counts match what ultralytics shows."""
DEFAULT_MAX_DETECTIONS = 300
"""Most detections per frame by default (ultralytics predict's ``max_det``)."""
MAX_DETECTIONS_LIMIT = 1000
MIN_DURATION_MAX_S = 3600
"""Longest ``min_duration_s`` of a rule (an hour)."""
HYSTERESIS_MAX = 1000
"""Largest ``hysteresis`` of a count rule."""
SLOPE_MIN = 0.0001
SLOPE_MAX = 1_000_000
"""Bounds of ``rising_trend``'s ``min_slope_per_min``: an alert records it as its threshold, and
DynamoDB numbers hold neither 1e-300 nor 1e300."""


class ZoneSpec(Contract):
    """A polygon region; objects whose anchor point lies inside are counted per class."""

    name: Identifier
    polygon: list[Point] = Field(min_length=3, max_length=64)
    classes: list[ClassName] | None = Field(
        default=None, description="classes counted; all if None"
    )


class LineSpec(Contract):
    """A counting line; tracked objects crossing it are counted in (left to right of start->end) or out."""

    name: Identifier
    start: Point
    end: Point

    @model_validator(mode="after")
    def _not_a_point(self) -> LineSpec:
        if self.start == self.end:
            raise ValueError(
                f"line {self.name!r} needs two different points (got {self.start} twice)"
            )
        return self


class _Rule(Contract):
    """The fields every rule type has. Each type also defines ``evaluate(observation) ->
    Evaluation``: what it means, by the code in :mod:`kit.core.rules` that devices and the cloud
    share."""

    on_schedule: ClassVar[bool] = False
    """Evaluated by a scheduled check too, not only when a payload arrives."""

    name: Identifier | None = Field(
        default=None, description="unique per camera; defaults to the type"
    )
    enabled: StrictBool = True
    cooldown_s: NonNegativeInteger = Field(
        default=300, le=86400, description="no new alert for the same rule within this many seconds"
    )
    min_duration_s: NonNegativeInteger = Field(
        default=0,
        le=MIN_DURATION_MAX_S,
        description="an alert opens only once the rule has been breached by every payload for "
        f"this many seconds of capture time (0 to {MIN_DURATION_MAX_S}; 0: at the first breach)",
    )

    @property
    def key(self) -> str:
        """The rule's identity on its camera (its name, or its type)."""
        return self.name or self.type  # type: ignore[attr-defined]

    @property
    def history_needed(self) -> int:
        """How many of the camera's latest payloads the rule judges (0: the newest alone)."""
        return 0


class CountBelowRule(_Rule):
    """Alert while the count of ``class_name`` (in ``zone`` or the frame) is below ``threshold``.

    An alert opens at ``count < threshold`` and resolves only at ``count >= threshold +
    hysteresis``, so a count flickering at the threshold does not open and resolve alerts in turn.
    """

    type: Literal["count_below"] = "count_below"
    class_name: ClassName
    threshold: NonNegativeInteger
    hysteresis: NonNegativeInteger = Field(
        default=1,
        le=HYSTERESIS_MAX,
        description="an open alert resolves at count >= threshold + hysteresis "
        f"(0 to {HYSTERESIS_MAX})",
    )
    zone: Identifier | None = None

    def evaluate(self, observation: Observation) -> Evaluation:
        """Breached while the newest payload's count is below ``threshold``."""
        payload = observation.newest_payload(self.key)
        return count_below(self, payload.count(self.class_name, self.zone))


class CountAboveRule(_Rule):
    """Alert while the count of ``class_name`` (in ``zone`` or the frame) is above ``threshold``.

    An alert opens at ``count > threshold`` and resolves only at ``count <= threshold -
    hysteresis`` (at 0 at the latest).
    """

    type: Literal["count_above"] = "count_above"
    class_name: ClassName
    threshold: NonNegativeInteger
    hysteresis: NonNegativeInteger = Field(
        default=1,
        le=HYSTERESIS_MAX,
        description="an open alert resolves at count <= threshold - hysteresis, at 0 at the "
        f"latest (0 to {HYSTERESIS_MAX})",
    )
    zone: Identifier | None = None

    def evaluate(self, observation: Observation) -> Evaluation:
        """Breached while the newest payload's count is above ``threshold``."""
        payload = observation.newest_payload(self.key)
        return count_above(self, payload.count(self.class_name, self.zone))


class RisingTrendRule(_Rule):
    """Alert while the count keeps rising.

    Definition: over the last ``window`` payloads of the camera (at least ``min_points`` of them,
    spanning no more than ``max_age_s``), fit count = a + slope * t by least squares with t in
    minutes; the rule is breached when ``slope >= min_slope_per_min`` and the last count is above
    the first one of the window.
    """

    type: Literal["rising_trend"] = "rising_trend"
    class_name: ClassName
    zone: Identifier | None = None
    window: Integer = Field(
        default=12, ge=3, le=1000, description="number of latest payloads fitted"
    )
    min_points: Integer = Field(default=6, ge=3, le=1000)
    min_slope_per_min: Real = Field(
        default=1.0,
        ge=SLOPE_MIN,
        le=SLOPE_MAX,
        description=f"objects per minute, {SLOPE_MIN:g} to {SLOPE_MAX:g} (slopes are judged to "
        "4 decimals)",
    )
    max_age_s: PositiveInteger = Field(default=3600, le=7 * 86400)

    @model_validator(mode="after")
    def _points_fit_window(self) -> RisingTrendRule:
        if self.min_points > self.window:
            raise ValueError(f"min_points ({self.min_points}) must be <= window ({self.window})")
        return self

    @property
    def history_needed(self) -> int:
        return self.window

    def evaluate(self, observation: Observation) -> Evaluation:
        """The trend over the observation's samples (:func:`kit.core.rules.evaluate_rising_trend`)."""
        return evaluate_rising_trend(self, observation.samples)


class PpeViolationRule(_Rule):
    """Alert when a person has no helmet: no ``helmet_class`` box overlaps the person's head region.

    The head region is the top ``head_fraction`` of the person box; a helmet counts when at least
    ``min_overlap`` of the helmet box lies inside that region.
    """

    type: Literal["ppe_violation"] = "ppe_violation"
    person_class: ClassName = "person"
    helmet_class: ClassName = "helmet"
    head_fraction: Real = Field(default=0.3, gt=0.0, le=1.0)
    min_overlap: Real = Field(default=0.3, gt=0.0, le=1.0)
    min_confidence: Real = Field(default=0.4, ge=0.0, le=1.0)
    zone: Identifier | None = None

    def evaluate(self, observation: Observation) -> Evaluation:
        """Persons without helmet in the newest payload (:func:`kit.core.rules.evaluate_ppe`)."""
        return evaluate_ppe(self, observation.newest_payload(self.key), observation.zones)


class CameraSilentRule(_Rule):
    """Alert when a camera sent no payload for ``factor`` x its refresh rate (a scheduled check)."""

    on_schedule: ClassVar[bool] = True

    type: Literal["camera_silent"] = "camera_silent"
    factor: Real = Field(default=3.0, ge=1.0, le=1000.0)

    def evaluate(self, observation: Observation) -> Evaluation:
        """Seconds from the newest payload to the observation's moment, against
        ``factor x refresh_s``."""
        return evaluate_silence(
            self,
            last_seen=observation.last_seen,
            now=observation.at,
            refresh_s=observation.refresh_s,
        )


Rule = Annotated[
    CountBelowRule | CountAboveRule | RisingTrendRule | PpeViolationRule | CameraSilentRule,
    Field(discriminator="type"),
]
RULE_TYPES = ("count_below", "count_above", "rising_trend", "ppe_violation", "camera_silent")

Precision = Literal["fp32", "int8"]
"""What a camera's model computes in: ``fp32`` (the exported model as trained) or ``int8`` (its
post-training INT8 format for the device's backend, where the model version has one)."""
PRECISION_HELP = (
    "fp32, or int8 where the model version has an INT8 format (onnx_int8 for ONNX Runtime, "
    "openvino_int8 for OpenVINO; `kit models quantize` adds one); a device without it runs fp32"
)


class CameraSettings(Contract):
    """Everything one camera runs with (the defaults of a config, or one camera resolved)."""

    model: ModelRef | None = None
    confidence: Real = Field(default=0.25, ge=0.0, le=1.0)
    iou: Real = Field(
        default=DEFAULT_IOU,
        ge=0.0,
        le=1.0,
        description="NMS IoU threshold: boxes of one class overlapping more are merged",
    )
    max_detections: Integer = Field(
        default=DEFAULT_MAX_DETECTIONS,
        ge=1,
        le=MAX_DETECTIONS_LIMIT,
        description="most detections kept per frame, most confident first",
    )
    refresh_s: Integer = Field(default=5, ge=REFRESH_MIN_S, le=REFRESH_MAX_S)
    rules: list[Rule] = Field(default_factory=list, max_length=50)
    zones: list[ZoneSpec] = Field(default_factory=list, max_length=50)
    lines: list[LineSpec] = Field(default_factory=list, max_length=50)
    sampling: SamplingSettings = Field(
        default_factory=SamplingSettings,
        description="frames kept for labelling (samples/<device>/<camera>/...); off by default",
    )
    precision: Precision = Field(default="fp32", description=PRECISION_HELP)

    @model_validator(mode="after")
    def _consistent(self) -> CameraSettings:
        _check_unique("zones", [z.name for z in self.zones])
        _check_unique("lines", [line.name for line in self.lines])
        _check_unique("rules", [r.key for r in self.rules])
        zone_names = {z.name for z in self.zones}
        for rule in self.rules:
            zone = getattr(rule, "zone", None)
            if zone is not None and zone not in zone_names:
                raise ValueError(
                    f"rule {rule.key!r} refers to zone {zone!r}; defined zones: {sorted(zone_names)}"
                )
        return self

    def class_references(self) -> list[tuple[str, str]]:
        """Every class name the rules and zones use, as ``(field, class)`` pairs.

        Fields are relative to these settings: ``rules[0].class_name``,
        ``rules[1].helmet_class``, ``zones[0].classes[2]``. A model that lacks one of these
        classes never detects it, so the rule or zone count can never change.

        Examples:
            >>> settings = CameraSettings(rules=[{"type": "count_below", "class_name": "Falll",
            ...                                   "threshold": 1}])
            >>> settings.class_references()
            [('rules[0].class_name', 'Falll')]
        """
        references = []
        for index, rule in enumerate(self.rules):
            for name in _CLASS_FIELDS:
                value = getattr(rule, name, None)
                if value is not None:
                    references.append((f"rules[{index}].{name}", value))
        for index, zone in enumerate(self.zones):
            for position, class_name in enumerate(zone.classes or []):
                references.append((f"zones[{index}].classes[{position}]", class_name))
        return references


_CLASS_FIELDS = ("class_name", "person_class", "helmet_class")
"""The rule fields that name a class of the camera's model."""


class CameraOverrides(Contract):
    """Per-camera overrides: a field left out (None) falls back to the config's defaults."""

    model: ModelRef | None = None
    confidence: Real | None = Field(default=None, ge=0.0, le=1.0)
    iou: Real | None = Field(default=None, ge=0.0, le=1.0)
    max_detections: Integer | None = Field(default=None, ge=1, le=MAX_DETECTIONS_LIMIT)
    refresh_s: Integer | None = Field(default=None, ge=REFRESH_MIN_S, le=REFRESH_MAX_S)
    rules: list[Rule] | None = Field(default=None, max_length=50)
    zones: list[ZoneSpec] | None = Field(default=None, max_length=50)
    lines: list[LineSpec] | None = Field(default=None, max_length=50)
    sampling: SamplingSettings | None = None
    precision: Precision | None = Field(default=None, description=PRECISION_HELP)


class ControlConfig(Contract):
    """The control panel's state: global defaults plus per-camera overrides.

    ``revision`` increases by one on every change; edge devices compare it to apply changes.

    Examples:
        >>> from kit.core.contracts import ControlConfig, parse
        >>> cfg = parse(ControlConfig, {
        ...     "defaults": {"refresh_s": 5},
        ...     "cameras": {"shelf-1": {"model": {"name": "shelf", "version": 1},
        ...                 "rules": [{"type": "count_below", "class_name": "bottle", "threshold": 1}]}}})
        >>> cfg.for_camera("shelf-1").rules[0].threshold
        1
    """

    schema_version: SchemaVersion = SCHEMA_VERSION
    revision: NonNegativeInteger = 0
    updated_at: UtcDatetime = Field(default_factory=utc_now)
    updated_by: SingleLine = Field(default="system", max_length=256)
    defaults: CameraSettings = Field(default_factory=CameraSettings)
    cameras: dict[Identifier, CameraOverrides] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _every_camera_resolves(self) -> ControlConfig:
        for camera_id in self.cameras:
            try:
                self.for_camera(camera_id)
            except ValueError as error:
                raise ValueError(f"cameras.{camera_id}: {error}") from None
        return self

    def for_camera(self, camera_id: str) -> CameraSettings:
        """The settings ``camera_id`` runs with: its overrides on top of the defaults."""
        overrides = self.cameras.get(camera_id)
        if overrides is None:
            return self.defaults
        merged = self.defaults.model_dump(mode="json")
        merged.update(overrides.model_dump(mode="json", exclude_none=True))
        return CameraSettings.model_validate(merged)

    def model_refs(self) -> list[tuple[str, ModelRef]]:
        """Every model the config names, with where: ``defaults.model`` or ``cameras.<id>.model``."""
        refs = []
        if self.defaults.model is not None:
            refs.append(("defaults.model", self.defaults.model))
        for camera_id, overrides in sorted(self.cameras.items()):
            if overrides.model is not None:
                refs.append((f"cameras.{camera_id}.model", overrides.model))
        return refs


def _check_unique(what: str, names: list[str]) -> None:
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"{what} names must be unique per camera; repeated: {repeated}")
