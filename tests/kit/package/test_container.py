"""The container build context: Dockerfile text for Linux and Jetson, validated without Docker."""

from __future__ import annotations

import json
import re

import pytest

from kit.package import (
    DockerfileError,
    build_container_context,
    check_dockerfile,
    dockerfile,
    validate_dockerfile,
)
from kit.package.container import entrypoint


@pytest.mark.parametrize(
    ("platform", "base"), [("linux", r"python:3\.11-slim"), ("jetson", r"nvcr\.io/nvidia/l4t-")]
)
def test_context_holds_a_valid_dockerfile_and_the_bundle(tmp_path, bundle, platform, base):
    context = build_container_context(tmp_path, bundle, platform=platform)
    text = context.dockerfile.read_text()
    assert validate_dockerfile(text, bundle_file=bundle.path.name, platform=platform) == []
    assert re.search(rf"^FROM {base}", text, re.MULTILINE)
    assert f"COPY {bundle.path.name} /tmp/{bundle.path.name}" in text
    assert "pip install --no-cache-dir -r /app/requirements.txt" in text
    assert context.bundle.read_bytes() == bundle.path.read_bytes()
    entry = [line for line in text.splitlines() if line.startswith("ENTRYPOINT")]
    assert json.loads(entry[0].split(" ", 1)[1])[1:] == [
        "-m",
        "edge_app",
        "--config",
        "/config/device.yaml",
    ]
    assert (tmp_path / ".dockerignore").read_text() == f"*\n!{bundle.path.name}\n"
    assert bundle.app_version in context.image
    if platform == "jetson":
        assert "--platform linux/arm64" in context.build_command


def test_entrypoint_is_the_edge_app():
    assert entrypoint() == ["python", "-m", "edge_app", "--config", "/config/device.yaml"]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda t: t.replace("FROM python:3.11-slim-bookworm", "FROM ubuntu:24.04"),
            "base image 'ubuntu:24.04'",
        ),
        (
            lambda t: t.replace("-r /app/requirements.txt", "-r /app/requirements.txt torch"),
            "install the bundle's edge requirements only",
        ),
        (
            lambda t: t.replace("COPY evk-edge-app.zip", "COPY other.zip"),
            "is never copied into the image",
        ),
        (
            lambda t: t.replace('["python", "-m", "edge_app"', '["python", "-m", "kit.cli"'),
            "ENTRYPOINT",
        ),
        (lambda t: t + "RUN pip install ultralytics\n", "'ultralytics' appears in the Dockerfile"),
        (lambda t: t + "COPY kit /app/kit\n", "only the bundle goes into the image"),
        (lambda t: t + "FROM python:3.11-slim\n", "exactly one FROM"),
    ],
)
def test_broken_dockerfiles_fail_with_a_clear_message(edit, message):
    text = edit(dockerfile("evk-edge-app.zip"))
    problems = validate_dockerfile(text, bundle_file="evk-edge-app.zip", platform="linux")
    assert any(message in problem for problem in problems), problems
    with pytest.raises(DockerfileError, match="invalid edge Dockerfile"):
        check_dockerfile(text, bundle_file="evk-edge-app.zip")


def test_unknown_platform_is_refused():
    with pytest.raises(ValueError, match="platform 'windows' is not one of linux, jetson"):
        dockerfile("evk-edge-app.zip", platform="windows")
