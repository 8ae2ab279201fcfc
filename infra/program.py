"""The whole stack: config → backend description → components → stack outputs.

:func:`build_backend` is the program (``infra/__main__.py`` calls it and exports
:func:`stack_outputs`); tests call it under ``pulumi.runtime.set_mocks``.
Both only run inside a Pulumi program (``pulumi up``) or under Pulumi's mocks, e.g.
``stack = build_backend(StackConfig(prefix="demo")); stack_outputs(stack)["api_url"]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.alerts import Alerts, AlertsArgs
from infra.api import Api, ApiArgs
from infra.auth import Auth, AuthArgs
from infra.config import StackConfig, cloud_environment, unique_name_suffix
from infra.dashboard import (
    DashboardHosting,
    DashboardHostingArgs,
    DashboardNames,
    check_image_can_be_built,
    docker_available,
)
from infra.deploy_access import PermissionsBoundary, PermissionsBoundaryArgs
from infra.edge import EdgeAccess, EdgeAccessArgs
from infra.functions import Functions, FunctionsArgs, powertools_layer_parameter
from infra.messaging import Messaging, MessagingArgs
from infra.pipeline import DeliveryPipeline, DeliveryPipelineArgs
from infra.sagemaker import SageMakerAccess, SageMakerAccessArgs
from infra.storage import Storage, StorageArgs
from infra.tables import Tables, TablesArgs
from infra.triggers import Triggers, TriggersArgs
from kit.core.backend import BackendSpec, HttpTrigger, SqsTrigger, describe_backend
from kit.core.settings import Settings


@dataclass
class BackendStack:
    """Every component of the Pulumi stack :func:`build_backend` built, for outputs and tests.

    Not to be confused with :class:`kit.core.backend.BackendSpec` (what the backend is made of,
    for both targets), from which it is built.
    """

    config: StackConfig
    settings: Settings
    spec: BackendSpec
    boundary: PermissionsBoundary
    alerts: Alerts
    storage: Storage
    messaging: Messaging
    tables: Tables
    functions: Functions
    triggers: Triggers
    auth: Auth
    api: Api
    dashboard: DashboardHosting | None
    edge: EdgeAccess | None
    pipeline: DeliveryPipeline | None
    sagemaker: SageMakerAccess | None


def powertools_layer_arn(config: StackConfig) -> pulumi.Input[str]:
    """The configured layer ARN, else the one AWS publishes for the pinned version in the region."""
    if config.powertools_layer_arn:
        return config.powertools_layer_arn
    name = powertools_layer_parameter(config.powertools_version)
    return aws.ssm.get_parameter_output(name=name).value


def with_unique_names(config: StackConfig) -> StackConfig:
    """``config`` with its name suffix derived from the account, region and stack, unless the
    stack config sets one (``nameSuffix``; empty for none)."""
    if config.name_suffix is not None:
        return config
    account = aws.get_caller_identity().account_id
    return config.with_name_suffix(unique_name_suffix(account, config.region, pulumi.get_stack()))


def build_backend(config: StackConfig, *, docker: bool | None = None) -> BackendStack:
    """Build every resource of the stack from ``config`` and the backend description.

    Args:
        config: the stack config; a name suffix is derived when it has none.
        docker: whether a Docker daemon can build the dashboard image; None looks for one
            (:func:`infra.dashboard.docker_available`).
    """
    docker = docker_available() if docker is None else docker
    if config.dashboard.enabled:
        # Before any resource: an `up` that cannot build the image stops with nothing created.
        check_image_can_be_built(
            config.dashboard,
            DashboardNames.of("dashboard", config.prefix),
            docker_available=docker,
            warn=False,
        )
    config = with_unique_names(config)
    settings = config.settings()
    spec = describe_backend(settings)
    prefix = settings.prefix
    account_id = aws.get_caller_identity_output().account_id
    partition_info = aws.get_partition_output()
    partition = partition_info.partition

    alerts = Alerts(
        "alerts", AlertsArgs(topic=spec.topic("alerts"), account_id=account_id, partition=partition)
    )
    storage = Storage(
        "storage",
        StorageArgs(
            bucket=spec.bucket,
            frames_expiry_days=config.frames_expiry_days,
            force_destroy=not config.protect_data,
        ),
    )
    consumers = [f for f in spec.functions if isinstance(f.trigger, SqsTrigger)]
    messaging = Messaging(
        "messaging",
        MessagingArgs(
            queues=spec.queues,
            consumer_timeout_s=max((f.timeout_s for f in consumers), default=1),
            alarm_topic_arn=alerts.topic.arn,
            alarm_name_prefix=prefix,
        ),
    )
    tables = Tables(
        "tables", TablesArgs(tables=spec.tables, deletion_protection=config.protect_data)
    )
    boundary = PermissionsBoundary(
        "boundary",
        PermissionsBoundaryArgs(
            prefix=prefix,
            partition=partition,
            region=config.region,
            account_id=account_id,
            bucket_arn=storage.bucket.arn,
            key_arns=[alerts.key.arn],
        ),
    )

    resource_arns: dict[str, pulumi.Input[str]] = {"bucket": storage.bucket.arn}
    resource_arns.update({f"table:{k}": t.arn for k, t in tables.tables.items()})
    resource_arns.update({f"queue:{k}": q.arn for k, q in messaging.queues.items()})
    resource_arns[f"topic:{spec.topic('alerts').logical}"] = alerts.topic.arn

    functions = Functions(
        "functions",
        FunctionsArgs(
            backend=spec,
            settings=settings,
            resource_arns=resource_arns,
            topic_key_arns={"alerts": alerts.key.arn},
            layer_arn=powertools_layer_arn(config),
            log_retention_days=config.log_retention_days,
            permissions_boundary=boundary.arn,
        ),
    )
    triggers = Triggers(
        "triggers",
        TriggersArgs(
            backend=spec,
            functions=functions.functions,
            queue_arns={k: q.arn for k, q in messaging.queues.items()},
            batch_size=config.batch_size,
            batching_window_s=config.batching_window_s,
            rule_name_prefix=prefix,
        ),
    )
    dashboard_config = config.dashboard
    auth = Auth(
        "auth",
        AuthArgs(
            name_prefix=prefix,
            deletion_protection=config.protect_data,
            dashboard_domain=dashboard_config.domain if dashboard_config.enabled else "",
            hosted_ui_domain_prefix=config.cognito_domain_prefix,
        ),
    )
    http_functions = [f for f in spec.functions if isinstance(f.trigger, HttpTrigger)]
    if len(http_functions) != 1:
        raise ValueError(
            "the backend description must have exactly one HTTP function (the control API), "
            f"not {[f.logical for f in http_functions]}"
        )
    api_function = http_functions[0]
    cors_origins = list(config.cors_origins)
    if dashboard_config.enabled and dashboard_config.url not in cors_origins:
        cors_origins.append(dashboard_config.url)
    api = Api(
        "api",
        ApiArgs(
            name=f"{prefix}-control-api",
            function=functions.functions[api_function.logical],
            routes=api_function.trigger.routes,
            issuer=auth.issuer,
            audiences=auth.audiences,
            cors_origins=cors_origins,
            throttle_burst=config.api_throttle_burst,
            throttle_rate=config.api_throttle_rate,
            log_retention_days=config.log_retention_days,
        ),
    )
    dashboard = None
    if dashboard_config.enabled:
        dashboard = DashboardHosting(
            "dashboard",
            DashboardHostingArgs(
                config=dashboard_config,
                name_prefix=prefix,
                region=config.region,
                auth=auth,
                api_execution_arn=api.api.execution_arn,
                environment=dashboard_environment(settings, api, auth),
                log_retention_days=config.log_retention_days,
                account_id=account_id,
                dns_suffix=partition_info.dns_suffix,
                docker_available=docker,
                force_delete=not config.protect_data,
                permissions_boundary=boundary.arn,
            ),
        )
    edge = None
    if config.edge.enabled:
        edge = EdgeAccess(
            "edge",
            EdgeAccessArgs(
                backend=spec,
                resource_arns=resource_arns,
                name_prefix=prefix,
                account_id=account_id,
                partition=partition,
                region=config.region,
                credential_duration_s=config.edge.credential_duration_s,
                panorama=config.edge.panorama,
                permissions_boundary=boundary.arn,
            ),
        )
    pipeline = None
    if config.pipeline.enabled:
        pipeline = DeliveryPipeline(
            "pipeline",
            DeliveryPipelineArgs(
                config=config.pipeline,
                name_prefix=prefix,
                artifact_bucket_name=f"{spec.bucket.name}-pipeline",
                data_bucket_arn=storage.bucket.arn,
                account_id=account_id,
                partition=partition,
                region=config.region,
                permissions_boundary=boundary.arn,
                builds_images=dashboard is not None and dashboard.image.build is not None,
            ),
        )
    sagemaker = None
    if config.sagemaker_role:
        sagemaker = SageMakerAccess(
            "sagemaker",
            SageMakerAccessArgs(
                name_prefix=prefix,
                bucket_arn=storage.bucket.arn,
                account_id=account_id,
                partition=partition,
                region=config.region,
                permissions_boundary=boundary.arn,
            ),
        )
    return BackendStack(
        config=config,
        settings=settings,
        spec=spec,
        boundary=boundary,
        alerts=alerts,
        storage=storage,
        messaging=messaging,
        tables=tables,
        functions=functions,
        triggers=triggers,
        auth=auth,
        api=api,
        dashboard=dashboard,
        edge=edge,
        pipeline=pipeline,
        sagemaker=sagemaker,
    )


def dashboard_environment(settings: Settings, api: Api, auth: Auth) -> dict[str, pulumi.Input[str]]:
    """The dashboard container's environment: the kit settings (without the local target's own,
    such as its bearer token) with the API and Cognito ids."""
    env: dict[str, pulumi.Input[str]] = dict(cloud_environment(settings))
    env["EVK_API_URL"] = api.url
    env["EVK_COGNITO_USER_POOL_ID"] = auth.user_pool.id
    env["EVK_COGNITO_CLIENT_ID"] = auth.api_client.id
    return env


def stack_outputs(stack: BackendStack) -> dict[str, Any]:
    """What ``pulumi stack output`` shows and ``kit aws outputs`` turns into settings."""
    spec = stack.spec
    queue = stack.messaging.queues["detections"]
    built_names: dict[str, pulumi.Input[str]] = {
        spec.bucket.name: stack.storage.bucket.bucket,
        spec.topic("alerts").name: stack.alerts.topic.name,
    }
    for logical, resource in stack.messaging.queues.items():
        built_names[spec.queue(logical).name] = resource.name
        built_names[spec.queue(logical).dlq] = stack.messaging.dead_letter_queues[logical].name
    for logical, table in stack.tables.tables.items():
        built_names[spec.table(logical).name] = table.name
    resources = {
        field: built_names[name]
        for field, name in stack.settings.resources.model_dump().items()
        if name in built_names
    }
    outputs: dict[str, Any] = {
        "region": stack.config.region,
        "prefix": stack.settings.prefix,
        "bucket": stack.storage.bucket.bucket,
        "detections_queue_url": queue.url,
        "detections_dlq_url": stack.messaging.dead_letter_queues["detections"].url,
        "alerts_topic_arn": stack.alerts.topic.arn,
        "tables": {logical: table.name for logical, table in stack.tables.tables.items()},
        "functions": {k: f.name for k, f in stack.functions.functions.items()},
        "api_url": stack.api.url,
        "cognito_user_pool_id": stack.auth.user_pool.id,
        "cognito_client_id": stack.auth.api_client.id,
        "resources": resources,
        "permissions_boundary_arn": stack.boundary.arn,
    }
    if stack.sagemaker is not None:
        outputs["sagemaker_role_arn"] = stack.sagemaker.role.arn
    if stack.edge is not None:
        outputs["greengrass_role_alias"] = stack.edge.role_alias.alias
        outputs["greengrass_token_exchange_role_arn"] = stack.edge.token_exchange_role.arn
        outputs["greengrass_core_policy"] = stack.edge.core_device_policy.name
        if stack.edge.panorama_role is not None:
            outputs["panorama_role_arn"] = stack.edge.panorama_role.arn
    if stack.dashboard is not None:
        outputs["dashboard_url"] = stack.dashboard.url
        outputs["dashboard_load_balancer_dns"] = stack.dashboard.entrance.load_balancer.dns_name
        outputs["dashboard_repository_url"] = stack.dashboard.image.repository.repository_url
        outputs["dashboard_image"] = stack.dashboard.image.image
    if stack.pipeline is not None:
        outputs["pipeline_name"] = stack.pipeline.pipeline.name
        if stack.pipeline.connection is not None:
            outputs["repository_connection_arn"] = stack.pipeline.connection.arn
    return outputs


def main() -> None:
    """What ``pulumi up`` runs: read the stack config, build, export the outputs."""
    stack = build_backend(StackConfig.from_pulumi_config())
    for key, value in stack_outputs(stack).items():
        pulumi.export(key, value)
