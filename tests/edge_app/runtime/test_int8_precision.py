"""A camera's precision picks the registered format its device runs (issue 19): ``int8`` runs the
version's INT8 model for the device's backend, and a version without one runs FP32, with the
reason in the heartbeat, never stopping the camera.

The INT8 models are the session's detector (trained here, really detects its three classes)
quantized once per session and added to a registered version as ``kit models quantize`` does.
The accuracy gate has its own tests (tests/kit/ml/test_quantize.py); here it is opened wide
(``max_drop=1``) so that what is tested is the device.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_app.app import EdgeApp
from edge_app.runtime import ModelStore
from kit.compile.quantize import quantize_registered
from kit.core.contracts import DetectionPayload, ModelRef
from kit.core.registry import RegistryReader
from kit.registry import ModelRegistry
from tests.edge_app.conftest import write_dataset
from tests.support.wait import wait_until

INT8_MODEL = "int8-shapes"
FP32_MODEL = "fp32-shapes"


@pytest.fixture(scope="session")
def registered(quiet_stack, trained_model, tmp_path_factory):
    """``int8-shapes:1`` (pytorch, onnx, onnx_int8, openvino_int8) and ``fp32-shapes:1`` (onnx
    only) in the quiet stack's registry; the INT8 formats quantized once per session."""
    settings = quiet_stack.settings.model_copy(update={"endpoint_url": quiet_stack.endpoint_url})
    registry = ModelRegistry(settings.client("s3"), settings.resources.bucket)
    classes = list(trained_model.class_names.values())
    metadata = registry.register(
        INT8_MODEL,
        {"pytorch": trained_model.weights, "onnx": trained_model.onnx},
        classes=classes,
        input_size=trained_model.imgsz,
    )
    registry.register(
        FP32_MODEL, {"onnx": trained_model.onnx}, classes=classes, input_size=trained_model.imgsz
    )
    # scenes of the detector's own kind, few enough that calibration stays short on a busy CPU
    data_yaml = write_dataset(tmp_path_factory.mktemp("int8-calibration"), train=16, val=8)
    for backend in ("onnxruntime", "openvino"):
        _, metadata = quantize_registered(
            metadata.ref,
            backend=backend,
            data=data_yaml,
            max_drop=1.0,
            registry=registry,
            settings=settings,
        )
    return settings, metadata


@pytest.mark.parametrize(
    ("backend", "int8_file", "fp32_file"),
    [
        ("onnxruntime", "model_int8.onnx", "model.onnx"),
        ("openvino", "model_int8_openvino_model", "model.onnx"),
    ],
)
def test_the_store_downloads_the_backend_s_int8_format_and_falls_back_to_fp32(
    registered, trained_model, tmp_path, backend, int8_file, fp32_file
):
    settings, metadata = registered
    assert metadata.formats["onnx_int8"].precision == "int8"
    assert metadata.formats["openvino_int8"].file == "model_int8_openvino_model.tar"
    reader = RegistryReader(settings.client("s3"), settings.resources.bucket)
    store = ModelStore(registry=reader, cache_dir=tmp_path / "cache", backend=backend)

    resolved, int8 = store.load(ModelRef(name=INT8_MODEL, version="latest"), "int8")

    assert str(resolved) == f"{INT8_MODEL}:1"
    assert Path(int8.backend.model_path).name == int8_file and int8.backend.name == backend
    assert store.precision_fallback(resolved, "int8") is None
    assert sum(len(int8.detect(frame, conf=0.3)) for frame in trained_model.frames) > 0

    _, fp32 = store.load(ModelRef(name=INT8_MODEL, version=1), "fp32")
    assert Path(fp32.backend.model_path).name == fp32_file and fp32 is not int8

    fallen, plain = store.load(ModelRef(name=FP32_MODEL, version=1), "int8")
    assert Path(plain.backend.model_path).name == "model.onnx"
    reason = store.precision_fallback(fallen, "int8")
    wanted = "onnx_int8" if backend == "onnxruntime" else "openvino_int8"
    assert f"{FP32_MODEL}:1 has no {wanted} format" in reason and "running fp32" in reason


def test_cameras_run_int8_where_their_model_has_it_and_report_why_not(
    registered, backend, detections_queue, make_device_config, scene_video
):
    """cam-a runs int8-shapes:1 in INT8 and publishes detections; cam-b's fp32-shapes:1 has no
    INT8 format: it runs FP32 and its heartbeat says why, while it keeps running."""
    config = make_device_config(
        cameras=[
            {
                "id": camera_id,
                "source": {"uri": str(scene_video), "loop": True},
                "model": {"name": model, "version": 1},
            }
            for camera_id, model in (("cam-a", INT8_MODEL), ("cam-b", FP32_MODEL))
        ],
        models={},
        inference={"backend": "onnxruntime"},
        control_source="none",
        control={"defaults": {"refresh_s": 1, "confidence": 0.3, "precision": "int8"}},
    )
    app = EdgeApp(config, settings=backend).start()
    try:
        cameras = app.runtime.cameras
        wait_until(
            lambda: all(
                cameras.get(c) is not None and cameras[c].published for c in ("cam-a", "cam-b")
            ),
            what="both cameras publishing",
        )
        cam_a, cam_b = cameras["cam-a"], cameras["cam-b"]
        assert Path(cam_a.processor.detector.backend.model_path).name == "model_int8.onnx"
        assert Path(cam_b.processor.detector.backend.model_path).name == "model.onnx"
        heartbeat = app.runtime.heartbeat()
        assert heartbeat.cameras["cam-a"].error is None
        health_b = heartbeat.cameras["cam-b"]
        assert health_b.state == "running" and str(health_b.model) == f"{FP32_MODEL}:1"
        assert "has no onnx_int8 format" in health_b.error and "running fp32" in health_b.error
        payloads = detections_queue.receive_until(
            lambda messages: any(
                isinstance(m, DetectionPayload) and m.camera_id == "cam-a" and m.detections
                for m in messages
            ),
            what="a payload of cam-a with detections",
        )
        assert {str(p.model) for p in payloads if getattr(p, "camera_id", None) == "cam-a"} == {
            f"{INT8_MODEL}:1"
        }
    finally:
        app.close()
