"""A model exported with dynamic height and width is inferred at each frame's own aspect ratio
(padded to the stride only), as ultralytics' rectangular inference does: a 640x480 camera at
imgsz 320 runs a 320x256 input, a fifth less inference than 320x320."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edge_app.detectors import load_detector
from edge_app.detectors.processing import LetterboxInfo, rect_input_hw
from tests.edge_app.vision.test_vision_detector import assert_same_detections


def ultralytics_rect_letterbox(frame: np.ndarray, imgsz: int, stride: int = 32) -> np.ndarray:
    from kit.offline import configure_ultralytics

    configure_ultralytics()
    from ultralytics.data.augment import LetterBox

    return LetterBox((imgsz, imgsz), auto=True, stride=stride)(image=frame)


@pytest.mark.parametrize(
    "frame_hw", [(480, 640), (1080, 1920), (301, 517), (403, 97), (160, 150), (64, 64), (1, 900)]
)
def test_the_rectangular_input_and_placement_are_ultralytics(frame_hw):
    frame = np.random.default_rng(0).integers(0, 255, (*frame_hw, 3), dtype=np.uint8)
    expected = ultralytics_rect_letterbox(frame, 320)
    input_hw = rect_input_hw(frame_hw, (320, 320), 32)
    assert input_hw == expected.shape[:2]
    info = LetterboxInfo.compute(frame_hw, input_hw, fit_hw=(320, 320))
    placed = np.full_like(expected, 114)
    resized = cv2.resize(frame, info.resized_hw[::-1], interpolation=cv2.INTER_LINEAR)
    placed[
        info.pad_top : info.pad_top + info.resized_hw[0],
        info.pad_left : info.pad_left + info.resized_hw[1],
    ] = resized
    np.testing.assert_array_equal(placed, expected)


def test_rectangular_sizes_are_refused_for_an_empty_frame():
    with pytest.raises(ValueError, match="positive"):
        rect_input_hw((0, 640), (320, 320), 32)


@pytest.fixture(scope="module")
def dynamic_openvino(trained_model):
    pytest.importorskip("openvino", reason="openvino is not installed: OpenVINO backend untested")
    return trained_model.export(
        "dynamic_openvino", format="openvino", imgsz=trained_model.imgsz, dynamic=True
    )


@pytest.fixture(scope="module", params=["onnx", "openvino"])
def dynamic_export(request, trained_model):
    if request.param == "openvino":
        return request.getfixturevalue("dynamic_openvino")
    return trained_model.export(
        "dynamic_onnx", format="onnx", imgsz=trained_model.imgsz, dynamic=True
    )


@pytest.fixture
def openvino_in_f32(monkeypatch):
    """Every OpenVINO model compiled for the CPU computes in f32, ultralytics' too.

    On a CPU with AMX or AVX512-BF16, OpenVINO computes an FP32 model in bf16 by default, and
    ultralytics compiles a dynamic model with dynamic shapes where our backend compiles each
    input size: different bf16 kernels round differently (confidences apart by more than 1e-3).
    Parity with ultralytics is about letterbox, decoding and NMS: compared in f32 on both sides.
    """
    import openvino

    compile_model = openvino.Core.compile_model

    def in_f32(self, model, device_name=None, config=None, **kwargs):
        if device_name in (None, "CPU"):
            config = {**(config or {}), "INFERENCE_PRECISION_HINT": "f32"}
        return compile_model(self, model, device_name, config, **kwargs)

    monkeypatch.setattr(openvino.Core, "compile_model", in_f32)


def test_a_dynamic_export_runs_each_frame_at_its_aspect_and_matches_ultralytics(
    trained_model, dynamic_export, yolo, request
):
    """GIVEN a dynamic export, WHEN frames of several sizes go through the detector's stages
    with one reused buffer, THEN each input is ultralytics' rectangular letterbox of the frame,
    and the detections are ultralytics predict's on the same export (which infers it
    rectangularly too)."""
    if dynamic_export.is_dir():  # OpenVINO: both in f32 (see openvino_in_f32)
        request.getfixturevalue("openvino_in_f32")
    detector = load_detector(dynamic_export)
    if dynamic_export.is_dir():
        assert detector.backend.precision in (None, "f32")
    assert detector.rectangular
    model = yolo(str(dynamic_export), task="detect")
    buffer = detector.new_input_buffer()
    ours, theirs = [], []
    for frame in trained_model.frames:
        tensor, info = detector.preprocess(frame, out=buffer)
        expected = ultralytics_rect_letterbox(frame, trained_model.imgsz)
        assert tensor.shape == (1, 3, *expected.shape[:2])
        np.testing.assert_array_equal(
            np.rint(tensor[0].transpose(1, 2, 0)[..., ::-1] * 255).astype(np.uint8), expected
        )
        buffer = tensor
        ours.append(detector.postprocess(detector.submit(tensor).result(), info, iou=0.7))
        result = model.predict(frame, imgsz=trained_model.imgsz, verbose=False, iou=0.7)[0]
        theirs.append(type(ours[-1]).from_ultralytics(result))
    assert_same_detections(ours, theirs)


def test_a_static_export_keeps_its_square_input(trained_model):
    detector = load_detector(trained_model.onnx)
    assert not detector.rectangular
    tensor, _ = detector.preprocess(trained_model.frames[-1])  # 640x480
    assert tensor.shape[2:] == (trained_model.imgsz, trained_model.imgsz)
    assert detector.input_hw((480, 640)) == (trained_model.imgsz, trained_model.imgsz)


def test_openvino_keeps_a_bounded_set_of_compiled_input_sizes(trained_model, dynamic_openvino):
    """GIVEN a dynamic OpenVINO model, WHEN more input sizes than it keeps compiled come in,
    THEN every one is inferred (its output has that size's anchors) and at most
    MAX_INPUT_SHAPES stay compiled, the most recent ones. (ONNX Runtime runs any size in one
    session: nothing is compiled per size there.)"""
    from edge_app.detectors.openvino_backend import MAX_INPUT_SHAPES

    detector = load_detector(dynamic_openvino)
    sizes = [(32 * (1 + i % 5), 32 * (1 + i // 5)) for i in range(MAX_INPUT_SHAPES + 3)]
    for height, width in sizes:
        raw = detector.infer(np.zeros((1, 3, height, width), np.float32))
        anchors = sum((height // s) * (width // s) for s in (8, 16, 32))
        assert raw.shape == (1, 4 + len(trained_model.class_names), anchors)
    kept = detector.backend.input_shapes
    assert kept == sizes[-MAX_INPUT_SHAPES:]
