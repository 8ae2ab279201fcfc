"""Fixtures for package tests: one small edge bundle built for the session."""

from __future__ import annotations

from pathlib import Path

import pytest

from kit.package import Bundle, build_bundle, device_config, parse_camera


@pytest.fixture(scope="session")
def model_file(tmp_path_factory) -> Path:
    """Bytes standing in for an ONNX file: packages copy and hash model files, never load them."""
    path = tmp_path_factory.mktemp("package-model") / "best.onnx"
    path.write_bytes(b"\x08\x07" + bytes(range(256)) * 64)
    return path


@pytest.fixture(scope="session")
def video_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("package-video") / "clip.mp4"
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 512)
    return path


@pytest.fixture(scope="session")
def bundle_config() -> dict:
    return device_config(
        "line-7",
        [
            parse_camera("dock=rtsp://10.0.0.7/live"),
            {"id": "demo-1", "source": {"uri": "videos/demo-1.mp4", "loop": True}},
        ],
        model="shelf:3",
        settings={"target": "aws", "region": "eu-west-1", "prefix": "evk"},
        heartbeat_s=5,
    )


@pytest.fixture(scope="session")
def bundle(tmp_path_factory, bundle_config, model_file, video_file) -> Bundle:
    """The edge bundle for a device with a shipped model and a demo video."""
    return build_bundle(
        tmp_path_factory.mktemp("bundle"),
        device_config=bundle_config,
        models={"shelf:3": model_file},
        videos={"demo-1": video_file},
    )
