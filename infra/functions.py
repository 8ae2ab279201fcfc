"""Lambda functions from the backend description: code, layer, least-privilege role, log group.

Each function's role allows exactly the description's ``permissions`` (its actions on its
resources), writing to its own log group, and — when it publishes to an encrypted topic — using
that topic's KMS key. The code is the ``lambdas/`` package plus the light part of ``kit`` the
handlers import (`kit/core`: contracts, settings, backend description, registry reader,
geometry) and PyYAML (kit.core.settings needs it;
neither the Lambda runtime nor the Powertools layer has it). Powertools itself, with pydantic,
comes from its public layer.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.config import LAMBDA_RUNTIME, cloud_environment
from infra.iam import (
    assume_role_policy,
    document,
    permission_statements,
    resource_arns,
    statement,
)
from kit.core.backend import BackendSpec, FunctionSpec
from kit.core.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[1]
LAMBDA_SOURCES = (
    "lambdas",
    "kit/__init__.py",
    "kit/core",
)
"""Paths (relative to the repository root) packaged into every function."""
VENDORED_PACKAGES = ("yaml",)
"""Installed packages copied into the code archive (the Lambda runtime lacks them): settings read
an ``evk.yaml`` when ``EVK_CONFIG`` names one."""
PACKAGED_SUFFIXES = (".py", ".json", ".so")
LOG_ACTIONS = ("logs:CreateLogStream", "logs:PutLogEvents")
TOPIC_KEY_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey*")
"""What sns:Publish to a KMS-encrypted topic needs on the topic's key."""


def powertools_layer_parameter(version: str, runtime: str = LAMBDA_RUNTIME) -> str:
    """The public SSM parameter holding the Powertools layer ARN of ``version`` in each region."""
    return f"/aws/service/powertools/python/x86_64/{runtime}/{version}"


def code_files(repo_root: Path = REPO_ROOT) -> dict[str, Path]:
    """Archive path → file for everything a function needs; no caches, no tests.

    Raises:
        FileNotFoundError: a packaged source or vendored package is missing.
    """
    files: dict[str, Path] = {}
    for source in LAMBDA_SOURCES:
        path = repo_root / source
        if not path.exists():
            raise FileNotFoundError(f"Lambda source {path} does not exist")
        files.update(_package_tree(path, source))
    for package in VENDORED_PACKAGES:
        found = importlib.util.find_spec(package)
        if found is None or not found.submodule_search_locations:
            raise FileNotFoundError(
                f"package {package!r} must be installed to be packaged with the Lambda code"
            )
        files.update(_package_tree(Path(next(iter(found.submodule_search_locations))), package))
    return files


def _package_tree(path: Path, archive_path: str) -> dict[str, Path]:
    if path.is_file():
        return {archive_path: path}
    return {
        f"{archive_path}/{file.relative_to(path).as_posix()}": file
        for file in sorted(path.rglob("*"))
        if file.is_file()
        and file.suffix in PACKAGED_SUFFIXES
        and "__pycache__" not in file.parts
        and "tests" not in file.relative_to(path).parts
    }


def code_archive(repo_root: Path = REPO_ROOT) -> pulumi.AssetArchive:
    """The functions' code as a Pulumi archive (file by file, so caches never change its hash)."""
    return pulumi.AssetArchive(
        {name: pulumi.FileAsset(str(file)) for name, file in code_files(repo_root).items()}
    )


def function_environment(settings: Settings, spec: FunctionSpec) -> dict[str, str]:
    """The environment of a function: the kit settings (``EVK_*``, without the local target's
    own, such as its bearer token) and Powertools' own variables."""
    return {
        **cloud_environment(settings),
        "POWERTOOLS_SERVICE_NAME": spec.logical,
        "POWERTOOLS_LOG_LEVEL": "INFO",
    }


def function_policy_statements(
    spec: FunctionSpec,
    backend: BackendSpec,
    values: Mapping[str, str],
    log_group_arn: str,
    topic_key_arns: Mapping[str, str],
) -> list[dict[str, Any]]:
    """Every statement of a function's role: its permissions, its logs, its topics' keys."""
    statements = permission_statements(spec.permissions, resource_arns(backend, values))
    statements.append(statement(LOG_ACTIONS, [f"{log_group_arn}:*"], sid="OwnLogGroup"))
    keys = sorted(
        topic_key_arns[p.resource.partition(":")[2]]
        for p in spec.permissions
        if p.resource.startswith("topic:")
        and "sns:Publish" in p.actions
        and p.resource.partition(":")[2] in topic_key_arns
    )
    if keys:
        statements.append(statement(TOPIC_KEY_ACTIONS, keys, sid="EncryptedTopicKeys"))
    return statements


@dataclass
class FunctionsArgs:
    """Args of :class:`Functions`.

    Attributes:
        backend: the backend description.
        settings: the stack's kit settings (become each function's environment).
        resource_arns: ARNs keyed ``bucket``, ``table:<logical>``, ``queue:<logical>``,
            ``topic:<logical>``.
        topic_key_arns: topic logical name → the KMS key encrypting it.
        layer_arn: the Powertools layer version ARN.
        log_retention_days: how long function logs are kept.
        code: the code archive (default: :func:`code_archive`).
        permissions_boundary: the stack's permissions boundary, set on every function's role.
    """

    backend: BackendSpec
    settings: Settings
    resource_arns: Mapping[str, pulumi.Input[str]]
    topic_key_arns: Mapping[str, pulumi.Input[str]]
    layer_arn: pulumi.Input[str]
    log_retention_days: int
    code: pulumi.Archive | None = None
    permissions_boundary: pulumi.Input[str] | None = None


class Functions(pulumi.ComponentResource):
    """The backend's Lambda functions, each with its own role and log group."""

    def __init__(
        self, name: str, args: FunctionsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("kit:backend:Functions", name, {}, opts)
        child = pulumi.ResourceOptions(parent=self)
        code = args.code or code_archive()
        prefix = args.settings.prefix
        self.functions: dict[str, aws.lambda_.Function] = {}
        self.roles: dict[str, aws.iam.Role] = {}
        self.log_groups: dict[str, aws.cloudwatch.LogGroup] = {}
        self.policy_documents: dict[str, pulumi.Output[str]] = {}
        for spec in args.backend.functions:
            function_name = f"{prefix}-{spec.logical}"
            log_group = aws.cloudwatch.LogGroup(
                f"{name}-{spec.logical}-logs",
                name=f"/aws/lambda/{function_name}",
                retention_in_days=args.log_retention_days,
                opts=child,
            )
            role = aws.iam.Role(
                f"{name}-{spec.logical}-role",
                name=f"{function_name}-role",
                description=f"runs the {spec.logical} function: {spec.purpose}"[:1000],
                assume_role_policy=assume_role_policy("lambda.amazonaws.com"),
                permissions_boundary=args.permissions_boundary,
                opts=child,
            )
            policy_document = pulumi.Output.all(
                dict(args.resource_arns), log_group.arn, dict(args.topic_key_arns)
            ).apply(
                lambda values, spec=spec: document(
                    function_policy_statements(spec, args.backend, values[0], values[1], values[2])
                )
            )
            role_policy = aws.iam.RolePolicy(
                f"{name}-{spec.logical}-policy",
                name=f"{function_name}-least-privilege",
                role=role.id,
                policy=policy_document,
                opts=child,
            )
            self.functions[spec.logical] = aws.lambda_.Function(
                f"{name}-{spec.logical}",
                name=function_name,
                description=spec.purpose[:256],
                runtime=LAMBDA_RUNTIME,
                architectures=["x86_64"],
                handler=spec.handler,
                code=code,
                role=role.arn,
                timeout=spec.timeout_s,
                memory_size=spec.memory_mb,
                layers=[args.layer_arn],
                environment={"variables": function_environment(args.settings, spec)},
                logging_config={"log_format": "Text", "log_group": log_group.name},
                opts=pulumi.ResourceOptions(parent=self, depends_on=[role_policy, log_group]),
            )
            self.roles[spec.logical] = role
            self.log_groups[spec.logical] = log_group
            self.policy_documents[spec.logical] = policy_document
        self.register_outputs({"arns": {k: f.arn for k, f in self.functions.items()}})
