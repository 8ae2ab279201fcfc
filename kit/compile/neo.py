"""SageMaker Neo compilation jobs: a model compiled for a Panorama appliance or a Greengrass device.

Neo takes a ``model.tar.gz`` holding one model file: for ``PYTORCH`` a TorchScript ``model.pth``
(Neo's edge targets accept PyTorch up to 1.8), for ``ONNX`` a ``model.onnx`` (ONNX 1.7, opset
≤ 12). Targets:

- Greengrass devices on generic Linux hosts (the default, :data:`DEFAULT_NEO_TARGET`):
  ``target_platform={"Os": "LINUX", "Arch": "X86_64"}`` (``ARM64``; ``"Accelerator": "NVIDIA"``
  for CUDA boxes such as the Jetson Orin family, with the ``gpu-code`` / ``trt-ver`` /
  ``cuda-ver`` compiler options);
- named devices: ``jetson_nano``, ``jetson_xavier``, ``rasp4b``, ``imx8mplus`` ...
  (:func:`neo_target_devices` lists what the installed botocore accepts);
- AWS Panorama appliances (support ended 2026-05-31; still selectable for the appliances in the
  field): ``target_device="jetson_xavier"``.

:func:`neo_target` reads a target from one word (a notebook parameter): a device name, or a
platform as ``linux_x86_64``, ``linux_arm64``, ``linux_arm64_nvidia``.

Bucket layout::

    compilation-jobs/<job>/model.tar.gz   the input
    compilation-jobs/<job>/output/        Neo's compiled archive

Examples:
    >>> job = start_compilation_job("best.pt", target_device="jetson_xavier")
    >>> wait_for_compilation_job(job)["CompilationJobStatus"]
    'COMPLETED'
    >>> download_compiled_model(job)
    PosixPath('.evk/compilation-jobs/kit-neo-.../model-jetson_xavier.tar.gz')
"""

from __future__ import annotations

import functools
import json
import re
import shutil
import tarfile
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kit.aws import COMPILATION_JOBS_PREFIX
from kit.jobs import poll_job
from kit.train.sagemaker import execution_role_arn

if TYPE_CHECKING:
    from kit.core.settings import Settings

NEO_PREFIX = COMPILATION_JOBS_PREFIX
PANORAMA_TARGET_DEVICE = "jetson_xavier"
"""The Neo device of AWS Panorama appliances (Panorama's support ended 2026-05-31)."""
DEFAULT_NEO_TARGET = "linux_x86_64"
"""What notebook 3 compiles for unless told otherwise: a generic Linux x86-64 host, what a
Greengrass core device or a container host is most often."""
FRAMEWORKS = ("PYTORCH", "ONNX")
DEFAULT_FRAMEWORK_VERSIONS = {"PYTORCH": "1.8"}
INPUT_NAMES = {"PYTORCH": "input0", "ONNX": "images"}
MODEL_FILES = {"PYTORCH": "model.pth", "ONNX": "model.onnx"}
NEO_ONNX_OPSET = 12

_JOB_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
_FINAL_STATES = {"COMPLETED", "FAILED", "STOPPED"}


class CompilationJobError(RuntimeError):
    """A Neo compilation job failed or was stopped; the message carries its FailureReason."""


@functools.cache
def _sagemaker_enums() -> dict[str, tuple[str, ...]]:
    import botocore.session

    model = botocore.session.get_session().get_service_model("sagemaker")
    return {
        name: tuple(model.shape_for(name).enum)
        for name in (
            "TargetDevice",
            "TargetPlatformOs",
            "TargetPlatformArch",
            "TargetPlatformAccelerator",
        )
    }


def neo_target_devices() -> tuple[str, ...]:
    """The ``TargetDevice`` values the installed botocore's SageMaker API accepts."""
    return _sagemaker_enums()["TargetDevice"]


def _check_target(
    target_device: str | None, target_platform: Mapping[str, str] | None
) -> dict[str, Any]:
    if (target_device is None) == (target_platform is None):
        raise ValueError(
            "give exactly one of target_device (e.g. 'jetson_xavier' for Panorama) and "
            "target_platform (e.g. {'Os': 'LINUX', 'Arch': 'X86_64'})"
        )
    enums = _sagemaker_enums()
    if target_device is not None:
        if target_device not in enums["TargetDevice"]:
            raise ValueError(
                f"unknown Neo target device {target_device!r}; allowed: "
                f"{', '.join(enums['TargetDevice'])}"
            )
        return {"TargetDevice": target_device}
    platform = dict(target_platform or {})
    allowed = {
        "Os": "TargetPlatformOs",
        "Arch": "TargetPlatformArch",
        "Accelerator": "TargetPlatformAccelerator",
    }
    unknown = set(platform) - set(allowed)
    if unknown or "Os" not in platform or "Arch" not in platform:
        raise ValueError(
            f"target_platform needs 'Os' and 'Arch' (optional 'Accelerator'); got {sorted(platform)}"
        )
    for key, value in platform.items():
        if value not in enums[allowed[key]]:
            raise ValueError(
                f"target_platform {key} {value!r} is not allowed; allowed: {', '.join(enums[allowed[key]])}"
            )
    return {"TargetPlatform": platform}


def neo_target(label: str) -> dict[str, Any]:
    """``target_device`` or ``target_platform`` (keyword arguments of :func:`start_compilation_job`)
    for a target given as one word, the inverse of :func:`target_label`.

    Raises:
        ValueError: neither a Neo device nor a platform the installed botocore accepts (the
            message lists both).

    Examples:
        >>> neo_target("linux_x86_64")
        {'target_platform': {'Os': 'LINUX', 'Arch': 'X86_64'}}
        >>> neo_target("linux_arm64_nvidia")
        {'target_platform': {'Os': 'LINUX', 'Arch': 'ARM64', 'Accelerator': 'NVIDIA'}}
        >>> neo_target("jetson_xavier")
        {'target_device': 'jetson_xavier'}
    """
    enums = _sagemaker_enums()
    if label in enums["TargetDevice"]:
        return {"target_device": label}
    parts = label.upper().split("_")
    os_name, arch, accelerator = parts[0], "_".join(parts[1:]), None
    if arch and arch not in enums["TargetPlatformArch"]:
        arch, _, accelerator = arch.rpartition("_")
    platform = {
        "Os": os_name,
        "Arch": arch,
        **({"Accelerator": accelerator} if accelerator else {}),
    }
    allowed = [
        ("Os", "TargetPlatformOs"), ("Arch", "TargetPlatformArch"),
        ("Accelerator", "TargetPlatformAccelerator"),
    ]  # fmt: skip
    if arch and all(value in enums[enum] for key, enum in allowed if (value := platform.get(key))):
        return {"target_platform": platform}
    raise ValueError(
        f"unknown Neo target {label!r}: give a device ({', '.join(enums['TargetDevice'])}) or a "
        "platform as <os>_<arch>[_<accelerator>], e.g. linux_x86_64, linux_arm64_nvidia (os: "
        f"{', '.join(enums['TargetPlatformOs']).lower()}; arch: "
        f"{', '.join(enums['TargetPlatformArch']).lower()}; accelerator: "
        f"{', '.join(enums['TargetPlatformAccelerator']).lower()})"
    )


def target_label(target_device: str | None, target_platform: Mapping[str, str] | None) -> str:
    """``jetson_xavier`` or ``linux_x86_64[_nvidia]``: the target as one word (file names, metadata)."""
    if target_device:
        return target_device
    parts = [target_platform["Os"], target_platform["Arch"], target_platform.get("Accelerator")]
    return "_".join(p for p in parts if p).lower()


def build_compilation_job_request(
    *,
    job_name: str,
    role_arn: str,
    model_uri: str,
    output_uri: str,
    imgsz: int,
    framework: str = "PYTORCH",
    framework_version: str | None = None,
    target_device: str | None = None,
    target_platform: Mapping[str, str] | None = None,
    compiler_options: Mapping[str, Any] | None = None,
    input_name: str | None = None,
    max_runtime_s: int = 900,
    tags: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The keyword arguments of boto3 ``sagemaker.create_compilation_job``.

    Args:
        job_name: 1-63 letters, digits and hyphens.
        role_arn: a role Neo may use to read the input and write the output.
        model_uri: s3:// URI of the ``model.tar.gz`` (see :func:`package_for_neo`).
        output_uri: s3:// prefix for the compiled archive.
        imgsz: the square input size; the input shape is ``[1, 3, imgsz, imgsz]``.
        framework: ``PYTORCH`` (TorchScript) or ``ONNX``.
        framework_version: default ``1.8`` for PYTORCH; ONNX leaves it to Neo.
        target_device: a Neo device (``jetson_xavier`` for Panorama ...).
        target_platform: ``{"Os": "LINUX", "Arch": "X86_64" | "ARM64", "Accelerator": ...}``.
        compiler_options: Neo compiler options, e.g. ``{"gpu-code": "sm_72", "trt-ver": "8.0",
            "cuda-ver": "10.2"}`` for a Jetson.
        input_name: the model input's name (default ``input0`` for PyTorch, ``images`` for ONNX).
        max_runtime_s: the job's time limit.
        tags: resource tags.

    Raises:
        ValueError: an unknown framework, target or platform value (the message lists the allowed
            ones), a bad job name or size.
    """
    if not _JOB_NAME.match(job_name):
        raise ValueError(f"job name {job_name!r} is not allowed: 1-63 letters, digits and hyphens")
    framework = framework.upper()
    if framework not in FRAMEWORKS:
        raise ValueError(f"framework {framework!r} is not supported here; use one of {FRAMEWORKS}")
    if imgsz <= 0 or imgsz % 32:
        raise ValueError(f"imgsz must be a positive multiple of 32 (got {imgsz})")
    for name, uri in (("model_uri", model_uri), ("output_uri", output_uri)):
        if not uri.startswith("s3://"):
            raise ValueError(f"{name} must be an s3:// URI (got {uri!r})")
    output_config = {
        "S3OutputLocation": output_uri,
        **_check_target(target_device, target_platform),
    }
    if compiler_options:
        output_config["CompilerOptions"] = json.dumps(dict(compiler_options))
    input_config: dict[str, Any] = {
        "S3Uri": model_uri,
        "DataInputConfig": json.dumps(
            {input_name or INPUT_NAMES[framework]: [1, 3, int(imgsz), int(imgsz)]}
        ),
        "Framework": framework,
    }
    version = framework_version or DEFAULT_FRAMEWORK_VERSIONS.get(framework)
    if version:
        input_config["FrameworkVersion"] = version
    request: dict[str, Any] = {
        "CompilationJobName": job_name,
        "RoleArn": role_arn,
        "InputConfig": input_config,
        "OutputConfig": output_config,
        "StoppingCondition": {"MaxRuntimeInSeconds": int(max_runtime_s)},
    }
    if tags:
        request["Tags"] = [{"Key": k, "Value": v} for k, v in tags.items()]
    return request


def package_for_neo(
    weights: str | Path,
    imgsz: int | None = None,
    *,
    framework: str = "PYTORCH",
    output: str | Path | None = None,
) -> Path:
    """Export ``weights`` for Neo and pack the one model file into ``model.tar.gz``.

    PYTORCH: a TorchScript trace (``model.pth``); ONNX: ``model.onnx`` at opset 12.

    Returns:
        The archive (default ``<weights stem>_neo_<framework>.tar.gz`` next to the weights).
    """
    from kit.compile.export import _check_weights, _export, export_onnx

    weights = _check_weights(weights)
    framework = framework.upper()
    if framework not in FRAMEWORKS:
        raise ValueError(f"framework {framework!r} is not supported here; use one of {FRAMEWORKS}")
    archive = (
        Path(output)
        if output
        else weights.with_name(f"{weights.stem}_neo_{framework.lower()}.tar.gz")
    )
    with tempfile.TemporaryDirectory(prefix="kit-neo-") as scratch:
        if framework == "ONNX":
            model_file = export_onnx(
                weights,
                imgsz,
                opset=NEO_ONNX_OPSET,
                dynamic=False,  # Neo compiles for the input shape its job names
                output=Path(scratch) / "model.onnx",
            )
        else:
            arguments = {"imgsz": imgsz} if imgsz else {}
            model_file = _export(weights, "torchscript", Path(scratch), False, **arguments)
        archive.parent.mkdir(parents=True, exist_ok=True)
        with tarfile.open(archive, "w:gz") as tar:
            tar.add(model_file, arcname=MODEL_FILES[framework])
    return archive


def _settings(settings: Settings | None) -> Settings:
    if settings is not None:
        return settings
    from kit.core.settings import load_settings

    return load_settings()


def start_compilation_job(
    model: str | Path,
    *,
    target_device: str | None = None,
    target_platform: Mapping[str, str] | None = None,
    framework: str = "PYTORCH",
    imgsz: int | None = None,
    role_arn: str | None = None,
    job_name: str | None = None,
    settings: Settings | None = None,
    **options: Any,
) -> str:
    """Package (if needed) and upload a model, then start a Neo compilation job; return its name.

    Args:
        model: ultralytics ``.pt`` weights (packed with :func:`package_for_neo`) or a ready
            ``model.tar.gz`` (then ``imgsz`` is required).
        target_device: e.g. ``jetson_xavier`` (Panorama), ``jetson_nano``, ``rasp4b``.
        target_platform: e.g. ``{"Os": "LINUX", "Arch": "X86_64"}``.
        framework: ``PYTORCH`` or ``ONNX``.
        imgsz: input size (default: the size the weights were trained at).
        role_arn: the role Neo reads the model and writes the output with; default the stack's
            SageMaker execution role (``settings.sagemaker_role_arn``, see
            :func:`kit.train.sagemaker.execution_role_arn`).
        job_name: default ``kit-neo-<target>-<time>``.
        settings: bucket, region and endpoint.
        **options: more :func:`build_compilation_job_request` arguments.

    Raises:
        ValueError: a bad target, framework or missing imgsz; no role on the aws target (neither
            given nor in the settings).
    """
    settings = _settings(settings)
    _check_target(target_device, target_platform)
    role_arn = execution_role_arn(role_arn, settings)
    model = Path(model)
    label = target_label(target_device, target_platform)
    if job_name is None:
        stem = re.sub(r"[^a-zA-Z0-9-]+", "-", f"kit-neo-{label}")[:38]
        job_name = f"{stem}-{datetime.now(UTC):%Y%m%d-%H%M%S-%f}"
    bucket = settings.resources.bucket
    key = f"{NEO_PREFIX}/{job_name}/model.tar.gz"
    if model.name.endswith(".tar.gz"):
        if imgsz is None:
            raise ValueError("imgsz is required with a ready model.tar.gz")
        archive = model
        settings.client("s3").upload_file(str(archive), bucket, key)
    else:
        imgsz = imgsz or _weights_imgsz(model)
        with tempfile.TemporaryDirectory(prefix="kit-neo-") as scratch:
            archive = package_for_neo(
                model, imgsz, framework=framework, output=Path(scratch) / "model.tar.gz"
            )
            settings.client("s3").upload_file(str(archive), bucket, key)
    request = build_compilation_job_request(
        job_name=job_name,
        role_arn=role_arn,
        model_uri=f"s3://{bucket}/{key}",
        output_uri=f"s3://{bucket}/{NEO_PREFIX}/{job_name}/output/",
        imgsz=imgsz,
        framework=framework,
        target_device=target_device,
        target_platform=target_platform,
        **options,
    )
    settings.client("sagemaker").create_compilation_job(**request)
    return job_name


def _weights_imgsz(weights: Path) -> int:
    from kit.compile.export import _check_weights
    from kit.offline import configure_ultralytics

    _check_weights(weights)
    configure_ultralytics()
    from ultralytics import YOLO

    size = YOLO(str(weights)).model.args.get("imgsz", 640)
    return int(size[0] if isinstance(size, (list, tuple)) else size)


def wait_for_compilation_job(
    job_name: str,
    *,
    poll_s: float = 15,
    timeout_s: float | None = None,
    progress: bool = True,
    settings: Settings | None = None,
    client: Any = None,
) -> dict[str, Any]:
    """Poll ``describe_compilation_job`` until it ends; return the final description.

    Raises:
        CompilationJobError: the job FAILED or was STOPPED (with Neo's FailureReason).
        TimeoutError: still running after ``timeout_s``.
    """
    client = client or _settings(settings).client("sagemaker")
    return poll_job(
        lambda: client.describe_compilation_job(CompilationJobName=job_name),
        kind="compilation job",
        job_name=job_name,
        status_key="CompilationJobStatus",
        final_states=_FINAL_STATES,
        completed="COMPLETED",
        error=CompilationJobError,
        poll_s=poll_s,
        timeout_s=timeout_s,
        progress=progress,
    )


def download_compiled_model(
    job_name: str, dest_dir: str | Path | None = None, *, settings: Settings | None = None
) -> Path:
    """Download a completed job's compiled archive; return the local ``.tar.gz``.

    The archive is what the device's Neo runtime (DLR) or a Panorama model package loads;
    register it with ``kit.registry.register(..., {"neo": FormatFile(path, target=...)})``.

    Raises:
        CompilationJobError: the job has not completed or wrote no archive.
    """
    settings = _settings(settings)
    described = settings.client("sagemaker").describe_compilation_job(CompilationJobName=job_name)
    uri = described.get("ModelArtifacts", {}).get("S3ModelArtifacts")
    if described.get("CompilationJobStatus") != "COMPLETED" or not uri:
        raise CompilationJobError(
            f"compilation job {job_name} is {described.get('CompilationJobStatus')}; "
            "nothing to download yet (wait_for_compilation_job first)"
        )
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    s3 = settings.client("s3")
    if not key.endswith(".tar.gz"):
        listed = s3.list_objects_v2(Bucket=bucket, Prefix=key).get("Contents", [])
        archives = [o["Key"] for o in listed if o["Key"].endswith(".tar.gz")]
        if len(archives) != 1:
            raise CompilationJobError(
                f"expected one compiled .tar.gz under {uri}; found {archives or 'none'}"
            )
        key = archives[0]
    target = Path(dest_dir or settings.state_dir / NEO_PREFIX) / job_name
    target.mkdir(parents=True, exist_ok=True)
    local = target / Path(key).name
    with tempfile.TemporaryDirectory(prefix="kit-neo-") as scratch:
        partial = Path(scratch) / local.name
        s3.download_file(bucket, key, str(partial))
        shutil.move(str(partial), local)
    return local
