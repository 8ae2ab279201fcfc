"""A device that boots without network or credentials keeps running (issue 15).

On a Greengrass core the app's AWS credentials come from the token-exchange service
(``AWS_CONTAINER_CREDENTIALS_FULL_URI``); a device that boots offline cannot reach it, and
botocore then refuses to make a client at all. The app must start anyway, analyse and spool,
ask for credentials again with backoff, and deliver everything once both the credentials and
the backend are back. The credentials endpoint is a real HTTP server on a loopback port
(:mod:`tests.edge_app.credentials_server`), the backend a moto server on a port chosen before
it runs, the device a real ``python -m edge_app`` process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import UTC, datetime

import boto3
import pytest

from edge_app.clients import BackendClients, CredentialsUnavailableError
from kit.core.contracts import DetectionPayload, Heartbeat
from kit.core.settings import load_settings
from kit.local import LocalStack
from kit.local.processes import free_port
from kit.registry import ModelRegistry
from tests.edge_app.credentials_server import CredentialsServer, isolated_aws_environment
from tests.edge_app.runtime.conftest import DetectionsQueue, is_final_heartbeat
from tests.support.wait import wait_until

TOKEN = "token-exchange-test-token"
EXIT_TIMEOUT_S = 60


@pytest.fixture
def container_credentials(monkeypatch):
    """This process's AWS credentials come only from a container endpoint on a free loopback
    port, not started: the server to start when the test wants credentials to be had."""
    server = CredentialsServer(free_port(), TOKEN)
    environment = isolated_aws_environment(dict(os.environ), server.url, TOKEN)
    for key in set(os.environ) - set(environment):
        monkeypatch.delenv(key)
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)  # a session that reads this environment
    yield server
    server.close()


def test_clients_ask_for_credentials_again_with_backoff(container_credentials):
    """GIVEN an unreachable credentials endpoint, THEN a client cannot be made and the next
    attempts wait 1 s, then 2 s (without asking meanwhile); once the endpoint answers, the
    client is made with its credentials, which every later client shares."""
    now = [0.0]
    settings = load_settings(
        target="aws", prefix="offline", endpoint_url=f"http://127.0.0.1:{free_port()}"
    )
    clients = BackendClients(settings, retry_min_s=1, retry_max_s=60, clock=lambda: now[0])

    with pytest.raises(CredentialsUnavailableError, match="container"):
        clients.client("s3")
    now[0] = 1.0
    with pytest.raises(CredentialsUnavailableError, match="container"):
        clients.client("sqs")
    assert clients.failures == 2
    container_credentials.start()
    now[0] = 2.5
    with pytest.raises(CredentialsUnavailableError, match="next attempt in 0 s"):
        clients.client("s3")
    assert container_credentials.requests == [], "not asked again within the backoff"

    now[0] = 3.0
    s3 = clients.client("s3")

    assert container_credentials.requests == [TOKEN] and clients.failures == 0
    assert clients.client("s3") is s3 and clients.client("sqs") is not None
    assert container_credentials.requests == [TOKEN], "credentials are had once, then kept"


def _spooled(items_dir, kind: bytes) -> list[str]:
    """The item files in a device's spool whose metadata says ``kind``."""
    names = []
    for path in sorted(items_dir.glob("*.payload")):
        try:
            header = path.read_bytes().split(b"\n", 2)[1]
        except (FileNotFoundError, IndexError):
            continue  # sent meanwhile
        if b'"kind":"' + kind + b'"' in header:
            names.append(path.name)
    return names


def _runs_fetched_model(message: object) -> bool:
    """A heartbeat saying camera b runs the model it fetched from the registry."""
    return (
        isinstance(message, Heartbeat)
        and "cam-b" in message.cameras
        and message.cameras["cam-b"].state == "running"
        and str(message.cameras["cam-b"].model) == "fetched:1"
    )


def _states(heartbeats: list[Heartbeat], camera_id: str) -> list[tuple[str, str, str | None]]:
    """What the heartbeats said of a camera: (state, model, error) in order, repeats folded."""
    said = [
        (h.cameras[camera_id].state, str(h.cameras[camera_id].model), h.cameras[camera_id].error)
        for h in heartbeats
    ]
    return [state for i, state in enumerate(said) if i == 0 or said[i - 1] != state]


def test_a_device_that_boots_offline_keeps_running_and_delivers_everything_once(
    tmp_path, repo_root, make_device_config, scene_video, models_dir, trained_model
):
    """GIVEN a device with no reachable credentials endpoint and no backend, one camera on a
    shipped model and one on a model only the registry has, THEN it runs: the first camera
    analyses and spools, the second is reported degraded; WHEN the backend and then the
    credentials come, THEN the second camera fetches its model, and everything spooled is
    delivered once, in order, before and after, up to a clean stop."""
    backend_port, credentials = free_port(), CredentialsServer(free_port(), TOKEN)
    prefix = "offline-boot"
    source = {"uri": str(scene_video), "loop": True}
    config = make_device_config(
        cameras=[
            {"id": "cam-a", "source": source, "model": {"name": "shapes", "version": 1}},
            {"id": "cam-b", "source": source, "model": {"name": "fetched", "version": 1}},
        ],
        settings={
            "target": "aws",
            "region": "eu-west-1",
            "prefix": prefix,
            "endpoint_url": f"http://127.0.0.1:{backend_port}",
        },
        control_source="table",
        backend_retry_max_s=2,
    )
    config_file = tmp_path / "device.json"
    config_file.write_text(config.model_dump_json())
    items_dir = tmp_path / "spool" / "items"
    log_file = tmp_path / "app.log"
    stack = LocalStack(
        load_settings(state_dir=tmp_path / "stack", local_port=backend_port, prefix=prefix)
    )
    with open(log_file, "w") as log:
        device = subprocess.Popen(
            [sys.executable, "-m", "edge_app", "--config", str(config_file)],
            cwd=repo_root,
            env=isolated_aws_environment(dict(os.environ), credentials.url, TOKEN),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until(
            lambda: (
                device.poll() is None
                and "AWS credentials unavailable" in log_file.read_text()
                and len(_spooled(items_dir, b"detection")) >= 3
            ),
            what="the device analysing and spooling without credentials",
        )
        offline = set(_spooled(items_dir, b"detection") + _spooled(items_dir, b"heartbeat"))

        stack.up(runner=False)
        backend = stack.settings.model_copy(update={"endpoint_url": stack.endpoint_url})
        ModelRegistry.from_settings(backend).register(
            "fetched",
            {"onnx": models_dir / "shapes.onnx"},
            classes=list(trained_model.class_names.values()),
            input_size=trained_model.imgsz,
        )
        queue = DetectionsQueue(backend)
        assert device.poll() is None and queue.receive() == [], "nothing sent without credentials"
        credentials.start()
        back_at = datetime.now(UTC)

        queue.receive_until(
            lambda messages: (
                any(
                    isinstance(m, DetectionPayload) and str(m.model) == "fetched:1"
                    for m in messages
                )
                and any(_runs_fetched_model(m) for m in messages)
            ),
            what="camera b running the model fetched from the registry, and a heartbeat saying so",
        )
        wait_until(
            lambda: not offline & {path.name for path in items_dir.iterdir()},
            what="everything spooled while offline delivered",
        )
        device.send_signal(signal.SIGTERM)
        try:
            status = device.wait(timeout=EXIT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            status = None
        # on a hang the edge app writes every thread's stack into its log (EXIT_GRACE_S)
        assert status == 0, log_file.read_text()[-8000:]
        messages = queue.receive_final_heartbeat("dev-1")
        frame_keys = {
            obj["Key"]
            for page in backend.client("s3")
            .get_paginator("list_objects_v2")
            .paginate(Bucket=backend.resources.bucket, Prefix="frames/dev-1/")
            for obj in page.get("Contents", [])
        }
    finally:
        if device.poll() is None:
            device.kill()
            device.wait()
        credentials.close()
        stack.down(snapshot=False)

    assert list(items_dir.iterdir()) == [], "nothing left in the spool"
    assert credentials.requests and set(credentials.requests) == {TOKEN}
    heartbeats = [m for m in messages if isinstance(m, Heartbeat)]
    payloads = [m for m in messages if isinstance(m, DetectionPayload)]
    final = heartbeats[-1]
    assert is_final_heartbeat(final, "dev-1") and final.dropped.model_dump() == {
        "frames": 0,
        "payloads": 0,
    }
    for camera_id in ("cam-a", "cam-b"):
        sent = [p for p in payloads if p.camera_id == camera_id]
        captured = [p.captured_at for p in sent]
        assert captured == sorted(captured) and len(set(captured)) == len(captured), "in order"
        assert len({p.payload_id for p in sent}) == len(sent), "once"
        assert len(sent) == final.cameras[camera_id].frames_published, "none lost"
    assert sum(p.captured_at < back_at for p in payloads if p.camera_id == "cam-a") >= 3
    assert {p.frame_key for p in payloads} == frame_keys
    assert any(
        (b := h.cameras["cam-b"]).state == "degraded"
        and b.model is None
        and "credentials" in b.error
        for h in heartbeats
    ), f"camera b degraded while its model could not be fetched: {_states(heartbeats, 'cam-b')}"
    assert all(isinstance(m, DetectionPayload | Heartbeat) for m in messages)
    assert not any(is_final_heartbeat(h, "dev-1") for h in heartbeats[:-1])
