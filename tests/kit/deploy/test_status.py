"""Device status from heartbeats in the backend (remote devices) and from local processes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from kit.core.contracts import CameraHealth, Heartbeat, ModelRef
from kit.deploy import deploy_local, device_status, format_devices
from lambdas.store import Store

NOW = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)


def _heartbeat(device_id: str, cameras: dict[str, CameraHealth], sent_at: datetime) -> Heartbeat:
    return Heartbeat(
        device_id=device_id, app_version="0.1.0", sent_at=sent_at, uptime_s=120.0, cameras=cameras
    )


@pytest.fixture(scope="module")
def remote_devices(deploy_settings):
    store = Store(deploy_settings.client("dynamodb"), deploy_settings.resources)
    running = CameraHealth(
        state="running", fps=9.5, frames_published=12, model=ModelRef(name="shelf", version=2)
    )
    failed = CameraHealth(state="failed", error="cannot open rtsp://10.0.0.9/1")
    heartbeats = {
        "remote-ok": (_heartbeat("remote-ok", {"aisle-1": running, "aisle-2": running}, NOW), NOW),
        "remote-failed": (_heartbeat("remote-failed", {"dock": failed, "gate": running}, NOW), NOW),
        "remote-stale": (
            _heartbeat("remote-stale", {"yard": running}, NOW - timedelta(minutes=5)),
            NOW - timedelta(minutes=5),
        ),
        "remote-stopped": (
            _heartbeat("remote-stopped", {"lab": CameraHealth(state="stopped")}, NOW),
            NOW,
        ),
    }
    for heartbeat, received_at in heartbeats.values():
        store.record_heartbeat(heartbeat, received_at)
    return {s.device_id: s for s in device_status(deploy_settings, now=NOW + timedelta(seconds=3))}


def test_a_device_with_fresh_heartbeats_is_running_with_its_cameras(remote_devices):
    status = remote_devices["remote-ok"]
    assert (status.health, status.reason, status.target) == ("RUNNING", None, "backend")
    assert status.heartbeat_age_s == pytest.approx(3.0)
    assert status.app_version == "0.1.0" and status.uptime_s == 120.0
    assert [c.camera_id for c in status.cameras] == ["aisle-1", "aisle-2"]
    assert status.fps == {"aisle-1": 9.5, "aisle-2": 9.5}
    assert status.cameras[0].model == "shelf:2" and status.cameras[0].frames_published == 12


def test_a_failed_camera_is_an_error_naming_it(remote_devices):
    status = remote_devices["remote-failed"]
    assert status.health == "ERROR"
    assert status.reason == "camera failed: dock: cannot open rtsp://10.0.0.9/1"


def test_no_heartbeat_for_a_while_is_offline(remote_devices):
    status = remote_devices["remote-stale"]
    assert (status.health, status.reason) == ("OFFLINE", "last heartbeat 303 s ago")


def test_all_cameras_stopped_is_stopped(remote_devices):
    assert remote_devices["remote-stopped"].health == "STOPPED"


def test_json_and_table(remote_devices):
    document = remote_devices["remote-ok"].to_json()
    assert document["cameras"][0] == {
        "camera_id": "aisle-1",
        "state": "running",
        "fps": 9.5,
        "frames_published": 12,
        "model": "shelf:2",
        "last_frame_at": None,
        "reconnects": 0,
        "error": None,
    }
    table = format_devices(
        [remote_devices[k] for k in sorted(remote_devices) if k.startswith("remote")]
    )
    assert "remote-ok" in table and "aisle-1 running 9.5 fps" in table
    assert "remote-failed: camera failed: dock" in table


def test_local_devices_are_listed_when_the_backend_is_unreachable(
    deploy_settings, tmp_path, scenario_video
):
    settings = deploy_settings.model_copy(update={"state_dir": tmp_path})
    deploy_local(
        settings, "offline-1", cameras=[{"id": "c1", "source": str(scenario_video)}], start=False
    )
    unreachable = settings.model_copy(update={"endpoint_url": "http://127.0.0.1:9"})
    (status,) = device_status(unreachable)
    assert (status.device_id, status.health, status.target) == ("offline-1", "STOPPED", "local")
    assert status.deployed["app"] == "edge_app"


def test_no_devices_says_how_to_deploy_one():
    assert "kit deploy --target local" in format_devices([])
