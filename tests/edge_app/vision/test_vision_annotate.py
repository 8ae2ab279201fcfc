"""Annotation, privacy blurring, crops and JPEG encoding."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edge_app.annotate import annotate, blur_classes, crop, encode_jpeg
from edge_app.detections import Detections
from edge_app.zones import LineCounter, PolygonZone

NAMES = {0: "person", 1: "helmet", 2: "bottle"}


@pytest.fixture
def scene() -> np.ndarray:
    """A textured frame: blurring and drawing must visibly change it."""
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)


@pytest.fixture
def detections() -> Detections:
    return Detections(
        xyxy=np.array([[50, 60, 200, 400], [300, 50, 380, 120], [450, 300, 600, 470]], np.float32),
        confidence=np.array([0.91, 0.72, 0.55]),
        class_id=np.array([0, 1, 2]),
        tracker_id=np.array([4, -1, 9]),
        class_names=NAMES,
    )


def test_annotate_returns_a_new_frame_and_leaves_the_input_untouched(scene, detections):
    original = scene.copy()
    zone = PolygonZone("shelf", [(0.6, 0.5), (1, 0.5), (1, 1), (0.6, 1)])
    zone.trigger(detections, frame_wh=(640, 480))
    line = LineCounter("door", (0, 0.5), (1, 0.5))
    out = annotate(scene, detections, zones=[zone], lines=[line], camera="cam-1", model="ppe:3")
    np.testing.assert_array_equal(scene, original)
    assert out.shape == scene.shape and out.dtype == scene.dtype
    changed = (out != scene).any(axis=2)
    assert changed[:40].mean() > 0.5  # the header band
    assert changed[60:400, 50].all()  # the person's box outline
    assert changed[400:470, 400:640].mean() > 0.5  # the translucent zone
    assert changed[238:242, 0:640].mean() > 0.5  # the counting line


def test_annotate_without_detections_or_header(scene):
    out = annotate(scene, Detections.empty(NAMES), header=False)
    np.testing.assert_array_equal(out, scene)


def test_header_lists_counts_for_all_classes(scene, detections):
    # The header's text is drawn; check that it differs with the counts shown.
    one = annotate(scene, detections[[0]])
    two = annotate(scene, detections[[0, 0]])
    assert (one[:40] != two[:40]).any()


@pytest.mark.parametrize("method", ["gaussian", "pixelate"])
def test_blur_changes_only_the_person_boxes(scene, detections, method):
    out = blur_classes(scene, detections, NAMES, classes=("person",), method=method)
    person = (slice(60, 400), slice(50, 200))
    assert (out[person] != scene[person]).mean() > 0.9
    mask = np.ones(scene.shape[:2], bool)
    mask[person] = False
    np.testing.assert_array_equal(out[mask], scene[mask])
    # blurred means smooth: much less high-frequency energy than the noise it replaced
    assert (
        np.abs(np.diff(out[person].astype(int), axis=1)).mean()
        < 0.3 * np.abs(np.diff(scene[person].astype(int), axis=1)).mean()
    )


def test_blur_copies_unless_asked_to_work_in_place(scene, detections):
    original = scene.copy()
    blur_classes(scene, detections, NAMES)
    np.testing.assert_array_equal(scene, original)
    returned = blur_classes(scene, detections, NAMES, inplace=True)
    assert returned is scene and (scene != original).any()


def test_blur_skips_class_names_the_model_does_not_have(scene, detections):
    out = blur_classes(scene, detections, {0: "fish", 1: "bottle", 2: "crate"}, classes=("person",))
    np.testing.assert_array_equal(out, scene)


def test_blur_handles_boxes_at_the_border_and_tiny_boxes(scene):
    detections = Detections(
        np.array([[-20, -20, 30, 30], [600, 440, 700, 500], [100, 100, 101, 101], [5, 5, 5, 9]]),
        np.ones(4),
        np.zeros(4),
    )
    out = blur_classes(scene, detections, NAMES, method="pixelate")
    assert out.shape == scene.shape
    assert (out[:30, :30] != scene[:30, :30]).any()


def test_blur_refuses_unknown_methods(scene, detections):
    with pytest.raises(ValueError, match="unknown blur method 'mosaic'"):
        blur_classes(scene, detections, NAMES, method="mosaic")


def test_crop_returns_padded_copies_clipped_to_the_frame(scene, detections):
    crops = crop(scene, detections, classes=["person", "bottle"], pad=20)
    assert [c.shape for c in crops] == [(380, 190, 3), (200, 190, 3)]  # the bottle is clipped
    np.testing.assert_array_equal(crops[0], scene[40:420, 30:220])
    crops[0][:] = 0
    assert scene[40:420, 30:220].any()  # a copy, not a view
    assert len(crop(scene, detections)) == 3
    with pytest.raises(ValueError, match="pad"):
        crop(scene, detections, pad=-1)


def test_encode_jpeg_round_trips(scene):
    data = encode_jpeg(scene, quality=90)
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == scene.shape
    smooth = cv2.GaussianBlur(scene, (0, 0), 5)
    assert (
        np.abs(
            cv2.imdecode(np.frombuffer(encode_jpeg(smooth), np.uint8), 1).astype(int) - smooth
        ).mean()
        < 3
    )
    assert len(encode_jpeg(scene, quality=20)) < len(data)
    with pytest.raises(ValueError, match="between 1 and 100"):
        encode_jpeg(scene, quality=0)
