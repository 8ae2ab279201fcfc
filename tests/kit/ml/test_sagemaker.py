"""SageMaker training: the entry script run locally, the job request's shape, moto round trips."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile

import boto3
import pytest
from botocore.stub import Stubber

from kit.core.settings import Settings
from kit.sagemaker import SOURCE_DIR, SOURCE_FILES
from kit.train import (
    TrainingJobError,
    TrainResult,
    build_training_job_request,
    dataset_uri,
    download_model_artifact,
    package_training_source,
    start_training_job,
    training_image_uri,
    wait_for_training_job,
)
from kit.train.sagemaker import LOCAL_ROLE_ARN, execution_role_arn

from .conftest import IMGSZ, SHAPE_CLASSES, make_shapes_dataset

STACK_ROLE = "arn:aws:iam::123456789012:role/evk-sagemaker"


def sm_environment(tmp_path, channel, base=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SM_", "YOLO_"))}
    env.update(
        SM_CHANNEL_TRAINING=str(channel),
        SM_MODEL_DIR=str(tmp_path / "model"),
        SM_CHECKPOINT_DIR=str(tmp_path / "checkpoints"),
        PYTHONPATH="",
    )
    if base is not None:
        env["SM_CHANNEL_BASE"] = str(base)
    return env


def test_entry_script_fine_tunes_from_the_base_channel_and_writes_the_model_dir(trained, tmp_path):
    """Run as SageMaker would: a relative data.yaml in the training channel, model.pt in base."""
    channel = tmp_path / "input" / "training"
    make_shapes_dataset(channel, n_train=8, n_val=4, relative=True, seed=1)
    base = tmp_path / "input" / "base"
    base.mkdir(parents=True)
    shutil.copyfile(trained.weights, base / "model.pt")
    # outside the repository, as in the container: only the script's own folder is importable
    script = shutil.copy(SOURCE_DIR / "train_entry.py", tmp_path / "train_entry.py")
    command = [
        sys.executable,
        script,
        "--epochs",
        "1",
        "--imgsz",
        str(IMGSZ),
        "--batch",
        "4",
        "--workers",
        "0",
        "--plots",
        "false",
        "--model",
        "base",
        "--sagemaker_extra",
        "x",
    ]
    env = sm_environment(tmp_path, channel, base)

    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "kit-metric epoch=1 mAP50=" in done.stdout
    assert "ignoring unknown arguments" in done.stderr

    result = TrainResult.from_dir(tmp_path / "model")
    assert result.weights == (tmp_path / "model" / "model.pt").resolve()
    assert result.classes == SHAPE_CLASSES and result.imgsz == IMGSZ
    assert result.base.endswith("base/model.pt")
    assert result.results_csv is not None and len(result.history()) == 1

    # a restarted job whose checkpoints hold the finished run only copies the outputs again
    shutil.rmtree(tmp_path / "model")
    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "finished run" in again.stdout
    assert (tmp_path / "model" / "model.pt").is_file()


def test_training_image_uri_per_region_and_instance():
    assert training_image_uri("eu-west-1") == (
        "763104351884.dkr.ecr.eu-west-1.amazonaws.com/"
        "pytorch-training:2.6.0-gpu-py312-cu126-ubuntu22.04-sagemaker"
    )
    assert training_image_uri("us-east-1", instance_type="ml.c5.2xlarge").endswith(
        ":2.6.0-cpu-py312-ubuntu22.04-sagemaker"
    )
    assert training_image_uri("af-south-1").startswith("626614931356.dkr.ecr.af-south-1.")
    assert ".amazonaws.com.cn/" in training_image_uri("cn-north-1")
    assert training_image_uri("mx-central-1").startswith("637423239942.dkr.ecr.mx-central-1.")
    with pytest.raises(
        ValueError, match="no AWS Deep Learning Containers registry .* 'us-iso-east-1'"
    ):
        training_image_uri("us-iso-east-1")


def test_jobs_run_with_the_stacks_execution_role_unless_told_otherwise():
    aws = Settings(target="aws", sagemaker_role_arn=STACK_ROLE)
    assert execution_role_arn(None, aws) == STACK_ROLE
    assert execution_role_arn("arn:aws:iam::1:role/mine", aws) == "arn:aws:iam::1:role/mine"
    assert execution_role_arn(None, Settings(target="local")) == LOCAL_ROLE_ARN
    with pytest.raises(ValueError, match="no SageMaker execution role.*`kit aws outputs`"):
        execution_role_arn(None, Settings(target="aws"))


def request(**overrides):
    arguments = dict(
        job_name="kit-train-shelf-1",
        role_arn="arn:aws:iam::123456789012:role/sm",
        bucket="evk-bucket",
        region="eu-west-1",
        dataset="datasets/shelf/v2/",
        source_uri="s3://evk-bucket/training-jobs/kit-train-shelf-1/source/sourcedir.tar.gz",
    )
    return build_training_job_request(**{**arguments, **overrides})


def test_request_shape_is_valid_for_the_sagemaker_api():
    kwargs = request(epochs=80, imgsz=320, base_model_uri="s3://evk-bucket/models/shelf/3/model.pt")

    # botocore validates the arguments against the SageMaker service model, offline
    client = boto3.client(
        "sagemaker", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    with Stubber(client) as stub:
        stub.add_response("create_training_job", {"TrainingJobArn": "arn:x"}, kwargs)
        client.create_training_job(**kwargs)

    hyper = {k: json.loads(v) for k, v in kwargs["HyperParameters"].items()}
    assert hyper["sagemaker_program"] == "train_entry.py"
    assert hyper["sagemaker_submit_directory"].endswith("/source/sourcedir.tar.gz")
    assert (hyper["epochs"], hyper["imgsz"], hyper["model"]) == (80, 320, "base")
    channels = {
        c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"]
        for c in kwargs["InputDataConfig"]
    }
    assert channels == {
        "training": "s3://evk-bucket/datasets/shelf/v2/",
        "base": "s3://evk-bucket/models/shelf/3/model.pt",
    }
    assert kwargs["OutputDataConfig"]["S3OutputPath"] == "s3://evk-bucket/training-jobs/"
    assert kwargs["CheckpointConfig"]["LocalPath"] == "/opt/ml/checkpoints"
    assert kwargs["ResourceConfig"]["InstanceType"] == "ml.g4dn.xlarge"
    assert "pytorch-training:2.6.0-gpu" in kwargs["AlgorithmSpecification"]["TrainingImage"]
    assert kwargs["StoppingCondition"] == {"MaxRuntimeInSeconds": 4 * 3600}
    assert "MaxWaitTimeInSeconds" in request(spot=True)["StoppingCondition"]


def test_request_arguments_are_checked():
    with pytest.raises(ValueError, match="job name"):
        request(job_name="bad_name!")
    with pytest.raises(ValueError, match="multiple of 32"):
        request(imgsz=300)
    with pytest.raises(ValueError, match="s3:// URI"):
        request(source_uri="sourcedir.tar.gz")
    with pytest.raises(ValueError, match="datasets/<name>/<version>/"):
        request(dataset="shelf")
    assert dataset_uri("shelf/v1", "b") == "s3://b/datasets/shelf/v1/"
    assert dataset_uri("s3://other/x/y", "b") == "s3://other/x/y/"


def test_source_archive_holds_the_entry_script_and_requirements(tmp_path):
    archive = package_training_source(tmp_path / "sourcedir.tar.gz")
    with tarfile.open(archive) as tar:
        assert sorted(tar.getnames()) == sorted(SOURCE_FILES)
        requirements = tar.extractfile("requirements.txt").read().decode()
    assert "ultralytics==" in requirements


def test_start_wait_and_download_on_moto(backend_settings, trained, tmp_path):
    s3 = backend_settings.client("s3")
    bucket = backend_settings.resources.bucket
    job = start_training_job(
        "datasets/shapes/v1/",
        base=trained.weights,
        settings=backend_settings,
        epochs=3,
        job_name="kit-train-shapes-test",
    )
    described = wait_for_training_job(job, poll_s=0, progress=False, settings=backend_settings)
    assert described["TrainingJobStatus"] == "Completed"
    hyper = {k: json.loads(v) for k, v in described["HyperParameters"].items()}
    assert hyper["epochs"] == 3 and hyper["model"] == "base"
    keys = {
        o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="training-jobs/")["Contents"]
    }
    assert keys == {
        f"training-jobs/{job}/source/sourcedir.tar.gz",
        f"training-jobs/{job}/base/model.pt",
    }

    # what SageMaker would write at the end of the job: the entry script's model dir, packed
    artefact = io.BytesIO()
    with tarfile.open(fileobj=artefact, mode="w:gz") as tar:
        tar.add(trained.weights, arcname="model.pt")
        summary = {
            **json.loads((trained.save_dir / "metrics.json").read_text()),
            "save_dir": ".",
            "weights": "model.pt",
        }
        data = json.dumps(summary).encode()
        info = tarfile.TarInfo("metrics.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    uri = described["ModelArtifacts"]["S3ModelArtifacts"]
    assert uri == f"s3://{bucket}/training-jobs/{job}/output/model.tar.gz"
    s3.put_object(Bucket=bucket, Key=uri.split(f"{bucket}/", 1)[1], Body=artefact.getvalue())

    result = download_model_artifact(job, tmp_path, settings=backend_settings)
    assert result.weights == (tmp_path / job / "model.pt").resolve()
    assert result.metrics == trained.metrics and result.classes == SHAPE_CLASSES


def test_registered_base_is_read_in_place_with_the_settings_role(backend_settings, trained):
    trained.register("shapes", settings=backend_settings)
    with_role = backend_settings.model_copy(update={"sagemaker_role_arn": STACK_ROLE})
    job = start_training_job("shapes/v1", base="shapes:latest", settings=with_role)
    described = backend_settings.client("sagemaker").describe_training_job(TrainingJobName=job)
    assert described["RoleArn"] == STACK_ROLE
    channels = {
        c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"]
        for c in described["InputDataConfig"]
    }
    assert channels["base"] == f"s3://{backend_settings.resources.bucket}/models/shapes/1/model.pt"


def test_a_failed_job_raises_with_its_reason():
    client = boto3.client(
        "sagemaker", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    base = {
        "TrainingJobName": "j",
        "TrainingJobArn": "arn:aws:sagemaker:eu-west-1:1:training-job/j",
        "AlgorithmSpecification": {"TrainingInputMode": "File"},
        "ModelArtifacts": {"S3ModelArtifacts": ""},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        "StoppingCondition": {},
        "CreationTime": "2026-01-01T00:00:00Z",
    }
    seen = []
    with Stubber(client) as stub:
        stub.add_response(
            "describe_training_job",
            {
                **base,
                "TrainingJobStatus": "InProgress",
                "SecondaryStatus": "Training",
                "SecondaryStatusTransitions": [
                    {
                        "Status": "Training",
                        "StartTime": "2026-01-01T00:00:00Z",
                        "StatusMessage": "Training image download completed.",
                    }
                ],
            },
        )
        stub.add_response(
            "describe_training_job",
            {
                **base,
                "TrainingJobStatus": "Failed",
                "SecondaryStatus": "Failed",
                "FailureReason": "AlgorithmError: no data.yaml",
            },
        )
        with pytest.raises(TrainingJobError, match="failed: AlgorithmError: no data.yaml"):
            wait_for_training_job(
                "j",
                poll_s=0,
                client=client,
                progress=True,
                on_status=lambda d: seen.append(d["TrainingJobStatus"]),
            )
    assert seen == ["InProgress", "Failed"]
