"""The edge pipeline: the per-frame processor, the model store, and the standalone edge app end
to end (cameras on video files -> detector -> publisher -> a real moto server)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import cv2
import numpy as np
import pytest

from edge_app.app import EdgeApp
from edge_app.detectors import load_detector
from edge_app.pipeline import CameraProcessor
from edge_app.runtime import DeviceServices, ModelStore, ModelStoreError
from edge_app.sources import Frame
from kit.core.contracts import ControlConfig, DetectionPayload, Heartbeat, ModelRef, parse
from tests.support.wait import wait_until


def frame_of(image: np.ndarray, index: int = 0) -> Frame:
    return Frame(
        image=image,
        index=index,
        captured_at=datetime(2026, 11, 26, 12, tzinfo=UTC),
        camera_id="cam-1",
    )


def test_processor_counts_zones_and_builds_a_valid_payload(trained_model):
    detector = load_detector(trained_model.onnx)
    config = parse(
        ControlConfig,
        {
            "defaults": {
                "confidence": 0.3,
                "zones": [{"name": "left-half", "polygon": [[0, 0], [0.5, 0], [0.5, 1], [0, 1]]}],
                "lines": [{"name": "middle", "start": [0, 0.5], "end": [1, 0.5]}],
            }
        },
    )
    processor = CameraProcessor(
        "cam-1", detector, ModelRef(name="shapes", version=1), config.defaults
    )
    image = trained_model.frames[0]
    result = processor.process(frame_of(image))
    expected = detector.detect(image, conf=0.3)
    assert len(result.detections) == len(expected) > 0
    assert sum(result.counts.values()) == len(expected)
    assert set(result.counts) == set(trained_model.class_names.values())
    anchors_x = (result.detections.xyxy[:, 0] + result.detections.xyxy[:, 2]) / 2
    assert sum(result.zone_counts["left-half"].values()) == int(
        (anchors_x < image.shape[1] / 2).sum()
    )
    assert result.line_counts["middle"] == {"in": 0, "out": 0}

    payload = processor.payload(result, "dev-1", "frames/dev-1/cam-1/x.jpg")
    again = parse(DetectionPayload, payload.model_dump_json(by_alias=True))
    assert again.counts == result.counts and len(again.detections) == len(expected)
    assert all(d.track_id is not None for d in again.detections)

    rendered = processor.render(result, blur=())
    assert rendered.shape == image.shape and not np.array_equal(rendered, image)
    assert np.array_equal(image, trained_model.frames[0]), "the input frame must stay untouched"


def test_model_store_reports_unknown_and_missing_models(tmp_path, models_dir):
    store = ModelStore(
        preloaded={"shapes": models_dir / "shapes.onnx", "gone:1": tmp_path / "gone.onnx"}
    )
    resolved, detector = store.load(ModelRef(name="shapes", version=3))
    assert (
        resolved.name == "shapes" and store.load(ModelRef(name="shapes", version=3))[1] is detector
    )
    with pytest.raises(ModelStoreError, match="not shipped with the app"):
        store.load(ModelRef(name="fish", version=1))
    with pytest.raises(ModelStoreError, match="does not exist"):
        store.load(ModelRef(name="gone", version=1))


SWITCHED = ControlConfig.model_validate(
    {
        "revision": 1,
        "defaults": {"refresh_s": 1, "confidence": 0.3},
        "cameras": {"cam-a": {"model": {"name": "shapes-b", "version": 1}}},
    }
)


def store_control_config(settings, config: ControlConfig) -> None:
    """Put ``config`` in the config table, where a device on aws reads it."""
    settings.client("dynamodb").put_item(
        TableName=settings.resources.config_table,
        Item={"config_id": {"S": "current"}, "config": {"S": config.model_dump_json()}},
    )


def test_two_cameras_publish_frames_and_payloads_that_validate(
    backend, detections_queue, make_device_config
):
    app = EdgeApp(make_device_config(), settings=backend).start()
    try:
        cameras = app.runtime.cameras.values()
        wait_until(
            lambda: all(camera.published >= 2 for camera in cameras),
            what="two published frames from each camera",
        )
    finally:
        app.close()
    messages = detections_queue.receive_final_heartbeat("dev-1")
    payloads = [m for m in messages if isinstance(m, DetectionPayload)]
    heartbeats = [m for m in messages if isinstance(m, Heartbeat)]
    assert {p.camera_id for p in payloads} == {"cam-a", "cam-b"}
    assert all(str(p.model) == "shapes:1" for p in payloads)
    assert any(sum(p.counts.values()) > 0 for p in payloads), "the model detects the scenes' shapes"
    s3 = backend.client("s3")
    jpeg = s3.get_object(Bucket=backend.resources.bucket, Key=payloads[0].frame_key)["Body"].read()
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape == (240, 320, 3)
    assert payloads[0].frame_key.startswith("frames/dev-1/cam-")
    final = heartbeats[-1]
    assert {camera.state for camera in final.cameras.values()} == {"stopped"}
    assert all(camera.frames_published >= 2 for camera in final.cameras.values())


def test_hot_model_switch_on_one_camera_while_the_other_keeps_publishing(
    backend, detections_queue, make_device_config
):
    """The new model of camera a loads for as long as the test holds it: meanwhile camera a
    keeps running its old model and camera b keeps publishing."""
    load_released = threading.Event()

    def open_detector(path):
        if path.name == "shapes-b.onnx":
            load_released.wait()
        return load_detector(path)

    app = EdgeApp(make_device_config(), settings=backend, open_detector=open_detector).start()
    cam_a, cam_b = app.runtime.cameras["cam-a"], app.runtime.cameras["cam-b"]
    try:
        wait_until(lambda: cam_a.published and cam_b.published, what="both cameras publishing")
        store_control_config(backend, SWITCHED)
        wait_until(
            lambda: cam_a.loading == ModelRef(name="shapes-b", version=1),
            what="camera a loading shapes-b:1",
        )
        published_a, published_b = cam_a.published, cam_b.published
        wait_until(
            lambda: cam_a.published >= published_a + 2 and cam_b.published >= published_b + 2,
            what="both cameras publishing while camera a's new model loads",
        )
        assert str(cam_a.model) == "shapes:1" and cam_a.loading is not None
        load_released.set()
        wait_until(lambda: str(cam_a.model) == "shapes-b:1", what="camera a running shapes-b:1")
        switched_at = cam_a.published
        wait_until(lambda: cam_a.published > switched_at, what="a frame of shapes-b:1")
    finally:
        load_released.set()
        app.close()
    messages = detections_queue.receive_final_heartbeat("dev-1")
    payloads = sorted(
        (m for m in messages if isinstance(m, DetectionPayload)), key=lambda p: p.captured_at
    )
    models_a = [str(p.model) for p in payloads if p.camera_id == "cam-a"]
    models_b = {str(p.model) for p in payloads if p.camera_id == "cam-b"}
    assert set(models_a) == {"shapes:1", "shapes-b:1"} and models_a[-1] == "shapes-b:1"
    assert models_a.index("shapes-b:1") >= 3, "camera a published its old model during the load"
    assert models_b == {"shapes:1"}


def test_a_broken_camera_is_reported_and_never_stops_the_other(
    backend, detections_queue, make_device_config, scene_video, tmp_path
):
    cameras = [
        {
            "id": "good",
            "source": {"uri": str(scene_video), "loop": True},
            "model": {"name": "shapes", "version": 1},
        },
        {
            "id": "broken",
            "source": str(tmp_path / "missing.mp4"),
            "model": {"name": "shapes", "version": 1},
        },
    ]
    app = EdgeApp(make_device_config(cameras), settings=backend).start()
    try:
        heartbeat = wait_until(
            lambda: (
                (beat := app.runtime.heartbeat()).cameras["broken"].state
                in {"reconnecting", "failed"}
                and beat.cameras["good"].frames_published > 0
                and beat
            ),
            what="the broken camera reconnecting while the good one publishes",
        )
    finally:
        app.close()
    assert "missing.mp4" in heartbeat.cameras["broken"].error
    assert heartbeat.cameras["good"].state == "running" and heartbeat.cameras["good"].error is None
    messages = detections_queue.receive_final_heartbeat("dev-1")
    payloads = [m for m in messages if isinstance(m, DetectionPayload)]
    assert payloads and {p.camera_id for p in payloads} == {"good"}


SCENE_SETTINGS = {
    "confidence": 0.3,
    "zones": [{"name": "left-half", "polygon": [[0, 0], [0.5, 0], [0.5, 1], [0, 1]]}],
    "lines": [{"name": "middle", "start": [0.5, 0], "end": [0.5, 1]}],
}


def result_summary(result) -> tuple:
    return (
        result.frame.index,
        result.detections.tracker_id.tolist(),
        result.detections.xyxy.round(3).tolist(),
        result.counts,
        result.zone_counts,
        result.line_counts,
    )


def scene_frames(trained_model, repeats: int = 3) -> list[Frame]:
    images = [image for image in trained_model.frames[:12] for _ in range(repeats)]
    return [frame_of(image, index) for index, image in enumerate(images)]


@pytest.mark.parametrize("backend_name", ["onnxruntime", "openvino"])
def test_pipelined_processing_gives_what_frame_by_frame_gives(trained_model, backend_name, request):
    path = (
        request.getfixturevalue("openvino_model")
        if backend_name == "openvino"
        else trained_model.onnx
    )
    detector = load_detector(path, backend=backend_name, performance_hint="throughput")
    settings = parse(ControlConfig, {"defaults": SCENE_SETTINGS}).defaults
    ref = ModelRef(name="shapes", version=1)
    frames = scene_frames(trained_model)
    one_by_one = CameraProcessor("cam-1", detector, ref, settings)
    expected = [result_summary(one_by_one.process(frame)) for frame in frames]
    pipelined = CameraProcessor("cam-1", detector, ref, settings)
    assert pipelined.depth == detector.max_in_flight + 2 >= 4
    got = [result_summary(result) for result in pipelined.process_all(frames)]
    assert got == expected
    assert any(ids for _, ids, *_ in got), "the scenes have tracked objects"
    assert pipelined.pending == 0


def test_processor_refuses_changes_and_bad_frames_without_losing_frames_in_flight(trained_model):
    detector = load_detector(trained_model.onnx)
    processor = CameraProcessor("cam-1", detector, ModelRef(name="shapes", version=1))
    frames = scene_frames(trained_model, repeats=1)
    processor.submit(frames[0])
    with pytest.raises(ValueError, match="uint8"):
        processor.submit(frame_of(frames[1].image.astype(np.float32), 1))
    processor.submit(frames[2])
    with pytest.raises(RuntimeError, match=r"cannot switch model with 2 frame\(s\) in flight"):
        processor.set_detector(detector, ModelRef(name="shapes", version=2))
    with pytest.raises(RuntimeError, match="cannot change settings"):
        processor.configure(processor.camera_settings.model_copy(update={"confidence": 0.5}))
    with pytest.raises(RuntimeError, match="cannot process a frame out of turn"):
        processor.process(frames[3])
    assert [processor.collect().frame.index for _ in range(2)] == [0, 2]
    with pytest.raises(RuntimeError, match="no frame in flight"):
        processor.collect()
    processor.set_detector(detector, ModelRef(name="shapes", version=2))
    assert processor.process(frames[3]).frame.index == 3


def test_the_device_config_sets_how_models_run(tmp_path, make_device_config):
    config = make_device_config()
    assert config.inference.performance_hint == "throughput"
    latency = make_device_config(inference={"performance_hint": "latency", "threads": 2})
    services = DeviceServices.from_config(latency)
    try:
        detector = services.models.load(ModelRef(name="shapes", version=1))[1]
    finally:
        services.close()
    assert detector.max_in_flight == 1
    with pytest.raises(ValueError, match="performance_hint"):
        make_device_config(inference={"performance_hint": "fastest"})
