"""The alert state machine and notification text, as pure functions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kit.core.contracts import CountBelowRule
from kit.core.rules import Evaluation
from lambdas.alerts import (
    SUBJECT_MAX,
    RuleOutcome,
    RuleState,
    alert_id_for,
    next_state,
    render_body,
    render_subject,
)

T0 = datetime(2026, 1, 31, 12, tzinfo=UTC)
RULE = CountBelowRule(name="low-stock", class_name="bottle", threshold=3, cooldown_s=60)
BREACH = Evaluation(True, 1, 3, "bottle count 1 is below 3")
NORMAL = Evaluation(False, 5, 3, "bottle count 5 is not below 3")


def step(state: RuleState, evaluation: Evaluation, seconds: float, token: str = "p") -> RuleState:
    outcome = RuleOutcome(
        camera_id="shelf-1",
        rule=RULE,
        evaluation=evaluation,
        at=T0 + timedelta(seconds=seconds),
        token=f"{token}{seconds}",
        device_id="demo-1",
        frame_key="frames/x.jpg",
        payload_id=f"{token}{seconds}",
    )
    return next_state(state, outcome)


def test_first_breach_opens_and_queues_one_notification():
    state = step(RuleState(), BREACH, 0)
    assert state.alert.state == "OPEN" and state.alert.rule == "low-stock"
    assert [a.state for a in state.outbox] == ["OPEN"]
    assert (state.alert.value, state.alert.threshold) == (1, 3)


def test_nothing_changes_while_breached_or_while_normal():
    opened = step(RuleState(), BREACH, 0)
    assert step(opened, BREACH, 30) is opened
    assert step(RuleState(), NORMAL, 0) == RuleState()


def test_back_to_normal_resolves_with_the_resolving_value():
    resolved = step(step(RuleState(), BREACH, 0), NORMAL, 45)
    assert resolved.alert is None
    assert resolved.last_resolved_at == T0 + timedelta(seconds=45)
    closing = resolved.outbox[-1]
    assert (closing.state, closing.value, closing.resolved_at) == (
        "RESOLVED",
        5,
        T0 + timedelta(seconds=45),
    )


@pytest.mark.parametrize(
    ("seconds_after_resolve", "opens"), [(1, False), (59.9, False), (60, True), (500, True)]
)
def test_a_new_breach_opens_only_after_the_cooldown(seconds_after_resolve, opens):
    resolved = RuleState(last_resolved_at=T0)
    after = step(resolved, BREACH, seconds_after_resolve)
    assert (after.alert is not None) is opens


def test_state_round_trips_through_json():
    state = step(step(RuleState(), BREACH, 0), NORMAL, 10)
    state = step(state, BREACH, 100)
    assert RuleState.from_json(state.to_json()) == state
    assert RuleState.from_json(None) == RuleState()


def test_alert_ids_are_deterministic_per_breach_and_sort_by_time():
    first = alert_id_for("shelf-1", "low-stock", "payload-a", T0)
    assert first == alert_id_for("shelf-1", "low-stock", "payload-a", T0)
    assert first != alert_id_for("shelf-1", "low-stock", "payload-b", T0)
    assert first.startswith("20260131T120000Z-")
    assert first < alert_id_for("shelf-1", "low-stock", "payload-a", T0 + timedelta(seconds=1))


@given(st.text(max_size=300))
def test_subjects_are_one_ascii_line_of_at_most_100_characters(message):
    alert = step(RuleState(), BREACH, 0).alert.model_copy(update={"message": message})
    subject = render_subject(alert)
    assert len(subject) <= SUBJECT_MAX
    assert subject.isascii() and "\n" not in subject and "\r" not in subject
    assert subject.startswith("[EVK] OPEN shelf-1:")


def test_bodies_say_what_where_value_threshold_when_and_link_the_frame():
    opened = step(RuleState(), BREACH, 0).alert
    body = render_body(opened, frame_url="http://frames/x.jpg?sig", api_url="http://api")
    assert body.splitlines()[0] == "Alert on camera shelf-1: bottle count 1 is below 3"
    for line in (
        "State:     OPEN",
        "Camera:    shelf-1 (device demo-1)",
        "Rule:      low-stock (count_below)",
        "Value:     1 (threshold 3)",
        "Time:      2026-01-31 12:00:00 UTC",
        "Frame:     http://frames/x.jpg?sig",
        f"Acknowledge: POST http://api/alerts/{opened.alert_id}/ack",
    ):
        assert line in body.splitlines()

    resolved = step(step(RuleState(), BREACH, 0), NORMAL, 90).outbox[-1]
    body = render_body(resolved, frame_url=None)
    assert body.splitlines()[0] == "Back to normal on camera shelf-1: bottle count 5 is not below 3"
    assert (
        "Time:      2026-01-31 12:01:30 UTC" in body
        and "Opened:    2026-01-31 12:00:00 UTC" in body
    )
    assert "Frame:     no frame was published with this payload" in body
    assert "Acknowledge" not in body
