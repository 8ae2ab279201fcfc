"""The edge pipeline end to end: cameras on video files -> detector -> publisher -> a real moto server."""

from __future__ import annotations

import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_app.config import CameraConfig, DeviceConfig
from edge_app.detectors import load_detector
from edge_app.pipeline import CameraProcessor, CameraWorker, EdgeApp, ModelStore, ModelStoreError
from edge_app.sources import CameraReader, Frame
from kit.core.contracts import (
    ControlConfig,
    DetectionPayload,
    Heartbeat,
    ModelRef,
    parse,
    parse_edge_message,
)
from kit.core.settings import load_settings
from kit.local import LocalStack


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
        processor.configure(processor.settings.model_copy(update={"confidence": 0.5}))
    with pytest.raises(RuntimeError, match="cannot process a frame out of turn"):
        processor.process(frames[3])
    assert [processor.collect().frame.index for _ in range(2)] == [0, 2]
    with pytest.raises(RuntimeError, match="no frame in flight"):
        processor.collect()
    processor.set_detector(detector, ModelRef(name="shapes", version=2))
    assert processor.process(frames[3]).frame.index == 3


@contextmanager
def camera_worker(camera: dict, store: ModelStore, on_result=None):
    """A `CameraWorker` (not started) on its own reader; stopped and closed on exit."""
    config = CameraConfig.model_validate(camera)
    with ThreadPoolExecutor(1) as loader, CameraReader(config.id, config.source) as reader:
        worker = CameraWorker(config, reader, store, None, "dev-1", loader, on_result=on_result)
        try:
            yield worker, reader
        finally:
            worker.stop()


def test_a_camera_that_falls_behind_overlaps_its_frames(tmp_path):
    """With analysis slower than the source (a 640 px model, 120 fps asked), the worker keeps
    the next frame in flight while it handles one, in order, and tracks as frame by frame would."""
    from kit.demo_models import DEMO_DIR
    from kit.synthetic import write_scenario_video

    video = tmp_path / "shelf.mp4"
    write_scenario_video("bottles_removed", video, seconds=4, fps=15, size=(320, 240), seed=1)
    store = ModelStore(preloaded={"shelf": DEMO_DIR / "shelf" / "model.onnx"})
    handled: list[tuple] = []
    in_flight_seen: list[int] = []

    def on_result(result, rendered) -> None:
        handled.append(result)
        in_flight_seen.append(worker.processor.pending)

    camera = {
        "id": "shelf-1",
        "source": {"uri": str(video), "fastest": True, "loop": True},
        "model": {"name": "shelf", "version": 1},
        "process_fps": 120,
    }
    with camera_worker(camera, store, on_result) as (worker, _):
        worker.start()
        deadline = time.monotonic() + 60
        while len(handled) < 30 and time.monotonic() < deadline:
            time.sleep(0.1)
    assert len(handled) >= 30 and worker.counters.error is None
    indices = [result.frame.index for result in handled]
    assert indices == sorted(set(indices)), "results come in capture order"
    assert max(in_flight_seen) >= 1, "the next frame was in flight while one was handled"
    replay = CameraProcessor(
        "shelf-1", store.load(worker.camera.model)[1], worker.camera.model, worker.settings,
        frame_rate=120,
    )  # fmt: skip
    assert [result_summary(replay.process(r.frame)) for r in handled] == [
        result_summary(r) for r in handled
    ]


@pytest.mark.parametrize(("source_fps", "process_fps"), [(10, 10), (20, 5)])
def test_a_camera_is_analysed_at_its_process_fps(
    trained_model, scene_video, source_fps, process_fps
):
    """A source at exactly ``process_fps`` has every frame analysed; a faster one is thinned
    to ``process_fps``."""
    store = ModelStore(preloaded={"shapes": trained_model.onnx})
    camera = {
        "id": "cam-1",
        "source": {"uri": str(scene_video), "loop": True, "fps": source_fps},
        "model": {"name": "shapes", "version": 1},
        "process_fps": process_fps,
    }
    store.load(ModelRef(name="shapes", version=1))  # loaded before the clock starts
    with camera_worker(camera, store) as (worker, reader):
        worker.start()
        time.sleep(1.0)
        frames, processed = reader.frame_count, worker.counters.processed
        time.sleep(3.0)
        frames, processed = reader.frame_count - frames, worker.counters.processed - processed
    expected = 3.0 * min(source_fps, process_fps)
    assert frames >= 0.8 * 3.0 * source_fps
    assert 0.8 * expected <= processed <= 1.15 * expected + 1, (frames, processed)


def test_the_device_config_sets_how_models_run(tmp_path, scene_video, models_dir):
    config = device_config(tmp_path, scene_video, models_dir)
    assert config.inference.performance_hint == "throughput"
    latency = config.model_copy(
        update={"inference": config.inference.model_copy(update={"performance_hint": "latency"})}
    )
    store = ModelStore(
        preloaded={"shapes": models_dir / "shapes.onnx"},
        backend=latency.inference.backend,
        threads=2,
        performance_hint=latency.inference.performance_hint,
    )
    assert store.load(ModelRef(name="shapes", version=1))[1].max_in_flight == 1
    with pytest.raises(ValueError, match="performance_hint"):
        DeviceConfig.model_validate(
            {**config.model_dump(), "inference": {"performance_hint": "fastest"}}
        )
