"""NMS defaults are ultralytics predict's (IoU 0.7, 300 boxes); IoU and max detections are
per-camera control settings that the pipeline applies."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from edge_app.detectors import load_detector
from edge_app.pipeline import CameraProcessor
from edge_app.sources import Frame
from kit.core.contracts import CameraSettings, ModelRef


@pytest.fixture(scope="module")
def detector(trained_model):
    return load_detector(trained_model.onnx)


def test_defaults_give_what_ultralytics_predict_gives_with_its_defaults(
    yolo, trained_model, detector
):
    """No iou passed on either side: the same boxes (ultralytics' predict default is 0.7)."""
    model = yolo(str(trained_model.onnx), task="detect")
    theirs = [
        model.predict(frame, imgsz=trained_model.imgsz, verbose=False)[0].boxes
        for frame in trained_model.frames
    ]
    ours = [detector.detect(frame) for frame in trained_model.frames]

    assert sum(len(b) for b in theirs) >= 20, "the test model finds too few boxes to compare"
    assert [len(d) for d in ours] == [len(b) for b in theirs]
    assert CameraSettings().iou == 0.7 and CameraSettings().max_detections == 300


def test_a_lower_iou_merges_more_and_max_det_keeps_the_most_confident(trained_model, detector):
    # the frame with the most boxes: how many each has depends on the tiny model's training run,
    # which differs from CPU to CPU (its kernels round differently)
    frame = max(trained_model.frames, key=lambda image: len(detector.detect(image, conf=0.01)))
    loose = detector.detect(frame, conf=0.01, iou=0.95)
    strict = detector.detect(frame, conf=0.01, iou=0.1)
    every = detector.detect(frame, conf=0.01)
    top = detector.detect(frame, conf=0.01, max_det=1)

    assert len(strict) < len(loose)
    assert len(every) >= 2 and len(top) == 1
    assert np.isclose(top.confidence[0], every.confidence.max(), atol=1e-6)
    with pytest.raises(ValueError, match="max_det must be 1 or more"):
        detector.detect(frame, max_det=0)


def test_the_pipeline_applies_the_camera_s_iou_and_max_detections(trained_model, detector):
    frames = [
        Frame(image, index, datetime(2026, 1, 31, 12, 0, index, tzinfo=UTC), "cam-1")
        for index, image in enumerate(trained_model.frames)
    ]
    processor = CameraProcessor("cam-1", detector, ModelRef(name="shapes", version=1))
    found = [len(processor.process(frame).detections) for frame in frames]
    assert max(found) >= 2, "the test frames need several boxes each"

    processor.configure(CameraSettings(max_detections=1))
    limited = [len(processor.process(frame).detections) for frame in frames]

    assert max(limited) == 1
    with pytest.raises(ValueError, match="less than or equal to 1"):
        CameraSettings(iou=1.5)
