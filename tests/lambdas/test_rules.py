"""The rules as pure functions: exactly the documented definitions, and when the backend
evaluates them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kit.core.contracts import (
    CameraSettings,
    CameraSilentRule,
    CountAboveRule,
    CountBelowRule,
    DetectionPayload,
    PpeViolationRule,
    RisingTrendRule,
    parse,
)
from kit.core.rules import (
    CountSample,
    count_above,
    count_below,
    evaluate_ppe,
    evaluate_rising_trend,
    evaluate_silence,
    head_region,
    inside_fraction,
    least_squares_slope,
)
from lambdas.rules import evaluate_payload, history_needed

T0 = datetime(2026, 1, 31, 12, tzinfo=UTC)


def samples(counts, step_s=60, zone=None, class_name="fish"):
    return [
        CountSample(
            T0 + timedelta(seconds=i * step_s),
            {} if zone else {class_name: c},
            {zone: {class_name: c}} if zone else {},
        )
        for i, c in enumerate(counts)
    ]


@pytest.mark.parametrize(("count", "breached"), [(0, True), (2, True), (3, False), (9, False)])
def test_count_below_is_strictly_below(count, breached):
    rule = CountBelowRule(class_name="bottle", threshold=3)
    result = count_below(rule, count)
    assert (result.breached, result.value, result.threshold) == (breached, count, 3)


@pytest.mark.parametrize(("count", "breached"), [(3, False), (4, True)])
def test_count_above_is_strictly_above(count, breached):
    assert count_above(CountAboveRule(class_name="person", threshold=3), count).breached is breached


def test_least_squares_slope_matches_the_closed_form():
    assert least_squares_slope([(0, 1), (1, 3), (2, 5)]) == pytest.approx(2.0)
    assert least_squares_slope([(0, 0), (1, 1), (2, 0), (3, 1)]) == pytest.approx(0.2)
    assert least_squares_slope([(5, 1), (5, 9)]) is None
    assert least_squares_slope([(0, 1)]) is None


@given(
    st.floats(-50, 50),
    st.floats(-100, 100),
    st.lists(st.floats(0, 600), min_size=2, max_size=20, unique=True),
)
def test_least_squares_recovers_the_slope_of_points_on_a_line(slope, intercept, xs):
    points = [(x, intercept + slope * x) for x in xs]
    if max(xs) - min(xs) < 1e-3:
        return
    assert least_squares_slope(points) == pytest.approx(slope, abs=1e-6)


def test_rising_trend_fits_objects_per_minute_over_the_window():
    rule = RisingTrendRule(class_name="fish", window=4, min_points=3, min_slope_per_min=1.0)

    rising = evaluate_rising_trend(rule, samples([9, 9, 1, 2, 3, 4]))  # only the last 4 count
    flat = evaluate_rising_trend(rule, samples([1, 2, 3, 3, 3, 3]))
    slow = evaluate_rising_trend(rule, samples([1, 2, 3, 4], step_s=120))  # 0.5 / min

    assert rising.breached and rising.value == pytest.approx(1.0)
    assert not flat.breached and flat.value == 0
    assert not slow.breached and slow.value == pytest.approx(0.5)
    assert "+1.00/min over 4 payloads (1 -> 4" in rising.summary


def test_rising_trend_needs_min_points_within_max_age_and_a_higher_last_count():
    rule = RisingTrendRule(class_name="fish", window=6, min_points=4, max_age_s=200)
    old_then_new = samples([1, 2, 3, 4, 5, 6])  # 60 s apart: only 4 within 200 s of the newest

    assert evaluate_rising_trend(rule, old_then_new).breached
    assert not evaluate_rising_trend(rule, samples([1, 2, 3])).breached
    back_to_start = samples([5, 5, 30, 30, 5])  # slope +2.5/min, but no higher than it began
    result = evaluate_rising_trend(RisingTrendRule(class_name="fish", min_points=3), back_to_start)
    assert result.value == pytest.approx(2.5) and not result.breached


def test_rising_trend_counts_in_its_zone():
    rule = RisingTrendRule(class_name="fish", zone="inlet", window=3, min_points=3)
    assert evaluate_rising_trend(rule, samples([1, 3, 5], zone="inlet")).breached
    assert not evaluate_rising_trend(rule, samples([1, 3, 5])).breached  # frame counts only


def test_head_region_and_overlap():
    head = head_region((100, 100, 200, 400), 0.3)
    assert head == (100, 100, 200, 190)
    assert inside_fraction((120, 90, 180, 150), head) == pytest.approx(50 / 60)
    assert inside_fraction((120, 300, 180, 350), head) == 0
    assert inside_fraction((150, 150, 150, 150), head) == 0  # no area, no cover


def ppe_payload(detections, width=640, height=480):
    return parse(
        DetectionPayload,
        {
            "device_id": "d",
            "camera_id": "gate-1",
            "model": {"name": "ppe"},
            "captured_at": "2026-01-31T12:00:00Z",
            "frame": {"width": width, "height": height},
            "detections": [
                {
                    "class_name": c,
                    "class_id": 0,
                    "confidence": conf,
                    "box": dict(zip(["x1", "y1", "x2", "y2"], box, strict=True)),
                }
                for c, conf, box in detections
            ],
        },
    )


def test_ppe_counts_persons_whose_head_region_no_helmet_covers():
    rule = PpeViolationRule(head_fraction=0.3, min_overlap=0.5, min_confidence=0.4)
    payload = ppe_payload(
        [
            ("person", 0.9, (100, 100, 200, 400)),  # helmet over the head: covered
            ("helmet", 0.8, (120, 90, 180, 150)),
            ("person", 0.9, (300, 100, 400, 400)),  # helmet at the feet: not covered
            ("helmet", 0.8, (320, 350, 380, 400)),
            ("person", 0.2, (500, 100, 600, 400)),  # too unsure to count
            ("person", 0.9, (10, 10, 60, 200)),  # helmet only 1/3 inside the head: not covered
            ("helmet", 0.9, (20, 50, 50, 110)),
        ]
    )
    result = evaluate_ppe(rule, payload)
    assert (result.breached, result.value) == (True, 2)
    assert result.summary == "2 of 3 person without helmet"


def test_ppe_ignores_unsure_helmets_and_persons_outside_its_zone():
    settings = parse(
        CameraSettings,
        {
            "zones": [{"name": "site", "polygon": [[0.5, 0], [1, 0], [1, 1], [0.5, 1]]}],
            "rules": [{"type": "ppe_violation", "zone": "site"}],
        },
    )
    rule = settings.rules[0]
    payload = ppe_payload(
        [
            ("person", 0.9, (10, 100, 100, 400)),  # bottom centre x=55/640: outside the zone
            ("person", 0.9, (400, 100, 500, 400)),  # inside
            ("helmet", 0.1, (420, 95, 480, 150)),  # too unsure
        ]
    )
    result = evaluate_ppe(rule, payload, settings.zones)
    assert (result.value, result.summary) == (1, "1 of 1 person in zone site without helmet")


def test_silence_is_breached_past_factor_times_refresh():
    rule = CameraSilentRule(factor=3)
    at = T0 + timedelta(seconds=16)
    assert evaluate_silence(rule, last_seen=T0, now=at, refresh_s=5).breached
    assert not evaluate_silence(
        rule, last_seen=T0, now=T0 + timedelta(seconds=15), refresh_s=5
    ).breached


def test_evaluate_payload_runs_every_enabled_rule_once():
    settings = parse(
        CameraSettings,
        {
            "rules": [
                {"type": "count_below", "class_name": "bottle", "threshold": 2},
                {"type": "count_above", "class_name": "bottle", "threshold": 1, "enabled": False},
                {"type": "rising_trend", "class_name": "bottle", "window": 20, "min_points": 3},
                {"type": "camera_silent"},
            ]
        },
    )
    payload = parse(
        DetectionPayload,
        {
            "device_id": "d",
            "camera_id": "c",
            "model": {"name": "m"},
            "captured_at": "2026-01-31T12:03:00Z",
            "frame": {"width": 10, "height": 10},
            "counts": {"bottle": 9},
        },
    )
    history = samples([0, 3, 6], class_name="bottle")  # 12:00-12:02; the payload (12:03) is added

    results = {rule.type: ev for rule, ev in evaluate_payload(settings, payload, history)}

    assert sorted(results) == ["camera_silent", "count_below", "rising_trend"]
    assert not results["count_below"].breached and not results["camera_silent"].breached
    assert results["rising_trend"].breached and results["rising_trend"].value == pytest.approx(
        3.0, rel=0.01
    )
    assert history_needed(settings) == 20
