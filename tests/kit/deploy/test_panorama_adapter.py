"""The Panorama code node adapter on the stand-in SDK: real pipeline, real backend."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import yaml

from edge_app.config import DeviceConfig
from edge_app.detectors import DetectorMetadata, read_onnx_metadata
from edge_app.panorama import application_class, camera_id_for_stream, run_application
from kit.deploy import device_status
from kit.package import build_bundle, device_config, device_settings, unpack_bundle
from tests.support.wait import wait_until


def _frames(video, count: int) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(video))
    frames = []
    while len(frames) < count:
        ok, frame = capture.read()
        assert ok, f"{video} has fewer than {count} frames"
        frames.append(frame)
    capture.release()
    return frames


def _config(settings, device_id, model, onnx_model, tmp_path) -> DeviceConfig:
    values = device_config(
        device_id,
        [{"id": "pano-cam", "source": "panorama:camera_node", "process_fps": 10}],
        model=model,
        settings=device_settings(settings),
        heartbeat_s=1,
    )
    values.update(
        models={model: str(onnx_model)},
        spool={"dir": str(tmp_path / "spool")},
        base_dir=str(tmp_path),
    )
    return DeviceConfig.model_validate(values)


def _payloads(settings, camera_id: str) -> list[dict]:
    return settings.client("dynamodb").query(
        TableName=settings.resources.detections_table,
        KeyConditionExpression="camera_id = :c",
        ExpressionAttributeValues={":c": {"S": camera_id}},
    )["Items"]


def test_code_node_runs_the_pipeline_on_the_model_node(
    panoramasdk, deploy_settings, registered_model, onnx_model, scenario_video, tmp_path
):
    # the model node (Neo-compiled on a real appliance) answers with one confident box of
    # class 0 at the centre of the S px input, a quarter of it wide and high
    metadata = DetectorMetadata.from_mapping(read_onnx_metadata(onnx_model))
    size = metadata.imgsz[0]
    raw = np.zeros((1, 4 + len(metadata.class_names), 10), dtype=np.float32)
    raw[0, :5, 0] = [size / 2, size / 2, size / 4, size / 4, 0.9]
    seen_inputs = []

    def model_node(inputs):
        seen_inputs.append({name: tensor.shape for name, tensor in inputs.items()})
        return (raw,)

    frames = _frames(scenario_video, 4)
    batches = [[panoramasdk.media(frame.copy(), "camera_node_0")] for frame in frames]
    panoramasdk.load_graph(
        video_in=batches,
        parameters={"threshold": 0.5, "refresh_rate": 1, "device_id": "pano-1"},
        models={"model_node": model_node},
    )
    config = _config(deploy_settings, "pano-config-id", registered_model, onnx_model, tmp_path)

    app = application_class()(config, model_node="model_node", model_input="images")
    app.run(max_batches=len(batches))

    assert app.calls == ["model_node"] * 4
    assert seen_inputs == [{"images": (1, 3, size, size)}] * 4
    assert app.outputs.video_out.sent == batches
    # 320x240 letterboxed to S x 0.75 S (+0.125 S top and bottom): the box is (120..200, 80..160)
    for (media,) in batches:
        assert media.rects == [pytest.approx((0.375, 1 / 3, 0.625, 2 / 3), abs=1e-3)]
        assert media.labels[0][0].endswith(" 0.90")
    camera = camera_id_for_stream("camera_node_0")
    rows = wait_until(lambda: _payloads(deploy_settings, camera), what="the adapter's payloads")
    assert {row["device_id"]["S"] for row in rows} == {"pano-1"}
    status = wait_until(
        lambda: next(
            (s for s in device_status(deploy_settings) if s.device_id == "pano-1" and s.cameras),
            None,
        ),
        what="the adapter's heartbeat",
    )
    assert status.cameras[0].camera_id == camera and status.cameras[0].model == registered_model


def test_without_a_model_node_onnx_runtime_runs_the_shipped_model(
    panoramasdk, deploy_settings, registered_model, onnx_model, scenario_video, tmp_path
):
    config = _config(deploy_settings, "pano-2", registered_model, onnx_model, tmp_path / "state")
    bundle = build_bundle(
        tmp_path / "bundle", device_config=config.model_dump(mode="json", exclude={"base_dir"})
    )
    unpack_bundle(bundle.path, tmp_path / "panorama" / "bundle")
    batches = [[panoramasdk.media(frame, "front door")] for frame in _frames(scenario_video, 2)]
    panoramasdk.load_graph(video_in=batches, parameters={"refresh_rate": 1})

    code = run_application(
        tmp_path / "panorama" / "bundle" / "device.yaml",
        state_dir=tmp_path / "storage",
        max_batches=len(batches),
    )

    assert code == 0
    assert (tmp_path / "storage" / "spool").is_dir()
    rows = wait_until(
        lambda: _payloads(deploy_settings, "front-door"), what="payloads of 'front door'"
    )
    assert {row["device_id"]["S"] for row in rows} == {"pano-2"}
    assert (
        yaml.safe_load((tmp_path / "panorama" / "bundle" / "device.yaml").read_text())["device_id"]
        == "pano-2"
    )


def test_stream_ids_become_camera_ids():
    assert camera_id_for_stream("camera_node_0") == "camera_node_0"
    assert camera_id_for_stream("front door/1") == "front-door-1"
    assert camera_id_for_stream("") == "camera"


def test_control_config_changes_apply_before_the_next_batch(
    panoramasdk, deploy_settings, registered_model, onnx_model, scenario_video, tmp_path
):
    from edge_app.panorama import PanoramaAdapter
    from kit.core.contracts import CameraSettings, ControlConfig

    frame = _frames(scenario_video, 1)[0]
    panoramasdk.load_graph(video_in=[], parameters={})
    config = _config(deploy_settings, "pano-3", registered_model, onnx_model, tmp_path)
    adapter = PanoramaAdapter(
        panoramasdk.node(), config, threshold=0.4, refresh_s=3, control_poll=False
    )
    try:
        adapter.process([panoramasdk.media(frame, "cam-a")])
        camera, stream = adapter.camera("cam-a")
        assert (camera.camera_settings.confidence, camera.camera_settings.refresh_s) == (0.4, 3)
        adapter.runtime.apply_control(
            ControlConfig(revision=2, defaults=CameraSettings(confidence=0.6, refresh_s=2))
        )
        adapter.process([panoramasdk.media(frame, "cam-a")])
        assert camera.processor.camera_settings.confidence == 0.6
        assert camera.camera_settings.refresh_s == 2
        assert str(camera.model) == registered_model
        assert stream.status().frames == 2 and camera.published == 1
    finally:
        adapter.close()


def test_graph_parameters_are_the_starting_point_and_are_validated():
    from edge_app.config import DeviceConfigError
    from edge_app.panorama import with_graph_parameters

    config = DeviceConfig.model_validate(
        {"device_id": "pano-9", "cameras": [{"id": "cam", "source": "panorama:camera_node"}]}
    )
    updated = with_graph_parameters(config, threshold=0.4, refresh_s=7, device_id="pano-10")
    defaults = updated.control.defaults
    assert (updated.device_id, defaults.confidence, defaults.refresh_s) == ("pano-10", 0.4, 7)
    unchanged = with_graph_parameters(config)
    assert (unchanged.device_id, unchanged.control.defaults) == ("pano-9", type(defaults)())
    with pytest.raises(DeviceConfigError, match=r"(?s)graph's parameters.*confidence"):
        with_graph_parameters(config, threshold=1.5)
    with pytest.raises(DeviceConfigError, match="device_id"):
        with_graph_parameters(config, device_id="not an id!")
