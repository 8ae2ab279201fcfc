"""Model references and the metadata the registry keeps next to each model version."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints, field_validator, model_validator

from kit.core.contracts.base import (
    ALIAS_PATTERN,
    SCHEMA_VERSION,
    ClassName,
    Contract,
    ModelName,
    NonNegativeInteger,
    PositiveInteger,
    Real,
    SchemaVersion,
    UtcDatetime,
    utc_now,
)

Alias = Annotated[
    str,
    StringConstraints(pattern=ALIAS_PATTERN),
    Field(description="a registry alias such as 'production' or 'latest'"),
]


class ModelRef(Contract):
    """Which model: a registry name and a version number or an alias (``production``, ``latest``)."""

    name: ModelName
    version: PositiveInteger | Alias = "latest"

    def __str__(self) -> str:
        return f"{self.name}:{self.version}"


ExportFormat = Literal[
    "pytorch", "onnx", "onnx_fp16", "onnx_int8", "openvino", "openvino_int8", "neo"
]
"""A registered model file's format; ``onnx_int8`` and ``openvino_int8`` are post-training INT8
models that passed the accuracy gate (:mod:`kit.compile.quantize`)."""

INT8_FORMATS: dict[str, ExportFormat] = {"onnxruntime": "onnx_int8", "openvino": "openvino_int8"}
"""The registry format of an INT8 model, by the inference backend that runs it (the one place
that says so: the quantizer registers it, a device downloads it, the control API asks for it)."""


class ModelArtifact(Contract):
    """One file (or archive) of a model version in one format."""

    file: str = Field(min_length=1, description="path relative to models/<name>/<version>/")
    sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
    size_bytes: NonNegativeInteger
    precision: Literal["fp32", "fp16", "int8"] = "fp32"
    target: str | None = Field(default=None, description="Neo target device, when compiled")


class ModelMetadata(Contract):
    """What the registry knows of one model version (``models/<name>/<version>/metadata.json``)."""

    schema_version: SchemaVersion = SCHEMA_VERSION
    name: ModelName
    version: PositiveInteger
    task: Literal["detect"] = "detect"
    classes: list[ClassName] = Field(min_length=1, max_length=1000)
    input_size: PositiveInteger = Field(le=4096, description="square input size in pixels (imgsz)")
    stride: PositiveInteger = 32
    formats: dict[ExportFormat, ModelArtifact] = Field(default_factory=dict)
    metrics: dict[str, Real] = Field(default_factory=dict)
    parent: ModelRef | None = None
    dataset: str | None = Field(
        default=None, description="datasets/<name>/<version>/ it was trained on"
    )
    framework: str | None = Field(default=None, description="e.g. 'ultralytics 8.4.190'")
    created_at: UtcDatetime = Field(default_factory=utc_now)
    description: str = ""

    @field_validator("classes")
    @classmethod
    def _unique_classes(cls, classes: list[str]) -> list[str]:
        duplicates = sorted({c for c in classes if classes.count(c) > 1})
        if duplicates:
            raise ValueError(f"class names must be unique; repeated: {duplicates}")
        return classes

    @model_validator(mode="after")
    def _input_size_multiple_of_stride(self) -> ModelMetadata:
        if self.input_size % self.stride:
            raise ValueError(
                f"input_size {self.input_size} must be a multiple of the stride {self.stride}"
            )
        return self

    @property
    def ref(self) -> ModelRef:
        return ModelRef(name=self.name, version=self.version)
