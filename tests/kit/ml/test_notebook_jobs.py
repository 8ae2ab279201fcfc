"""What notebooks 2 and 3 send to SageMaker: the request shown is the one sent (recorded from the
client, then compared with what moto's SageMaker stored), the training base each choice travels
as, and Neo's targets by one word (a living default, Panorama still selectable)."""

from __future__ import annotations

import json
import tarfile

import pytest

from kit.compile import start_compilation_job
from kit.compile.neo import (
    DEFAULT_NEO_TARGET,
    PANORAMA_TARGET_DEVICE,
    neo_target,
    neo_target_devices,
    target_label,
)
from kit.demo_models import demo_model_files, register_demo_models
from kit.notebook import recorded_requests, sagemaker_training_base, training_base
from kit.train import start_training_job
from kit.train.local import PRETRAINED_BASE, WEIGHTS_FOLDER


def test_the_training_request_shown_is_the_one_sagemaker_received(backend_settings):
    register_demo_models(backend_settings, names=["shelf"])
    base_model, _ = training_base(backend_settings, "shelf", "production")

    with recorded_requests("sagemaker", "CreateTrainingJob") as sent:
        job = start_training_job(
            "datasets/shelf/v1/", epochs=3, imgsz=320, settings=backend_settings,
            **sagemaker_training_base(base_model),
        )  # fmt: skip

    assert len(sent) == 1 and sent[0]["TrainingJobName"] == job
    stored = backend_settings.client("sagemaker").describe_training_job(TrainingJobName=job)
    for key in ("HyperParameters", "InputDataConfig", "RoleArn", "ResourceConfig"):
        assert stored[key] == sent[0][key], key
    channels = {
        c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"]
        for c in sent[0]["InputDataConfig"]
    }
    bucket = backend_settings.resources.bucket
    assert channels["base"].startswith(f"s3://{bucket}/models/shelf/")
    assert json.loads(sent[0]["HyperParameters"]["model"]) == "base"


def test_nothing_is_recorded_outside_the_block_or_of_other_operations(backend_settings):
    sagemaker = backend_settings.client("sagemaker")
    with recorded_requests("sagemaker", "CreateCompilationJob") as sent:
        sagemaker.list_training_jobs()
    sagemaker.list_compilation_jobs()
    assert sent == []


def test_each_training_base_travels_to_sagemaker_as_it_should(backend_settings, tmp_path):
    assert sagemaker_training_base(PRETRAINED_BASE) == {"model": PRETRAINED_BASE}
    assert sagemaker_training_base("yolo11n.yaml") == {"model": "yolo11n.yaml"}
    assert sagemaker_training_base("shelf:3") == {"base": "shelf:3"}
    weights = str(demo_model_files("shelf")["pytorch"])
    assert sagemaker_training_base(weights) == {"base": weights}


def test_a_new_use_case_starts_from_yolo11n_when_this_machine_has_it(backend_settings):
    offline, why = training_base(backend_settings, "crate", "production")
    assert offline == str(demo_model_files("shelf")["pytorch"])
    assert "not on this machine (allow_downloads is off)" in why

    allowed = backend_settings.model_copy(update={"allow_downloads": True})
    assert training_base(allowed, "crate", "production")[0] == PRETRAINED_BASE

    weights = backend_settings.state_dir / WEIGHTS_FOLDER / PRETRAINED_BASE
    weights.parent.mkdir(parents=True, exist_ok=True)
    weights.write_bytes(b"a checkpoint copied from a machine with internet")
    try:
        here, why = training_base(backend_settings, "crate", "production")
    finally:
        weights.unlink()
    assert here == PRETRAINED_BASE and "COCO-pretrained" in why


def test_neo_defaults_to_a_living_target_and_panorama_stays_selectable():
    default = neo_target(DEFAULT_NEO_TARGET)
    assert default == {"target_platform": {"Os": "LINUX", "Arch": "X86_64"}}
    assert target_label(None, default["target_platform"]) == DEFAULT_NEO_TARGET
    assert neo_target(PANORAMA_TARGET_DEVICE) == {"target_device": "jetson_xavier"}
    assert PANORAMA_TARGET_DEVICE in neo_target_devices()
    nvidia = neo_target("linux_arm64_nvidia")["target_platform"]
    assert nvidia == {"Os": "LINUX", "Arch": "ARM64", "Accelerator": "NVIDIA"}
    for unknown in ("jetson_orin", "linux", "linux_x86_64_tpu"):
        with pytest.raises(ValueError, match=f"unknown Neo target '{unknown}'.*linux_x86_64"):
            neo_target(unknown)


def test_the_compilation_request_shown_is_the_one_sagemaker_received(backend_settings, tmp_path):
    model = tmp_path / "model.tar.gz"
    (tmp_path / "model.pth").write_bytes(b"torchscript")
    with tarfile.open(model, "w:gz") as tar:
        tar.add(tmp_path / "model.pth", arcname="model.pth")

    with recorded_requests("sagemaker", "CreateCompilationJob") as sent:
        job = start_compilation_job(
            model, imgsz=320, settings=backend_settings, **neo_target(DEFAULT_NEO_TARGET)
        )

    stored = backend_settings.client("sagemaker").describe_compilation_job(CompilationJobName=job)
    assert sent[0]["CompilationJobName"] == job
    assert sent[0]["OutputConfig"]["TargetPlatform"] == {"Os": "LINUX", "Arch": "X86_64"}
    assert stored["InputConfig"] == sent[0]["InputConfig"]
    assert stored["OutputConfig"]["S3OutputLocation"] == sent[0]["OutputConfig"]["S3OutputLocation"]
