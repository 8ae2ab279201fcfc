"""When the backend evaluates a camera's rules: on each payload's arrival, and on a schedule.

What a rule means is defined once, for the device and the cloud alike, in :mod:`kit.core.rules`
(each rule contract evaluates itself: ``rule.evaluate(observation)``). This module decides what
the backend shows the rules:

- a payload's arrival, when it is the camera's newest (:func:`evaluate_payload`): every enabled
  rule is evaluated on it, with the camera's latest stored counts (as many as
  :func:`history_needed` says, for ``rising_trend``); ``camera_silent`` comes back as not
  breached, since a payload just arrived;
- a scheduled check (:func:`evaluate_on_schedule`): the enabled rules that judge time rather
  than a payload (``camera_silent``), at the check's time.

The alert state machine (:mod:`lambdas.alerts`) decides what a breach means over time.

Examples:
    >>> from datetime import UTC, datetime
    >>> from kit.core.contracts import CameraSettings, parse
    >>> settings = parse(CameraSettings, {"refresh_s": 5, "rules": [{"type": "camera_silent"}]})
    >>> [(rule.key, e.breached) for rule, e in evaluate_on_schedule(settings,
    ...     last_seen=datetime(2026, 1, 31, 12, tzinfo=UTC),
    ...     now=datetime(2026, 1, 31, 12, 1, tzinfo=UTC))]
    [('camera_silent', True)]
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from kit.core.contracts import CameraSettings, DetectionPayload, Rule
from kit.core.rules import CountSample, Evaluation, Observation


def evaluate_payload(
    settings: CameraSettings, payload: DetectionPayload, history: Sequence[CountSample] = ()
) -> list[tuple[Rule, Evaluation]]:
    """Every enabled rule of ``settings`` evaluated on ``payload``, as (rule, evaluation) pairs.

    Args:
        settings: the camera's resolved settings (:meth:`ControlConfig.for_camera`).
        payload: the camera's newest payload.
        history: the camera's latest stored samples (the payload itself is added when missing).
    """
    observation = Observation.of_payload(payload, settings, history)
    return [(rule, rule.evaluate(observation)) for rule in settings.rules if rule.enabled]


def evaluate_on_schedule(
    settings: CameraSettings, *, last_seen: datetime, now: datetime
) -> list[tuple[Rule, Evaluation]]:
    """The enabled rules a scheduled check judges, evaluated at ``now`` for a camera last seen at
    ``last_seen``, as (rule, evaluation) pairs."""
    observation = Observation.of_schedule(
        now=now, last_seen=last_seen, refresh_s=settings.refresh_s
    )
    return [
        (rule, rule.evaluate(observation))
        for rule in settings.rules
        if rule.enabled and rule.on_schedule
    ]


def history_needed(settings: CameraSettings) -> int:
    """How many of the camera's latest payloads its enabled rules judge (0: the newest alone)."""
    return max((rule.history_needed for rule in settings.rules if rule.enabled), default=0)
