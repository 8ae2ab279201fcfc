"""Timing exports on the edge runtime's detector (notebook 03's speed table)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge_app.detectors import load_detector
from kit.compile import ExportSpeed, measure_export_speed
from kit.demo_models import DEMO_DIR
from kit.synthetic import render_scene

SHELF_ONNX = DEMO_DIR / "shelf" / "model.onnx"


@pytest.fixture(scope="module")
def shelf_frame() -> np.ndarray:
    return render_scene("shelf", seed=7).image


def test_each_export_is_timed_in_order_and_counts_what_its_detector_finds(shelf_frame):
    exports = {"onnx": SHELF_ONNX, "onnx again": str(SHELF_ONNX)}

    speeds = measure_export_speed(exports, shelf_frame, runs=3, warmup=0)

    assert [s.format for s in speeds] == ["onnx", "onnx again"]
    expected_objects = len(load_detector(SHELF_ONNX).detect(shelf_frame, conf=0.4))
    assert expected_objects > 0
    for speed in speeds:
        assert isinstance(speed, ExportSpeed) and speed.model == Path(SHELF_ONNX)
        assert speed.runs == 3 and 0 < speed.fastest_ms <= speed.median_ms
        assert speed.objects == expected_objects
    assert list(speeds[0].as_row()) == ["format", "median ms", "fastest ms", "runs", "objects"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"runs": 0}, "runs must be an integer of at least 1, got 0"),
        ({"runs": True}, "runs must be an integer of at least 1, got True"),
        ({"warmup": -1}, "warmup must be an integer of at least 0, got -1"),
    ],
)
def test_bad_run_counts_are_refused_naming_the_value(shelf_frame, options, message):
    with pytest.raises(ValueError, match=message):
        measure_export_speed({"onnx": SHELF_ONNX}, shelf_frame, **options)


def test_a_frame_that_is_not_a_bgr_image_is_refused(shelf_frame):
    with pytest.raises(ValueError, match=r"shape \(H, W, 3\), got \(480, 640\)"):
        measure_export_speed({"onnx": SHELF_ONNX}, np.zeros((480, 640), np.uint8))
    with pytest.raises(FileNotFoundError):
        measure_export_speed({"onnx": SHELF_ONNX.with_name("missing.onnx")}, shelf_frame, runs=1)
