"""Training on SageMaker: a PyTorch training container runs ``kit/sagemaker/train_entry.py``.

Bucket layout of a job (besides the dataset under ``datasets/<name>/<version>/``)::

    training-jobs/<job>/source/sourcedir.tar.gz   train_entry.py + requirements.txt
    training-jobs/<job>/base/model.pt             a local base model (registered ones are
                                                  read in place from models/<name>/<version>/)
    training-jobs/<job>/checkpoints/              the run folder, synced while training
    training-jobs/<job>/output/model.tar.gz       written by SageMaker: model.pt, metrics.json,
                                                  results.csv, plots

:func:`build_training_job_request` is a pure function (the boto3 ``create_training_job``
arguments); :func:`start_training_job` uploads what the job needs and calls it.

The job runs with the stack's SageMaker execution role (``sagemaker_role_arn`` in the settings,
written by ``kit aws outputs``) unless ``role_arn`` names another; its image is AWS's PyTorch
Deep Learning Container of the region (:func:`kit.aws.training_image_registry`).

Examples:
    >>> job = start_training_job("datasets/shelf/v1/", epochs=100)
    >>> wait_for_training_job(job)["TrainingJobStatus"]
    'Completed'
    >>> result = download_model_artifact(job)
    >>> result.metrics["mAP50"]
    0.95
"""

from __future__ import annotations

import json
import re
import tarfile
import tempfile
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kit.aws import (
    DATASETS_PREFIX,
    TRAINING_IMAGE_REPOSITORY,
    TRAINING_JOBS_PREFIX,
    training_image_registry,
)
from kit.jobs import poll_job
from kit.sagemaker import SOURCE_DIR, SOURCE_FILES
from kit.sagemaker.train_entry import WEIGHTS_FILE
from kit.train.local import PRETRAINED_BASE
from kit.train.result import TrainResult

if TYPE_CHECKING:
    from kit.core.contracts.model import ModelRef
    from kit.core.settings import Settings

TRAINING_PREFIX = TRAINING_JOBS_PREFIX
DEFAULT_FRAMEWORK_VERSION = "2.6.0"
DEFAULT_PY_VERSION = "py312"
DEFAULT_CUDA_VERSION = "cu126"
DEFAULT_INSTANCE_TYPE = "ml.g4dn.xlarge"
LOCAL_ROLE_ARN = "arn:aws:iam::123456789012:role/evk-sagemaker-local"
"""The role used on the local target (moto accepts any ARN)."""

METRIC_DEFINITIONS = [
    {"Name": "val:mAP50", "Regex": r"kit-metric .*?mAP50=([0-9.]+)"},
    {"Name": "val:mAP50-95", "Regex": r"kit-metric .*?mAP50-95=([0-9.]+)"},
    {"Name": "train:box_loss", "Regex": r"kit-metric .*?box_loss=([0-9.]+)"},
]
"""CloudWatch metrics parsed from the entry script's per-epoch ``kit-metric`` lines."""

_JOB_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
_GPU_FAMILIES = ("ml.p", "ml.g")
_FINAL_STATES = {"Completed", "Failed", "Stopped"}


class TrainingJobError(RuntimeError):
    """A SageMaker training job failed or was stopped; the message carries its FailureReason."""


def training_image_uri(
    region: str,
    *,
    instance_type: str = DEFAULT_INSTANCE_TYPE,
    framework_version: str = DEFAULT_FRAMEWORK_VERSION,
    py_version: str = DEFAULT_PY_VERSION,
    cuda_version: str = DEFAULT_CUDA_VERSION,
) -> str:
    """The AWS PyTorch training container for ``region`` (GPU build for ml.g*/ml.p* instances).

    Raises:
        ValueError: no Deep Learning Containers registry is known for ``region``.

    Examples:
        >>> training_image_uri("eu-west-1")
        '763104351884.dkr.ecr.eu-west-1.amazonaws.com/pytorch-training:2.6.0-gpu-py312-cu126-ubuntu22.04-sagemaker'
        >>> training_image_uri("eu-west-1", instance_type="ml.c5.2xlarge").split(":")[-1]
        '2.6.0-cpu-py312-ubuntu22.04-sagemaker'
    """
    if instance_type.startswith(_GPU_FAMILIES):
        tag = f"{framework_version}-gpu-{py_version}-{cuda_version}-ubuntu22.04-sagemaker"
    else:
        tag = f"{framework_version}-cpu-{py_version}-ubuntu22.04-sagemaker"
    return f"{training_image_registry(region)}/{TRAINING_IMAGE_REPOSITORY}:{tag}"


def dataset_uri(dataset: str, bucket: str) -> str:
    """``s3://<bucket>/datasets/<name>/<version>/`` from that URI, ``datasets/<name>/<version>/`` or ``<name>/<version>``.

    Raises:
        ValueError: anything else.
    """
    if dataset.startswith("s3://"):
        return dataset.rstrip("/") + "/"
    parts = [p for p in dataset.strip("/").split("/") if p]
    if parts and parts[0] == DATASETS_PREFIX:
        parts = parts[1:]
    if len(parts) != 2:
        raise ValueError(
            f"dataset {dataset!r} is not 'datasets/<name>/<version>/', '<name>/<version>' or "
            "an s3:// URI (kit.data.upload_dataset returns the prefix to use)"
        )
    return f"s3://{bucket}/{DATASETS_PREFIX}/{parts[0]}/{parts[1]}/"


def new_job_name(stem: str = "kit-train") -> str:
    """A unique, valid job name: ``<stem>-<UTC yyyymmdd-HHMMSS-ffffff>``."""
    stem = re.sub(r"[^a-zA-Z0-9-]+", "-", stem).strip("-")[:38] or "kit-train"
    return f"{stem}-{datetime.now(UTC):%Y%m%d-%H%M%S-%f}"


def build_training_job_request(
    *,
    job_name: str,
    role_arn: str,
    bucket: str,
    region: str,
    dataset: str,
    source_uri: str,
    base_model_uri: str | None = None,
    model: str = PRETRAINED_BASE,
    epochs: int = 50,
    imgsz: int = 320,
    batch: int = 16,
    seed: int = 0,
    patience: int = 50,
    workers: int = 2,
    instance_type: str = DEFAULT_INSTANCE_TYPE,
    volume_gb: int = 30,
    max_runtime_s: int = 4 * 3600,
    spot: bool = False,
    max_wait_s: int | None = None,
    image_uri: str | None = None,
    tags: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The keyword arguments of boto3 ``sagemaker.create_training_job`` for a YOLO training job.

    Hyperparameters are JSON-encoded like the SageMaker SDK does; ``sagemaker_program`` and
    ``sagemaker_submit_directory`` make the container run ``train_entry.py`` from the source
    archive. The ``training`` channel is the dataset prefix; the optional ``base`` channel a
    ``model.pt`` to fine-tune from.

    Args:
        job_name: 1-63 letters, digits and hyphens.
        role_arn: the SageMaker execution role (reads the bucket, writes outputs).
        bucket: the kit's bucket.
        region: the AWS region (picks the container image).
        dataset: ``datasets/<name>/<version>/`` (or ``<name>/<version>``, or an s3:// URI).
        source_uri: s3:// URI of ``sourcedir.tar.gz`` (see :func:`package_training_source`).
        base_model_uri: s3:// URI of a ``model.pt`` to start from.
        model: what the job starts from without ``base_model_uri``: an ultralytics hub
            checkpoint (default the COCO-pretrained ``yolo11n.pt``, downloaded in the job,
            which runs with internet) or a model config such as ``yolo11n.yaml`` (from scratch).
        epochs, imgsz, batch, seed, patience, workers: training hyperparameters.
        instance_type: e.g. ``ml.g4dn.xlarge`` (GPU) or ``ml.c5.2xlarge`` (CPU).
        volume_gb: the instance's storage.
        max_runtime_s: the job is stopped after this long.
        spot: use managed spot training (checkpoints make it resumable).
        max_wait_s: spot only: runtime plus waiting for capacity (default 2x max_runtime_s).
        image_uri: another training image (default :func:`training_image_uri`).
        tags: resource tags.

    Raises:
        ValueError: a bad job name, dataset, or sizes.
    """
    if not _JOB_NAME.match(job_name):
        raise ValueError(
            f"job name {job_name!r} is not allowed: 1-63 letters, digits and hyphens, "
            "starting with a letter or digit"
        )
    if imgsz <= 0 or imgsz % 32:
        raise ValueError(f"imgsz must be a positive multiple of 32 (got {imgsz})")
    if epochs < 1 or batch < 1:
        raise ValueError(f"epochs and batch must be 1 or more (got {epochs}, {batch})")
    for name, uri in (("source_uri", source_uri), ("base_model_uri", base_model_uri)):
        if uri is not None and not uri.startswith("s3://"):
            raise ValueError(f"{name} must be an s3:// URI (got {uri!r})")
    job_prefix = f"s3://{bucket}/{TRAINING_PREFIX}/{job_name}"
    hyperparameters = {
        "model": "base" if base_model_uri else model,
        "epochs": epochs,
        "imgsz": imgsz,
        "batch": batch,
        "seed": seed,
        "patience": patience,
        "workers": workers,
        "sagemaker_program": "train_entry.py",
        "sagemaker_submit_directory": source_uri,
        "sagemaker_region": region,
        "sagemaker_container_log_level": 20,
        "sagemaker_job_name": job_name,
    }
    channels = [_s3_channel("training", dataset_uri(dataset, bucket))]
    if base_model_uri:
        channels.append(_s3_channel("base", base_model_uri))
    stopping: dict[str, int] = {"MaxRuntimeInSeconds": int(max_runtime_s)}
    if spot:
        stopping["MaxWaitTimeInSeconds"] = int(max_wait_s or 2 * max_runtime_s)
        if stopping["MaxWaitTimeInSeconds"] < stopping["MaxRuntimeInSeconds"]:
            raise ValueError("max_wait_s must be at least max_runtime_s")
    request: dict[str, Any] = {
        "TrainingJobName": job_name,
        "RoleArn": role_arn,
        "AlgorithmSpecification": {
            "TrainingImage": image_uri or training_image_uri(region, instance_type=instance_type),
            "TrainingInputMode": "File",
            "MetricDefinitions": METRIC_DEFINITIONS,
        },
        "HyperParameters": {k: json.dumps(v) for k, v in hyperparameters.items()},
        "InputDataConfig": channels,
        "OutputDataConfig": {"S3OutputPath": f"s3://{bucket}/{TRAINING_PREFIX}/"},
        "ResourceConfig": {
            "InstanceType": instance_type,
            "InstanceCount": 1,
            "VolumeSizeInGB": int(volume_gb),
        },
        "StoppingCondition": stopping,
        "CheckpointConfig": {
            "S3Uri": f"{job_prefix}/checkpoints/",
            "LocalPath": "/opt/ml/checkpoints",
        },
        "EnableManagedSpotTraining": bool(spot),
        "Environment": {"PYTHONUNBUFFERED": "1"},
    }
    if tags:
        request["Tags"] = [{"Key": k, "Value": v} for k, v in tags.items()]
    return request


def _s3_channel(name: str, uri: str) -> dict[str, Any]:
    return {
        "ChannelName": name,
        "DataSource": {
            "S3DataSource": {
                "S3DataType": "S3Prefix",
                "S3Uri": uri,
                "S3DataDistributionType": "FullyReplicated",
            }
        },
        "InputMode": "File",
    }


def package_training_source(archive: str | Path) -> Path:
    """Write ``sourcedir.tar.gz`` with the entry script and its requirements (see :mod:`kit.sagemaker`)."""
    archive = Path(archive)
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "w:gz") as tar:
        for name in SOURCE_FILES:
            tar.add(SOURCE_DIR / name, arcname=name)
    return archive


def _settings(settings: Settings | None) -> Settings:
    if settings is not None:
        return settings
    from kit.core.settings import load_settings

    return load_settings()


def execution_role_arn(role_arn: str | None, settings: Settings) -> str:
    """The role a SageMaker job runs with: ``role_arn``, else the stack's execution role
    (``settings.sagemaker_role_arn``), else on the local target a stand-in.

    Raises:
        ValueError: on the aws target, no role given and none in the settings.
    """
    if role_arn:
        return role_arn
    if settings.sagemaker_role_arn:
        return settings.sagemaker_role_arn
    if settings.target == "local":
        return LOCAL_ROLE_ARN
    raise ValueError(
        "no SageMaker execution role: the settings have no sagemaker_role_arn. Deploy the stack "
        "with its SageMaker role (stack config sagemakerRole: true, the default) and run "
        "`kit aws outputs`, or pass role_arn= (a role that may read "
        f"s3://{settings.resources.bucket}/datasets/ and models/ and write the job's outputs)"
    )


def start_training_job(
    dataset: str,
    *,
    role_arn: str | None = None,
    base: str | Path | ModelRef | None = None,
    job_name: str | None = None,
    settings: Settings | None = None,
    **options: Any,
) -> str:
    """Upload the entry script (and a local base model) and start a training job; return its name.

    Args:
        dataset: ``datasets/<name>/<version>/`` as :func:`kit.data.upload_dataset` returned it.
        role_arn: the SageMaker execution role; default the stack's (see
            :func:`execution_role_arn`).
        base: fine-tune from a registered model (``"shelf:production"``: its ``model.pt`` is
            read in place) or a local ``.pt`` (uploaded with the job).
        job_name: default ``kit-train-<dataset name>-<time>``.
        settings: bucket, region and endpoint (default: :func:`kit.core.settings.load_settings`).
        **options: :func:`build_training_job_request` arguments (epochs, imgsz, instance_type ...).

    Raises:
        ValueError: a bad dataset, option or job name; no role on the aws target (neither given
            nor in the settings).
        kit.registry.RegistryError: an unknown registered base model.
    """
    settings = _settings(settings)
    bucket = settings.resources.bucket
    dataset_prefix = dataset_uri(dataset, bucket)
    if job_name is None:
        dataset_name = dataset_prefix.rstrip("/").split("/")[-2]
        job_name = new_job_name(f"kit-train-{dataset_name}")
    s3 = settings.client("s3")
    base_uri = _base_model_uri(base, s3, bucket, job_name, settings) if base is not None else None
    with tempfile.TemporaryDirectory(prefix="kit-sourcedir-") as scratch:
        archive = package_training_source(Path(scratch) / "sourcedir.tar.gz")
        key = f"{TRAINING_PREFIX}/{job_name}/source/sourcedir.tar.gz"
        s3.upload_file(str(archive), bucket, key)
    request = build_training_job_request(
        job_name=job_name,
        role_arn=execution_role_arn(role_arn, settings),
        bucket=bucket,
        region=settings.region,
        dataset=dataset_prefix,
        source_uri=f"s3://{bucket}/{key}",
        base_model_uri=base_uri,
        **options,
    )
    settings.client("sagemaker").create_training_job(**request)
    return job_name


def _base_model_uri(base: Any, s3: Any, bucket: str, job_name: str, settings: Settings) -> str:
    from kit.core.contracts.model import ModelRef

    path = Path(str(base))
    if not isinstance(base, ModelRef) and path.suffix == ".pt":
        if not path.is_file():
            raise FileNotFoundError(f"base model {path} does not exist")
        key = f"{TRAINING_PREFIX}/{job_name}/base/{WEIGHTS_FILE}"
        s3.upload_file(str(path), bucket, key)
        return f"s3://{bucket}/{key}"
    from kit.registry import MODELS_PREFIX, ModelRegistry, RegistryError

    registry = ModelRegistry(s3, bucket)
    metadata = registry.get(base)
    if "pytorch" not in metadata.formats:
        raise RegistryError(
            f"{metadata.ref} has no 'pytorch' file to fine-tune from; formats: "
            f"{', '.join(metadata.formats)}"
        )
    file = metadata.formats["pytorch"].file
    return f"s3://{bucket}/{MODELS_PREFIX}/{metadata.name}/{metadata.version}/{file}"


def wait_for_training_job(
    job_name: str,
    *,
    poll_s: float = 30,
    timeout_s: float | None = None,
    progress: bool = True,
    settings: Settings | None = None,
    client: Any = None,
    on_status: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Poll ``describe_training_job`` until the job ends; return the final description.

    With ``progress`` a line per new secondary status (Starting, Downloading, Training,
    Uploading ...) is printed with its message, and a bar shows the elapsed time.

    Raises:
        TrainingJobError: the job Failed or was Stopped (with SageMaker's FailureReason).
        TimeoutError: still running after ``timeout_s``.
    """
    client = client or _settings(settings).client("sagemaker")
    seen_transitions = 0

    def show(described: dict[str, Any], bar: Any) -> str:
        nonlocal seen_transitions
        transitions = described.get("SecondaryStatusTransitions", [])
        for transition in transitions[seen_transitions:]:
            if bar is not None:
                bar.write(f"{transition['Status']}: {transition.get('StatusMessage', '')}")
        seen_transitions = len(transitions)
        if on_status is not None:
            on_status(described)
        return f"{described['TrainingJobStatus']} / {described.get('SecondaryStatus', '')}"

    return poll_job(
        lambda: client.describe_training_job(TrainingJobName=job_name),
        kind="training job",
        job_name=job_name,
        status_key="TrainingJobStatus",
        final_states=_FINAL_STATES,
        completed="Completed",
        error=TrainingJobError,
        poll_s=poll_s,
        timeout_s=timeout_s,
        progress=progress,
        on_described=show,
    )


def download_model_artifact(
    job_name: str,
    dest_dir: str | Path | None = None,
    *,
    settings: Settings | None = None,
) -> TrainResult:
    """Download and unpack a completed job's ``model.tar.gz``; return it as a :class:`TrainResult`.

    Args:
        job_name: the training job.
        dest_dir: where to unpack (default ``<state dir>/training-jobs``); the files land in
            ``<dest_dir>/<job_name>/``.
        settings: default :func:`kit.core.settings.load_settings`.

    Raises:
        TrainingJobError: the job has no model artefact (not completed).
    """
    settings = _settings(settings)
    described = settings.client("sagemaker").describe_training_job(TrainingJobName=job_name)
    uri = described.get("ModelArtifacts", {}).get("S3ModelArtifacts")
    if not uri or described.get("TrainingJobStatus") != "Completed":
        raise TrainingJobError(
            f"training job {job_name} is {described.get('TrainingJobStatus')}; it has no model "
            "artefact yet (wait_for_training_job first)"
        )
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    target = Path(dest_dir or settings.state_dir / TRAINING_PREFIX) / job_name
    target.mkdir(parents=True, exist_ok=True)
    archive = target / "model.tar.gz"
    settings.client("s3").download_file(bucket, key, str(archive))
    with tarfile.open(archive) as tar:
        tar.extractall(target, filter="data")
    return TrainResult.from_dir(target)
