"""The device runtime, the same through both shells: the standalone edge app (reader and worker
threads over video files) and the Panorama code node (media batches handed in by the test, as
the appliance's camera node would). Control changes, model loading, heartbeats and shutdown
behave alike, since both are the one `DeviceRuntime`; the backend is a real moto server."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import replace

import numpy as np
import pytest

from edge_app.app import EdgeApp
from edge_app.config import DeviceConfig
from edge_app.heartbeat import MAX_ERROR_CHARS, camera_health
from edge_app.panorama import PanoramaAdapter
from edge_app.runtime import CameraRuntime, DeviceRuntime
from edge_app.sources import CameraState, SourceStatus
from kit.core.contracts import ControlConfig, DetectionPayload, Heartbeat, ModelRef, SampleRecord
from kit.core.settings import Settings
from tests.kit.deploy.fakes import panoramasdk
from tests.support.wait import wait_until

SWITCHED = ControlConfig.model_validate(
    {
        "revision": 1,
        "defaults": {"refresh_s": 1, "confidence": 0.3},
        "cameras": {"cam-a": {"model": {"name": "shapes-b", "version": 1}, "confidence": 0.5}},
    }
)


class EdgeAppShell:
    """The standalone app: its workers run the cameras on the scene video by themselves."""

    def __init__(self, config: DeviceConfig, settings: Settings):
        self.app = EdgeApp(config, settings=settings).start()
        self.runtime = self.app.runtime

    def run_until(self, condition: Callable[[], object], what: str):
        return wait_until(condition, what=what)

    def close(self) -> None:
        self.app.close()


class PanoramaShell:
    """The Panorama code node: each step hands the adapter a batch, one frame per camera."""

    def __init__(self, config: DeviceConfig, settings: Settings, images: list[np.ndarray]):
        self.adapter = PanoramaAdapter(None, config, settings=settings)
        self.runtime = self.adapter.runtime
        self.stream_ids = [camera.id for camera in config.cameras]
        self._images = itertools.cycle(images)

    def run_until(self, condition: Callable[[], object], what: str):
        def step():
            image = next(self._images)
            self.adapter.process([panoramasdk.media(image.copy(), sid) for sid in self.stream_ids])
            return condition()

        return wait_until(step, what=what)

    def close(self) -> None:
        self.adapter.close()


@pytest.fixture(params=["edge_app", "panorama"])
def start_shell(request, backend, trained_model) -> Iterator[Callable[[DeviceConfig], object]]:
    """Start a device in one shell or the other; closed after the test."""
    started = []

    def start(config: DeviceConfig):
        if request.param == "edge_app":
            shell = EdgeAppShell(config, backend)
        else:
            shell = PanoramaShell(config, backend, trained_model.frames[:12])
        started.append(shell)
        return shell

    yield start
    for shell in started:
        shell.close()


def camera(shell, camera_id: str) -> CameraRuntime | None:
    """The shell's camera (a Panorama stream's appears with its first frame)."""
    return shell.runtime.cameras.get(camera_id)


def publishing(shell, *camera_ids: str) -> bool:
    return all((cam := camera(shell, cid)) is not None and cam.published for cid in camera_ids)


def test_a_control_change_reaches_the_camera_and_the_heartbeats(
    start_shell, backend, detections_queue, make_device_config
):
    shell = start_shell(make_device_config())
    shell.run_until(lambda: publishing(shell, "cam-a", "cam-b"), what="both cameras publishing")
    cam_a, cam_b = camera(shell, "cam-a"), camera(shell, "cam-b")
    backend.client("dynamodb").put_item(
        TableName=backend.resources.config_table,
        Item={"config_id": {"S": "current"}, "config": {"S": SWITCHED.model_dump_json()}},
    )
    shell.run_until(
        lambda: (
            str(cam_a.model) == "shapes-b:1" and cam_a.processor.camera_settings.confidence == 0.5
        ),
        what="camera a on shapes-b:1 at confidence 0.5",
    )
    switched_at = cam_a.published
    shell.run_until(lambda: cam_a.published > switched_at, what="a frame of shapes-b:1")
    heartbeat = shell.runtime.heartbeat()
    assert heartbeat.device_id == "dev-1"
    assert {cid: str(health.model) for cid, health in heartbeat.cameras.items()} == {
        "cam-a": "shapes-b:1",
        "cam-b": "shapes:1",
    }
    assert all(h.state == "running" and h.error is None for h in heartbeat.cameras.values())
    assert heartbeat.cameras["cam-a"].frames_published > switched_at
    assert cam_b.processor.camera_settings.confidence == 0.3

    shell.close()

    messages = detections_queue.receive_final_heartbeat("dev-1")
    heartbeats = [m for m in messages if isinstance(m, Heartbeat)]
    payloads = [m for m in messages if isinstance(m, DetectionPayload)]
    stopped = [
        beat
        for beat in heartbeats
        if beat.cameras and {health.state for health in beat.cameras.values()} == {"stopped"}
    ]
    assert len(heartbeats) >= 2 and stopped == [heartbeats[-1]], "periodic beats, then a last one"
    final = heartbeats[-1]
    assert str(final.cameras["cam-a"].model) == "shapes-b:1"
    assert final.cameras["cam-a"].frames_published == cam_a.published
    in_order = sorted(payloads, key=lambda payload: payload.captured_at)
    models_a = [str(p.model) for p in in_order if p.camera_id == "cam-a"]
    assert set(models_a) == {"shapes:1", "shapes-b:1"} and models_a[-1] == "shapes-b:1"
    assert {str(p.model) for p in payloads if p.camera_id == "cam-b"} == {"shapes:1"}


def test_a_model_that_cannot_be_loaded_is_reported_and_the_camera_keeps_its_model(
    start_shell, make_device_config
):
    shell = start_shell(make_device_config(control_source="none"))
    shell.run_until(lambda: publishing(shell, "cam-a", "cam-b"), what="both cameras publishing")
    cam_a = camera(shell, "cam-a")
    shell.runtime.apply_control(
        ControlConfig.model_validate(
            {
                "revision": 1,
                "defaults": {"refresh_s": 1, "confidence": 0.3},
                "cameras": {"cam-a": {"model": {"name": "missing", "version": 1}}},
            }
        )
    )
    heartbeat = shell.run_until(
        lambda: (beat := shell.runtime.heartbeat()).cameras["cam-a"].error and beat,
        what="camera a's model error in the heartbeat",
    )
    assert "missing:1" in heartbeat.cameras["cam-a"].error
    assert str(heartbeat.cameras["cam-a"].model) == "shapes:1"
    assert heartbeat.cameras["cam-b"].error is None
    analysed = cam_a.processed
    shell.run_until(
        lambda: cam_a.processed >= analysed + 3, what="camera a analysing with its old model"
    )
    assert str(cam_a.model) == "shapes:1" and cam_a.loading is None


def test_a_camera_added_later_starts_with_the_latest_control_config(
    backend, make_device_config, trained_model
):
    """A Panorama stream's camera appears with its first frame: it starts with the control
    config applied last, set up like the device config's first camera."""
    adapter = PanoramaAdapter(
        None, make_device_config(control_source="none"), settings=backend, control_poll=False
    )
    try:
        adapter.runtime.apply_control(
            ControlConfig.model_validate(
                {"revision": 3, "defaults": {"confidence": 0.55, "refresh_s": 5}}
            )
        )
        results = adapter.process([panoramasdk.media(trained_model.frames[0], "late camera")])
        late, stream = adapter.camera("late camera")
    finally:
        adapter.close()
    assert late.camera_id == "late-camera" and len(results) == 1
    assert late.processor.camera_settings.confidence == 0.55
    assert (str(late.model), late.published, stream.status().frames) == ("shapes:1", 1, 1)


def test_a_camera_id_is_added_once(backend, make_device_config):
    config = make_device_config(control_source="none")
    runtime = DeviceRuntime(config, settings=backend, control_poll=False)
    status = SourceStatus("cam-a", "test", CameraState.STARTING, 0.0, 0, 0, 0, None, None)
    try:
        runtime.add_camera(config.cameras[0], lambda: status)
        with pytest.raises(ValueError, match="camera 'cam-a' is already on device dev-1"):
            runtime.add_camera(config.cameras[0], lambda: status)
        assert runtime.heartbeat().cameras["cam-a"].state == "starting"
    finally:
        runtime.close()
    runtime.close()  # a second close does nothing


def test_a_camera_reports_its_source_error_while_the_source_is_down_and_long_errors_cut():
    running = SourceStatus("cam-a", "test", CameraState.RUNNING, 9.5, 10, 0, 0, None, None)
    health = camera_health(
        running, model=ModelRef(name="m", version=1), published=3, error="x" * 5000
    )
    assert len(health.error) == MAX_ERROR_CHARS and health.error.endswith("…")
    assert Heartbeat(device_id="dev-1", app_version="1", uptime_s=1, cameras={"cam-a": health})
    down = replace(running, state=CameraState.RECONNECTING, last_error="cannot open the stream")
    reported = camera_health(down, model=None, published=3, error="a frame failed")
    assert (reported.state, reported.error) == ("reconnecting", "cannot open the stream")
    stopping = camera_health(
        running, model=None, published=3, error="a frame failed", stopping=True
    )
    assert (stopping.state, stopping.error) == ("stopped", "a frame failed")


SAMPLING = ControlConfig.model_validate(
    {
        "revision": 2,
        "defaults": {"refresh_s": 1, "confidence": 0.3},
        "cameras": {
            "cam-a": {
                "sampling": {
                    "enabled": True,
                    "confidence_band": [0.5, 0.5],  # empty band: the random share alone
                    "count_jump": 0,
                    "random_share": 1.0,
                    "max_per_hour": 3600,
                }
            }
        },
    }
)


def test_a_camera_with_sampling_on_sends_samples_and_the_others_none(
    start_shell, backend, detections_queue, make_device_config
):
    """Sampling set in the control config reaches the running camera, whose samples (image,
    pre-labels, record) land under its own samples/ prefix; a camera without it sends none."""
    backend.client("dynamodb").put_item(
        TableName=backend.resources.config_table,
        Item={"config_id": {"S": "current"}, "config": {"S": SAMPLING.model_dump_json()}},
    )
    s3 = backend.client("s3")

    def sample_keys(camera_id: str) -> list[str]:
        listed = s3.list_objects_v2(
            Bucket=backend.resources.bucket, Prefix=f"samples/dev-1/{camera_id}/"
        )
        return [item["Key"] for item in listed.get("Contents", [])]

    shell = start_shell(make_device_config())
    shell.run_until(
        lambda: any(key.endswith(".json") for key in sample_keys("cam-a")),
        what="a complete sample of cam-a in the bucket",
    )
    shell.run_until(lambda: publishing(shell, "cam-b"), what="cam-b publishing")
    shell.close()
    record_key = next(key for key in sample_keys("cam-a") if key.endswith(".json"))
    stem = record_key.removesuffix(".json")
    assert {f"{stem}.jpg", f"{stem}.txt"} <= set(sample_keys("cam-a"))
    body = s3.get_object(Bucket=backend.resources.bucket, Key=record_key)["Body"].read()
    record = SampleRecord.model_validate_json(body)
    assert (record.device_id, record.camera_id, record.reasons) == ("dev-1", "cam-a", ["random"])
    assert sample_keys("cam-b") == []
