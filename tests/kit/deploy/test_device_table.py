"""`kit devices`' table: each camera's decoding and publishing rates, none for a camera that
receives no frames or whose device is stopped (its newest heartbeat predates the stop)."""

from __future__ import annotations

from kit.deploy.status import CameraStatus, DeviceStatus, format_devices


def _device(health: str, *cameras: CameraStatus, process: dict | None = None) -> DeviceStatus:
    return DeviceStatus(
        device_id="demo-1", health=health, uptime_s=100.0, cameras=list(cameras), process=process
    )


RUNNING = CameraStatus("shelf-1", "running", fps=9.8, frames_published=50)


def test_a_running_camera_shows_its_decoding_and_publishing_rates():
    table = format_devices([_device("RUNNING", RUNNING, process={"state": "running"})])
    assert "shelf-1 running 9.8 fps, publishes 0.5/s" in table


def test_a_stopped_camera_shows_no_rate():
    stopped = CameraStatus("pond-1", "stopped", fps=9.8, frames_published=50)
    table = format_devices([_device("RUNNING", RUNNING, stopped)])
    assert "pond-1 stopped" in table and "pond-1 stopped 9.8" not in table


def test_the_cameras_of_a_stopped_device_show_no_rate():
    table = format_devices([_device("STOPPED", RUNNING, process={"state": "stopped"})])
    assert "shelf-1 running" in table and "fps" not in table and "publishes" not in table
