"""How a detector runs: one typed config per inference backend, told apart by ``backend``.

The ``inference`` section of a device config is one of these (Frigate's detector configs, with
``backend`` as the discriminator)::

    inference: {backend: openvino, device: GPU, precision: f16, performance_hint: latency}
    inference: {backend: onnxruntime, execution_providers: [CUDAExecutionProvider, CPUExecutionProvider]}
    inference: {threads: 2}               # backend: auto (by the model file)

The configs are checked when the device config is read, without importing a runtime: whether a
device or an execution provider exists on *this* machine is checked when a model is loaded,
and refused there with what the machine has.

Examples:
    >>> inference_config(backend="openvino", device="gpu.1", precision="f16").device
    'GPU.1'
    >>> inference_config(threads=2).for_backend("onnxruntime").execution_providers
    ('CPUExecutionProvider',)
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from kit.core.contracts.base import ContractError, contract_error

ONNXRUNTIME_PROVIDERS = (
    "CPUExecutionProvider",
    "CUDAExecutionProvider",
    "TensorrtExecutionProvider",
    "NvTensorRTRTXExecutionProvider",
    "OpenVINOExecutionProvider",
    "DnnlExecutionProvider",
    "CoreMLExecutionProvider",
    "DmlExecutionProvider",
    "MIGraphXExecutionProvider",
    "QNNExecutionProvider",
    "NnapiExecutionProvider",
    "ACLExecutionProvider",
    "RknpuExecutionProvider",
    "VitisAIExecutionProvider",
    "VSINPUExecutionProvider",
    "CANNExecutionProvider",
    "XnnpackExecutionProvider",
    "WebGpuExecutionProvider",
    "WebNNExecutionProvider",
    "JsExecutionProvider",
    "AzureExecutionProvider",
)
"""Every execution provider ONNX Runtime knows (``onnxruntime.get_all_providers()`` of the
pinned version); which of them a machine has depends on the onnxruntime build installed."""

OPENVINO_DEVICES = ("CPU", "GPU", "NPU")
"""OpenVINO's hardware devices; ``GPU.1`` names the second GPU."""

OPENVINO_VIRTUAL_DEVICES = ("AUTO", "MULTI", "HETERO")
"""OpenVINO's devices over other devices: ``AUTO`` (it picks), ``AUTO:GPU,CPU``, ``MULTI:...``,
``HETERO:...``."""

OpenVinoPrecision = Literal["f32", "f16", "bf16"]
OPENVINO_PRECISIONS = get_args(OpenVinoPrecision)
"""Values of ``INFERENCE_PRECISION_HINT``: the precision a device computes in."""

_HARDWARE_DEVICE = re.compile(rf"^({'|'.join(OPENVINO_DEVICES)})(\.\d+)?$")
DEVICE_HELP = (
    "CPU, GPU, NPU (an index picks one of several: GPU.1), AUTO, or AUTO:, MULTI: or HETERO: "
    "followed by a comma-separated list of those (AUTO:GPU,CPU)"
)


def default_thread_count() -> int:
    """Threads for one model's inference: the CPUs this process may use, at most 4.

    Small detectors at 320-640 px gain little beyond 4 threads, and several models or cameras
    share the device, so a cap avoids oversubscription.
    """
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        available = os.cpu_count() or 1
    return max(1, min(4, available))


def hardware_devices(device: str) -> list[str]:
    """The hardware devices an OpenVINO device string names (``AUTO:GPU,-CPU`` -> ``["GPU"]``).

    Plain ``AUTO`` names none (it picks among what the machine has); devices excluded with
    ``-`` are left out.
    """
    kind, _, listed = device.partition(":")
    if kind not in OPENVINO_VIRTUAL_DEVICES:
        return [device]
    return [name for name in listed.split(",") if name and not name.startswith("-")]


class _BackendConfig(BaseModel):
    """What every backend takes: CPU threads and the throughput/latency trade-off."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    threads: int | None = Field(
        default=None,
        ge=1,
        le=64,
        description="CPU threads per model (default: the CPUs this process may use, at most 4)",
    )
    performance_hint: Literal["throughput", "latency"] = Field(
        default="throughput",
        description="throughput: frames of several cameras (or consecutive frames of one) are "
        "inferred at once, the most frames a second per device; latency: one frame at a time "
        "on all threads, the least time per frame",
    )

    @property
    def thread_count(self) -> int:
        """``threads``, or `default_thread_count` when unset."""
        return self.threads or default_thread_count()


class OnnxRuntimeConfig(_BackendConfig):
    """ONNX Runtime: an ``.onnx`` model on the execution providers listed, in order of preference.

    With ``throughput`` ``threads`` single-threaded runs go on at once; with ``latency`` one run
    at a time uses ``threads`` intra-op threads. There is no precision setting: ONNX Runtime
    computes in the model's own types (export with ``half=True`` for a float16 model).
    """

    backend: Literal["onnxruntime"] = "onnxruntime"
    execution_providers: tuple[str, ...] = Field(
        default=("CPUExecutionProvider",),
        min_length=1,
        description="ONNX Runtime execution providers in order of preference; every one must "
        "be in the installed onnxruntime build (onnxruntime-gpu for CUDA and TensorRT)",
    )
    allow_spinning: bool = Field(
        default=False,
        description="let idle intra-op threads busy-wait for work (latency only): a fraction "
        "of a millisecond on an idle machine, but it steals the CPU that decoding, tracking "
        "and other cameras need",
    )
    rewrite_graph: bool = Field(
        default=True,
        description="at load, move the YOLO head's DFL softmax to the last axis, where ONNX "
        "Runtime computes it without transposing (the same outputs; 4-8 % more frames a "
        "second on CPU for yolov8n); the file itself is not changed. false: run it as it is",
    )

    @field_validator("execution_providers")
    @classmethod
    def _known_providers(cls, providers: tuple[str, ...]) -> tuple[str, ...]:
        for provider in providers:
            if provider not in ONNXRUNTIME_PROVIDERS:
                close = difflib.get_close_matches(provider, ONNXRUNTIME_PROVIDERS, n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                raise ValueError(
                    f"unknown execution provider {provider!r}; {hint}ONNX Runtime knows "
                    f"{list(ONNXRUNTIME_PROVIDERS)}"
                )
        repeated = sorted({p for p in providers if providers.count(p) > 1})
        if repeated:
            raise ValueError(f"execution providers must be listed once; repeated: {repeated}")
        return providers


class OpenVinoConfig(_BackendConfig):
    """OpenVINO: an ``*_openvino_model`` directory, an ``.xml`` or an ``.onnx`` on one device.

    ``threads`` sets the CPU's inference threads (for ``AUTO``/``MULTI``/``HETERO``, those of
    the CPU among the devices); a GPU or NPU has its own.
    """

    backend: Literal["openvino"] = "openvino"
    device: str = Field(default="CPU", description=f"OpenVINO device: {DEVICE_HELP}")
    precision: OpenVinoPrecision | None = Field(
        default=None,
        description="INFERENCE_PRECISION_HINT: the precision the device computes in (default: "
        "the device's choice: bf16 on CPUs with AMX or AVX512-BF16, f16 on GPUs, else f32)",
    )
    max_batch: int = Field(
        default=4,
        ge=1,
        le=16,
        description="throughput, models with a dynamic batch size (the kit's exports): when "
        "the device is busy, frames of several cameras waiting for it are inferred together "
        "as one batch of up to this many (more frames a second per core); 1: never batch",
    )

    @field_validator("device", mode="before")
    @classmethod
    def _known_device(cls, device: Any) -> Any:
        if not isinstance(device, str):
            return device
        device = device.strip().upper()
        kind, separator, listed = device.partition(":")
        if _HARDWARE_DEVICE.match(device) or device == "AUTO":
            return device
        if kind in OPENVINO_VIRTUAL_DEVICES and separator:
            # only AUTO takes exclusions (AUTO:-CPU: any device but the CPU)
            names = [n.removeprefix("-") if kind == "AUTO" else n for n in listed.split(",")]
            if all(_HARDWARE_DEVICE.match(name) for name in names):
                return device
        raise ValueError(f"device must be {DEVICE_HELP}")

    @model_validator(mode="after")
    def _threads_need_a_cpu(self) -> OpenVinoConfig:
        kind = self.device.partition(":")[0]
        if self.threads is not None and kind not in ("CPU", *OPENVINO_VIRTUAL_DEVICES):
            raise ValueError(
                f"threads sets CPU inference threads; device {self.device!r} has its own: leave "
                "threads out, or run on CPU or AUTO"
            )
        return self


class AutoInferenceConfig(_BackendConfig):
    """The backend by the model file: OpenVINO for ``.xml`` / ``*_openvino_model``, ONNX Runtime
    for ``.onnx``, each with its defaults (CPU) and these ``threads`` and ``performance_hint``."""

    backend: Literal["auto"] = "auto"

    def for_backend(self, name: str) -> OnnxRuntimeConfig | OpenVinoConfig:
        """The config of backend ``name`` with this one's threads and performance hint."""
        return BACKEND_CONFIGS[name](threads=self.threads, performance_hint=self.performance_hint)


BACKEND_CONFIGS: dict[str, type[OnnxRuntimeConfig] | type[OpenVinoConfig]] = {
    "onnxruntime": OnnxRuntimeConfig,
    "openvino": OpenVinoConfig,
}
"""Backend name -> its config; ``auto`` resolves to one of these by the model file."""

BACKEND_NAMES = ("auto", *BACKEND_CONFIGS)


def _backend_of(value: Any) -> Any:
    """The discriminator: ``backend`` of a mapping (``auto`` when left out) or of a config."""
    if isinstance(value, Mapping):
        return value.get("backend", "auto")
    return getattr(value, "backend", None)


InferenceConfig = Annotated[
    Annotated[AutoInferenceConfig, Tag("auto")]
    | Annotated[OnnxRuntimeConfig, Tag("onnxruntime")]
    | Annotated[OpenVinoConfig, Tag("openvino")],
    Discriminator(
        _backend_of,
        custom_error_type="unknown_backend",
        custom_error_message=f"backend must be one of {list(BACKEND_NAMES)}",
    ),
]
"""The ``inference`` section of a device config: one backend's config, by ``backend``."""

_INFERENCE_ADAPTER: TypeAdapter[AutoInferenceConfig | OnnxRuntimeConfig | OpenVinoConfig] = (
    TypeAdapter(InferenceConfig)
)


def inference_config(
    base: AutoInferenceConfig
    | OnnxRuntimeConfig
    | OpenVinoConfig
    | Mapping[str, Any]
    | None = None,
    **fields: Any,
) -> AutoInferenceConfig | OnnxRuntimeConfig | OpenVinoConfig:
    """A validated inference config: ``base`` (a config or its mapping) with ``fields`` over it.

    Raises:
        kit.core.contracts.ContractError: a `ValueError` naming each bad field, its value and
            what is allowed (as the device config reports it).

    Examples:
        >>> inference_config({"backend": "onnxruntime"}, threads=2).threads
        2
    """
    values = dict(base.model_dump() if isinstance(base, BaseModel) else base or {})
    values.update(fields)
    backend = values.get("backend", "auto")
    if backend not in BACKEND_NAMES:
        allowed = f"must be one of {list(BACKEND_NAMES)}"
        raise ContractError(
            "inference", [{"field": "backend", "value": repr(backend), "allowed": allowed}]
        )
    try:
        return _INFERENCE_ADAPTER.validate_python(values)
    except ValidationError as error:
        raise contract_error("inference", error) from None
