"""Stack configuration: the knobs ``pulumi config set`` turns, validated in one place.

Keys live in the project's namespace (``edge-vision-kit:<key>``); the region is ``aws:region``.
``dashboard``, ``edge`` and ``pipeline`` are structured (objects) in ``Pulumi.<stack>.yaml``.

Examples:
    >>> from infra.config import StackConfig
    >>> config = StackConfig.from_values({"prefix": "demo", "batchSize": 20}, region="eu-west-1")
    >>> config.batch_size, config.settings().resources.detections_queue
    (20, 'demo-detections')
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from kit.core.contracts.base import contract_error
from kit.core.settings import ENV_PREFIX, Settings

PROJECT = "edge-vision-kit"
POWERTOOLS_VERSION = "3.37.0"
"""The aws-lambda-powertools release pinned in requirements.txt; its public layer is used."""
LAMBDA_RUNTIME = "python3.11"
LAMBDA_STATE_DIR = Path("/tmp/evk")
"""state_dir inside a Lambda function (the only writable place there)."""

LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096)
"""Retention periods CloudWatch Logs accepts (a subset: the common ones)."""
NAME_SUFFIX_LENGTH = 8
LOCAL_ONLY_SETTINGS = ("api_token", "endpoint_url", "local_host", "local_port", "api_port")
"""Settings of the local target only: never in a cloud resource's environment (``api_token`` is
the local stack's bearer token; on aws the API takes Cognito tokens)."""


class StackConfigError(ValueError):
    """A stack config value is missing or has a value AWS or the kit would reject."""


@dataclass(frozen=True)
class DashboardConfig:
    """The Voila dashboard on ECS Fargate behind an ALB that logs users in through Cognito.

    Attributes:
        enabled: build it at all (an ALB and a Fargate task cost money even when idle).
        domain: the dashboard's host name, covered by ``certificate_arn`` (DNS is yours to point).
        certificate_arn: an ACM certificate in the stack's region for ``domain``.
        image: an image you built and pushed yourself; empty (the default): ``pulumi up`` builds
            ``docker/dashboard.Dockerfile`` with Docker and pushes it to the stack's ECR
            repository, and the task runs that image's digest.
        cognito_domain_prefix: the hosted-UI domain prefix (globally unique in the region);
            default ``<prefix>-login-<name suffix>``.
        cpu: Fargate CPU units. memory: MiB.
        port: the port Voila listens on in the container.
    """

    enabled: bool = False
    domain: str = ""
    certificate_arn: str = ""
    image: str = ""
    cognito_domain_prefix: str = ""
    cpu: int = 512
    memory: int = 1024
    port: int = 8866

    @property
    def url(self) -> str:
        return f"https://{self.domain}" if self.domain else ""


@dataclass(frozen=True)
class EdgeConfig:
    """IAM for edge devices: the Greengrass token exchange role + role alias, the Panorama role."""

    enabled: bool = True
    credential_duration_s: int = 3600
    panorama: bool = True


@dataclass(frozen=True)
class PipelineConfig:
    """The optional AWS-native CI/CD: CodePipeline source → test → approval → deploy → edge.

    Attributes:
        repository: ``owner/name`` of the Git repository (GitHub, via a CodeStar connection).
        branch: the branch that deploys.
        connection_arn: an existing CodeStar connection; empty creates one (complete its
            handshake once in the console).
        backend_url: where Pulumi state lives (``s3://bucket`` or ``https://api.pulumi.com``).
        secrets_key_arn: the KMS key of the stack's secrets provider (decrypt rights for deploys).
        stack: the Pulumi stack the pipeline updates.
        thing_group: the Greengrass thing group the edge stage deploys to.
    """

    enabled: bool = False
    repository: str = ""
    branch: str = "main"
    connection_arn: str = ""
    backend_url: str = ""
    secrets_key_arn: str = ""
    stack: str = "dev"
    thing_group: str = ""


@dataclass(frozen=True)
class StackConfig:
    """Everything that differs between stacks; see ``Pulumi.dev.yaml`` for an example.

    ``name_suffix`` ends the globally unique names (the bucket, the Cognito domain): None (the
    default) means "derive it" — :func:`infra.program.build_backend` sets it to
    :func:`unique_name_suffix` of the account, region and stack; ``""`` keeps the names without
    a suffix (a stack deployed before suffixes existed keeps its bucket that way).
    ``sagemaker_role`` builds the SageMaker execution role training and Neo use.
    """

    region: str = "eu-west-1"
    prefix: str = "evk"
    alert_emails: tuple[str, ...] = ()
    alert_webhook_url: str | None = None
    batch_size: int = 10
    batching_window_s: int = 1
    log_retention_days: int = 30
    frames_expiry_days: int = 30
    powertools_version: str = POWERTOOLS_VERSION
    powertools_layer_arn: str = ""
    cors_origins: tuple[str, ...] = ("http://localhost:8866",)
    api_throttle_burst: int = 50
    api_throttle_rate: float = 20.0
    protect_data: bool = False
    name_suffix: str | None = None
    sagemaker_role: bool = True
    dashboard: DashboardConfig = field(default_factory=DashboardConfig)
    edge: EdgeConfig = field(default_factory=EdgeConfig)
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)

    def __post_init__(self) -> None:
        _check(1 <= self.batch_size <= 10_000, "batchSize", self.batch_size, "1..10000")
        _check(
            0 <= self.batching_window_s <= 300,
            "batchingWindowSeconds",
            self.batching_window_s,
            "0..300",
        )
        _check(
            self.batch_size <= 10 or self.batching_window_s >= 1,
            "batchingWindowSeconds",
            self.batching_window_s,
            "at least 1 when batchSize is above 10 (an SQS rule)",
        )
        _check(
            self.log_retention_days in LOG_RETENTION_DAYS,
            "logRetentionDays",
            self.log_retention_days,
            ", ".join(map(str, LOG_RETENTION_DAYS)),
        )
        _check(self.frames_expiry_days >= 1, "framesExpiryDays", self.frames_expiry_days, ">= 1")
        _check(self.api_throttle_burst >= 1, "apiThrottleBurst", self.api_throttle_burst, ">= 1")
        _check(self.api_throttle_rate > 0, "apiThrottleRate", self.api_throttle_rate, "> 0")
        if self.alert_webhook_url is not None:
            _check(
                self.alert_webhook_url.startswith("https://"),
                "alertWebhookUrl",
                self.alert_webhook_url,
                "an https:// URL (SNS delivers to HTTPS endpoints only here)",
            )
        if self.name_suffix:
            _check(
                bool(re.fullmatch(r"[a-z0-9]{1,12}", self.name_suffix)),
                "nameSuffix",
                self.name_suffix,
                "1-12 lower-case letters and digits (or empty for no suffix)",
            )
        for origin in self.cors_origins:
            _check(
                origin.startswith(("https://", "http://localhost", "http://127.0.0.1")),
                "corsOrigins",
                origin,
                "https:// origins, or http://localhost / http://127.0.0.1 for development",
            )
        if self.powertools_layer_arn:
            _check(
                self.powertools_layer_arn.startswith("arn:")
                and ":layer:" in self.powertools_layer_arn,
                "powertoolsLayerArn",
                self.powertools_layer_arn,
                "a Lambda layer version ARN (arn:aws:lambda:<region>:<account>:layer:<name>:<n>)",
            )
        if self.dashboard.enabled:
            _check(bool(self.dashboard.domain), "dashboard.domain", "", "the dashboard's host name")
            _check(
                self.dashboard.certificate_arn.startswith("arn:")
                and ":acm:" in self.dashboard.certificate_arn,
                "dashboard.certificateArn",
                self.dashboard.certificate_arn,
                f"an ACM certificate ARN in {self.region} for {self.dashboard.domain}",
            )
            _check(
                (self.dashboard.cpu, self.dashboard.memory) in _FARGATE_SIZES,
                "dashboard.cpu/memory",
                (self.dashboard.cpu, self.dashboard.memory),
                "a Fargate size, e.g. (256, 512), (512, 1024), (1024, 2048)",
            )
        if self.pipeline.enabled:
            _check(
                self.pipeline.repository.count("/") == 1,
                "pipeline.repository",
                self.pipeline.repository,
                "owner/name of the Git repository",
            )
            _check(
                self.pipeline.backend_url.startswith(("s3://", "https://")),
                "pipeline.backendUrl",
                self.pipeline.backend_url,
                "s3://<state bucket> or https://api.pulumi.com",
            )
            _check(
                bool(self.pipeline.thing_group),
                "pipeline.thingGroup",
                "",
                "the Greengrass thing group the edge stage deploys to",
            )
        self.settings()

    @property
    def cognito_domain_prefix(self) -> str:
        return self.dashboard.cognito_domain_prefix or self._unique(f"{self.prefix}-login")

    @property
    def bucket_name(self) -> str:
        """The data bucket's name: ``<prefix>-bucket-<name suffix>`` (S3 names are global)."""
        return self._unique(f"{self.prefix}-bucket")

    def _unique(self, name: str) -> str:
        return f"{name}-{self.name_suffix}" if self.name_suffix else name

    def with_name_suffix(self, suffix: str) -> StackConfig:
        """This config with ``name_suffix`` set (validated)."""
        return replace(self, name_suffix=suffix)

    def settings(self) -> Settings:
        """The kit settings of this stack (target aws), as the Lambda functions will load them."""
        try:
            return Settings(
                target="aws",
                region=self.region,
                prefix=self.prefix,
                state_dir=LAMBDA_STATE_DIR,
                alert_emails=list(self.alert_emails),
                alert_webhook_url=self.alert_webhook_url,
                resources={"bucket": self.bucket_name},
            )
        except ValidationError as error:
            problem = contract_error("Settings", error)
            raise StackConfigError(
                f"stack config does not make valid settings: {problem}"
            ) from None

    @classmethod
    def from_values(cls, values: Mapping[str, Any], *, region: str | None = None) -> StackConfig:
        """Build from the project's config keys as they appear in ``Pulumi.<stack>.yaml``.

        Args:
            values: ``{"prefix": ..., "alertEmails": [...], "dashboard": {...}, ...}`` without the
                ``edge-vision-kit:`` namespace.
            region: ``aws:region``; default eu-west-1.

        Raises:
            StackConfigError: naming an unknown key or a bad value and what is allowed.
        """
        unknown = sorted(set(values) - set(_KEYS))
        if unknown:
            raise StackConfigError(
                f"unknown stack config key(s) {', '.join(unknown)}; known: {', '.join(_KEYS)}"
            )
        kwargs: dict[str, Any] = {}
        for key, (attribute, kind) in _KEYS.items():
            if key in values and values[key] is not None:
                kwargs[attribute] = _convert(key, values[key], kind)
        if region:
            kwargs["region"] = region
        return cls(**kwargs)

    @classmethod
    def from_pulumi_config(cls) -> StackConfig:
        """Read the running stack's config (``pulumi config``); only inside a Pulumi program."""
        import pulumi

        config = pulumi.Config(PROJECT)
        values: dict[str, Any] = {}
        for key, (_, kind) in _KEYS.items():
            raw = config.get(key)
            if raw is not None and kind in _OBJECT_KINDS:
                try:
                    raw = json.loads(raw)
                except json.JSONDecodeError:
                    if kind != "list":
                        raise StackConfigError(
                            f"{PROJECT}:{key} must be an object (set it with --path or in "
                            f"Pulumi.<stack>.yaml), not {raw!r}"
                        ) from None
            if raw is not None:
                values[key] = raw
        region = pulumi.Config("aws").get("region")
        return cls.from_values(values, region=region)


_FARGATE_SIZES = {
    (256, 512),
    (256, 1024),
    (256, 2048),
    (512, 1024),
    (512, 2048),
    (512, 4096),
    (1024, 2048),
    (1024, 4096),
    (1024, 8192),
    (2048, 4096),
    (2048, 8192),
    (2048, 16384),
}
_OBJECT_KINDS = {"list", "dashboard", "edge", "pipeline"}
_KEYS: dict[str, tuple[str, str]] = {
    "prefix": ("prefix", "str"),
    "alertEmails": ("alert_emails", "list"),
    "alertWebhookUrl": ("alert_webhook_url", "str"),
    "batchSize": ("batch_size", "int"),
    "batchingWindowSeconds": ("batching_window_s", "int"),
    "logRetentionDays": ("log_retention_days", "int"),
    "framesExpiryDays": ("frames_expiry_days", "int"),
    "powertoolsVersion": ("powertools_version", "str"),
    "powertoolsLayerArn": ("powertools_layer_arn", "str"),
    "corsOrigins": ("cors_origins", "list"),
    "apiThrottleBurst": ("api_throttle_burst", "int"),
    "apiThrottleRate": ("api_throttle_rate", "float"),
    "protectData": ("protect_data", "bool"),
    "nameSuffix": ("name_suffix", "str"),
    "sagemakerRole": ("sagemaker_role", "bool"),
    "dashboard": ("dashboard", "dashboard"),
    "edge": ("edge", "edge"),
    "pipeline": ("pipeline", "pipeline"),
}
_NESTED: dict[str, tuple[type, dict[str, tuple[str, str]]]] = {
    "dashboard": (
        DashboardConfig,
        {
            "enabled": ("enabled", "bool"),
            "domain": ("domain", "str"),
            "certificateArn": ("certificate_arn", "str"),
            "image": ("image", "str"),
            "cognitoDomainPrefix": ("cognito_domain_prefix", "str"),
            "cpu": ("cpu", "int"),
            "memory": ("memory", "int"),
            "port": ("port", "int"),
        },
    ),
    "edge": (
        EdgeConfig,
        {
            "enabled": ("enabled", "bool"),
            "credentialDurationSeconds": ("credential_duration_s", "int"),
            "panorama": ("panorama", "bool"),
        },
    ),
    "pipeline": (
        PipelineConfig,
        {
            "enabled": ("enabled", "bool"),
            "repository": ("repository", "str"),
            "branch": ("branch", "str"),
            "connectionArn": ("connection_arn", "str"),
            "backendUrl": ("backend_url", "str"),
            "secretsKeyArn": ("secrets_key_arn", "str"),
            "stack": ("stack", "str"),
            "thingGroup": ("thing_group", "str"),
        },
    ),
}


def unique_name_suffix(account_id: str, region: str, stack: str) -> str:
    """A short suffix naming one deployment: the same account, region and stack always give the
    same one (so names stay put across updates), two customers' ``dev`` stacks never do.

    Examples:
        >>> unique_name_suffix("123456789012", "eu-west-1", "dev")
        '133f48ed'
    """
    digest = hashlib.sha256(f"{account_id}/{region}/{stack}".encode()).hexdigest()
    return digest[:NAME_SUFFIX_LENGTH]


def cloud_environment(settings: Settings) -> dict[str, str]:
    """``settings`` as ``EVK_*`` variables for a cloud resource, without the local-only ones."""
    local_only = {f"{ENV_PREFIX}{name.upper()}" for name in LOCAL_ONLY_SETTINGS}
    return {key: value for key, value in settings.as_env().items() if key not in local_only}


def _check(ok: bool, key: str, value: Any, allowed: str) -> None:
    if not ok:
        raise StackConfigError(f"{PROJECT}:{key} = {value!r} is not allowed; expected {allowed}")


def _convert(key: str, raw: Any, kind: str) -> Any:
    if kind in _NESTED:
        cls, fields = _NESTED[kind]
        if not isinstance(raw, Mapping):
            raise StackConfigError(f"{PROJECT}:{key} must be an object, not {raw!r}")
        unknown = sorted(set(raw) - set(fields))
        if unknown:
            raise StackConfigError(
                f"unknown key(s) {', '.join(unknown)} in {PROJECT}:{key}; known: {', '.join(fields)}"
            )
        return cls(
            **{
                attribute: _convert(f"{key}.{name}", raw[name], sub_kind)
                for name, (attribute, sub_kind) in fields.items()
                if name in raw and raw[name] is not None
            }
        )
    try:
        if kind == "list":
            if isinstance(raw, str):
                return tuple(item.strip() for item in raw.split(",") if item.strip())
            if not isinstance(raw, list | tuple):
                raise TypeError
            return tuple(str(item) for item in raw)
        if kind == "bool":
            if isinstance(raw, str) and raw.lower() in {"true", "false"}:
                return raw.lower() == "true"
            if not isinstance(raw, bool):
                raise TypeError
            return raw
        if kind == "int":
            if isinstance(raw, bool) or float(raw) != int(float(raw)):
                raise TypeError
            return int(float(raw))
        if kind == "float":
            return float(raw)
        return str(raw)
    except (TypeError, ValueError):
        expected = {"list": "a list", "bool": "true or false", "int": "a whole number"}
        raise StackConfigError(
            f"{PROJECT}:{key} = {raw!r} is not allowed; expected {expected.get(kind, kind)}"
        ) from None
