"""A tiny detector trained here (one epoch at 64 px), exported as a customer would bring it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.kit.ml.conftest import IMGSZ, make_shapes_dataset


@pytest.fixture(scope="session")
def shapes_data(tmp_path_factory) -> Path:
    return make_shapes_dataset(tmp_path_factory.mktemp("register-shapes"))


@pytest.fixture(scope="session")
def customer_model(shapes_data, tmp_path_factory):
    """``best.pt`` of a one-epoch run, and its ultralytics ONNX and OpenVINO exports."""
    from kit.compile import export_onnx, export_openvino
    from kit.train import train_local

    result = train_local(
        shapes_data,
        base="yolov8n.yaml",
        epochs=1,
        imgsz=IMGSZ,
        batch=8,
        plots=False,
        project_dir=tmp_path_factory.mktemp("register-runs"),
        progress=False,
    )
    folder = tmp_path_factory.mktemp("customer")
    weights = Path(shutil.copyfile(result.weights, folder / "customer.pt"))
    return {
        "pytorch": weights,
        # a customer's export as ultralytics makes it by default: fixed input size
        "onnx": export_onnx(weights, IMGSZ, dynamic=False),
        "openvino": export_openvino(weights, IMGSZ),
        "classes": result.classes,
    }
