"""ByteTrack on scripted scenes: moving boxes, occlusions, low-confidence frames, classes."""

from __future__ import annotations

import hashlib
import time

import lap
import numpy as np
import pytest

from edge_app.detections import Detections
from edge_app.tracking import (
    _INFEASIBLE,
    ByteTracker,
    _add_to_diagonal,
    _assign,
    _xyah_to_xyxy,
    _xyxy_to_xyah,
)


def frame_of(boxes, classes, confidences=None, rng=None) -> Detections:
    """Detections of one frame, shuffled when ``rng`` is given (trackers must not rely on order)."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    confidences = np.full(len(boxes), 0.9) if confidences is None else np.asarray(confidences)
    classes = np.asarray(classes).reshape(-1)
    order = rng.permutation(len(boxes)) if rng is not None else np.arange(len(boxes))
    return Detections(boxes[order], confidences[order], classes[order], data={"object": order})


def moving_box(start_xy, velocity, frame, size=(40, 60), jitter=0.0, rng=None):
    x, y = np.asarray(start_xy, float) + frame * np.asarray(velocity, float)
    box = np.array([x, y, x + size[0], y + size[1]])
    if jitter and rng is not None:
        box += rng.normal(0, jitter, 4)
    return box


def ids_by_object(history: list[Detections]) -> dict[int, set[int]]:
    """For each scripted object (``data["object"]``), the tracker ids it received."""
    seen: dict[int, set[int]] = {}
    for detections in history:
        for obj, track_id in zip(detections.data["object"], detections.tracker_id, strict=True):
            seen.setdefault(int(obj), set()).add(int(track_id))
    return seen


def test_ids_stay_stable_for_moving_objects():
    rng = np.random.default_rng(0)
    tracker = ByteTracker()
    starts = [(10, 10), (300, 20), (150, 300), (400, 400)]
    velocities = [(6, 2), (-5, 4), (3, -4), (-2, -3)]
    history = []
    for frame in range(60):
        boxes = [
            moving_box(s, v, frame, jitter=1.5, rng=rng)
            for s, v in zip(starts, velocities, strict=True)
        ]
        history.append(tracker.update(frame_of(boxes, [0, 0, 0, 0], rng=rng)))
    # Confirmed on the second frame (minimum_consecutive_frames=2), then never changing.
    assert all((d.tracker_id == -1).all() for d in history[:1])
    ids = ids_by_object(history[1:])
    assert all(len(track_ids) == 1 for track_ids in ids.values()), ids
    assert len({next(iter(t)) for t in ids.values()}) == 4
    assert -1 not in set().union(*ids.values())


def test_output_keeps_the_input_order_and_marks_untracked_boxes():
    tracker = ByteTracker(minimum_consecutive_frames=1)
    first = tracker.update(
        frame_of(
            [[0, 0, 10, 10], [50, 50, 60, 60], [100, 100, 110, 110]], [0, 0, 0], [0.9, 0.05, 0.8]
        )
    )
    np.testing.assert_array_equal(first.xyxy[:, 0], [0, 50, 100])
    assert first.tracker_id[1] == -1  # below low_conf_det_threshold: ignored
    assert first.tracker_id[0] > 0 and first.tracker_id[2] > 0


def test_a_track_survives_an_occlusion_and_keeps_its_id():
    tracker = ByteTracker(lost_track_buffer=30)
    history = []
    for frame in range(40):
        if 15 <= frame < 25:  # hidden for 10 frames
            history.append(tracker.update(frame_of(np.empty((0, 4)), [])))
            continue
        history.append(tracker.update(frame_of([moving_box((0, 100), (5, 0), frame)], [0])))
    before, after = history[10].tracker_id[0], history[30].tracker_id[0]
    assert before == after > 0


def test_a_lost_track_is_dropped_after_the_buffer():
    tracker = ByteTracker(lost_track_buffer=5, minimum_consecutive_frames=1)
    first = tracker.update(frame_of([[0, 0, 50, 50]], [0])).tracker_id[0]
    for _ in range(7):
        tracker.update(frame_of(np.empty((0, 4)), []))
    assert tracker.track_count == 0
    assert tracker.update(frame_of([[0, 0, 50, 50]], [0])).tracker_id[0] != first


def test_low_confidence_detections_keep_a_track_but_do_not_start_one():
    tracker = ByteTracker(high_conf_det_threshold=0.5, track_activation_threshold=0.5)
    history = []
    for frame in range(20):
        confidence = 0.9 if frame < 5 else 0.2  # the object fades (occluded, blurred)
        boxes = [moving_box((0, 0), (4, 4), frame), moving_box((400, 0), (0, 5), frame)]
        # the second object is always weak: it must never get a track
        history.append(tracker.update(frame_of(boxes, [0, 0], [confidence, 0.2])))
    ids = ids_by_object(history[1:])
    assert len(ids[0]) == 1 and -1 not in ids[0]
    assert ids[1] == {-1}


def test_objects_of_different_classes_never_share_a_track():
    rng = np.random.default_rng(1)
    tracker = ByteTracker()
    history = []
    for frame in range(30):
        same_place = moving_box((100, 100), (3, 1), frame, jitter=1.0, rng=rng)
        # a fish and a bottle at the same place (e.g. a bottle in front of a tank)
        boxes = [same_place, same_place + rng.normal(0, 1.0, 4)]
        history.append(tracker.update(frame_of(boxes, [0, 1], rng=rng)))
    ids = ids_by_object(history[1:])
    assert len(ids[0]) == len(ids[1]) == 1
    assert ids[0] != ids[1]


def test_a_new_class_at_the_place_of_a_lost_object_gets_a_new_id():
    tracker = ByteTracker(minimum_consecutive_frames=1)
    fish = tracker.update(frame_of([[0, 0, 50, 50]], [0])).tracker_id[0]
    bottle = tracker.update(frame_of([[1, 1, 51, 51]], [1])).tracker_id[0]
    assert bottle != fish and bottle > 0


def test_crossing_objects_keep_their_ids():
    tracker = ByteTracker()
    history = []
    for frame in range(50):
        boxes = [moving_box((0, 100), (8, 0), frame), moving_box((400, 130), (-8, 0), frame)]
        history.append(tracker.update(frame_of(boxes, [0, 0])))
    ids = ids_by_object(history[1:])
    assert all(len(v) == 1 for v in ids.values()) and ids[0] != ids[1], ids


def test_reset_forgets_tracks_and_restarts_ids():
    tracker = ByteTracker(minimum_consecutive_frames=1)
    tracker.update(frame_of([[0, 0, 10, 10], [20, 20, 30, 30]], [0, 0]))
    tracker.reset()
    assert tracker.track_count == 0
    assert tracker.update(frame_of([[50, 50, 60, 60]], [0])).tracker_id.tolist() == [1]


def test_empty_frames_are_fine():
    tracker = ByteTracker()
    result = tracker.update(Detections.empty())
    assert len(result) == 0 and result.tracker_id.dtype == np.int64


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"track_activation_threshold": 1.5}, "track_activation_threshold"),
        ({"low_conf_det_threshold": 0.6, "high_conf_det_threshold": 0.5}, "must not exceed"),
        ({"minimum_consecutive_frames": 0}, "minimum_consecutive_frames"),
        ({"frame_rate": 0}, "frame_rate"),
    ],
)
def test_bad_settings_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        ByteTracker(**options)


def test_update_is_fast_enough_for_every_frame():
    rng = np.random.default_rng(2)
    tracker = ByteTracker()
    starts = rng.uniform(0, 1000, (30, 2))
    velocities = rng.uniform(-5, 5, (30, 2))
    durations = []
    for frame in range(60):
        boxes = [
            moving_box(s, v, frame, jitter=1.0, rng=rng)
            for s, v in zip(starts, velocities, strict=True)
        ]
        detections = frame_of(boxes, rng.integers(0, 1, 30), rng.uniform(0.05, 1.0, 30), rng=rng)
        start = time.perf_counter()
        tracker.update(detections)
        durations.append(time.perf_counter() - start)
    # ~0.3 ms on an idle 2-core machine; generous for a loaded CI runner
    assert np.median(durations) < 0.01


def busy_scene(frames=120, objects=24):
    """Objects on straight paths (exact float steps) that cross, vanish and come back."""
    k = np.arange(objects)
    start = np.stack((k * 37 % 600, k * 53 % 440), axis=1).astype(float)
    velocity = np.stack(((k % 7) - 3, (k % 5) - 2), axis=1) * 2.5
    size = np.stack((20 + k % 4 * 10, 30 + k % 3 * 15), axis=1).astype(float)
    levels = np.array([0.95, 0.8, 0.6, 0.35, 0.2, 0.12, 0.05])
    for t in range(frames):
        visible = (t + 3 * k) % 29 >= 4  # each object misses 4 frames out of 29
        visible &= ~((k % 6 == 0) & (t % 40 >= 25))  # some leave for 15 frames
        idx = np.flatnonzero(visible)[::-1]  # reversed: the tracker must not rely on order
        xy = (start[idx] + t * velocity[idx]) % 640
        boxes = np.concatenate((xy, xy + size[idx]), axis=1)
        yield Detections(boxes, levels[(t + idx) % len(levels)], idx % 3)


@pytest.mark.parametrize(
    ("options", "digest"),
    [
        ({"minimum_consecutive_frames": 1}, "93576dbe647f2bbe"),
        ({}, "a56d17bd36884d7c"),
        ({"minimum_consecutive_frames": 3, "lost_track_buffer": 10}, "e45aa9ff66ae9556"),
    ],
)
def test_ids_on_a_busy_scene_are_those_of_the_reference_implementation(options, digest):
    """Digests of every frame's ids from the straightforward implementation (before the fast
    paths: per-stage cost blocks, the assignment shortcut, the unchecked `Detections`)."""
    tracker = ByteTracker(**options)
    ids = [tracker.update(frame).tracker_id.tolist() for frame in busy_scene()]
    assert hashlib.sha256(repr(ids).encode()).hexdigest()[:16] == digest


def test_assignment_shortcut_agrees_with_the_solver():
    """`_assign` skips lapjv when the cheap pairs already form a matching: same pairs."""
    rng = np.random.default_rng(7)
    shortcuts = 0
    for trial in range(3000):
        rows, cols = rng.integers(1, 9, 2)
        cost = rng.choice(
            [0.05, 0.3, 0.79, 0.8, 0.8 + 1e-7, 0.81, 0.95, 1.0, _INFEASIBLE], (rows, cols)
        )
        cost = cost if trial % 3 else cost + rng.uniform(-0.01, 0.01, cost.shape)
        if trial % 5 == 0:  # mostly infeasible, the shape of real frames
            cost[rng.random(cost.shape) < 0.7] = _INFEASIBLE
        _, row_to_col, _ = lap.lapjv(cost, extend_cost=True, cost_limit=0.8)
        expected_rows = np.flatnonzero(row_to_col >= 0)
        got_rows, got_cols = _assign(cost, 0.8)
        assert np.array_equal(got_rows, expected_rows)
        assert np.array_equal(got_cols, row_to_col[expected_rows])
        cheap = cost < 0.8 - 1e-6
        clear = (cheap | (cost > 0.8 + 1e-6)).all()
        shortcuts += clear and cheap.sum(0).max() <= 1 and cheap.sum(1).max() <= 1
    assert shortcuts > 300  # the shortcut was taken, not only the solver
    assert [len(a) for a in _assign(np.empty((0, 3)), 0.8)] == [0, 0]


def test_kalman_helpers_give_the_numbers_of_the_plain_formulas():
    rng = np.random.default_rng(3)
    matrices = rng.normal(size=(5, 8, 8))
    values = rng.normal(size=(5, 8))
    diagonal = np.zeros_like(matrices)
    diagonal[:, np.arange(8), np.arange(8)] = values
    assert np.array_equal(_add_to_diagonal(matrices.copy(), values), matrices + diagonal)
    xyah = rng.uniform(1, 300, size=(6, 4))
    assert np.array_equal(_xyah_to_xyxy(xyah, np.float32), _xyah_to_xyxy(xyah).astype(np.float32))
    centre, half = xyah[:, :2], np.stack((xyah[:, 2] * xyah[:, 3] / 2, xyah[:, 3] / 2), axis=1)
    assert np.array_equal(_xyah_to_xyxy(xyah), np.concatenate((centre - half, centre + half), 1))
    xyxy = rng.uniform(0, 300, size=(6, 4)).astype(np.float32)
    w, h = xyxy[:, 2] - xyxy[:, 0], xyxy[:, 3] - xyxy[:, 1]
    plain = np.stack((xyxy[:, 0] + w / 2, xyxy[:, 1] + h / 2, w / np.maximum(h, 1e-6), h), 1)
    assert np.array_equal(_xyxy_to_xyah(xyxy), plain.astype(np.float64))
