"""What each rule means: whether one camera's latest data breaches it, and by how much.

A rule means the same on the device and in the cloud because both run this code. Each rule
contract evaluates itself (``rule.evaluate(observation)``, e.g. :meth:`CountBelowRule.evaluate
<kit.core.contracts.CountBelowRule.evaluate>`) on an :class:`Observation` of its camera, through
the function here for its type; each returns an :class:`Evaluation` (breached or not, the
measured value, the threshold it was compared with, a readable summary). What a breach means over
time (alerts, cooldowns, notifications) is the backend's business (:mod:`lambdas.alerts`).

Plain Python, no numpy (the Lambda runtime has none), no AWS. The contracts are imported for
type checking only: :mod:`kit.core.contracts` imports this module.

Definitions (the contract docstrings in :mod:`kit.core.contracts.control` say the same):

- ``count_below``: breached while ``count < threshold``; ``count`` is the payload's count of
  ``class_name`` in ``zone`` (``zone_counts``) or in the whole frame (``counts``); absent = 0.
  Recovered (an open alert resolves) only at ``count >= threshold + hysteresis``.
- ``count_above``: breached while ``count > threshold``; recovered only at
  ``count <= max(threshold - hysteresis, 0)``.
- ``rising_trend``: take the camera's latest ``window`` payloads (newest included), keep those
  captured at most ``max_age_s`` before the newest; with fewer than ``min_points`` left it is not
  breached. Fit ``count = a + slope * t`` by least squares, ``t`` in minutes; breached when
  ``slope >= min_slope_per_min`` and the newest count is above the oldest kept one.
  Value = slope (objects/minute), threshold = ``min_slope_per_min``.
- ``ppe_violation``: a person is a ``person_class`` detection with confidence >=
  ``min_confidence`` (and, with ``zone``, standing in the zone by the device's own zone test,
  :func:`kit.core.geometry.boxes_in_zone`: the bottom-centre point, inside or on the boundary).
  Its head region is the top ``head_fraction`` of its box. A helmet (a ``helmet_class``
  detection with confidence >= ``min_confidence``) covers it when at least ``min_overlap`` of the
  helmet box's area lies inside the head region. Value = persons not covered; breached when > 0.
- ``camera_silent``: breached when the newest payload was captured more than
  ``factor x refresh_s`` seconds before now (a scheduled check evaluates it; a payload's arrival
  evaluates it as not breached).

Every rule but the count rules recovers as soon as it is not breached. How long a breach must
hold before an alert opens (``min_duration_s``) is the alert state machine's business: it needs
the camera's previous payloads.

Examples:
    >>> from kit.core.contracts import CountBelowRule
    >>> rule = CountBelowRule(class_name="bottle", threshold=3)
    >>> count_below(rule, count=1).summary
    'bottle count 1 is below 3'
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from kit.core.geometry import boxes_in_zone

if TYPE_CHECKING:
    from kit.core.contracts import (
        CameraSettings,
        CameraSilentRule,
        CountAboveRule,
        CountBelowRule,
        Detection,
        DetectionPayload,
        PpeViolationRule,
        RisingTrendRule,
        ZoneSpec,
    )

Rect = tuple[float, float, float, float]
"""An ``(x1, y1, x2, y2)`` box in pixels."""


@dataclass(frozen=True)
class Evaluation:
    """The outcome of one rule on one camera at one moment.

    Attributes:
        breached: whether the rule's condition holds.
        value: what was measured (a count, a slope, persons without helmet, seconds of silence).
        threshold: what it was compared with.
        summary: one readable line, e.g. ``"bottle count 1 is below 3"``.
        recovered: whether an open alert resolves (a count rule's hysteresis keeps it open a
            little past the threshold); None: whenever the rule is not breached.
    """

    breached: bool
    value: float
    threshold: float
    summary: str
    recovered: bool | None = None

    def __post_init__(self) -> None:
        # One form for one meaning: None whenever recovery is simply "not breached".
        if self.recovered is not None and self.recovered == (not self.breached):
            object.__setattr__(self, "recovered", None)

    @property
    def resolves_alert(self) -> bool:
        """Whether an alert open on this rule resolves now."""
        return not self.breached if self.recovered is None else self.recovered


@dataclass(frozen=True)
class CountSample:
    """The counts of one payload, for trend rules."""

    captured_at: datetime
    counts: dict[str, int]
    zone_counts: dict[str, dict[str, int]]

    def count(self, class_name: str, zone: str | None) -> int:
        """The count of ``class_name`` in ``zone``, or in the frame when ``zone`` is None."""
        if zone is None:
            return self.counts.get(class_name, 0)
        return self.zone_counts.get(zone, {}).get(class_name, 0)

    @classmethod
    def from_payload(cls, payload: DetectionPayload) -> CountSample:
        return cls(payload.captured_at, dict(payload.counts), dict(payload.zone_counts))


@dataclass(frozen=True)
class Observation:
    """One camera as its rules see it at one moment: what ``rule.evaluate`` judges.

    Build one with :meth:`of_payload` (a payload arrived) or :meth:`of_schedule` (a scheduled
    check, no payload).

    Attributes:
        at: the moment judged: the newest payload's capture time, or the check's "now".
        last_seen: when the camera's newest payload was captured.
        refresh_s: the camera's refresh period in seconds (``camera_silent``).
        payload: the newest payload, when its arrival is what is judged (count and PPE rules).
        samples: the camera's latest counts in any order (``rising_trend``).
        zones: the camera's zones (``ppe_violation`` in a zone).
    """

    at: datetime
    last_seen: datetime
    refresh_s: int
    payload: DetectionPayload | None = None
    samples: tuple[CountSample, ...] = ()
    zones: tuple[ZoneSpec, ...] = ()

    @classmethod
    def of_payload(
        cls,
        payload: DetectionPayload,
        settings: CameraSettings,
        history: Sequence[CountSample] = (),
    ) -> Observation:
        """The camera at ``payload``'s capture time, ``payload`` being its newest.

        Args:
            payload: the camera's newest payload.
            settings: the camera's resolved settings (:meth:`ControlConfig.for_camera`).
            history: the camera's latest stored samples (the payload's own is added when missing).
        """
        samples = list(history)
        if not any(s.captured_at == payload.captured_at for s in samples):
            samples.append(CountSample.from_payload(payload))
        return cls(
            at=payload.captured_at,
            last_seen=payload.captured_at,
            refresh_s=settings.refresh_s,
            payload=payload,
            samples=tuple(samples),
            zones=tuple(settings.zones),
        )

    @classmethod
    def of_schedule(cls, *, now: datetime, last_seen: datetime, refresh_s: int) -> Observation:
        """The camera at ``now``, a scheduled check's time, its newest payload seen at ``last_seen``."""
        return cls(at=now, last_seen=last_seen, refresh_s=refresh_s)

    def newest_payload(self, rule_key: str) -> DetectionPayload:
        """The payload judged.

        Raises:
            ValueError: a scheduled observation has none; only ``camera_silent`` judges one.
        """
        if self.payload is None:
            raise ValueError(
                f"rule {rule_key!r} judges a payload, and the observation at {self.at} has none; "
                "only camera_silent rules are evaluated without one"
            )
        return self.payload


def _where(zone: str | None) -> str:
    return f" in zone {zone}" if zone else ""


def count_below(rule: CountBelowRule, count: int) -> Evaluation:
    """``count_below`` for one measured count.

    Examples:
        >>> from kit.core.contracts import CountBelowRule
        >>> count_below(CountBelowRule(class_name="bottle", threshold=3, hysteresis=1), 3).summary
        'bottle count 3 is not below 3 (an open alert resolves at 4)'
    """
    breached = count < rule.threshold
    resolves_at = rule.threshold + rule.hysteresis
    recovered = count >= resolves_at
    relation = "is below" if breached else "is not below"
    summary = f"{rule.class_name} count{_where(rule.zone)} {count} {relation} {rule.threshold}"
    if not breached and not recovered:
        summary += f" (an open alert resolves at {resolves_at})"
    return Evaluation(breached, float(count), float(rule.threshold), summary, recovered)


def count_above(rule: CountAboveRule, count: int) -> Evaluation:
    """``count_above`` for one measured count."""
    breached = count > rule.threshold
    resolves_at = max(rule.threshold - rule.hysteresis, 0)
    recovered = count <= resolves_at
    relation = "is above" if breached else "is not above"
    summary = f"{rule.class_name} count{_where(rule.zone)} {count} {relation} {rule.threshold}"
    if not breached and not recovered:
        summary += f" (an open alert resolves at {resolves_at})"
    return Evaluation(breached, float(count), float(rule.threshold), summary, recovered)


def least_squares_slope(points: Sequence[tuple[float, float]]) -> float | None:
    """Slope of the least-squares line through ``(x, y)`` points; None when x does not vary.

    Examples:
        >>> least_squares_slope([(0, 1), (1, 3), (2, 5)])
        2.0
    """
    n = len(points)
    if n < 2:
        return None
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    if spread <= 1e-12:
        return None
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / spread


def evaluate_rising_trend(rule: RisingTrendRule, samples: Sequence[CountSample]) -> Evaluation:
    """``rising_trend`` over a camera's latest samples (any order; the newest ``window`` are used)."""
    latest = sorted(samples, key=lambda s: s.captured_at)[-rule.window :]
    if latest:
        newest = latest[-1].captured_at
        latest = [s for s in latest if (newest - s.captured_at).total_seconds() <= rule.max_age_s]
    what = f"{rule.class_name} count{_where(rule.zone)}"
    if len(latest) < rule.min_points:
        return Evaluation(
            False,
            0.0,
            rule.min_slope_per_min,
            f"{what}: {len(latest)} of the {rule.min_points} payloads a trend needs",
        )
    start = latest[0].captured_at
    points = [
        ((s.captured_at - start).total_seconds() / 60.0, float(s.count(rule.class_name, rule.zone)))
        for s in latest
    ]
    slope = least_squares_slope(points)
    if slope is None:
        return Evaluation(False, 0.0, rule.min_slope_per_min, f"{what}: no time spread to fit")
    first, last = points[0][1], points[-1][1]
    breached = slope >= rule.min_slope_per_min and last > first
    trend = "rising" if breached else "not rising"
    summary = (
        f"{what} {trend}: {slope:+.2f}/min over {len(points)} payloads "
        f"({first:g} -> {last:g}; alert at >= {rule.min_slope_per_min:g}/min)"
    )
    return Evaluation(breached, round(slope, 4), rule.min_slope_per_min, summary)


def head_region(box: Rect, head_fraction: float) -> Rect:
    """The top ``head_fraction`` of an ``(x1, y1, x2, y2)`` box."""
    x1, y1, x2, y2 = box
    return (x1, y1, x2, y1 + head_fraction * (y2 - y1))


def inside_fraction(inner: Rect, region: Rect) -> float:
    """The share of ``inner``'s area that lies inside ``region`` (0 for a box without area)."""
    area = (inner[2] - inner[0]) * (inner[3] - inner[1])
    if area <= 0:
        return 0.0
    width = min(inner[2], region[2]) - max(inner[0], region[0])
    height = min(inner[3], region[3]) - max(inner[1], region[1])
    if width <= 0 or height <= 0:
        return 0.0
    return width * height / area


def _rect(detection: Detection) -> Rect:
    return (detection.box.x1, detection.box.y1, detection.box.x2, detection.box.y2)


def persons_in_scope(
    rule: PpeViolationRule, payload: DetectionPayload, zones: Sequence[ZoneSpec] = ()
) -> list[Detection]:
    """The detections the PPE rule judges: confident persons, standing in the rule's zone if it
    names one (:func:`kit.core.geometry.boxes_in_zone`, the device's zone test).

    Raises:
        ValueError: the rule names a zone that ``zones`` does not hold.
    """
    persons = [
        d
        for d in payload.detections
        if d.class_name == rule.person_class and d.confidence >= rule.min_confidence
    ]
    if rule.zone is None or not persons:
        return persons
    polygon = next((z.polygon for z in zones if z.name == rule.zone), None)
    if polygon is None:
        raise ValueError(
            f"rule {rule.key!r} refers to zone {rule.zone!r}; zones: {[z.name for z in zones]}"
        )
    inside = boxes_in_zone(
        [_rect(d) for d in persons],
        polygon,
        frame_wh=(payload.frame.width, payload.frame.height),
    )
    return [person for person, keep in zip(persons, inside, strict=True) if keep]


def evaluate_ppe(
    rule: PpeViolationRule, payload: DetectionPayload, zones: Sequence[ZoneSpec] = ()
) -> Evaluation:
    """``ppe_violation`` on one payload's detections (see the module docstring)."""
    persons = [_rect(d) for d in persons_in_scope(rule, payload, zones)]
    helmets = [
        _rect(d)
        for d in payload.detections
        if d.class_name == rule.helmet_class and d.confidence >= rule.min_confidence
    ]
    unprotected = sum(
        1
        for person in persons
        if not any(
            inside_fraction(helmet, head_region(person, rule.head_fraction)) >= rule.min_overlap
            for helmet in helmets
        )
    )
    summary = (
        f"{unprotected} of {len(persons)} {rule.person_class}{_where(rule.zone)} "
        f"without {rule.helmet_class}"
    )
    return Evaluation(unprotected > 0, float(unprotected), 0.0, summary)


def evaluate_silence(
    rule: CameraSilentRule, *, last_seen: datetime, now: datetime, refresh_s: int
) -> Evaluation:
    """``camera_silent``: seconds since the newest payload against ``factor x refresh_s``."""
    silence = max(0.0, (now - last_seen).total_seconds())
    limit = rule.factor * refresh_s
    breached = silence > limit
    state = "silent" if breached else "sending"
    summary = f"camera {state}: last payload {silence:.0f} s ago (limit {limit:g} s)"
    return Evaluation(breached, round(silence, 3), limit, summary)
