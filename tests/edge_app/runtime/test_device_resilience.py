"""What a device survives (issue 14): a full disk, a read-only spool, a bad camera source, a bad
``settings:`` value. Each keeps the other cameras running and says what is wrong, in one line
and in the heartbeat. The disks are real tmpfs mounts (``small_disk``), the backend a moto
server."""

from __future__ import annotations

import logging
import subprocess
import sys

import yaml

from edge_app.app import EdgeApp
from kit.core.contracts import DetectionPayload, Heartbeat
from kit.core.settings import load_settings
from kit.local import LocalStack
from kit.local.processes import free_port
from tests.edge_app.runtime.conftest import DetectionsQueue, is_final_heartbeat
from tests.support.wait import wait_until


def _publishing_more(app: EdgeApp, frames: int, what: str) -> None:
    """Wait until every camera published ``frames`` more frames than it has now."""
    start = {camera_id: camera.published for camera_id, camera in app.runtime.cameras.items()}
    wait_until(
        lambda: all(
            camera.published >= start[camera_id] + frames
            for camera_id, camera in app.runtime.cameras.items()
        ),
        what=what,
    )


def _frame_keys(settings) -> set[str]:
    s3 = settings.client("s3")
    return {
        obj["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(
            Bucket=settings.resources.bucket, Prefix="frames/dev-1/"
        )
        for obj in page.get("Contents", [])
    }


def _check_delivered_once_in_order(payloads: list[DetectionPayload], final: Heartbeat) -> None:
    for camera_id, health in final.cameras.items():
        sent = [p for p in payloads if p.camera_id == camera_id]
        captured = [p.captured_at for p in sent]
        assert captured == sorted(captured) and len(set(captured)) == len(captured), "in order"
        assert len({p.payload_id for p in sent}) == len(sent), "once"
        assert len(sent) == health.frames_published, f"every payload of {camera_id} delivered"


def test_a_full_disk_keeps_cameras_analysing_keeps_payloads_and_reports_degraded(
    small_disk, make_device_config, tmp_path
):
    """GIVEN a device offline with a spool bounded at 500 MB on a 512 KiB disk, WHEN the disk
    fills, THEN the cameras keep analysing and publishing, old frames are evicted (never a
    payload) and the heartbeat reports the spool's error; WHEN space returns, frames are kept
    again; WHEN the backend is back, everything kept is delivered once, in order, and the
    device is healthy again."""
    disk = small_disk(512 * 1024)
    port = free_port()
    stack = LocalStack(load_settings(state_dir=tmp_path / "stack", local_port=port, prefix="full"))
    settings = load_settings(prefix="full", endpoint_url=f"http://127.0.0.1:{port}")
    config = make_device_config(
        spool={"dir": str(disk.path / "spool"), "max_mb": 500, "fsync": False},
        control_source="none",
        backend_retry_max_s=1,
    )
    app = EdgeApp(config, settings=settings).start()
    spool = app.runtime.services.spool
    try:
        full = wait_until(
            lambda: (beat := app.runtime.heartbeat()).spool_error and beat.dropped.frames >= 3 and beat,
            what="frames evicted from a full disk and the heartbeat saying so",
        )  # fmt: skip
        assert "full" in full.spool_error and full.dropped.payloads == 0
        assert {health.state for health in full.cameras.values()} == {"running"}
        _publishing_more(app, 3, what="cameras publishing on a full disk")
        assert spool.dropped["payload"] == 0 and disk.free_bytes() < 64 * 1024

        disk.remount("size=64m")
        _publishing_more(app, 1, what="a frame published after space returned")
        dropped = spool.dropped
        _publishing_more(app, 3, what="cameras publishing with space again")
        assert spool.dropped == dropped, "nothing evicted once there is room"

        stack.up(runner=False)
        backend = stack.settings.model_copy(update={"endpoint_url": stack.endpoint_url})
        wait_until(
            lambda: spool.depth == 0 and app.runtime.heartbeat().spool_error is None,
            what="everything kept sent and the spool healthy again",
        )
        app.close()
        messages = DetectionsQueue(backend).receive_final_heartbeat("dev-1")
        stored_frames = _frame_keys(backend)
    finally:
        app.close()
        stack.down(snapshot=False)

    heartbeats = [m for m in messages if isinstance(m, Heartbeat)]
    payloads = [m for m in messages if isinstance(m, DetectionPayload)]
    final = heartbeats[-1]
    assert is_final_heartbeat(final, "dev-1") and final.spool_error is None
    assert [h.sent_at for h in heartbeats] == sorted(h.sent_at for h in heartbeats)
    assert any(h.spool_error and "full" in h.spool_error for h in heartbeats), "sent degraded"
    assert final.dropped.payloads == 0 and final.dropped.frames >= 3
    _check_delivered_once_in_order(payloads, final)
    evicted = {p.frame_key for p in payloads} - stored_frames
    assert len(evicted) == final.dropped.frames, "exactly the frames counted as dropped are lost"


def test_a_read_only_spool_at_start_keeps_the_device_running_and_reports_it(
    small_disk, make_device_config, backend, detections_queue, caplog
):
    """GIVEN a spool directory on a read-only disk, THEN the device starts, logs one line naming
    the directory, delivers what it publishes (held in memory meanwhile) and every heartbeat
    says why its spool cannot keep anything on disk."""
    disk = small_disk(64 * 1024, read_only=True)
    spool_dir = disk.path / "spool"
    config = make_device_config(spool={"dir": str(spool_dir)}, control_source="none")

    with caplog.at_level(logging.ERROR):
        app = EdgeApp(config, settings=backend).start()
    try:
        _publishing_more(app, 2, what="both cameras publishing")
        beat = app.runtime.heartbeat()
    finally:
        app.close()
    messages = detections_queue.receive_final_heartbeat("dev-1")

    errors = [r for r in caplog.records if r.levelno >= logging.ERROR and "edge_app" in r.name]
    assert len(errors) == 1 and str(spool_dir) in errors[0].getMessage()
    assert errors[0].exc_info is None, "one line, no traceback"
    assert "Read-only file system" in beat.spool_error and str(spool_dir) in beat.spool_error
    assert {health.state for health in beat.cameras.values()} == {"running"}
    heartbeats = [m for m in messages if isinstance(m, Heartbeat)]
    assert all("Read-only file system" in h.spool_error for h in heartbeats)
    _check_delivered_once_in_order(
        [m for m in messages if isinstance(m, DetectionPayload)], heartbeats[-1]
    )


def test_a_bad_camera_source_fails_that_camera_only(
    make_device_config, scene_video, backend, caplog
):
    """GIVEN a device whose second camera has an invalid source, THEN the app starts, one line
    names the camera and what is wrong, the camera is reported failed with that error, and the
    first camera runs."""
    good = {"uri": str(scene_video), "loop": True}
    config = make_device_config(
        cameras=[
            {"id": "cam-a", "source": good, "model": {"name": "shapes", "version": 1}},
            {
                "id": "cam-b",
                "source": {"uri": str(scene_video), "fps": -1},
                "model": {"name": "shapes", "version": 1},
            },
        ],
        control_source="none",
    )

    with caplog.at_level(logging.ERROR):
        app = EdgeApp(config, settings=backend).start()
    try:
        wait_until(lambda: app.runtime.cameras["cam-a"].published >= 2, what="camera a publishing")
        beat = app.runtime.heartbeat()
    finally:
        app.close()

    errors = [r for r in caplog.records if r.levelno >= logging.ERROR and "edge_app" in r.name]
    assert [r.getMessage() for r in errors] == [
        "camera cam-b: invalid source: source option fps must be a positive number or null, "
        "got -1; the other cameras run"
    ]
    assert errors[0].exc_info is None
    assert beat.cameras["cam-a"].state == "running"
    assert beat.cameras["cam-b"].state == "failed"
    assert beat.cameras["cam-b"].error == (
        "invalid source: source option fps must be a positive number or null, got -1"
    )


def test_a_bad_settings_value_stops_the_app_with_the_field_named(tmp_path, repo_root):
    config_file = tmp_path / "device.yaml"
    config_file.write_text(
        yaml.safe_dump(
            {
                "device_id": "dev-1",
                "cameras": [{"id": "cam-a", "source": "videos/a.mp4"}],
                "settings": {"target": "gcp", "region": "eu-west-1"},
            }
        )
    )

    result = subprocess.run(
        [sys.executable, "-m", "edge_app", "--config", str(config_file)],
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    problems = [line.strip() for line in result.stderr.splitlines()[1:]]
    assert problems == [
        "DeviceConfig.settings.target: Input should be 'local' or 'aws' (got 'gcp')"
    ]
