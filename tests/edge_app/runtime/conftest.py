"""Fixtures for the device runtime tests: a quiet local stack (what a device sends stays on the
detections queue), a video of the test model's scenes, two models to switch between, device
configs, and the detections queue as the backend receives it."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import cv2
import pytest

from edge_app.config import DeviceConfig
from kit.core.contracts import DetectionPayload, Heartbeat, parse_edge_message
from kit.core.settings import Settings, load_settings
from kit.local import LocalStack
from tests.support.wait import wait_until

EdgeMessage = DetectionPayload | Heartbeat


@pytest.fixture(scope="session")
def quiet_stack(tmp_path_factory) -> LocalStack:
    """A local stack without the Lambda runner: what the edge app sends stays on the queue."""
    stack = LocalStack(
        load_settings(state_dir=tmp_path_factory.mktemp("edge"), local_port=0, prefix="edgeapp")
    )
    stack.up(runner=False)
    yield stack
    stack.down(snapshot=False)


class DetectionsQueue:
    """The detections queue as the backend sees it: every message received (and deleted)."""

    def __init__(self, settings: Settings):
        self._sqs = settings.client("sqs")
        self._url = self._sqs.get_queue_url(QueueName=settings.resources.detections_queue)[
            "QueueUrl"
        ]
        self.received: list[EdgeMessage] = []

    def receive(self) -> list[EdgeMessage]:
        """One long poll (up to a second): the messages it got, also kept in `received`."""
        batch = self._sqs.receive_message(
            QueueUrl=self._url, MaxNumberOfMessages=10, WaitTimeSeconds=1
        ).get("Messages", [])
        messages = []
        for message in batch:
            messages.append(parse_edge_message(message["Body"]))
            self._sqs.delete_message(QueueUrl=self._url, ReceiptHandle=message["ReceiptHandle"])
        self.received.extend(messages)
        return messages

    def drain(self) -> None:
        """Receive until the queue is empty, and forget what came."""
        while self.receive():
            pass
        self.received.clear()

    def receive_until(
        self, condition: Callable[[list[EdgeMessage]], bool], what: str
    ) -> list[EdgeMessage]:
        """Receive until ``condition(received)`` holds; every message received."""
        wait_until(lambda: self.receive() is not None and condition(self.received), what=what)
        return self.received

    def receive_final_heartbeat(self, device_id: str) -> list[EdgeMessage]:
        """Receive until the device's last heartbeat (every camera stopped) came."""
        return self.receive_until(
            lambda messages: any(is_final_heartbeat(m, device_id) for m in messages),
            what=f"the final heartbeat of {device_id}",
        )


def is_final_heartbeat(message: EdgeMessage, device_id: str) -> bool:
    """A device's last heartbeat: every camera reported stopped."""
    return (
        isinstance(message, Heartbeat)
        and message.device_id == device_id
        and bool(message.cameras)
        and all(camera.state == "stopped" for camera in message.cameras.values())
    )


@pytest.fixture
def backend(quiet_stack) -> Settings:
    """Settings on the quiet stack with no stored control config."""
    settings = quiet_stack.settings.model_copy(update={"endpoint_url": quiet_stack.endpoint_url})
    settings.client("dynamodb").delete_item(
        TableName=settings.resources.config_table, Key={"config_id": {"S": "current"}}
    )
    return settings


@pytest.fixture
def detections_queue(backend) -> DetectionsQueue:
    """The detections queue, emptied of what earlier tests left."""
    queue = DetectionsQueue(backend)
    queue.drain()
    return queue


@pytest.fixture(scope="session")
def scene_video(trained_model, tmp_path_factory) -> Path:
    """A video of the test model's scenes (each held for a few frames), 10 fps."""
    path = tmp_path_factory.mktemp("video") / "scenes.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (320, 240))
    for frame in trained_model.frames[:12]:
        for _ in range(3):
            writer.write(frame)
    writer.release()
    return path


@pytest.fixture(scope="session")
def models_dir(trained_model, tmp_path_factory) -> Path:
    """Two 'different' models for hot switching: the same network under two names."""
    folder = tmp_path_factory.mktemp("models")
    shutil.copyfile(trained_model.onnx, folder / "shapes.onnx")
    shutil.copyfile(trained_model.onnx, folder / "shapes-b.onnx")
    return folder


@pytest.fixture
def make_device_config(tmp_path, scene_video, models_dir) -> Callable[..., DeviceConfig]:
    """A device config: cameras ``cam-a`` and ``cam-b`` on the scene video running ``shapes:1``
    (or ``cameras``), both models shipped, heartbeats every second, control from the config
    table every half second; ``overrides`` replace any field."""

    def make(cameras: list[dict] | None = None, **overrides) -> DeviceConfig:
        default_cameras = [
            {
                "id": camera_id,
                "source": {"uri": str(scene_video), "loop": True},
                "model": {"name": "shapes", "version": 1},
            }
            for camera_id in ("cam-a", "cam-b")
        ]
        return DeviceConfig.model_validate(
            {
                "device_id": "dev-1",
                "cameras": cameras or default_cameras,
                "models": {
                    "shapes": str(models_dir / "shapes.onnx"),
                    "shapes-b": str(models_dir / "shapes-b.onnx"),
                },
                "spool": {"dir": str(tmp_path / "spool"), "fsync": False},
                "model_cache_dir": str(tmp_path / "model-cache"),
                "heartbeat_s": 1,
                "control_poll_s": 0.5,
                "control_source": "table",
                "control": {"defaults": {"refresh_s": 1, "confidence": 0.3}},
                **overrides,
            }
        )

    return make
