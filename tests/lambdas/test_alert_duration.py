"""A rule's minimum duration, a count rule's hysteresis, and an open alert that follows its rule's
new threshold: pure state-machine steps, then the processor on moto (GIVEN / WHEN / THEN)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from kit.core.contracts import (
    ContractError,
    CountAboveRule,
    CountBelowRule,
    PpeViolationRule,
    parse,
)
from kit.core.rules import Evaluation, count_above, count_below
from lambdas.alerts import RuleOutcome, RuleState, next_state
from tests.lambdas.conftest import T0


def step(state: RuleState, rule, evaluation: Evaluation, seconds: float) -> RuleState:
    at = T0 + timedelta(seconds=seconds)
    outcome = RuleOutcome(
        camera_id="shelf-1",
        rule=rule,
        evaluation=evaluation,
        at=at,
        token=f"p{seconds}",
        payload_id=f"p{seconds}",
    )
    return next_state(state, outcome)


def run(rule, counts_by_second: list[tuple[float, int]], state: RuleState | None = None):
    """The states after each (capture second, count), the count rule evaluated for real."""
    evaluate = count_below if rule.type == "count_below" else count_above
    states = []
    state = state or RuleState()
    for seconds, count in counts_by_second:
        state = step(state, rule, evaluate(rule, count), seconds)
        states.append(state)
    return states


LOW = CountBelowRule(name="low", class_name="bottle", threshold=3, cooldown_s=0, min_duration_s=6)


def test_an_alert_opens_only_once_the_breach_held_for_the_minimum_duration():
    states = run(LOW, [(0, 1), (2, 2), (4, 1), (6, 2)])

    assert [s.alert is not None for s in states] == [False, False, False, True]
    assert states[0].breaching_since == T0
    assert states[1] is states[0] and states[2] is states[0]  # nothing to write meanwhile
    opened = states[-1]
    assert opened.alert.opened_at == T0 + timedelta(seconds=6)
    assert opened.alert.message == "bottle count 2 is below 3 for 6 s"
    assert opened.breaching_since is None and [a.state for a in opened.outbox] == ["OPEN"]


def test_a_payload_that_does_not_breach_starts_the_minimum_duration_over():
    states = run(LOW, [(0, 1), (4, 5), (6, 1), (10, 1), (12, 1)])

    assert [s.alert is not None for s in states] == [False, False, False, False, True]
    assert states[1].breaching_since is None
    assert states[2].breaching_since == T0 + timedelta(seconds=6)
    assert states[-1].alert.opened_at == T0 + timedelta(seconds=12)


def test_a_breach_that_outlasts_the_cooldown_and_the_duration_opens_when_the_cooldown_ends():
    rule = LOW.model_copy(update={"cooldown_s": 10})
    resolved = RuleState(last_resolved_at=T0)

    states = run(rule, [(2, 1), (8, 1), (10, 1)], state=resolved)

    assert [s.alert is not None for s in states] == [False, False, True]
    assert states[0].breaching_since == T0 + timedelta(seconds=2)
    assert states[-1].alert.message == "bottle count 1 is below 3 for 8 s"


def test_without_a_minimum_duration_the_state_is_as_before():
    rule = LOW.model_copy(update={"min_duration_s": 0, "cooldown_s": 60})
    cooling = RuleState(last_resolved_at=T0)

    [suppressed] = run(rule, [(5, 1)], state=cooling)
    [opened] = run(rule, [(0, 1)])

    assert suppressed is cooling  # no write: no breach start kept for a rule without a duration
    assert opened.alert.message == "bottle count 1 is below 3"
    assert opened.breaching_since is None


def test_the_breach_start_survives_a_round_trip_through_the_stored_json():
    [pending] = run(LOW, [(0, 1)])

    assert RuleState.from_json(pending.to_json()) == pending
    assert "breaching_since" not in RuleState().to_json()


def test_count_below_resolves_only_past_its_hysteresis():
    rule = CountBelowRule(class_name="bottle", threshold=3, hysteresis=1, cooldown_s=0)

    states = run(rule, [(0, 2), (2, 3), (4, 2), (6, 3), (8, 4)])

    assert [s.alert is not None for s in states] == [True, True, True, True, False]
    assert len({s.alert.alert_id for s in states[:4]}) == 1
    assert [a.state for a in states[-1].outbox] == ["OPEN", "RESOLVED"]
    assert states[-1].outbox[-1].message == "bottle count 4 is not below 3"


def test_count_above_resolves_at_threshold_minus_hysteresis_and_at_zero_at_the_latest():
    rule = CountAboveRule(class_name="person", threshold=4, hysteresis=2, cooldown_s=0)
    states = run(rule, [(0, 5), (2, 4), (4, 3), (6, 2)])
    assert [s.alert is not None for s in states] == [True, True, True, False]

    at_zero = CountAboveRule(class_name="person", threshold=0, hysteresis=1, cooldown_s=0)
    states = run(at_zero, [(0, 1), (2, 0)])
    assert [s.alert is not None for s in states] == [True, False]


def test_an_open_alert_follows_its_rules_new_threshold_with_its_id_and_no_new_notification():
    rule = CountBelowRule(name="low", class_name="bottle", threshold=3, cooldown_s=0)
    [opened] = run(rule, [(0, 1)])
    alert = opened.alert

    raised = rule.model_copy(update={"threshold": 7})
    [revised] = run(raised, [(2, 5)], state=opened)
    [same] = run(raised, [(4, 5)], state=revised)

    assert revised.alert.alert_id == alert.alert_id and revised.alert.state == "OPEN"
    assert (revised.alert.threshold, revised.alert.value) == (7, 5)
    assert revised.alert.message == "bottle count 5 is below 7"
    assert revised.alert.opened_at == alert.opened_at
    assert revised.outbox[-1] == revised.alert
    assert same is revised  # the threshold did not change again: nothing to write


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"min_duration_s": 3601}, "min_duration_s"),
        ({"min_duration_s": -1}, "min_duration_s"),
        ({"min_duration_s": 2.5}, "min_duration_s"),
        ({"hysteresis": -1}, "hysteresis"),
        ({"hysteresis": 1001}, "hysteresis"),
        ({"hysteresis": "1"}, "hysteresis"),
    ],
)
def test_bad_durations_and_hystereses_are_refused_naming_the_field(fields, problem):
    with pytest.raises(ContractError, match=problem):
        parse(CountBelowRule, {"class_name": "bottle", "threshold": 3, **fields})


def test_only_count_rules_have_a_hysteresis():
    with pytest.raises(ContractError, match="hysteresis"):
        parse(PpeViolationRule, {"hysteresis": 1})


# -- the processor on moto ---------------------------------------------------------------------


def set_low_stock(harness, **fields):
    rule = {"type": "count_below", "name": "low", "class_name": "bottle", "threshold": 3}
    harness.set_config(cameras={"shelf-1": {"rules": [{**rule, "cooldown_s": 0, **fields}]}})


def test_the_processor_opens_after_the_minimum_duration_of_capture_time(harness):
    """GIVEN a rule that must hold 10 s WHEN payloads captured 4 s apart count 1 bottle
    THEN the alert opens with the payload captured 12 s after the first, and only then."""
    set_low_stock(harness, min_duration_s=10)
    opened_with = []
    for index in range(5):
        body = harness.payload(at=timedelta(seconds=4 * index), counts={"bottle": 1})
        harness.process(body)
        if harness.alerts() and not opened_with:
            opened_with.append(index)

    assert opened_with == [3]
    [alert] = harness.alerts()
    assert alert.opened_at == T0 + timedelta(seconds=12)
    assert [n.state for n in harness.inbox()] == ["OPEN"]


def test_an_open_alerts_record_follows_a_new_threshold_without_a_second_email(harness):
    """GIVEN an alert open on 'bottles below 3' WHEN the threshold is raised to 7 while 5
    bottles are seen THEN the same alert's record says 5 below 7, no e-mail is sent for it, and
    the alert resolves once 8 bottles are seen."""
    set_low_stock(harness)
    harness.process(harness.payload(at=timedelta(seconds=0), counts={"bottle": 1}))
    [opened] = harness.alerts()
    assert [n.state for n in harness.inbox()] == ["OPEN"]

    set_low_stock(harness, threshold=7)
    harness.process(harness.payload(at=timedelta(seconds=2), counts={"bottle": 5}))

    [revised] = harness.alerts()
    assert revised.alert_id == opened.alert_id and revised.state == "OPEN"
    assert (revised.threshold, revised.value) == (7, 5)
    assert revised.message == "bottle count 5 is below 7"
    assert harness.inbox() == []
    state = RuleState.from_json(harness.store.get_camera("shelf-1").rules["low"])
    assert state.outbox == () and state.alert.threshold == 7

    harness.process(harness.payload(at=timedelta(seconds=4), counts={"bottle": 8}))
    [resolved] = harness.alerts()
    assert (resolved.alert_id, resolved.state, resolved.threshold) == (
        opened.alert_id,
        "RESOLVED",
        7,
    )
    assert [n.state for n in harness.inbox()] == ["RESOLVED"]


def test_an_acked_alert_stays_acked_when_its_record_is_revised(harness):
    set_low_stock(harness)
    harness.process(harness.payload(at=timedelta(seconds=0), counts={"bottle": 1}))
    [opened] = harness.alerts()
    status, _ = harness.api("POST", f"/alerts/{opened.alert_id}/ack")
    assert status == 200

    set_low_stock(harness, threshold=4)
    harness.process(harness.payload(at=timedelta(seconds=2), counts={"bottle": 2}))

    [revised] = harness.alerts()
    assert (revised.state, revised.acked_by, revised.threshold) == ("ACKED", "local-token", 4)


def test_a_new_threshold_is_not_held_back_by_the_cooldown_of_the_alert_it_replaced():
    rule = CountBelowRule(name="low", class_name="bottle", threshold=3, cooldown_s=300)
    opened, resolved = run(rule, [(0, 1), (10, 5)])
    assert resolved.alert is None and resolved.resolved_threshold == 3
    assert RuleState.from_json(resolved.to_json()) == resolved

    [same_rule] = run(rule, [(20, 1)], state=resolved)
    [raised] = run(rule.model_copy(update={"threshold": 7}), [(20, 5)], state=resolved)

    assert same_rule is resolved  # the cooldown holds back a repeat of the same alert
    assert raised.alert is not None and raised.alert.threshold == 7


def test_the_control_api_refuses_a_minimum_duration_out_of_bounds_naming_the_field(harness):
    rule = {"type": "count_below", "class_name": "bottle", "threshold": 3, "min_duration_s": 7200}

    status, body = harness.api("PUT", "/config/shelf-1", body={"rules": [rule]})

    # the control API answers a config that breaks its contract with 400, naming the field
    assert status == 400, body
    [problem] = body["problems"]
    assert problem["field"] == "rules[0].count_below.min_duration_s"
    assert "3600" in problem["allowed"]
