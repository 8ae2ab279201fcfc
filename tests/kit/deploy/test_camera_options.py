"""`kit deploy` cameras with their own options: `--camera-option ID.KEY=VALUE` and a cameras YAML
(`--cameras`), checked as the device checks them, one line per mistake; an image-folder camera
deployed from the command line runs and publishes."""

from __future__ import annotations

import argparse

import cv2
import numpy as np
import pytest

from kit.cli import run_command
from kit.core.settings import load_settings
from kit.deploy import LocalDevice, device_status
from kit.deploy.commands import add_commands, read_cameras_file
from tests.support.wait import wait_until


def kit(settings, *argv: str) -> int:
    """The command as `kit` runs it (its error handling included), with ``settings``."""
    parser = argparse.ArgumentParser(prog="kit")
    add_commands(parser.add_subparsers(dest="command", required=True))
    return run_command(parser.parse_args(argv), settings)


@pytest.fixture
def image_folder(tmp_path):
    folder = tmp_path / "door"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for index in range(2):
        image = rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)
        assert cv2.imwrite(str(folder / f"{index}.jpg"), image)
    return folder


@pytest.fixture
def offline_settings(tmp_path):
    """Settings of a local target nothing runs for: a mistake must be refused before any call."""
    return load_settings(state_dir=tmp_path / "state", local_port=1, prefix="evkcams")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--camera", "door=door/", "--camera-option", "door.lop=true"],
            "camera 'door': unknown option 'lop'; allowed: decode_threads, fastest, fps, kind, "
            "loop, process_fps",
        ),
        (
            ["--camera", "door=door/", "--camera-option", "door.loop=maybe"],
            "camera 'door': source option loop must be true or false, got 'maybe'",
        ),
        (
            ["--camera", "door=door/", "--camera-option", "door.fps=-5"],
            "camera 'door': source option fps must be a positive number or null, got -5",
        ),
        (
            ["--camera", "door=door/", "--camera-option", "door.process_fps=500"],
            "camera 'door': process_fps: Input should be less than or equal to 120 (got 500)",
        ),
        (
            ["--camera", "dock=rtsp://10.0.0.7/live", "--camera-option", "dock.loop=true"],
            "camera 'dock': source option loop applies to files and image folders only",
        ),
        (
            ["--camera", "door=door/", "--camera-option", "gate.loop=true"],
            "camera option 'gate.loop=true' names camera 'gate', which no --camera or --cameras "
            "gives; cameras: door",
        ),
        (
            ["--camera", "door=door/", "--camera-option", "loop=true"],
            "camera option 'loop=true' must be written <camera>.<key>=<value>",
        ),
        (
            ["--camera", "door=door/", "--camera", "door=other/"],
            "camera 'door' is given twice",
        ),
    ],
    ids=[
        "unknown key",
        "not a bool",
        "negative fps",
        "process fps too high",
        "loop on a stream",
        "unknown camera",
        "no camera",
        "twice",
    ],
)
def test_a_bad_camera_option_is_one_line_naming_the_camera_and_what_is_allowed(
    offline_settings, capsys, argv, message
):
    assert kit(offline_settings, "deploy", "--device", "x1", "--no-start", *argv) == 2
    captured = capsys.readouterr()
    assert message in captured.err
    assert len(captured.err.strip().splitlines()) == 1 and "Traceback" not in captured.err


def test_a_bad_cameras_file_is_one_line(offline_settings, tmp_path, capsys):
    cameras = tmp_path / "cameras.yaml"
    cameras.write_text("- {id: door, loop: true}\n")
    assert kit(offline_settings, "deploy", "--no-start", "--cameras", str(cameras)) == 2
    assert (
        "camera door: needs an id and a source (got ['loop'] besides the id)"
        in capsys.readouterr().err
    )
    cameras.write_text("door: {source: door/, fps: fast}\n")
    assert kit(offline_settings, "deploy", "--no-start", "--cameras", str(cameras)) == 2
    assert "camera 'door': source option fps must be a positive number" in capsys.readouterr().err
    missing = tmp_path / "missing.yaml"
    assert kit(offline_settings, "deploy", "--no-start", "--cameras", str(missing)) == 2
    assert f"cameras file {missing} does not exist" in capsys.readouterr().err


def test_a_cameras_file_as_a_list_or_a_map_gives_the_same_cameras(tmp_path, image_folder):
    as_list = tmp_path / "list.yaml"
    as_list.write_text(
        "- {id: door, source: door/, loop: true, fps: 5, process_fps: 2}\n"
        "- {id: dock, source: {uri: 'rtsp://10.0.0.7/live', decode_threads: 2}}\n"
    )
    as_map = tmp_path / "map.yaml"
    as_map.write_text(
        "cameras:\n"
        "  door: {source: {uri: door/, loop: true}, fps: 5, process_fps: 2}\n"
        "  dock: {source: 'rtsp://10.0.0.7/live', decode_threads: 2}\n"
    )
    expected = [
        {
            "id": "door",
            "source": {"uri": f"{image_folder}/", "loop": True, "fps": 5},
            "process_fps": 2,
        },
        {"id": "dock", "source": {"uri": "rtsp://10.0.0.7/live", "decode_threads": 2}},
    ]
    assert read_cameras_file(as_list, local_paths=True) == expected
    assert read_cameras_file(as_map, local_paths=True) == expected
    assert read_cameras_file(as_list)[0]["source"]["uri"] == "door/", "a path on the device"


def test_an_image_folder_camera_deployed_from_the_command_line_runs_and_publishes(
    deploy_settings, registered_model, image_folder, tmp_path, monkeypatch, capsys
):
    cameras = tmp_path / "cameras.yaml"
    cameras.write_text("dock: {source: door/, fps: 4}\n")
    monkeypatch.chdir(tmp_path)
    code = kit(
        deploy_settings,
        "deploy",
        "--device",
        "cams-1",
        "--model",
        registered_model,
        "--camera",
        "door=door/",
        "--camera-option",
        "door.loop=true",
        "--camera-option",
        "door.process_fps=2",
        "--cameras",
        str(cameras),
        "--camera-option",
        "dock.loop=yes",
        "--heartbeat-s",
        "1",
        "--wait",
        "90",
    )
    device = LocalDevice(deploy_settings, "cams-1")
    try:
        assert code == 0, capsys.readouterr()
        assert device.configuration["cameras"] == [
            {"id": "dock", "source": {"uri": f"{image_folder}/", "fps": 4, "loop": True}},
            {"id": "door", "source": {"uri": f"{image_folder}/", "loop": True}, "process_fps": 2},
        ]
        detections = deploy_settings.client("dynamodb")
        wait_until(
            lambda: detections.query(
                TableName=deploy_settings.resources.detections_table,
                KeyConditionExpression="camera_id = :camera",
                ExpressionAttributeValues={":camera": {"S": "door"}},
            )["Items"],
            what="a payload of the image-folder camera",
        )
        status = next(s for s in device_status(deploy_settings) if s.device_id == "cams-1")
        assert {c.camera_id: c.state for c in status.cameras} == {
            "door": "running",
            "dock": "running",
        }
    finally:
        device.stop()
