"""A local deploy end to end: bundle -> device folder -> running app -> backend -> status -> stop."""

from __future__ import annotations

import psutil
import pytest

from kit.deploy import DeviceError, LocalDevice, deploy_local, device_status
from kit.package import build_bundle, device_config, verify_bundle
from tests.support.wait import process_tree, wait_until, wait_until_exited


def _status(settings, device_id):
    return next((s for s in device_status(settings) if s.device_id == device_id), None)


def _detections(settings, camera_id: str) -> list[dict]:
    response = settings.client("dynamodb").query(
        TableName=settings.resources.detections_table,
        KeyConditionExpression="camera_id = :camera",
        ExpressionAttributeValues={":camera": {"S": camera_id}},
    )
    return response["Items"]


def test_deployed_app_runs_publishes_reports_and_stops(
    deploy_settings, registered_model, scenario_video
):
    camera = {
        "id": "shelf-1",
        "source": {"uri": str(scenario_video), "loop": True},
        "process_fps": 5,
    }

    deployment = deploy_local(
        deploy_settings, "demo-1", model=registered_model, cameras=[camera], heartbeat_s=1
    )
    device = LocalDevice(deploy_settings, "demo-1")
    try:
        group = _check_running_app(deploy_settings, device, deployment, registered_model)
    finally:
        stopped = device.stop()

    assert stopped is True
    wait_until_exited(group, what="the app and its children")
    assert not device.process_record().is_alive()
    status = _status(deploy_settings, "demo-1")
    assert status.health == "STOPPED" and status.process["state"] == "stopped"
    # the app's last heartbeat (cameras stopped) reaches the backend as well
    wait_until(
        lambda: (
            (s := _status(deploy_settings, "demo-1")).cameras and s.cameras[0].state == "stopped"
        ),
        what="the final heartbeat",
    )
    assert device.stop() is False


def _check_running_app(settings, device, deployment, model) -> list[psutil.Process]:
    """The device received the bundle, runs it as the recipe's Run step says, and reports."""
    assert verify_bundle(device.directory / "bundle" / deployment.bundle.path.name)
    assert device.deployment["bundle_sha256"] == deployment.bundle.sha256
    assert device.deployment["model"] == model
    assert deployment.process.is_alive()
    process = psutil.Process(deployment.process.pid)
    # sh writes the config, then execs the app in the same process
    wait_until(lambda: process.cmdline()[1:3] == ["-m", "edge_app"], what="the exec of the app")
    assert process.environ()["PYTHONPATH"] == str(device.current)
    assert process.cwd() == str(device.work_dir)
    assert process.cmdline()[1:] == [
        "-m",
        "edge_app",
        "--config",
        str(device.work_dir / "device.json"),
        "--log-level",
        "INFO",
    ]

    status = wait_until(
        lambda: (
            (s := _status(settings, "demo-1"))
            and s.health == "RUNNING"
            and s.cameras
            and s.cameras[0].fps > 0
            and s.cameras[0].frames_published > 0
            and s
        ),
        120,
        what="demo-1 RUNNING with a published frame",
    )
    assert status.target == "local" and status.process["state"] == "running"
    assert status.heartbeat_age_s is not None and status.last_heartbeat_at is not None
    # the heartbeats keep coming (heartbeat_s=1), whatever their pace on a busy machine
    wait_until(
        lambda: _status(settings, "demo-1").last_heartbeat_at != status.last_heartbeat_at,
        what="the next heartbeat of demo-1",
    )
    assert status.cameras[0].camera_id == "shelf-1"
    assert status.cameras[0].model == model
    assert status.deployed["bundle_sha256"] == deployment.bundle.sha256

    rows = wait_until(lambda: _detections(settings, "shelf-1"), what="detections of shelf-1")
    assert rows[0]["device_id"]["S"] == "demo-1"
    frames = settings.client("s3").list_objects_v2(
        Bucket=settings.resources.bucket, Prefix="frames/demo-1/shelf-1/"
    )
    assert frames["KeyCount"] > 0
    return process_tree(process.pid)


def test_redeploy_keeps_the_previous_bundle_for_rollback(deploy_settings, scenario_video, tmp_path):
    camera = {
        "id": "gate-1",
        "source": {"uri": str(scenario_video), "loop": True},
        "process_fps": 2,
    }
    first = deploy_local(deploy_settings, "rollback-1", cameras=[camera], start=False)
    with pytest.raises(DeviceError, match="rollback-1 has no previous bundle"):
        LocalDevice(deploy_settings, "rollback-1").rollback()
    second_config = device_config("rollback-1", [camera], heartbeat_s=3)
    second = build_bundle(tmp_path, device_config=second_config)
    deploy_local(deploy_settings, "rollback-1", cameras=[camera], bundle=second, start=False)
    device = LocalDevice(deploy_settings, "rollback-1")
    assert device.deployment["bundle_sha256"] == second.sha256
    assert device.deployment["previous"]["bundle_sha256"] == first.bundle.sha256
    assert (device.previous / "manifest.json").is_file()

    record = device.rollback()
    started: list[psutil.Process] = []
    try:
        assert device.deployment["bundle_sha256"] == first.bundle.sha256
        assert verify_bundle(device.directory / "bundle" / second.path.name)
        assert record.is_alive()
        started += process_tree(record.pid)
        restarted = device.restart()
        assert restarted.pid != record.pid and restarted.is_alive() and not record.is_alive()
        started += process_tree(restarted.pid)
    finally:
        device.stop()
    wait_until_exited(started, what="the rolled-back and the restarted app")
    assert device.process_state() == "stopped"
    device.remove()
    assert not device.directory.exists()


def test_an_app_that_exits_is_an_error_with_its_reason(deploy_settings, scenario_video, tmp_path):
    camera = {"id": "cam-x", "source": str(scenario_video)}
    bundle = build_bundle(tmp_path, device_config=device_config("broken-1", [camera]))
    device = LocalDevice(deploy_settings, "broken-1")
    device.install(bundle, {"cameras": [{"id": "cam x", "source": "x"}]}, model=None)
    device.start()
    status = wait_until(
        lambda: (s := _status(deploy_settings, "broken-1")) and s.health == "ERROR" and s,
        what="broken-1 to exit",
    )
    assert status.process["state"] == "exited"
    assert "the device config is invalid" in status.reason


def test_deployed_but_never_started_is_stopped(deploy_settings, scenario_video):
    deploy_local(
        deploy_settings, "idle-1", cameras=[{"id": "c", "source": str(scenario_video)}], start=False
    )
    status = _status(deploy_settings, "idle-1")
    assert (status.health, status.reason) == ("STOPPED", "deployed, never started")


def test_device_ids_are_checked(deploy_settings):
    with pytest.raises(DeviceError, match="device id 'bad id' must be 1-64 characters"):
        LocalDevice(deploy_settings, "bad id")
    with pytest.raises(DeviceError, match="nothing is deployed on ghost-1"):
        LocalDevice(deploy_settings, "ghost-1").start()
