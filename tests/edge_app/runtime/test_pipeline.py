"""The edge pipeline end to end: cameras on video files -> detector -> publisher -> a real moto server."""

from __future__ import annotations

import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_app.config import DeviceConfig
from edge_app.detectors import load_detector
from edge_app.pipeline import CameraProcessor, EdgeApp, ModelStore, ModelStoreError
from edge_app.sources import Frame
from kit.contracts import (
    ControlConfig,
    DetectionPayload,
    Heartbeat,
    ModelRef,
    parse,
    parse_edge_message,
)
from kit.local import LocalStack
from kit.settings import load_settings


@pytest.fixture(scope="module")
def quiet_stack(tmp_path_factory):
    """A local stack without the Lambda runner: what the edge app sends stays on the queue."""
    stack = LocalStack(
        load_settings(state_dir=tmp_path_factory.mktemp("edge"), local_port=0, prefix="edgeapp")
    )
    stack.up(runner=False)
    yield stack
    stack.down(snapshot=False)


@pytest.fixture
def backend(quiet_stack):
    """Settings on the quiet stack with an empty detections queue and no stored config."""
    settings = quiet_stack.settings.model_copy(update={"endpoint_url": quiet_stack.endpoint_url})
    read_messages(
        settings, timeout_s=1.0
    )  # what an earlier test left (purge_queue allows one a minute)
    settings.client("dynamodb").delete_item(
        TableName=settings.resources.config_table, Key={"config_id": {"S": "current"}}
    )
    return settings


@pytest.fixture(scope="module")
def scene_video(trained_model, tmp_path_factory) -> Path:
    """A video of the test model's scenes (each held for a few frames), 10 fps."""
    path = tmp_path_factory.mktemp("video") / "scenes.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (320, 240))
    for frame in trained_model.frames[:12]:
        for _ in range(3):
            writer.write(frame)
    writer.release()
    return path


@pytest.fixture(scope="module")
def models_dir(trained_model, tmp_path_factory) -> Path:
    """Two 'different' models for hot switching: the same network under two names."""
    folder = tmp_path_factory.mktemp("models")
    shutil.copyfile(trained_model.onnx, folder / "shapes.onnx")
    shutil.copyfile(trained_model.onnx, folder / "shapes-b.onnx")
    return folder


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


def read_messages(settings, timeout_s: float = 2.0) -> list:
    sqs = settings.client("sqs")
    url = sqs.get_queue_url(QueueName=settings.resources.detections_queue)["QueueUrl"]
    messages, deadline = [], time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
            "Messages", []
        )
        for m in batch:
            messages.append(parse_edge_message(m["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return messages


def device_config(tmp_path, video, models_dir, cameras=None) -> DeviceConfig:
    return DeviceConfig.model_validate(
        {
            "device_id": "dev-1",
            "cameras": cameras
            or [
                {
                    "id": "cam-a",
                    "source": {"uri": str(video), "loop": True},
                    "model": {"name": "shapes", "version": 1},
                },
                {
                    "id": "cam-b",
                    "source": {"uri": str(video), "loop": True},
                    "model": {"name": "shapes", "version": 1},
                },
            ],
            "models": {
                "shapes": str(models_dir / "shapes.onnx"),
                "shapes-b": str(models_dir / "shapes-b.onnx"),
            },
            "spool": {"dir": str(tmp_path / "spool"), "fsync": False},
            "heartbeat_s": 1,
            "control_poll_s": 0.5,
            "control_source": "table",
            "control": {"defaults": {"refresh_s": 1, "confidence": 0.3}},
        }
    )


def test_two_cameras_publish_frames_and_payloads_that_validate(
    backend, tmp_path, scene_video, models_dir
):
    app = EdgeApp(device_config(tmp_path, scene_video, models_dir), settings=backend).start()
    try:
        time.sleep(4.0)
    finally:
        app.close()
    messages = read_messages(backend)
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
    assert heartbeats and heartbeats[-1].cameras["cam-a"].state == "stopped"
    assert any(h.cameras["cam-b"].frames_published > 0 for h in heartbeats)


def test_hot_model_switch_on_one_camera_while_the_other_keeps_publishing(
    backend, tmp_path, scene_video, models_dir
):
    app = EdgeApp(device_config(tmp_path, scene_video, models_dir), settings=backend).start()
    try:
        time.sleep(2.5)
        switched = ControlConfig.model_validate(
            {
                "revision": 1,
                "defaults": {"refresh_s": 1, "confidence": 0.3},
                "cameras": {"cam-a": {"model": {"name": "shapes-b", "version": 1}}},
            }
        )
        backend.client("dynamodb").put_item(
            TableName=backend.resources.config_table,
            Item={"config_id": {"S": "current"}, "config": {"S": switched.model_dump_json()}},
        )
        switch_at = datetime.now(UTC)
        time.sleep(4.0)
    finally:
        app.close()
    payloads = [m for m in read_messages(backend) if isinstance(m, DetectionPayload)]
    cam_a = [p for p in payloads if p.camera_id == "cam-a"]
    cam_b = [p for p in payloads if p.camera_id == "cam-b"]
    assert {str(p.model) for p in cam_a} == {"shapes:1", "shapes-b:1"}
    assert str(cam_a[-1].model) == "shapes-b:1"
    assert {str(p.model) for p in cam_b} == {"shapes:1"}
    b_times = sorted(p.captured_at for p in cam_b)
    assert any(t > switch_at for t in b_times), "camera b kept publishing after the switch"
    gaps = [
        (later - earlier).total_seconds()
        for earlier, later in zip(b_times, b_times[1:], strict=False)
    ]
    assert max(gaps) < 3.0, f"camera b stalled during the switch: gaps {gaps}"


def test_a_broken_camera_is_reported_and_never_stops_the_other(
    backend, tmp_path, scene_video, models_dir
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
    app = EdgeApp(
        device_config(tmp_path, scene_video, models_dir, cameras), settings=backend
    ).start()
    try:
        time.sleep(3.0)
        heartbeat = app.heartbeat()
    finally:
        app.close()
    assert heartbeat.cameras["broken"].state in {"reconnecting", "failed"}
    assert heartbeat.cameras["broken"].error
    assert (
        heartbeat.cameras["good"].state == "running"
        and heartbeat.cameras["good"].frames_published > 0
    )
    payloads = [m for m in read_messages(backend) if isinstance(m, DetectionPayload)]
    assert payloads and {p.camera_id for p in payloads} == {"good"}
