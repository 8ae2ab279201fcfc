"""Fixtures of the dashboard tests: a real control API over the session's moto server, and a way
to publish what an edge device would (an annotated JPEG at its frame key, and the payload on the
detections queue) so the processor stores it."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import cv2
import pytest
import requests

from kit.core.backend import describe_backend
from kit.core.contracts import DetectionPayload, Heartbeat, ModelMetadata
from kit.core.settings import Settings
from kit.local.provision import provision
from kit.local.runner import LocalRunner
from kit.synthetic import draw_labels, render_scene
from tests.support.wait import DEFAULT_TIMEOUT_S
from tests.support.wait import wait_until as wait_for_condition


def wait_until(predicate: Callable[[], Any], timeout_s: float, what: str) -> Any:
    """:func:`tests.support.wait.wait_until` on ``predicate``, failing after ``timeout_s`` seconds
    or the suite's default bound, whichever is longer (a bound, not an expected duration)."""
    return wait_for_condition(predicate, max(timeout_s, DEFAULT_TIMEOUT_S), what=what)


@dataclass(frozen=True)
class ShelfFrame:
    """An annotated synthetic shelf picture and how many bottles it shows."""

    jpeg: bytes
    bottles: int


def shelf_frame(seed: int, fill: float, size: tuple[int, int] = (480, 320)) -> ShelfFrame:
    scene = render_scene("shelf", seed=seed, size=size, fill=fill, n_boards=2)
    ok, encoded = cv2.imencode(".jpg", draw_labels(scene), [cv2.IMWRITE_JPEG_QUALITY, 80])
    assert ok
    return ShelfFrame(encoded.tobytes(), scene.counts()["bottle"])


class EdgeFeed:
    """Publishes payloads (with their frames) the way the edge app does."""

    def __init__(self, settings: Settings, device_id: str = "demo-1"):
        self.settings = settings
        self.device_id = device_id
        self.s3 = settings.client("s3")
        self.sqs = settings.client("sqs")
        self.queue_url = self.sqs.get_queue_url(QueueName=settings.resources.detections_queue)[
            "QueueUrl"
        ]

    def publish(
        self,
        camera_id: str,
        counts: dict[str, int],
        *,
        jpeg: bytes | None = None,
        captured_at: datetime | None = None,
        model: str = "shelf",
        zone_counts: dict[str, dict[str, int]] | None = None,
    ) -> DetectionPayload:
        captured_at = captured_at or datetime.now(UTC)
        frame_key = None
        if jpeg is not None:
            stamp = captured_at.strftime("%Y%m%dT%H%M%S%f")[:-3] + "Z"
            frame_key = (
                f"frames/{self.device_id}/{camera_id}/{captured_at:%Y/%m/%d}/{stamp}"
                f"-{uuid.uuid4().hex[:6]}.jpg"
            )
            self.s3.put_object(
                Bucket=self.settings.resources.bucket,
                Key=frame_key,
                Body=jpeg,
                ContentType="image/jpeg",
            )
        payload = DetectionPayload(
            device_id=self.device_id,
            camera_id=camera_id,
            model={"name": model, "version": 1},
            captured_at=captured_at,
            frame={"width": 480, "height": 320},
            counts=counts,
            zone_counts=zone_counts or {},
            frame_key=frame_key,
        )
        self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=payload.model_dump_json())
        return payload

    def heartbeat(self, cameras: dict[str, str]) -> None:
        """A heartbeat saying each camera's state (``running``, ``failed`` …)."""
        beat = Heartbeat(
            device_id=self.device_id,
            app_version="0.1.0",
            uptime_s=12.0,
            cameras={cid: {"state": state, "fps": 4.0} for cid, state in cameras.items()},
        )
        self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=beat.model_dump_json())

    def register_model(self, name: str, version: int, classes: list[str]) -> None:
        """Put a model version's metadata into the registry (``GET /models`` lists it)."""
        metadata = ModelMetadata(name=name, version=version, classes=classes, input_size=320)
        self.s3.put_object(
            Bucket=self.settings.resources.bucket,
            Key=f"models/{name}/{version}/metadata.json",
            Body=metadata.model_dump_json().encode(),
        )


class Api:
    """The control API over HTTP, for the tests' own checks (not the dashboard's client)."""

    def __init__(self, url: str, token: str):
        self.url = url
        self.headers = {"Authorization": f"Bearer {token}"}

    def get(self, path: str, **params: Any) -> Any:
        response = requests.get(self.url + path, params=params, headers=self.headers, timeout=10)
        response.raise_for_status()
        return response.json()

    def put(self, path: str, body: dict[str, Any]) -> Any:
        response = requests.put(self.url + path, json=body, headers=self.headers, timeout=10)
        response.raise_for_status()
        return response.json()

    def camera_seen(self, camera_id: str, payload_id: str) -> bool:
        cameras = self.get("/cameras")["items"]
        return any(
            c["camera_id"] == camera_id and c.get("last_payload_id") == payload_id for c in cameras
        )


@pytest.fixture(scope="module")
def served_backend(local_stack):
    """The session's moto server, reset and provisioned, with the runner in this process: the
    real processor on the detections queue and the real control API on a free port."""
    endpoint = local_stack.endpoint_url
    requests.post(f"{endpoint}/moto-api/reset", timeout=10).raise_for_status()
    settings = local_stack.settings.model_copy(update={"endpoint_url": endpoint})
    provision(describe_backend(settings), settings)
    runner = LocalRunner(settings, port=0, health_interval_s=3600, poll_wait_s=1).start()
    settings = settings.model_copy(update={"api_url": runner.url})
    yield settings, runner
    runner.stop()


@pytest.fixture(scope="module")
def api(served_backend) -> Api:
    settings, _ = served_backend
    return Api(settings.api_url, settings.api_token)


@pytest.fixture(scope="module")
def feed(served_backend) -> EdgeFeed:
    settings, _ = served_backend
    return EdgeFeed(settings)


@pytest.fixture(scope="session")
def wait() -> Callable[..., Any]:
    """:func:`wait_until`, for test modules (conftest helpers are not importable by path)."""
    return wait_until


@pytest.fixture(scope="session")
def make_shelf_frame() -> Callable[..., ShelfFrame]:
    """:func:`shelf_frame`: an annotated synthetic shelf JPEG and its bottle count."""
    return shelf_frame


@pytest.fixture(scope="session")
def make_api() -> type[Api]:
    """:class:`Api`, for test modules with a backend of their own."""
    return Api


@pytest.fixture(scope="session")
def make_feed() -> type[EdgeFeed]:
    """:class:`EdgeFeed`, for test modules with a backend of their own."""
    return EdgeFeed
