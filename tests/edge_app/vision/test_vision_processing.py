"""Letterbox, input tensor, NMS and output decoding against ultralytics' and torchvision's own code."""

from __future__ import annotations

import numpy as np
import pytest

from edge_app.detectors.processing import (
    MAX_WH,
    LetterboxInfo,
    batched_nms,
    decode_end2end_output,
    decode_yolo_output,
    frame_to_tensor,
    letterbox,
    non_max_suppression,
)

FRAME_SHAPES = [(480, 640), (240, 320), (301, 517), (403, 97), (1080, 1920), (100, 100), (7, 900)]
INPUT_SIZES = [(160, 160), (320, 320), (640, 640), (384, 640)]


def random_frame(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def random_boxes(rng: np.random.Generator, count: int, size: float = 100.0) -> np.ndarray:
    xy = rng.uniform(0, size, (count, 2))
    wh = rng.uniform(1, size / 3, (count, 2))
    return np.concatenate((xy, xy + wh), axis=1).astype(np.float32)


@pytest.mark.parametrize("frame_hw", FRAME_SHAPES)
@pytest.mark.parametrize("input_hw", INPUT_SIZES)
def test_letterbox_matches_ultralytics(frame_hw, input_hw):
    from ultralytics.data.augment import LetterBox

    frame = random_frame(*frame_hw)
    expected = LetterBox(new_shape=input_hw, auto=False, stride=32)(image=frame)
    image, info = letterbox(frame, input_hw)
    assert image.shape == expected.shape
    np.testing.assert_array_equal(image, expected)
    assert info.input_hw == input_hw
    assert (info.pad_top, info.pad_bottom) == (
        info.pad_top,
        input_hw[0] - info.resized_hw[0] - info.pad_top,
    )


@pytest.mark.parametrize("frame_hw", FRAME_SHAPES)
def test_input_tensor_matches_ultralytics_preprocessing(frame_hw):
    import torch
    from ultralytics.data.augment import LetterBox

    frame = random_frame(*frame_hw, seed=1)
    padded = LetterBox(new_shape=(320, 320), auto=False)(image=frame)
    # ultralytics' predictor: HWC BGR uint8 -> BCHW RGB float32 / 255
    expected = torch.from_numpy(padded).unsqueeze(0).permute(0, 3, 1, 2).flip(1).float() / 255
    tensor, _ = frame_to_tensor(frame, (320, 320))
    np.testing.assert_array_equal(tensor, expected.numpy())


def test_input_tensor_reuses_the_buffer_and_refills_padding():
    out = np.full((1, 3, 320, 320), -1.0, np.float32)
    tensor, info = frame_to_tensor(random_frame(480, 640), (320, 320), out=out)
    assert tensor is out
    assert info.pad_top == 40 and info.pad_left == 0
    np.testing.assert_array_equal(out[0, :, :40], np.float32(114 / 255))
    # A frame of another shape in the same buffer: stale pixels must not survive in the padding.
    frame_to_tensor(random_frame(400, 100), (320, 320), out=out)
    assert (out[0, :, :, :100] == np.float32(114 / 255)).all()
    assert out.min() >= 0


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (np.zeros((10, 10), np.uint8), "shape"),
        (np.zeros((10, 10, 4), np.uint8), "shape"),
        (np.zeros((10, 10, 3), np.float32), "uint8"),
    ],
)
def test_input_tensor_rejects_frames_that_are_not_bgr_uint8(frame, message):
    with pytest.raises(ValueError, match=message):
        frame_to_tensor(frame, (160, 160))


def test_input_tensor_rejects_a_buffer_of_the_wrong_shape():
    with pytest.raises(ValueError, match=r"\(1, 3, 160, 160\)"):
        frame_to_tensor(random_frame(10, 10), (160, 160), out=np.empty((1, 3, 32, 32), np.float32))


@pytest.mark.parametrize("frame_hw", FRAME_SHAPES)
def test_boxes_map_back_like_ultralytics_scale_boxes(frame_hw):
    import torch
    from ultralytics.utils.ops import scale_boxes

    rng = np.random.default_rng(2)
    boxes = random_boxes(rng, 50, size=320)
    expected = scale_boxes((320, 320), torch.from_numpy(boxes.copy()), frame_hw).numpy()
    info = LetterboxInfo.compute(frame_hw, (320, 320))
    np.testing.assert_allclose(info.boxes_to_frame(boxes.copy()), expected, rtol=1e-6, atol=1e-3)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("iou_threshold", [0.3, 0.5, 0.7])
def test_nms_matches_torchvision(seed, iou_threshold):
    import torch
    import torchvision

    rng = np.random.default_rng(seed)
    boxes = random_boxes(rng, 300)
    scores = rng.random(300).astype(np.float32)
    expected = torchvision.ops.nms(torch.from_numpy(boxes), torch.from_numpy(scores), iou_threshold)
    np.testing.assert_array_equal(
        non_max_suppression(boxes, scores, iou_threshold), expected.numpy()
    )


@pytest.mark.parametrize("seed", range(5))
def test_class_aware_nms_matches_torchvision_batched_nms(seed):
    import torch
    import torchvision

    rng = np.random.default_rng(seed)
    boxes = random_boxes(rng, 400, size=200)
    scores = rng.random(400).astype(np.float32)
    class_ids = rng.integers(0, 4, 400)
    expected = torchvision.ops.batched_nms(
        torch.from_numpy(boxes), torch.from_numpy(scores), torch.from_numpy(class_ids), 0.45
    )
    np.testing.assert_array_equal(batched_nms(boxes, scores, class_ids, 0.45), expected.numpy())


def test_nms_of_nothing_is_nothing():
    assert non_max_suppression(np.empty((0, 4)), np.empty(0), 0.5).tolist() == []


def test_nms_takes_every_score_and_breaks_ties_in_input_order():
    same = np.array([[0, 0, 10, 10]] * 3, np.float32)
    far = np.array([[100, 100, 110, 110]], np.float32)
    boxes = np.concatenate([same, far])

    # zero and negative scores take part; the best of the three identical boxes wins
    assert non_max_suppression(boxes, np.array([-1.0, 0.0, -0.5, -3.0]), 0.5).tolist() == [1, 3]
    # equal scores: the first in input order wins, kept boxes come out best first
    assert non_max_suppression(boxes, np.array([0.4, 0.4, 0.4, 0.9]), 0.5).tolist() == [3, 0]
    with pytest.raises(ValueError, match="3 boxes but 2 scores"):
        non_max_suppression(same, np.array([0.1, 0.2]), 0.5)


def test_boxes_of_different_classes_do_not_suppress_each_other():
    boxes = np.array([[0, 0, 50, 50]] * 3, np.float32)
    keep = batched_nms(boxes, np.array([0.9, 0.8, 0.7]), np.array([0, 1, 0]), 0.5)
    assert keep.tolist() == [0, 1]
    assert MAX_WH > 4096  # offsets must exceed any frame coordinate


def synthetic_head_output(rng: np.random.Generator, num_classes: int, anchors: int) -> np.ndarray:
    """A (1, 4 + nc, N) output with clustered boxes, so that NMS has work to do."""
    centers = rng.uniform(20, 300, (anchors // 20, 2)).repeat(20, axis=0)
    cxcy = centers + rng.normal(0, 3, centers.shape)
    wh = rng.uniform(10, 60, (anchors // 20, 2)).repeat(20, axis=0) + rng.normal(
        0, 2, centers.shape
    )
    scores = rng.random((anchors, num_classes)) ** 6  # most low, some high
    return np.concatenate((cxcy, wh, scores), axis=1).T[None].astype(np.float32)


@pytest.mark.parametrize("classes", [None, [1], [0, 2]])
@pytest.mark.parametrize("num_classes", [1, 3, 80])
def test_decode_matches_ultralytics_non_max_suppression(num_classes, classes):
    import torch
    from ultralytics.utils.nms import non_max_suppression as ultralytics_nms

    output = synthetic_head_output(np.random.default_rng(num_classes), num_classes, 2100)
    if classes is not None and max(classes) >= num_classes:
        classes = [0]
    expected = ultralytics_nms(
        torch.from_numpy(output), conf_thres=0.25, iou_thres=0.45, classes=classes, max_det=300
    )[0].numpy()
    decoded = decode_yolo_output(
        output, num_classes, 0.25, 0.45, None if classes is None else np.array(classes)
    )
    assert len(decoded.xyxy) == len(expected) > 0
    np.testing.assert_allclose(decoded.xyxy, expected[:, :4], rtol=1e-6, atol=1e-4)
    np.testing.assert_array_equal(decoded.confidence, expected[:, 4])
    np.testing.assert_array_equal(decoded.class_id, expected[:, 5].astype(int))


def test_decode_keeps_at_most_max_det_boxes():
    output = synthetic_head_output(np.random.default_rng(0), 3, 2000)
    decoded = decode_yolo_output(output, 3, 0.0, 1.0, max_det=7)
    assert len(decoded.xyxy) == 7
    assert np.all(np.diff(decoded.confidence) <= 0)


def test_decode_rejects_an_output_of_another_class_count():
    with pytest.raises(ValueError, match="4 \\+ 5 classes"):
        decode_yolo_output(np.zeros((1, 7, 100), np.float32), 5, 0.25, 0.45)


def test_decode_of_nms_free_output_matches_ultralytics():
    import torch
    from ultralytics.utils.nms import non_max_suppression as ultralytics_nms

    rng = np.random.default_rng(3)
    boxes = random_boxes(rng, 300, size=300)
    output = np.concatenate((boxes, rng.random((300, 1)), rng.integers(0, 3, (300, 1))), axis=1)[
        None
    ].astype(np.float32)
    expected = ultralytics_nms(
        torch.from_numpy(output), conf_thres=0.4, classes=[0, 2], end2end=True
    )[0].numpy()
    decoded = decode_end2end_output(output, 0.4, np.array([0, 2]))
    np.testing.assert_array_equal(decoded.xyxy, expected[:, :4])
    np.testing.assert_array_equal(decoded.confidence, expected[:, 4])
    np.testing.assert_array_equal(decoded.class_id, expected[:, 5].astype(int))
