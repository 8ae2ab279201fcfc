"""The vision core runs a model end to end without torch, ultralytics or other heavy packages."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("torch", "torchvision", "ultralytics", "scipy", "matplotlib", "supervision", "trackers")

SCRIPT = """
import json, sys
import numpy as np
import edge_app.detections, edge_app.detectors, edge_app.tracking, edge_app.zones, edge_app.annotate
from edge_app.annotate import annotate, blur_classes, encode_jpeg
from edge_app.detectors import load_detector
from edge_app.tracking import ByteTracker
from edge_app.zones import LineCounter, PolygonZone

frame = np.random.default_rng(0).integers(0, 255, (240, 320, 3), dtype=np.uint8)
for path in sys.argv[1:]:
    detector = load_detector(path)
    detections = ByteTracker().update(detector.detect(frame, conf=0.01))
    PolygonZone("z", [(0, 0), (1, 0), (1, 1)]).trigger(detections, (320, 240))
    LineCounter("l", (0, 0.5), (1, 0.5)).trigger(detections, (320, 240))
    encode_jpeg(blur_classes(annotate(frame, detections), detections, classes=["box"]))
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules} & set(json.loads(sys.stdin.read())))))
"""


def test_detecting_tracking_and_drawing_import_nothing_heavy(trained_model, request):
    models = [str(trained_model.onnx)]
    with contextlib.suppress(pytest.skip.Exception):  # without openvino: ONNX Runtime alone
        models.append(str(request.getfixturevalue("openvino_model")))
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, *models],
        input=json.dumps(HEAVY),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[3],
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []
