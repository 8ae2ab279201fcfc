"""Each rule type evaluates itself (``rule.evaluate(observation)``) by its documented meaning."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import get_args

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kit.core.contracts import (
    RULE_TYPES,
    CameraSettings,
    CameraSilentRule,
    CountAboveRule,
    CountBelowRule,
    DetectionPayload,
    PpeViolationRule,
    RisingTrendRule,
    Rule,
    parse,
)
from kit.core.rules import CountSample, Evaluation, Observation

T0 = datetime(2026, 1, 31, 12, tzinfo=UTC)
SETTINGS = parse(
    CameraSettings,
    {
        "refresh_s": 5,
        "zones": [{"name": "site", "polygon": [[0.5, 0], [1, 0], [1, 1], [0.5, 1]]}],
    },
)


def payload(at: datetime = T0, *, counts=None, zone_counts=None, detections=()) -> DetectionPayload:
    return parse(
        DetectionPayload,
        {
            "device_id": "d",
            "camera_id": "c",
            "model": {"name": "m"},
            "captured_at": at.isoformat(),
            "frame": {"width": 640, "height": 480},
            "counts": counts or {},
            "zone_counts": zone_counts or {},
            "detections": [
                {
                    "class_name": name,
                    "class_id": 0,
                    "confidence": confidence,
                    "box": dict(zip(["x1", "y1", "x2", "y2"], box, strict=True)),
                }
                for name, confidence, box in detections
            ],
        },
    )


def test_every_rule_type_defines_its_own_evaluate():
    members = get_args(get_args(Rule)[0])
    assert sorted(m.model_fields["type"].default for m in members) == sorted(RULE_TYPES)
    assert all("evaluate" in vars(member) for member in members)


@given(st.integers(0, 50), st.integers(0, 50))
def test_count_rules_compare_the_newest_payload_s_count_strictly(count, threshold):
    observation = Observation.of_payload(payload(counts={"bottle": count}), SETTINGS)

    below = CountBelowRule(class_name="bottle", threshold=threshold).evaluate(observation)
    above = CountAboveRule(class_name="bottle", threshold=threshold).evaluate(observation)

    assert (below.breached, above.breached) == (count < threshold, count > threshold)
    assert (below.value, below.threshold) == (count, threshold) == (above.value, above.threshold)


def test_count_rules_count_in_their_zone_and_a_class_not_reported_as_zero():
    observation = Observation.of_payload(
        payload(counts={"bottle": 9}, zone_counts={"site": {"bottle": 1}}), SETTINGS
    )

    in_zone = CountBelowRule(class_name="bottle", threshold=3, zone="site").evaluate(observation)
    absent = CountAboveRule(class_name="can", threshold=0).evaluate(observation)

    assert in_zone == Evaluation(True, 1.0, 3.0, "bottle count in zone site 1 is below 3")
    assert absent == Evaluation(False, 0.0, 0.0, "can count 0 is not above 0")


def test_rising_trend_fits_the_history_and_the_newest_payload():
    rule = RisingTrendRule(class_name="fish", window=4, min_points=4)
    history = [
        CountSample(T0 + timedelta(minutes=i), {"fish": count}, {})
        for i, count in enumerate([1, 2, 3])
    ]
    newest = payload(T0 + timedelta(minutes=3), counts={"fish": 4})

    rising = rule.evaluate(Observation.of_payload(newest, SETTINGS, history))
    too_few = rule.evaluate(Observation.of_payload(newest, SETTINGS, history[:2]))

    assert rising.breached and rising.value == pytest.approx(1.0)
    assert not too_few.breached
    assert too_few.summary == "fish count: 3 of the 4 payloads a trend needs"


def test_the_newest_payload_counts_once_when_the_history_already_holds_it():
    newest = payload(T0, counts={"fish": 4})
    stored = CountSample.from_payload(newest)

    observation = Observation.of_payload(newest, SETTINGS, [stored])

    assert observation.samples == (stored,)


def test_ppe_judges_the_persons_in_its_zone_of_the_camera_s_zones():
    rule = PpeViolationRule(zone="site", min_overlap=0.5)
    observation = Observation.of_payload(
        payload(
            detections=[
                ("person", 0.9, (10, 100, 100, 400)),  # outside the zone: not judged
                ("person", 0.9, (400, 100, 500, 400)),  # in the zone, covered
                ("helmet", 0.9, (420, 95, 480, 150)),
                ("person", 0.9, (540, 100, 620, 400)),  # in the zone, no helmet
            ]
        ),
        SETTINGS,
    )

    result = rule.evaluate(observation)

    assert result == Evaluation(True, 1.0, 0.0, "1 of 2 person in zone site without helmet")


def test_camera_silent_measures_from_the_last_payload_to_the_observation_s_moment():
    rule = CameraSilentRule(factor=3)
    arrival = Observation.of_payload(payload(T0), SETTINGS)
    quiet = Observation.of_schedule(now=T0 + timedelta(seconds=15), last_seen=T0, refresh_s=5)
    silent = Observation.of_schedule(now=T0 + timedelta(seconds=16), last_seen=T0, refresh_s=5)

    assert rule.evaluate(arrival) == Evaluation(
        False, 0.0, 15.0, "camera sending: last payload 0 s ago (limit 15 s)"
    )
    assert not rule.evaluate(quiet).breached
    assert rule.evaluate(silent) == Evaluation(
        True, 16.0, 15.0, "camera silent: last payload 16 s ago (limit 15 s)"
    )


@pytest.mark.parametrize(
    "rule",
    [
        CountBelowRule(name="low", class_name="bottle", threshold=1),
        CountAboveRule(class_name="bottle", threshold=1),
        PpeViolationRule(),
    ],
)
def test_a_rule_that_judges_a_payload_refuses_an_observation_without_one(rule):
    scheduled = Observation.of_schedule(now=T0, last_seen=T0, refresh_s=5)

    with pytest.raises(ValueError, match=rf"rule '{rule.key}' judges a payload.*camera_silent"):
        rule.evaluate(scheduled)


def test_only_camera_silent_is_evaluated_on_a_schedule_and_only_trends_need_history():
    rules = [
        CountBelowRule(class_name="bottle", threshold=1),
        CountAboveRule(class_name="bottle", threshold=1),
        RisingTrendRule(class_name="fish", window=7, min_points=3),
        PpeViolationRule(),
        CameraSilentRule(),
    ]

    assert [r.type for r in rules if r.on_schedule] == ["camera_silent"]
    assert [r.history_needed for r in rules] == [0, 0, 7, 0, 0]
