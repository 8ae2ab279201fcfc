"""SageMaker Neo: the compilation request's shape, targets, and a moto round trip."""

from __future__ import annotations

import json
import tarfile

import boto3
import pytest
from botocore.stub import Stubber

from kit.compile import (
    CompilationJobError,
    build_compilation_job_request,
    download_compiled_model,
    neo_target_devices,
    package_for_neo,
    start_compilation_job,
    wait_for_compilation_job,
)


def sagemaker_client():
    return boto3.client(
        "sagemaker", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x"
    )


def request(**overrides):
    arguments = dict(
        job_name="kit-neo-1",
        role_arn="arn:aws:iam::123456789012:role/neo",
        model_uri="s3://b/compilation-jobs/kit-neo-1/model.tar.gz",
        output_uri="s3://b/compilation-jobs/kit-neo-1/output/",
        imgsz=320,
    )
    return build_compilation_job_request(**{**arguments, **overrides})


def test_panorama_request_shape_is_valid_for_the_sagemaker_api():
    kwargs = request(target_device="jetson_xavier")
    with Stubber(client := sagemaker_client()) as stub:
        stub.add_response("create_compilation_job", {"CompilationJobArn": "arn:x"}, kwargs)
        client.create_compilation_job(**kwargs)
    assert kwargs["InputConfig"]["Framework"] == "PYTORCH"
    assert kwargs["InputConfig"]["FrameworkVersion"] == "1.8"
    assert json.loads(kwargs["InputConfig"]["DataInputConfig"]) == {"input0": [1, 3, 320, 320]}
    assert kwargs["OutputConfig"] == {
        "S3OutputLocation": "s3://b/compilation-jobs/kit-neo-1/output/",
        "TargetDevice": "jetson_xavier",
    }


def test_greengrass_targets():
    devices = neo_target_devices()
    assert {"jetson_xavier", "jetson_nano", "rasp4b"} <= set(devices)

    onnx = request(framework="onnx", target_platform={"Os": "LINUX", "Arch": "X86_64"})
    assert onnx["OutputConfig"]["TargetPlatform"] == {"Os": "LINUX", "Arch": "X86_64"}
    assert json.loads(onnx["InputConfig"]["DataInputConfig"]) == {"images": [1, 3, 320, 320]}
    assert "FrameworkVersion" not in onnx["InputConfig"]

    jetson = request(
        target_device="jetson_nano",
        compiler_options={"gpu-code": "sm_53", "trt-ver": "5.0.6", "cuda-ver": "10.0"},
    )
    assert json.loads(jetson["OutputConfig"]["CompilerOptions"])["gpu-code"] == "sm_53"
    with Stubber(client := sagemaker_client()) as stub:
        for kwargs in (onnx, jetson):
            stub.add_response("create_compilation_job", {"CompilationJobArn": "arn:x"}, kwargs)
            client.create_compilation_job(**kwargs)


def test_bad_targets_list_what_is_allowed():
    with pytest.raises(ValueError, match="unknown Neo target device 'jetson_orin'.*jetson_xavier"):
        request(target_device="jetson_orin")
    with pytest.raises(ValueError, match="exactly one"):
        request()
    with pytest.raises(ValueError, match="exactly one"):
        request(target_device="rasp4b", target_platform={"Os": "LINUX", "Arch": "ARM64"})
    with pytest.raises(ValueError, match="Arch 'RISCV'.*X86_64"):
        request(target_platform={"Os": "LINUX", "Arch": "RISCV"})
    with pytest.raises(ValueError, match="needs 'Os' and 'Arch'"):
        request(target_platform={"Os": "LINUX"})
    with pytest.raises(ValueError, match="framework 'TFLITE'"):
        request(target_device="rasp4b", framework="tflite")


def test_package_for_neo_holds_one_traced_model(trained, tmp_path):
    archive = package_for_neo(trained.weights, framework="PYTORCH", output=tmp_path / "m.tar.gz")
    with tarfile.open(archive) as tar:
        assert tar.getnames() == ["model.pth"]
        assert tar.getmember("model.pth").size > 1_000_000


def test_start_wait_and_download_on_moto(backend_settings, tmp_path):
    model = tmp_path / "model.tar.gz"
    with tarfile.open(model, "w:gz") as tar:
        (tmp_path / "model.onnx").write_bytes(b"onnx")
        tar.add(tmp_path / "model.onnx", arcname="model.onnx")
    stack_role = "arn:aws:iam::123456789012:role/evk-sagemaker"
    job = start_compilation_job(
        model,
        target_device="jetson_xavier",
        framework="ONNX",
        imgsz=320,
        settings=backend_settings.model_copy(update={"sagemaker_role_arn": stack_role}),
        job_name="kit-neo-test",
    )
    described = wait_for_compilation_job(job, poll_s=0, progress=False, settings=backend_settings)
    assert described["RoleArn"] == stack_role, "the stack's SageMaker role by default"
    assert described["CompilationJobStatus"] == "COMPLETED"
    assert described["InputConfig"]["S3Uri"].endswith(f"compilation-jobs/{job}/model.tar.gz")

    bucket = backend_settings.resources.bucket
    s3 = backend_settings.client("s3")
    with pytest.raises(CompilationJobError, match="found none"):
        download_compiled_model(job, tmp_path / "out", settings=backend_settings)
    s3.put_object(
        Bucket=bucket,
        Key=f"compilation-jobs/{job}/output/model-jetson_xavier.tar.gz",
        Body=b"compiled",
    )
    local = download_compiled_model(job, tmp_path / "out", settings=backend_settings)
    assert local == tmp_path / "out" / job / "model-jetson_xavier.tar.gz"
    assert local.read_bytes() == b"compiled"
    with pytest.raises(ValueError, match="imgsz is required"):
        start_compilation_job(model, target_device="rasp4b", settings=backend_settings)


def test_a_failed_compilation_raises_with_its_reason():
    described = {
        "CompilationJobName": "j",
        "CompilationJobArn": "arn:aws:sagemaker:eu-west-1:1:compilation-job/j",
        "CompilationJobStatus": "FAILED",
        "FailureReason": "ClientError: unsupported operator",
        "StoppingCondition": {},
        "CreationTime": "2026-01-01T00:00:00Z",
        "LastModifiedTime": "2026-01-01T00:00:00Z",
        "ModelArtifacts": {"S3ModelArtifacts": "s3://b/o/"},
        "RoleArn": "arn:aws:iam::1:role/neo",
        "InputConfig": {"S3Uri": "s3://b/m.tar.gz", "Framework": "ONNX"},
        "OutputConfig": {"S3OutputLocation": "s3://b/o/"},
    }
    with Stubber(client := sagemaker_client()) as stub:
        stub.add_response("describe_compilation_job", described)
        with pytest.raises(CompilationJobError, match="unsupported operator"):
            wait_for_compilation_job("j", poll_s=0, client=client, progress=False)
