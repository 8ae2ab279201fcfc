"""Fixtures for deployment tests: a local stack of their own (moto + the Lambda runner), a small
ONNX detector registered in it, a short scenario video, and the stand-in ``panoramasdk``."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from kit.core.settings import Settings, load_settings
from kit.local import LocalStack

REPO_ROOT = Path(__file__).resolve().parents[3]
FAKES_DIR = Path(__file__).resolve().parent / "fakes"
MODEL_IMGSZ = 160


@pytest.fixture(scope="session")
def neo_archive(onnx_model, tmp_path_factory) -> Path:
    """The Neo archive (TorchScript ``model.pth``) Panorama's model node takes, of the weights
    next to ``onnx_model``."""
    from kit.compile.neo import package_for_neo

    weights = onnx_model.with_suffix(".pt")
    output = tmp_path_factory.mktemp("neo") / "model.tar.gz"
    return package_for_neo(weights, 160, framework="PYTORCH", output=output)


@pytest.fixture(scope="session")
def onnx_model(tmp_path_factory) -> Path:
    """A YOLOv8n ONNX detector (from ``models/demo/`` if the repository ships one, else built
    from ``yolov8n.yaml`` — untrained: real graph, real metadata, no downloads — at 160 px)."""
    shipped = sorted((REPO_ROOT / "models" / "demo").glob("**/*.onnx"))
    if shipped:
        return shipped[0]
    from kit.offline import configure_ultralytics

    configure_ultralytics()
    from ultralytics import YOLO

    folder = tmp_path_factory.mktemp("deploy-model")
    here = Path.cwd()
    os.chdir(folder)  # a model built from yaml exports into the working directory
    try:
        exported = Path(
            YOLO("yolov8n.yaml").export(format="onnx", imgsz=MODEL_IMGSZ, simplify=False)
        )
    finally:
        os.chdir(here)
    target = folder / "tiny.onnx"
    shutil.move(folder / exported, target)
    return target


@pytest.fixture(scope="session")
def deploy_stack(tmp_path_factory) -> LocalStack:
    """The tests' own local stack with the runner: payloads reach the detections table."""
    settings = load_settings(
        state_dir=tmp_path_factory.mktemp("deploy-state"),
        local_port=0,
        api_port=0,
        prefix="evkdeploy",
    )
    stack = LocalStack(settings)
    stack.up(runner=True)
    yield stack
    from kit.deploy import local_devices

    for device in local_devices(settings):  # a failed test may have left its app running
        device.stop()
    stack.down(snapshot=False)


@pytest.fixture(scope="session")
def deploy_settings(deploy_stack) -> Settings:
    """Settings on the deploy stack (endpoint and control API pinned)."""
    status = deploy_stack.status()
    return deploy_stack.settings.model_copy(
        update={"endpoint_url": status.endpoint_url, "api_url": status.services["runner"]["url"]}
    )


@pytest.fixture(scope="session")
def registered_model(deploy_settings, onnx_model) -> str:
    """The detector registered as ``tiny`` (ONNX, and its PyTorch weights when they are next to
    it) in the deploy stack's registry; its reference."""
    from edge_app.detectors import read_onnx_metadata
    from edge_app.detectors.metadata import DetectorMetadata
    from kit import registry

    metadata = DetectorMetadata.from_mapping(read_onnx_metadata(onnx_model))
    weights = onnx_model.with_suffix(".pt")
    meta = registry.register(
        "tiny",
        {"onnx": onnx_model, **({"pytorch": weights} if weights.is_file() else {})},
        classes=[metadata.class_names[i] for i in sorted(metadata.class_names)],
        input_size=metadata.imgsz[0],
        settings=deploy_settings,
    )
    return f"tiny:{meta.version}"


@pytest.fixture(scope="session")
def scenario_video(tmp_path_factory) -> Path:
    """A 3 s, 320x240 looping-friendly shelf scenario video."""
    from kit.synthetic import write_scenario_video

    path = tmp_path_factory.mktemp("deploy-video") / "shelf.mp4"
    write_scenario_video("bottles_removed", path, seconds=3, fps=10, size=(320, 240))
    return path


@pytest.fixture
def panoramasdk(monkeypatch):
    """The stand-in ``panoramasdk`` module, importable as ``panoramasdk`` for the test."""
    import importlib
    import sys

    monkeypatch.syspath_prepend(str(FAKES_DIR))
    monkeypatch.delitem(sys.modules, "panoramasdk", raising=False)
    return importlib.import_module("panoramasdk")
