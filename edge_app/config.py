"""The device config: which cameras a device reads, where its models and spool live, how it talks
to the backend. Loaded from YAML (``python -m edge_app --config device.yaml``).

What a camera *runs* (model, confidence, zones, lines, refresh rate) comes from the backend's
control config and changes while the app runs; the device config only gives the starting point
(``model``) and what never leaves the device's own decision (privacy blurring, crops).

Examples:
    >>> from edge_app.config import DeviceConfig
    >>> cfg = DeviceConfig.model_validate({
    ...     "device_id": "demo-1",
    ...     "cameras": [{"id": "shelf-1", "source": "videos/shelf.mp4", "model": {"name": "shelf", "version": 1}}],
    ... })
    >>> cfg.cameras[0].privacy.blur_classes
    ['person']
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from edge_app.detectors.config import AutoInferenceConfig, InferenceConfig
from kit.core.contracts import ControlConfig, ModelRef
from kit.core.contracts.base import ContractError, Identifier, contract_error
from kit.core.settings import Settings


class DeviceConfigError(ValueError):
    """The device config file is missing, unreadable or invalid; the message says where."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PrivacyConfig(_Strict):
    """Blur chosen classes in every frame and crop that leaves the device."""

    blur_classes: list[str] = Field(default_factory=lambda: ["person"])
    method: Literal["gaussian", "pixelate"] = "gaussian"


class CropConfig(_Strict):
    """Upload crops of chosen classes next to each published frame (``crops/...``)."""

    classes: list[str] = Field(default_factory=list)
    max_per_publish: int = Field(default=5, ge=1, le=100)
    padding: int = Field(default=8, ge=0, le=256)


class CameraConfig(_Strict):
    id: Identifier
    source: str | int | dict[str, Any] = Field(
        description="video file (path or file://), webcam index, rtsp:// or http(s):// URL, image folder"
    )
    model: ModelRef | None = Field(
        default=None, description="model until the control config names one"
    )
    process_fps: float = Field(
        default=10.0, gt=0, le=120, description="most frames a second to analyse"
    )
    privacy: PrivacyConfig = Field(default_factory=PrivacyConfig)
    crops: CropConfig = Field(default_factory=CropConfig)


class SpoolConfig(_Strict):
    dir: Path = Path("spool")
    max_mb: float = Field(default=500, gt=0)
    memory_mb: float = Field(
        default=16,
        gt=0,
        description="most MB held in memory while the disk cannot take items (full, read-only)",
    )
    fsync: bool = True


class DeviceConfig(_Strict):
    """Everything one device needs to run (see ``docs/edge.md`` for a commented example)."""

    device_id: Identifier
    cameras: list[CameraConfig] = Field(min_length=1, max_length=64)
    settings: dict[str, Any] = Field(
        default_factory=dict,
        description="kit Settings overrides: target, endpoint_url, prefix, api_url…",
    )
    models: dict[str, Path] = Field(
        default_factory=dict,
        description="model files shipped with the app, by 'name:version' or 'name' (no download needed)",
    )
    model_cache_dir: Path = Path("model-cache")
    inference: InferenceConfig = Field(
        default_factory=AutoInferenceConfig,
        description="how models run: backend (auto, onnxruntime, openvino) and its settings",
    )
    spool: SpoolConfig = Field(default_factory=SpoolConfig)
    heartbeat_s: float = Field(default=10.0, ge=1, le=3600)
    control_poll_s: float = Field(default=5.0, ge=0.5, le=3600)
    model_check_s: float = Field(
        default=60.0,
        ge=1,
        le=86400,
        description="seconds between checks of the model aliases cameras run "
        "(shelf:production): a promoted version reaches the device within this time",
    )
    control_source: Literal["auto", "api", "table", "none"] = "auto"
    control: ControlConfig | None = Field(
        default=None, description="config used until (or instead of) the backend's"
    )
    backend_retry_max_s: float = Field(default=30.0, ge=0.1, le=600)
    stop_grace_s: float = Field(
        default=30.0,
        ge=1,
        le=600,
        description="seconds stopping may take after SIGINT/SIGTERM; past them the app writes "
        "every thread's stack to its log and exits with status 1 (a hung network call or model "
        "download never holds up a service manager's stop)",
    )
    base_dir: Path = Field(default=Path("."), description="relative paths are relative to this")

    @model_validator(mode="after")
    def _unique_cameras(self) -> DeviceConfig:
        ids = [camera.id for camera in self.cameras]
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            raise ValueError(f"camera ids must be unique; repeated: {repeated}")
        return self

    def settings_problems(self) -> list[dict[str, Any]]:
        """Each bad value under ``settings`` (as :class:`~kit.core.contracts.ContractError`
        problems, the field named ``settings.<name>``); empty when they are all valid."""
        try:
            Settings.model_validate({**self.settings, "device_id": self.device_id})
        except ValidationError as error:
            return [
                {**problem, "field": f"settings.{problem['field']}"}
                for problem in contract_error("Settings", error).problems
            ]
        return []

    def path(self, value: Path) -> Path:
        """``value`` resolved against the config's folder."""
        return value if value.is_absolute() else (self.base_dir / value).resolve()

    def camera(self, camera_id: str) -> CameraConfig:
        for camera in self.cameras:
            if camera.id == camera_id:
                return camera
        raise KeyError(f"no camera {camera_id!r}; this device has {[c.id for c in self.cameras]}")


def load_device_config(path: str | Path) -> DeviceConfig:
    """Read and validate a device config file; relative paths inside are relative to its folder.

    Raises:
        DeviceConfigError: naming the file and every bad field (``settings`` values too).
    """
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise DeviceConfigError(f"device config {path} does not exist") from None
    except (OSError, yaml.YAMLError) as error:
        raise DeviceConfigError(f"cannot read device config {path}: {error}") from None
    if not isinstance(data, dict):
        raise DeviceConfigError(
            f"device config {path} must be a mapping, not {type(data).__name__}"
        )
    data.setdefault("base_dir", str(path.resolve().parent))
    try:
        config = DeviceConfig.model_validate(data)
    except ValidationError as error:
        raise DeviceConfigError(f"{path}: {contract_error('DeviceConfig', error)}") from None
    problems = config.settings_problems()
    if problems:
        raise DeviceConfigError(f"{path}: {ContractError('DeviceConfig', problems)}")
    return config
