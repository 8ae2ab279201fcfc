"""Registering a model a customer brings: what the file says about itself, refusals, exports."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import onnx
import pytest

from kit.registry import ModelFileError, ModelRegistry, inspect_model_file, register_model_file
from tests.kit.ml.conftest import IMGSZ, SHAPE_CLASSES


def kit(*args, env):
    return subprocess.run(
        [sys.executable, "-m", "kit.cli", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **env},
    )


@pytest.fixture
def registry(backend_settings, tmp_path) -> ModelRegistry:
    return ModelRegistry.from_settings(backend_settings, cache_dir=tmp_path / "cache")


@pytest.mark.parametrize("fmt", ["pytorch", "onnx", "openvino"])
def test_classes_input_size_task_and_stride_come_from_the_file(customer_model, fmt):
    info = inspect_model_file(customer_model[fmt])

    assert (info.format, info.classes, info.input_size) == (fmt, SHAPE_CLASSES, IMGSZ)
    assert (info.task, info.stride) == ("detect", 32)
    assert info.framework.startswith("ultralytics ")


def test_an_onnx_without_metadata_needs_classes_and_they_must_fit_its_output(
    customer_model, tmp_path
):
    model = onnx.load(str(customer_model["onnx"]))
    del model.metadata_props[:]
    bare = tmp_path / "bare.onnx"
    onnx.save(model, str(bare))

    with pytest.raises(ModelFileError, match=r"--classes a,b,c"):
        inspect_model_file(bare)
    with pytest.raises(ModelFileError, match="output has 6 channels per box"):
        inspect_model_file(bare, classes=["a", "b", "c"])
    info = inspect_model_file(bare, classes=["red", "blue"])
    assert (info.classes, info.input_size) == (["red", "blue"], IMGSZ)  # size from the input


@pytest.mark.parametrize(
    ("config", "kind"),
    [("yolov8n-seg.yaml", "a segmentation model"), ("yolov8n-cls.yaml", "a classification model")],
)
def test_a_model_that_is_not_a_detector_is_refused(tmp_path, config, kind):
    from ultralytics import YOLO

    weights = tmp_path / config.replace(".yaml", ".pt")
    YOLO(config).save(weights)

    with pytest.raises(ModelFileError, match=f"is {kind} .*not a detection model"):
        inspect_model_file(weights)


def test_register_a_pt_with_an_exported_onnx_alias_and_checksums(
    customer_model, shapes_data, registry
):
    meta = register_model_file(
        "customer",
        customer_model["pytorch"],
        alias="production",
        export=["onnx"],
        check=shapes_data,
        registry=registry,
    )

    assert (meta.version, meta.classes, meta.input_size) == (1, SHAPE_CLASSES, IMGSZ)
    assert set(meta.formats) == {"pytorch", "onnx"}
    weights_sha = hashlib.sha256(customer_model["pytorch"].read_bytes()).hexdigest()
    assert meta.formats["pytorch"].sha256 == weights_sha
    assert registry.get("customer:production") == meta
    onnx_file = registry.download("customer:production", "onnx")
    assert inspect_model_file(onnx_file).classes == SHAPE_CLASSES


def test_an_openvino_folder_registers_as_one_archive_and_export_needs_weights(
    customer_model, registry
):
    meta = register_model_file("customer-ov", customer_model["openvino"], registry=registry)
    assert list(meta.formats) == ["openvino"] and meta.classes == SHAPE_CLASSES
    unpacked = registry.download("customer-ov", "openvino")
    assert inspect_model_file(unpacked).classes == SHAPE_CLASSES

    with pytest.raises(ModelFileError, match="--export derives formats from PyTorch weights"):
        register_model_file("customer", customer_model["onnx"], export=["openvino"])
    assert registry.versions("customer") == []


def test_cli_registers_shows_and_refuses_in_one_line(
    customer_model, shapes_data, backend_settings, tmp_path
):
    from ultralytics import YOLO

    env = backend_settings.as_env()
    registered = kit(
        "models", "register", str(customer_model["onnx"]), "--name", "shapes",
        "--alias", "production", env=env,
    )  # fmt: skip
    assert registered.returncode == 0, registered.stderr
    assert "registered shapes:1" in registered.stdout

    shown = kit("models", "show", "shapes:production", env=env)
    assert shown.returncode == 0, shown.stderr
    assert "shapes:1  (aliases: production)" in shown.stdout
    assert f"classes (2): {', '.join(SHAPE_CLASSES)}" in shown.stdout
    assert f"input size: {IMGSZ} px, stride 32" in shown.stdout
    assert "onnx: model.onnx (" in shown.stdout and "sha256 " in shown.stdout

    segmenter = tmp_path / "seg.pt"
    YOLO("yolov8n-seg.yaml").save(segmenter)
    refused = kit("models", "register", str(segmenter), "--name", "seg", env=env)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    [line] = refused.stderr.strip().splitlines()
    assert line.startswith("kit: error: ") and "a segmentation model" in line
    nameless = kit("models", "register", str(customer_model["onnx"]), env=env)
    assert nameless.returncode == 2 and "needs --name NAME" in nameless.stderr
