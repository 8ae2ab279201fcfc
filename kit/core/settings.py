"""Settings in one place, for notebooks, the CLI, the edge app and the Lambda handlers.

Precedence, lowest to highest:

1. defaults in :class:`Settings`;
2. the config file: ``$EVK_CONFIG`` if set, else ``evk.yaml`` in the project root (the nearest
   folder upwards from the working directory holding ``Pulumi.yaml``), if it exists;
3. environment variables ``EVK_<FIELD>``; nested fields with ``__``, e.g.
   ``EVK_RESOURCES__BUCKET=my-bucket``; lists as JSON or comma separated;
4. keyword arguments to :func:`load_settings`.

Every resource name derives from ``prefix`` unless set explicitly (the aws target takes them from
the Pulumi stack outputs, see ``kit aws outputs``).

Only pydantic and the standard library are imported here (yaml and boto3 lazily), so edge devices
and Lambda functions load settings the same way.

Examples:
    >>> from kit.core.settings import load_settings
    >>> s = load_settings(prefix="demo", target="local")
    >>> s.resources.detections_queue
    'demo-detections'
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from kit.core.contracts.base import PATTERN_HELP, PREFIX_PATTERN, Identifier, contract_error

ENV_PREFIX = "EVK_"
CONFIG_FILE_NAME = "evk.yaml"
PROJECT_MARKER = "Pulumi.yaml"
LOCAL_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


class SettingsError(ValueError):
    """A setting has a bad value, or a config file cannot be read."""


def find_project_root(start: Path | None = None) -> Path | None:
    """The nearest folder upwards from ``start`` (default: cwd) that holds ``Pulumi.yaml``."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / PROJECT_MARKER).is_file():
            return folder
    return None


class ResourceNames(BaseModel):
    """Physical names of the backend's resources; empty ones derive from the prefix."""

    model_config = ConfigDict(extra="forbid")

    bucket: str = ""
    detections_queue: str = ""
    detections_dlq: str = ""
    alerts_topic: str = ""
    alerts_inbox_queue: str = ""
    detections_table: str = ""
    alerts_table: str = ""
    devices_table: str = ""
    cameras_table: str = ""
    config_table: str = ""
    audit_table: str = ""
    idempotency_table: str = ""

    def filled(self, prefix: str) -> ResourceNames:
        """A copy with every empty name set to ``<prefix>-<logical name>``."""
        values = {}
        for field, value in self.model_dump().items():
            logical = field.removesuffix("_queue").removesuffix("_table").removesuffix("_topic")
            logical = logical.replace("_", "-")
            values[field] = value or f"{prefix}-{logical}"
        return ResourceNames(**values)


class Settings(BaseModel):
    """Everything that differs between deployments; the same object everywhere."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    target: Literal["local", "aws"] = "local"
    region: str = Field(default="eu-west-1", pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")
    prefix: str = Field(
        default="evk",
        pattern=PREFIX_PATTERN,
        description="starts every resource name; " + PATTERN_HELP[PREFIX_PATTERN],
    )
    state_dir: Path = Field(
        default=Path(".evk"), description="local state; relative to the project root"
    )
    local_host: Literal["127.0.0.1", "localhost", "::1"] = "127.0.0.1"
    local_port: int = Field(
        default=5055, ge=0, le=65535, description="moto server port; 0 picks a free one"
    )
    api_port: int = Field(default=8088, ge=0, le=65535, description="local control API port")
    endpoint_url: str | None = Field(
        default=None, description="AWS endpoint override (local: moto)"
    )
    api_url: str | None = Field(default=None, description="control API base URL")
    api_token: str = Field(
        default="evk-local-token", min_length=8, description="local bearer token"
    )
    device_id: Identifier = "demo-1"
    alert_emails: list[str] = Field(default_factory=list)
    alert_webhook_url: str | None = None
    cognito_user_pool_id: str | None = None
    cognito_client_id: str | None = None
    sagemaker_role_arn: str | None = Field(
        default=None, description="the SageMaker execution role training and Neo jobs use (aws)"
    )
    allow_downloads: bool = Field(
        default=False,
        description="let ultralytics download pretrained weights (e.g. yolo11n.pt) on a machine "
        "with internet; off: only local files and registered models serve as a training base",
    )
    resources: ResourceNames = Field(default_factory=ResourceNames)
    config_file: Path | None = Field(default=None, description="the file these settings came from")

    @model_validator(mode="after")
    def _derive(self) -> Settings:
        filled = self.resources.filled(self.prefix)
        if filled != self.resources:
            object.__setattr__(self, "resources", filled)
        for email in self.alert_emails:
            if "@" not in email or email.startswith("@") or email.endswith("@"):
                raise ValueError(f"alert_emails: {email!r} is not an e-mail address")
        return self

    @property
    def local_dir(self) -> Path:
        """Where the local stack keeps its pid files, logs and snapshots."""
        return self.state_dir / "local"

    def aws_endpoint(self) -> str | None:
        """The endpoint boto3 should use: explicit, else the running local stack's, else AWS."""
        if self.endpoint_url:
            return self.endpoint_url
        if self.target == "local":
            stack_file = self.local_dir / "stack.json"
            if stack_file.is_file():
                return json.loads(stack_file.read_text())["endpoint_url"]
            return f"http://{self.local_host}:{self.local_port}"
        return None

    def control_api_url(self) -> str | None:
        """The control API's base URL: explicit, else the running local stack's, else None."""
        if self.api_url:
            return self.api_url
        if self.target == "local":
            stack_file = self.local_dir / "stack.json"
            if stack_file.is_file():
                return json.loads(stack_file.read_text()).get("api_url")
        return None

    def client(self, service: str, **kwargs: Any) -> Any:
        """A boto3 client for ``service`` on this target (local: the moto endpoint, test credentials)."""
        import boto3

        options: dict[str, Any] = {"region_name": self.region}
        endpoint = self.aws_endpoint()
        if endpoint:
            options["endpoint_url"] = endpoint
        if self.target == "local":
            options.update(LOCAL_CREDENTIALS)
        options.update(kwargs)
        return boto3.client(service, **options)

    def resource(self, service: str, **kwargs: Any) -> Any:
        """A boto3 resource (e.g. ``dynamodb``) on this target."""
        import boto3

        options: dict[str, Any] = {"region_name": self.region}
        endpoint = self.aws_endpoint()
        if endpoint:
            options["endpoint_url"] = endpoint
        if self.target == "local":
            options.update(LOCAL_CREDENTIALS)
        options.update(kwargs)
        return boto3.resource(service, **options)

    def as_env(self) -> dict[str, str]:
        """These settings as ``EVK_*`` environment variables (for child processes and Lambdas)."""
        env = {}
        data = self.model_dump(mode="json", exclude={"config_file"})
        for key, value in data.items():
            if key == "resources":
                for name, physical in value.items():
                    env[f"{ENV_PREFIX}RESOURCES__{name.upper()}"] = physical
            elif value is None:
                continue
            elif isinstance(value, list):
                env[f"{ENV_PREFIX}{key.upper()}"] = json.dumps(value)
            else:
                env[f"{ENV_PREFIX}{key.upper()}"] = str(value)
        return env


def _read_config_file(path: Path) -> dict[str, Any]:
    import yaml  # only config files need it: Lambda functions configure through EVK_* variables

    try:
        data = yaml.safe_load(path.read_text()) or {}
    except OSError as error:
        raise SettingsError(f"cannot read config file {path}: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise SettingsError(f"config file {path} is not valid YAML: {error}") from None
    if not isinstance(data, dict):
        raise SettingsError(
            f"config file {path} must hold a mapping of settings, not {type(data).__name__}"
        )
    return data


def _env_value(raw: str, field: str) -> Any:
    if field in {"alert_emails"}:
        raw = raw.strip()
        if raw.startswith("["):
            try:
                return json.loads(raw)
            except json.JSONDecodeError as error:
                raise SettingsError(
                    f"{ENV_PREFIX}{field.upper()} is not a JSON list: {error}"
                ) from None
        return [item.strip() for item in raw.split(",") if item.strip()]
    return raw


def _read_environment(environ: dict[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    known = set(Settings.model_fields) - {"config_file"}
    for key, raw in environ.items():
        if not key.startswith(ENV_PREFIX) or key == f"{ENV_PREFIX}CONFIG":
            continue
        name = key[len(ENV_PREFIX) :].lower()
        if "__" in name:
            section, field = name.split("__", 1)
            if section == "resources":
                values.setdefault("resources", {})[field] = raw
                continue
            raise SettingsError(
                f"unknown setting {key}; nested settings exist only under EVK_RESOURCES__"
            )
        if name not in known:
            raise SettingsError(f"unknown setting {key}; known: {', '.join(sorted(known))}")
        values[name] = _env_value(raw, name)
    return values


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_settings(
    config_file: str | Path | None = None,
    *,
    environ: dict[str, str] | None = None,
    project_root: Path | None = None,
    **overrides: Any,
) -> Settings:
    """Build :class:`Settings` from defaults, the config file, ``EVK_*`` variables and ``overrides``.

    Args:
        config_file: a YAML file; default ``$EVK_CONFIG``, else ``<project root>/evk.yaml`` if present.
        environ: the environment to read (default ``os.environ``).
        project_root: where relative ``state_dir`` and the default config file live (default: found
            upwards from the working directory, else the working directory).
        **overrides: settings that win over everything else.

    Raises:
        SettingsError: naming the bad setting, its value and what is allowed.
    """
    environ = dict(os.environ if environ is None else environ)
    root = project_root or find_project_root() or Path.cwd()
    if config_file is None and environ.get(f"{ENV_PREFIX}CONFIG"):
        config_file = environ[f"{ENV_PREFIX}CONFIG"]
    path: Path | None
    if config_file is not None:
        path = Path(config_file)
        if not path.is_file():
            raise SettingsError(f"config file {path} does not exist")
    else:
        path = root / CONFIG_FILE_NAME if (root / CONFIG_FILE_NAME).is_file() else None
    values: dict[str, Any] = _read_config_file(path) if path else {}
    values = _merge(values, _read_environment(environ))
    values = _merge(values, overrides)
    if path is not None:
        values["config_file"] = path.resolve()
    try:
        settings = Settings.model_validate(values)
    except ValidationError as error:
        source = f" (from {path})" if path else ""
        raise SettingsError(str(contract_error("Settings", error)) + source) from None
    if not settings.state_dir.is_absolute():
        settings.state_dir = (root / settings.state_dir).resolve()
    return settings
