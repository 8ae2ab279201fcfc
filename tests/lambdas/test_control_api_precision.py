"""The control API refuses ``precision: int8`` for a model version without an INT8 format (issue
19), and stores it for one that has one (GIVEN / WHEN / THEN)."""

from __future__ import annotations

import json

import pytest

ARTIFACT = {"sha256": "0" * 64, "size_bytes": 1}


def register(harness, name: str, version: int, formats: list[str]) -> None:
    """A model version in the bucket as the registry writes it (metadata is all the API reads)."""
    body = {
        "name": name,
        "version": version,
        "classes": ["bottle"],
        "input_size": 320,
        "formats": {fmt: {"file": f"model_{fmt}", **ARTIFACT} for fmt in formats},
    }
    harness.services.s3.put_object(
        Bucket=harness.settings.resources.bucket,
        Key=f"models/{name}/{version}/metadata.json",
        Body=json.dumps(body).encode(),
    )


@pytest.fixture
def models(harness):
    """shelf:1 is FP32 only; shelf:2 has onnx_int8, shelf:3 openvino_int8."""
    register(harness, "shelf", 1, ["pytorch", "onnx"])
    register(harness, "shelf", 2, ["pytorch", "onnx", "onnx_int8"])
    register(harness, "shelf", 3, ["pytorch", "openvino", "openvino_int8"])
    return harness


def test_int8_on_a_version_without_an_int8_format_is_422_naming_its_formats(models):
    camera = {"model": {"name": "shelf", "version": 1}, "precision": "int8"}

    status, body = models.api("PUT", "/config/shelf-1", body=camera)

    assert status == 422 and body["error"] == "unprocessable"
    (problem,) = body["problems"]
    assert problem["field"] == "cameras.shelf-1.precision" and problem["value"] == "int8"
    assert "shelf:1 has no INT8 format (formats: pytorch, onnx)" in problem["allowed"]
    assert "kit models quantize shelf:1" in problem["allowed"]
    assert body["message"].startswith("no INT8 model:")
    assert models.store.get_config().revision == 0


@pytest.mark.parametrize("version", [2, 3])
def test_int8_on_a_version_with_an_int8_format_of_either_backend_is_stored(models, version):
    camera = {"model": {"name": "shelf", "version": version}, "precision": "int8"}

    status, body = models.api("PUT", "/config/shelf-1", body=camera)

    assert status == 200 and body["settings"]["precision"] == "int8"
    assert models.store.get_config().for_camera("shelf-1").precision == "int8"


def test_a_camera_switching_to_a_model_without_int8_is_refused_against_the_defaults(models):
    """The defaults ask for int8 on shelf:2; a camera of its own on shelf:1 inherits int8."""
    config = {"defaults": {"model": {"name": "shelf", "version": 2}, "precision": "int8"}}
    status, _ = models.api("PUT", "/config", body=config)
    assert status == 200

    status, body = models.api(
        "PUT", "/config/shelf-1", body={"model": {"name": "shelf", "version": 1}}
    )

    assert status == 422
    assert [p["field"] for p in body["problems"]] == ["defaults.precision"]
    status, _ = models.api(
        "PUT",
        "/config/shelf-1",
        body={"model": {"name": "shelf", "version": 1}, "precision": "fp32"},
    )
    assert status == 200


def test_a_whole_config_is_checked_for_its_defaults_and_cameras(models):
    config = {
        "defaults": {"model": {"name": "shelf", "version": 1}, "precision": "int8"},
        "cameras": {"shelf-1": {"model": {"name": "shelf", "version": 3}}, "shelf-2": {}},
    }

    status, body = models.api("PUT", "/config", body=config)

    assert status == 422
    assert [p["field"] for p in body["problems"]] == ["defaults.precision"]


def test_an_unknown_precision_is_refused_naming_what_is_allowed(models):
    status, body = models.api("PUT", "/config/shelf-1", body={"precision": "int4"})

    assert status == 400
    assert body["problems"][0]["field"].endswith("precision")
    assert "fp32" in body["problems"][0]["allowed"] and "int8" in body["problems"][0]["allowed"]
