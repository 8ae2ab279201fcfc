"""The shipped demo models: small, accurate as recorded, and they find their classes in the
scenario videos when run by the edge runtime (not by ultralytics)."""

from __future__ import annotations

import pytest

from edge_app.detectors import load_detector
from kit.core.contracts import CameraSettings
from kit.demo import CAMERAS
from kit.demo_models import DEMO_DIR, RECIPES, demo_metadata, demo_model_files, register_demo_models
from kit.registry import ModelRegistry, sha256_of
from kit.synthetic import scenario_frames

SCENARIOS = {"shelf": "bottles_removed", "fish": "fish_arriving", "ppe": "helmet_off"}


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_shipped_files_match_their_metadata(name):
    metadata = demo_metadata(name)
    files = demo_model_files(name)
    for fmt, path in files.items():
        assert metadata.formats[fmt].sha256 == sha256_of(path)
    assert files["onnx"].stat().st_size <= 15 * 1024 * 1024
    assert metadata.metrics["mAP50"] >= 0.9
    assert f"--only {name}" in metadata.description


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_edge_runtime_detects_the_classes_in_the_scenario_video(name):
    detector = load_detector(DEMO_DIR / name / "model.onnx")
    [camera] = [c for c in CAMERAS if c.model == name]
    # as the demo's camera runs it (its zones are added when the demo configures it)
    iou = camera.overrides.get("iou", CameraSettings().iou)
    assert list(detector.class_names.values()) == demo_metadata(name).classes
    matched = truths = found = 0
    for frame, truth in scenario_frames(
        SCENARIOS[name], seconds=4, fps=3, size=(640, 480), seed=11
    ):
        counts = detector.detect(frame, conf=0.25, iou=iou).counts()
        for class_name, number in truth.counts.items():
            matched += min(counts.get(class_name, 0), number)
            truths += number
        found += sum(counts.values())
    # objects entering at the frame's edge count in the truth while barely visible: recall 0.8
    assert matched >= 0.8 * truths, f"{name}: found {matched} of {truths} objects"
    assert matched >= 0.8 * found, f"{name}: {found - matched} of {found} detections are extra"


def test_registering_the_demo_models_is_idempotent(backend_settings):
    first = register_demo_models(backend_settings)
    again = register_demo_models(backend_settings)
    assert {n: m.version for n, m in first.items()} == {n: m.version for n, m in again.items()}
    registry = ModelRegistry.from_settings(backend_settings)
    assert registry.get("shelf:production").classes == ["bottle"]
    assert registry.versions("ppe") == [first["ppe"].version]
