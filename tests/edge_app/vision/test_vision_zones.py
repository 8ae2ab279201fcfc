"""Polygon zones and counting lines on scripted detections and tracks."""

from __future__ import annotations

import numpy as np
import pytest

from edge_app.detections import Detections
from edge_app.zones import LineCounter, PolygonZone

NAMES = {0: "fish", 1: "bottle", 2: "person"}
FRAME_WH = (640, 480)


def detections_at(anchors_xy, classes=None, track_ids=None, size=(20, 40)) -> Detections:
    """Boxes whose bottom centre is at each point."""
    anchors = np.asarray(anchors_xy, np.float32).reshape(-1, 2)
    w, h = size
    boxes = np.stack(
        (anchors[:, 0] - w / 2, anchors[:, 1] - h, anchors[:, 0] + w / 2, anchors[:, 1]), axis=1
    )
    classes = np.zeros(len(anchors), int) if classes is None else np.asarray(classes)
    return Detections(
        boxes, np.full(len(anchors), 0.9), classes, tracker_id=track_ids, class_names=NAMES
    )


def test_zone_counts_objects_inside_per_class():
    zone = PolygonZone("tank", [(0, 0), (0.5, 0), (0.5, 1), (0, 1)])
    detections = detections_at(
        [(100, 100), (200, 300), (500, 100), (300, 200)], classes=[0, 0, 0, 1]
    )
    inside = zone.trigger(detections, frame_wh=FRAME_WH)
    assert inside.tolist() == [True, True, False, True]
    assert zone.current_count == 3
    assert zone.counts() == {"fish": 2, "bottle": 1}


def test_normalised_and_pixel_polygons_agree():
    detections = detections_at(np.random.default_rng(1).uniform(0, 480, (200, 2)))
    normalised = PolygonZone("a", [(0.1, 0.2), (0.6, 0.1), (0.8, 0.9), (0.2, 0.7)])
    pixels = PolygonZone("b", [(64, 96), (384, 48), (512, 432), (128, 336)])
    np.testing.assert_array_equal(
        normalised.trigger(detections, FRAME_WH), pixels.trigger(detections, FRAME_WH)
    )
    assert not pixels.normalized


def test_zone_classes_filter_and_zero_counts():
    zone = PolygonZone("shelf", [(0, 0), (1, 0), (1, 1), (0, 1)], classes=["bottle"])
    detections = detections_at([(100, 100), (200, 200)], classes=[0, 1])
    assert zone.trigger(detections, FRAME_WH).tolist() == [False, True]
    assert zone.counts() == {"bottle": 1}
    zone.trigger(detections[[0]], FRAME_WH)
    assert zone.counts() == {"bottle": 0}


def test_zone_anchor_decides_what_is_inside():
    # A tall box whose feet are below the zone but whose centre is inside it.
    zone_bottom = PolygonZone("upper", [(0, 0), (640, 0), (640, 200), (0, 200)], normalized=False)
    zone_center = PolygonZone(
        "upper", zone_bottom.polygon.tolist(), anchor="center", normalized=False
    )
    detections = detections_at([(320, 300)], size=(40, 300))
    assert zone_bottom.trigger(detections, FRAME_WH).tolist() == [False]
    assert zone_center.trigger(detections, FRAME_WH).tolist() == [True]


def test_zone_errors_are_clear():
    with pytest.raises(ValueError, match="at least 3"):
        PolygonZone("z", [(0, 0), (1, 1)])
    zone = PolygonZone("z", [(0, 0), (1, 0), (1, 1)])
    with pytest.raises(ValueError, match="frame_wh"):
        zone.trigger(detections_at([(1, 1)]))
    with pytest.raises(ValueError, match="unknown class name 'cat'"):
        PolygonZone("z", [(0, 0), (1, 0), (1, 1)], classes=["cat"]).trigger(
            detections_at([(1, 1)]), FRAME_WH
        )


def run_track(line: LineCounter, ys, track_id=1, x=320, class_id=0):
    """Feed one track's bottom-centre y positions; return (in, out) after each frame."""
    history = []
    for y in ys:
        line.trigger(detections_at([(x, y)], classes=[class_id], track_ids=[track_id]), FRAME_WH)
        history.append((line.in_count, line.out_count))
    return history


def test_crossing_down_counts_in_and_back_up_counts_out():
    line = LineCounter("door", start=(0, 0.5), end=(1, 0.5))  # y = 240, drawn left to right
    history = run_track(line, [100, 200, 230, 250, 300])
    assert history[-1] == (1, 0)
    assert history[2] == (0, 0) and history[3] == (1, 0)  # counted on the frame it crossed
    run_track(line, [250, 200, 150])
    assert (line.in_count, line.out_count) == (1, 1)


def test_a_track_counts_once_per_direction():
    line = LineCounter("door", start=(0, 0.5), end=(1, 0.5))
    run_track(line, [100, 300, 100, 300, 100, 300])  # back and forth three times
    assert (line.in_count, line.out_count) == (1, 1)


def test_jitter_at_the_line_is_not_counted():
    line = LineCounter("door", start=(0, 0.5), end=(1, 0.5), min_distance=3.0)
    rng = np.random.default_rng(0)
    run_track(line, 240 + rng.uniform(-2.5, 2.5, 200))  # never clearly on either side
    assert (line.in_count, line.out_count) == (0, 0)
    run_track(line, [100] + list(240 + rng.uniform(-2.5, 2.5, 50)) + [300], track_id=2)
    assert (line.in_count, line.out_count) == (1, 0)  # jitter on the way across: one crossing


def test_separate_tracks_count_separately_and_per_class():
    line = LineCounter("door", start=(0, 240), end=(640, 240))
    for ys in zip([100, 300], [120, 320], [350, 100], strict=True):  # three tracks, two frames
        detections = detections_at(
            [(100, ys[0]), (300, ys[1]), (500, ys[2])], classes=[0, 1, 0], track_ids=[1, 2, 3]
        )
        crossed_in, crossed_out = line.trigger(detections, FRAME_WH)
    assert crossed_in.tolist() == [True, True, False]
    assert crossed_out.tolist() == [False, False, True]
    assert (line.in_count, line.out_count) == (2, 1)
    assert line.counts() == {"in": {"fish": 1, "bottle": 1}, "out": {"fish": 1}}


def test_untracked_boxes_and_other_classes_are_ignored():
    line = LineCounter("door", start=(0, 240), end=(640, 240), classes=["fish"])
    for y in (100, 300):
        detections = detections_at([(100, y), (200, y)], classes=[0, 1], track_ids=[-1, 5])
        line.trigger(detections, FRAME_WH)
    assert (line.in_count, line.out_count) == (0, 0)
    assert line.counts() == {"in": {"fish": 0}, "out": {"fish": 0}}


def test_crossings_beyond_the_ends_of_the_segment_do_not_count():
    line = LineCounter("gate", start=(200, 240), end=(400, 240))
    run_track(line, [100, 300], x=500)
    assert (line.in_count, line.out_count) == (0, 0)
    run_track(line, [100, 300], x=300, track_id=2)
    assert (line.in_count, line.out_count) == (1, 0)


def test_a_diagonal_line_counts_by_side():
    line = LineCounter("diag", start=(0, 0), end=(640, 480))  # in = to the lower left
    run_track(line, [100, 400], x=300)  # from above-right of the diagonal to below-left
    assert (line.in_count, line.out_count) == (1, 0)


def test_forgotten_tracks_and_reset():
    line = LineCounter("door", start=(0, 240), end=(640, 240), forget_after=3)
    run_track(line, [100, 300])
    for _ in range(5):
        line.trigger(Detections.empty(), FRAME_WH)
    run_track(line, [100, 300])  # the same id after being forgotten counts again
    assert line.in_count == 2
    line.reset()
    assert (line.in_count, line.out_count, line.counts()) == (0, 0, {"in": {}, "out": {}})


def test_line_errors_are_clear():
    with pytest.raises(ValueError, match="two different points"):
        LineCounter("l", (0.5, 0.5), (0.5, 0.5))
    with pytest.raises(ValueError, match="frame_wh"):
        LineCounter("l", (0, 0.5), (1, 0.5)).trigger(detections_at([(1, 1)], track_ids=[1]))


def test_cached_pixel_geometry_follows_polygon_frame_and_line_changes():
    zone = PolygonZone("z", [(0, 0), (0.5, 0), (0.5, 1), (0, 1)])
    d = detections_at([(200, 100), (400, 100)])
    assert zone.trigger(d, frame_wh=(640, 480)).tolist() == [True, False]
    assert zone.trigger(d, frame_wh=(1000, 480)).tolist() == [True, True]  # other frame size
    zone.polygon[1:3, 0] = 0.25  # edited in place
    assert zone.trigger(d, frame_wh=(640, 480)).tolist() == [False, False]
    zone.polygon = np.array([(0, 0), (1, 0), (1, 1), (0, 1)], float)  # replaced
    assert zone.trigger(d, frame_wh=[640, 480]).tolist() == [True, True]  # not a tuple: no cache
    line = LineCounter("l", (0.5, 0), (0.5, 1))
    d = detections_at([(300, 100)], track_ids=[1])
    assert line.sides(d, (640, 480)).tolist() == [1]
    assert line.sides(d, (500, 480)).tolist() == [-1]
    line.points[:, 0] = 0.25
    assert line.sides(d, (640, 480)).tolist() == [-1]
    with pytest.raises(ValueError, match="frame_wh"):
        zone.trigger(d)
    with pytest.raises(ValueError, match="frame_wh"):
        line.sides(d)


def test_line_uses_the_first_box_of_a_repeated_id_and_forgets_the_oldest_tracks():
    line = LineCounter("door", start=(0, 240), end=(640, 240), forget_after=2)
    line.trigger(detections_at([(100, 100), (300, 300)], track_ids=[5, 6]), FRAME_WH)
    crossed_in, _ = line.trigger(
        detections_at([(300, 100), (100, 300), (120, 300)], track_ids=[6, 5, 5]), FRAME_WH
    )
    assert crossed_in.tolist() == [False, True, False] and line.in_count == 1
    for _ in range(3):  # track 5 is seen, track 6 is not
        line.trigger(detections_at([(100, 300)], track_ids=[5]), FRAME_WH)
    crossed_in, crossed_out = line.trigger(
        detections_at([(100, 100), (300, 300)], track_ids=[5, 6]), FRAME_WH
    )
    # 5 is remembered and crosses out; 6 was forgotten, so its return below is no crossing
    assert crossed_out.tolist() == [True, False] and crossed_in.tolist() == [False, False]
    assert line.counts() == {"in": {"fish": 1}, "out": {"fish": 2}}


def test_class_filters_match_numpy_isin():
    d = detections_at([(1, 1)] * 6, classes=[0, 1, 2, 1, 7, 0])
    zone = PolygonZone("z", [(0, 0), (10, 0), (10, 10), (0, 10)], classes=["bottle", 7])
    expected = np.isin(d.class_id, [1, 7])
    assert np.array_equal(zone.trigger(d), expected)
    assert zone.class_counts == {1: 2, 7: 1} and zone.current_count == 3
    assert (
        PolygonZone("z", [(0, 0), (10, 0), (10, 10)], classes=[]).trigger(d).tolist() == [False] * 6
    )
