"""A rule's outcome (:class:`RuleOutcome`) is what the alert desk applies; a scheduled check
evaluates only the rules that judge time."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from kit.core.contracts import CameraSettings, CountBelowRule, parse
from kit.core.rules import Evaluation
from lambdas.alerts import RuleOutcome, RuleState, StateConflictError, alert_id_for
from lambdas.rules import evaluate_on_schedule

RULE = CountBelowRule(name="low", class_name="bottle", threshold=3, cooldown_s=0)


def outcome(t0, evaluation: Evaluation, seconds: float = 0) -> RuleOutcome:
    return RuleOutcome(
        camera_id="shelf-1",
        rule=RULE,
        evaluation=evaluation,
        at=t0 + timedelta(seconds=seconds),
        token=f"p{seconds}",
        device_id="demo-1",
        frame_key="frames/demo-1/shelf-1/a.jpg",
        payload_id=f"p{seconds}",
    )


def test_an_outcome_is_a_value(t0):
    breach = outcome(t0, Evaluation(True, 1, 3, "low"))

    assert breach == outcome(t0, Evaluation(True, 1, 3, "low"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        breach.token = "other"  # type: ignore[misc]


def test_the_desk_applies_an_outcome_from_the_state_it_was_computed_from(harness, t0):
    """GIVEN a camera seen once
    WHEN a breach outcome is applied, then applied again from the state read before it
    THEN the alert opens with what the outcome carries, and the stale retry is refused."""
    harness.process(harness.payload(at=t0))
    desk = harness.services.alerts
    breach = outcome(t0, Evaluation(True, 1, 3, "bottle count 1 is below 3"))

    applied = desk.apply(breach, stored_state=None)

    assert applied.sent == [(alert_id_for("shelf-1", "low", "p0", t0), "OPEN")]
    [alert] = harness.alerts()
    assert (alert.device_id, alert.frame_key, alert.payload_id, alert.value) == (
        "demo-1",
        "frames/demo-1/shelf-1/a.jpg",
        "p0",
        1,
    )
    assert [n.state for n in harness.inbox()] == ["OPEN"]
    with pytest.raises(StateConflictError, match="rule 'low' of camera 'shelf-1' changed"):
        desk.apply(breach, stored_state=None)

    stored = harness.store.get_camera("shelf-1").rules["low"]
    assert RuleState.from_json(stored).outbox == ()
    normal = outcome(t0, Evaluation(False, 5, 3, "bottle count 5 is not below 3"), seconds=10)
    assert desk.apply(normal, stored_state=stored).sent == [(alert.alert_id, "RESOLVED")]


def test_a_scheduled_check_evaluates_only_the_enabled_rules_that_judge_time(t0):
    settings = parse(
        CameraSettings,
        {
            "refresh_s": 5,
            "rules": [
                {"type": "count_below", "class_name": "bottle", "threshold": 2},
                {"type": "camera_silent", "factor": 2},
                {"type": "camera_silent", "name": "off", "enabled": False},
            ],
        },
    )

    results = evaluate_on_schedule(settings, last_seen=t0, now=t0 + timedelta(seconds=11))

    assert [(rule.key, evaluation.breached) for rule, evaluation in results] == [
        ("camera_silent", True)
    ]
    assert results[0][1].threshold == 10
