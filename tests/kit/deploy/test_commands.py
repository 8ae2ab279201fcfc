"""The package / deploy / devices / device commands, as ``kit`` runs them."""

from __future__ import annotations

import argparse
import json

import pytest

from kit.cli import run_command
from kit.deploy.commands import add_commands
from kit.package import validate_dockerfile, validate_panorama_app, validate_recipe


def kit(settings, *argv: str) -> int:
    """The command as `kit` runs it (its error handling included), with ``settings``."""
    parser = argparse.ArgumentParser(prog="kit")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return run_command(args, settings)


def test_package_greengrass_writes_a_valid_recipe(
    deploy_settings, registered_model, tmp_path, capsys
):
    out = tmp_path / "gg"
    assert (
        kit(
            deploy_settings,
            "package",
            "greengrass",
            "--out",
            str(out),
            "--model",
            registered_model,
            "--camera",
            "dock=rtsp://10.0.0.7/live",
        )
        == 0
    )
    recipe = json.loads((out / "recipe.json").read_text())
    assert validate_recipe(recipe) == []
    assert recipe["ComponentVersion"] == "0.1.0"
    defaults = recipe["ComponentConfiguration"]["DefaultConfiguration"]
    assert defaults["model"] == registered_model and defaults["settings"]["target"] == "aws"
    assert "recipe:" in capsys.readouterr().out


def test_package_container_for_jetson(deploy_settings, tmp_path, capsys):
    out = tmp_path / "ctr"
    assert (
        kit(
            deploy_settings,
            "package",
            "container",
            "--platform",
            "jetson",
            "--out",
            str(out),
            "--camera",
            "dock=rtsp://10.0.0.7/live",
        )
        == 0
    )
    assert (
        validate_dockerfile(
            (out / "Dockerfile").read_text(), bundle_file="evk-edge-app.zip", platform="jetson"
        )
        == []
    )
    assert "docker buildx build --platform linux/arm64" in capsys.readouterr().out


def test_package_panorama_with_a_model_node(deploy_settings, registered_model, tmp_path):
    out = tmp_path / "pano"
    assert (
        kit(
            deploy_settings,
            "package",
            "panorama",
            "--out",
            str(out),
            "--model",
            registered_model,
            "--camera",
            "door=panorama:camera_node",
        )
        == 0
    )
    assert validate_panorama_app(out / "evk_edge_app") == []
    descriptor = json.loads(
        (
            out
            / "evk_edge_app"
            / "packages"
            / "123456789012-evk_edge_app_model-1.0"
            / "descriptor.json"
        ).read_text()
    )
    from kit.registry import ModelRegistry

    size = ModelRegistry.from_settings(deploy_settings).get(registered_model).input_size
    assert descriptor["mlModelDescriptor"]["inputs"][0]["shape"] == [1, 3, size, size]


def test_user_errors_are_one_line_messages(deploy_settings, capsys):
    assert kit(deploy_settings, "package", "bundle", "--camera", "no-equals-sign") == 2
    assert "must be written <id>=<source>" in capsys.readouterr().err
    assert kit(deploy_settings, "deploy", "--target", "panorama") == 2
    assert "--target panorama needs --app-dir" in capsys.readouterr().err
    assert (
        kit(deploy_settings, "deploy", "--device", "x1", "--model", "nosuchmodel", "--no-start")
        == 2
    )
    assert "no model named 'nosuchmodel'" in capsys.readouterr().err
    assert kit(deploy_settings, "device", "stop", "ghost-9") == 2
    assert "no local device 'ghost-9'" in capsys.readouterr().err


def test_deploy_local_then_devices_shows_it_running(
    deploy_settings, registered_model, scenario_video, capsys
):
    code = kit(
        deploy_settings,
        "deploy",
        "--target",
        "local",
        "--device",
        "cli-1",
        "--model",
        registered_model,
        "--camera",
        f"shelf-9={scenario_video}",
        "--heartbeat-s",
        "1",
        "--wait",
        "60",
    )
    try:
        assert code == 0, capsys.readouterr()
        assert "started the edge app" in capsys.readouterr().out
        assert kit(deploy_settings, "devices", "--json") == 0
        devices = {d["device_id"]: d for d in json.loads(capsys.readouterr().out)["devices"]}
        assert devices["cli-1"]["health"] == "RUNNING"
        assert devices["cli-1"]["cameras"][0]["camera_id"] == "shelf-9"
        assert devices["cli-1"]["cameras"][0]["fps"] > 0
        assert kit(deploy_settings, "device", "status", "cli-1") == 0
        assert "cli-1" in capsys.readouterr().out
        assert kit(deploy_settings, "device", "logs", "cli-1", "--lines", "50") == 0
        assert "edge app cli-1 started" in capsys.readouterr().out
    finally:
        assert kit(deploy_settings, "device", "stop", "cli-1") == 0
    assert "cli-1: stopped" in capsys.readouterr().out
    assert kit(deploy_settings, "device", "status", "cli-1") == 3


@pytest.mark.parametrize("kind", ["bundle", "greengrass", "container", "panorama"])
def test_every_package_kind_is_offered(kind):
    parser = argparse.ArgumentParser(prog="kit")
    add_commands(parser.add_subparsers(dest="command", required=True))
    assert parser.parse_args(["package", kind]).kind == kind


def test_an_unreachable_backend_is_named(deploy_settings, tmp_path, capsys):
    offline = deploy_settings.model_copy(
        update={"endpoint_url": "http://127.0.0.1:9", "state_dir": tmp_path}
    )
    assert kit(offline, "deploy", "--device", "x2", "--model", "tiny:1", "--no-start") == 2
    assert "cannot reach http://127.0.0.1:9" in capsys.readouterr().err
