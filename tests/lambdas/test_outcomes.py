"""A rule's outcome (:class:`RuleOutcome`) is what the alert desk applies; a scheduled check
evaluates only the rules that judge time."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from kit.core.contracts import CameraSettings, CountBelowRule, parse, utc_now
from kit.core.rules import Evaluation
from kit.core.timefmt import stamp
from lambdas.alerts import RuleOutcome, RuleState, StateConflictError, alert_id_for, next_state
from lambdas.rules import evaluate_on_schedule
from lambdas.store import NOTIFICATION_CLAIM_S

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

    [applied] = desk.apply([breach], {})

    assert applied.sent == [(alert_id_for("shelf-1", "low", "p0", t0), "OPEN")]
    [alert] = harness.alerts()
    assert (alert.device_id, alert.frame_key, alert.payload_id, alert.value) == (
        "demo-1",
        "frames/demo-1/shelf-1/a.jpg",
        "p0",
        1,
    )
    assert [n.state for n in harness.inbox()] == ["OPEN"]
    with pytest.raises(StateConflictError, match=r"rules \['low'\] of camera 'shelf-1' changed"):
        desk.apply([breach], {"low": None})

    stored = harness.store.get_camera("shelf-1").rules["low"]
    assert RuleState.from_json(stored).outbox == ()
    normal = outcome(t0, Evaluation(False, 5, 3, "bottle count 5 is not below 3"), seconds=10)
    [resolved] = desk.apply([normal], {"low": stored})
    assert resolved.sent == [(alert.alert_id, "RESOLVED")]


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


def test_a_notification_claimed_by_a_stopped_function_is_sent_by_a_later_flush(harness, t0):
    """GIVEN a breach whose rule state holds the alert in its outbox, its notification claimed
    by a function that stopped before sending WHEN the next payload flushes the outbox
    THEN it leaves the alert there while the claim holds, and sends it once it has expired."""
    harness.process(harness.payload(at=t0))
    desk, store = harness.services.alerts, harness.store
    breach = outcome(t0, Evaluation(True, 1, 3, "bottle count 1 is below 3"))
    opened = next_state(RuleState(), breach)
    [alert] = opened.outbox
    assert store.replace_rule_states("shelf-1", {"low": (opened.to_json(), None)}).done
    store.create_alert(alert)
    assert store.claim_notification(alert.alert_id, "OPEN", now=utc_now()) == "claimed"
    still = outcome(t0, Evaluation(True, 1, 3, "bottle count 1 is below 3"), seconds=5)

    [held] = desk.apply([still], {"low": opened.to_json()})

    assert held.sent == [] and harness.inbox() == []
    state_json = store.get_camera("shelf-1").rules["low"]
    assert RuleState.from_json(state_json).outbox == (alert,)
    aged = stamp(utc_now() - timedelta(seconds=NOTIFICATION_CLAIM_S + 1))
    harness.services.dynamodb.update_item(  # the stopped function's claim, as time passes
        TableName=harness.settings.resources.alerts_table,
        Key={"alert_id": {"S": alert.alert_id}},
        UpdateExpression="SET notifying_OPEN = :aged",
        ExpressionAttributeValues={":aged": {"S": aged}},
    )

    [flushed] = desk.apply([still], {"low": state_json})

    assert flushed.sent == [(alert.alert_id, "OPEN")]
    assert [n.state for n in harness.inbox()] == ["OPEN"]
    assert RuleState.from_json(store.get_camera("shelf-1").rules["low"]).outbox == ()
