"""kit.core.geometry: one zone test for the device and the rules, proven to agree."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from edge_app.detections import Detections
from edge_app.zones import PolygonZone
from kit.core.boxes import anchor_points, box_iou
from kit.core.contracts import DetectionPayload, PpeViolationRule, ZoneSpec, parse
from kit.core.geometry import (
    EDGE_TOLERANCE,
    Polygon,
    Position,
    anchor_of,
    boxes_in_zone,
    point_in_polygon,
    round_box,
)
from kit.core.rules import evaluate_ppe, persons_in_scope

T0 = datetime(2026, 1, 31, 12, tzinfo=UTC)


def test_inside_by_the_even_odd_rule_and_on_the_boundary_counts_as_in():
    square = [(0.2, 0.2), (0.8, 0.2), (0.8, 0.8), (0.2, 0.8)]
    assert point_in_polygon(0.5, 0.5, square)
    assert point_in_polygon(0.2, 0.5, square)  # on an edge
    assert point_in_polygon(0.8, 0.8, square)  # on a vertex
    assert not point_in_polygon(0.1, 0.5, square)
    assert not point_in_polygon(0.2 - 10 * EDGE_TOLERANCE, 0.5, square)
    concave = [(0, 0), (1, 0), (1, 1), (0.5, 0.3), (0, 1)]
    assert not point_in_polygon(0.5, 0.6, concave)
    assert point_in_polygon(0.2, 0.2, concave)
    assert point_in_polygon(0.75, 0.65, concave)  # on the slanted inner edge


def test_matches_opencv_on_a_concave_polygon():
    vertices = [(10, 10), (300, 20), (150, 120), (310, 300), (20, 280), (90, 140)]
    polygon = Polygon(vertices)
    points = np.random.default_rng(0).uniform(0, 320, (2000, 2))
    contour = np.array(vertices, np.float32)
    # OpenCV: +1 inside, 0 on the boundary, -1 outside; on the boundary is inside for the kit
    expected = [cv2.pointPolygonTest(contour, (float(x), float(y)), False) >= 0 for x, y in points]
    inside = [polygon.contains(float(x), float(y)) for x, y in points]
    assert inside == expected
    assert 0 < sum(inside) < len(points)


@pytest.mark.parametrize(
    ("points", "problem"),
    [
        ([(0, 0), (1, 1)], "at least 3"),
        ([(0, 0), (1, 0), (float("nan"), 1)], "non-finite"),
        ([(0, 0), (1, 0), (1,)], r"needs \(x, y\) points"),
    ],
)
def test_a_bad_polygon_is_refused_with_what_is_wrong(points, problem):
    with pytest.raises(ValueError, match=problem):
        Polygon(points, what="zone 'dock'")


def test_a_person_at_the_bottom_of_the_frame_stands_in_a_full_frame_zone():
    """The bug that started it: zones.py said out, rules.py said in."""
    full_frame = [(0, 0), (1, 0), (1, 1), (0, 1)]
    feet_on_the_bottom = [(100.0, 200.0, 180.0, 480.0)]
    assert boxes_in_zone(feet_on_the_bottom, full_frame, frame_wh=(640, 480)) == [True]
    zone = PolygonZone("all", full_frame)
    detections = Detections(
        np.array(feet_on_the_bottom, np.float32), np.ones(1), np.zeros(1, int), class_names=["p"]
    )
    assert zone.trigger(detections, frame_wh=(640, 480)).tolist() == [True]


def test_round_box_is_idempotent_and_survives_json():
    rng = np.random.default_rng(1)
    for box in rng.uniform(0, 4096, (2000, 4)).astype(np.float32).tolist():
        once = round_box(box)
        assert round_box(once) == once
        assert tuple(json.loads(json.dumps(once))) == once


def test_the_array_anchors_are_the_scalar_anchors():
    """Exactly in float64; in float32 (the device's boxes) to float32's precision."""
    boxes = np.random.default_rng(2).uniform(0, 2000, (500, 4))
    for position in Position:
        expected = [list(anchor_of(box, position)) for box in boxes.tolist()]
        assert anchor_points(boxes, position).tolist() == expected
        single = boxes.astype(np.float32)
        expected = np.array([anchor_of(box, position) for box in single.tolist()])
        np.testing.assert_allclose(anchor_points(single, position), expected, rtol=1e-6)


def test_box_iou_known_values_and_degenerate_boxes():
    a = np.array([[0, 0, 10, 10], [0, 0, 0, 0]], float)
    b = np.array([[5, 0, 15, 10], [0, 0, 10, 10], [20, 20, 30, 30]], float)
    iou = box_iou(a, b)
    assert iou.shape == (2, 3)
    assert iou[0].round(6).tolist() == [round(50 / 150, 6), 1.0, 0.0]
    assert iou[1].tolist() == [0.0, 0.0, 0.0]


# -- the two sides agree ------------------------------------------------------------------------

coordinates = st.floats(0.0, 1.0, allow_nan=False, width=32)
polygons = st.lists(st.tuples(coordinates, coordinates), min_size=3, max_size=8)


@st.composite
def scenes(draw):
    """A zone, a frame and person boxes, many of them standing exactly on the zone's edges,
    vertices and the frame's border (where two implementations disagree first)."""
    polygon = draw(polygons)
    width = draw(st.integers(32, 4096))
    height = draw(st.integers(32, 4096))
    boxes = []
    for _ in range(draw(st.integers(1, 12))):
        kind = draw(st.sampled_from(["anywhere", "on_edge", "on_vertex", "bottom"]))
        if kind == "anywhere":
            foot = (draw(coordinates), draw(coordinates))
        elif kind == "on_vertex":
            foot = draw(st.sampled_from(polygon))
        elif kind == "bottom":
            foot = (draw(coordinates), 1.0)
        else:
            i = draw(st.integers(0, len(polygon) - 1))
            (x1, y1), (x2, y2) = polygon[i], polygon[(i + 1) % len(polygon)]
            t = draw(st.floats(0, 1))
            foot = (x1 + t * (x2 - x1), y1 + t * (y2 - y1))
        half_width = draw(st.floats(0, 0.2)) * width
        box_height = draw(st.floats(0, 1)) * height
        cx, bottom = foot[0] * width, foot[1] * height
        box = (
            max(0.0, cx - half_width),
            max(0.0, bottom - box_height),
            min(float(width), cx + half_width),
            bottom,
        )
        boxes.append(box)
    return polygon, (width, height), boxes


def _cloud_persons_in_zone(polygon, frame_wh, detections: Detections) -> list[bool]:
    """What the processor decides, from the payload the device would send (through JSON)."""
    width, height = frame_wh
    payload = DetectionPayload(
        device_id="d1",
        camera_id="gate",
        model={"name": "ppe", "version": 1},
        captured_at=T0,
        frame={"width": width, "height": height},
        detections=detections.to_list(["person"]),
    )
    received = parse(DetectionPayload, payload.model_dump_json())
    rule = PpeViolationRule(zone="gate-area", min_confidence=0.0)
    zones = [ZoneSpec(name="gate-area", polygon=polygon)]
    kept = persons_in_scope(rule, received, zones)
    assert evaluate_ppe(rule, received, zones).value == len(kept)  # no helmets: all unprotected
    return [any(d is k for k in kept) for d in received.detections]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenes())
def test_the_device_and_the_rules_agree_on_who_stands_in_a_zone(scene):
    polygon, frame_wh, boxes = scene
    try:
        ZoneSpec(name="gate-area", polygon=polygon)
    except ValueError:
        assume(False)  # a polygon the control API refuses never reaches either side
    detections = Detections(
        np.array(boxes, np.float32),
        np.full(len(boxes), 0.9),
        np.zeros(len(boxes), int),
        class_names=["person"],
    )
    device = PolygonZone("gate-area", polygon, normalized=True).trigger(detections, frame_wh)

    cloud = _cloud_persons_in_zone(polygon, frame_wh, detections)

    assert device.tolist() == cloud
