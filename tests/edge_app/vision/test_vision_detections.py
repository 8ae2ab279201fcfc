"""The `Detections` value type."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from edge_app.detections import Detections, anchor_points, box_iou, tally

NAMES = {0: "fish", 1: "bottle", 2: "person"}


@pytest.fixture
def detections() -> Detections:
    return Detections(
        xyxy=np.array([[0, 0, 10, 10], [5, 5, 25, 45], [100, 100, 150, 120], [1, 2, 3, 4]]),
        confidence=np.array([0.9, 0.4, 0.75, 0.2]),
        class_id=np.array([0, 1, 0, 2]),
        tracker_id=np.array([3, -1, 8, -1]),
        class_names=NAMES,
    )


def test_arrays_get_the_documented_dtypes(detections):
    assert detections.xyxy.dtype == np.float32 and detections.xyxy.shape == (4, 4)
    assert detections.confidence.dtype == np.float32
    assert detections.class_id.dtype == np.int64 and detections.tracker_id.dtype == np.int64
    untracked = Detections(np.zeros((2, 4)), np.ones(2), np.zeros(2))
    assert untracked.tracker_id.tolist() == [-1, -1]


def test_selection_by_mask_index_and_slice(detections):
    assert len(detections[detections.confidence > 0.5]) == 2
    assert detections[[2, 0]].tracker_id.tolist() == [8, 3]
    assert detections[1:3].class_id.tolist() == [1, 0]
    assert detections[2].xyxy.tolist() == [[100, 100, 150, 120]]
    assert detections[np.array([], dtype=int)].is_empty()
    assert detections[[0]].class_names is NAMES


def test_a_mask_of_the_wrong_length_is_an_error(detections):
    with pytest.raises(IndexError, match="3 entries for 4 detections"):
        detections[np.array([True, False, True])]


def test_mismatched_lengths_are_refused():
    with pytest.raises(ValueError, match="confidence has 1 entries but xyxy has 2 boxes"):
        Detections(np.zeros((2, 4)), np.ones(1), np.zeros(2))


def test_filter_by_confidence_and_classes(detections):
    assert detections.filter(min_confidence=0.5).confidence.tolist() == pytest.approx([0.9, 0.75])
    assert detections.filter(classes=["fish"]).class_id.tolist() == [0, 0]
    assert detections.filter(min_confidence=0.3, classes=[1, "person"]).class_id.tolist() == [1]
    with pytest.raises(ValueError, match="unknown class name 'cat'"):
        detections.filter(classes=["cat"])


def test_counts_list_every_class(detections):
    assert detections.counts() == {"fish": 2, "bottle": 1, "person": 1}
    assert Detections.empty(NAMES).counts() == {"fish": 0, "bottle": 0, "person": 0}
    assert detections.counts(["a", "b"]) == {"a": 2, "b": 1, "class_2": 1}


def test_to_list_has_the_payload_shape(detections):
    items = detections.to_list()
    assert items[0] == {
        "class_name": "fish",
        "class_id": 0,
        "confidence": 0.9,
        "box": {"x1": 0.0, "y1": 0.0, "x2": 10.0, "y2": 10.0},
        "track_id": 3,
    }
    assert items[1]["track_id"] is None
    assert all(type(v) is float for v in items[2]["box"].values())


def test_to_list_validates_against_the_detection_contract(detections):
    from kit.core.contracts.detection import Detection

    for item in detections.to_list():
        Detection.model_validate(item)


def test_anchors(detections):
    np.testing.assert_array_equal(detections.anchors("bottom_center")[1], [15, 45])
    np.testing.assert_array_equal(detections.anchors("center")[1], [15, 25])
    np.testing.assert_array_equal(detections.anchors("top_center")[1], [15, 5])
    with pytest.raises(ValueError):
        detections.anchors("somewhere")


def test_merge_and_area(detections):
    merged = Detections.merge([detections, detections[[0]]])
    assert len(merged) == 5 and merged.tracker_id.tolist()[-1] == 3
    assert detections.area.tolist()[:2] == [100, 800]
    assert Detections.merge([]).is_empty()


def test_from_ultralytics_is_duck_typed():
    boxes = SimpleNamespace(
        xyxy=np.array([[1, 2, 3, 4], [5, 6, 7, 8]], np.float32),
        conf=np.array([0.5, 0.6], np.float32),
        cls=np.array([1.0, 0.0], np.float32),
        id=np.array([7.0, 9.0], np.float32),
    )
    detections = Detections.from_ultralytics(SimpleNamespace(boxes=boxes, names={0: "a", 1: "b"}))
    assert detections.class_id.tolist() == [1, 0]
    assert detections.tracker_id.tolist() == [7, 9]
    assert detections.data["class_name"].tolist() == ["b", "a"]
    assert detections.counts() == {"a": 1, "b": 1}


def test_box_iou_matches_torchvision():
    import torch
    import torchvision

    rng = np.random.default_rng(0)
    a = np.concatenate([xy := rng.uniform(0, 100, (30, 2)), xy + rng.uniform(1, 40, (30, 2))], 1)
    b = np.concatenate([xy := rng.uniform(0, 100, (20, 2)), xy + rng.uniform(1, 40, (20, 2))], 1)
    expected = torchvision.ops.box_iou(torch.from_numpy(a), torch.from_numpy(b)).numpy()
    np.testing.assert_allclose(box_iou(a, b), expected, atol=1e-6)


@pytest.mark.parametrize(
    "index",
    [
        1,
        np.int64(-1),
        slice(1, None),
        slice(None, None, -2),
        np.array([True, False, True, True]),
        np.array([3, 0, 0]),
        np.array([], dtype=np.int64),
        np.array([2], dtype=np.uint8),
        [0, 2],
        [True, False, False, True],
    ],
)
def test_fast_selection_equals_the_checked_constructor(detections, index):
    """Selections skip the constructor's checks where they hold anyway: same result as with them."""
    detections.data["order"] = np.arange(4)
    fast = detections[index]
    plain = index if not isinstance(index, (int, np.integer)) else [int(index)]
    checked = Detections(
        xyxy=detections.xyxy[plain],
        confidence=detections.confidence[plain],
        class_id=detections.class_id[plain],
        tracker_id=detections.tracker_id[plain],
        class_names=detections.class_names,
        data={key: value[plain] for key, value in detections.data.items()},
    )
    for name in ("xyxy", "confidence", "class_id", "tracker_id"):
        got, want = getattr(fast, name), getattr(checked, name)
        assert got.dtype == want.dtype and got.shape == want.shape
        assert np.array_equal(got, want)
    assert fast.class_names is detections.class_names
    assert fast.data.keys() == checked.data.keys()
    assert np.array_equal(fast.data["order"], checked.data["order"])
    assert fast.data is not detections.data


def test_anchor_points_and_tally():
    xyxy = np.array([[1, 2, 4, 9], [0.5, 0.25, 0.75, 0.5]], np.float32)
    x1, y1, x2, y2 = xyxy.T
    expected = {
        "center": ((x1 + x2) / 2, (y1 + y2) / 2),
        "bottom_center": ((x1 + x2) / 2, y2),
        "top_center": ((x1 + x2) / 2, y1),
        "center_left": (x1, (y1 + y2) / 2),
        "center_right": (x2, (y1 + y2) / 2),
    }
    for position, (x, y) in expected.items():
        points = anchor_points(xyxy, position)
        assert points.dtype == np.float32
        assert np.array_equal(points, np.stack((x, y), axis=1))
    assert anchor_points(np.empty((0, 4), np.float32), "center").shape == (0, 2)
    with pytest.raises(ValueError):
        anchor_points(xyxy, "middle")
    values = np.array([5, 2, 5, 0, 2, 5])
    ids, numbers = np.unique(values, return_counts=True)
    assert list(tally(values).items()) == list(zip(ids.tolist(), numbers.tolist(), strict=True))
    assert tally(np.empty(0, np.int64)) == {}


def test_box_iou_handles_degenerate_boxes():
    boxes = np.array([[0, 0, 10, 10], [5, 5, 5, 5], [20, 0, 10, 10], [np.nan, 0, 1, 1]])
    iou = box_iou(boxes, boxes)
    assert iou.dtype == np.float64 and iou.shape == (4, 4)
    assert box_iou(boxes.astype(np.float32), boxes.astype(np.float32)).dtype == np.float32
    assert iou[0, 0] == 1 and np.all(iou[1:, 1:] == 0) and np.all(iou[0, 1:] == 0)
    assert box_iou(np.empty((0, 4)), boxes).shape == (0, 4)
