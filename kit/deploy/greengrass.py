"""Deploy the edge app to AWS IoT Greengrass v2 core devices, and read their state.

:func:`deploy_greengrass` builds the bundle, publishes the component version
(:mod:`kit.package.greengrass`: artefact to the bucket, ``create_component_version``) and
creates a deployment to a thing or a thing group (``create_deployment``), whose ARN it looks up
in AWS IoT (so a misspelt name fails with a clear message before anything is created).

State: :func:`deployment_state` (``get_deployment``), :func:`core_device_state`
(``get_core_device``, ``list_installed_components``, ``list_effective_deployments``).

Examples:
    >>> result = deploy_greengrass(settings, thing_group="evk-edge", model="shelf:production")
    ...                                                           # doctest: +SKIP
    >>> deployment_state(settings.client("greengrassv2"), result.deployment_id).status
    ...                                                           # doctest: +SKIP
    'ACTIVE'
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kit.core.settings import Settings
from kit.package.bundle import Bundle, build_bundle
from kit.package.device import demo_cameras, device_config, device_settings
from kit.package.greengrass import (
    DEFAULT_COMPONENT_NAME,
    DEFAULT_PYTHON,
    PublishedComponent,
    build_component,
    component_arn,
    default_configuration,
    next_component_version,
    publish_component,
)

FINAL_DEPLOYMENT_STATES = {"COMPLETED", "CANCELED", "FAILED", "INACTIVE"}


class GreengrassDeployError(RuntimeError):
    """A Greengrass deployment cannot be made; the message says why and what to do."""


def _client_error_code(error: Exception) -> str:
    response = getattr(error, "response", None) or {}
    return response.get("Error", {}).get("Code", "")


def target_arn(iot: Any, *, thing: str | None = None, thing_group: str | None = None) -> str:
    """The ARN of a thing or thing group (exactly one of them), looked up in AWS IoT.

    Raises:
        ValueError: neither or both given.
        GreengrassDeployError: no such thing or thing group.
    """
    if (thing is None) == (thing_group is None):
        raise ValueError("give exactly one deployment target: a thing or a thing group")
    from botocore.exceptions import ClientError

    try:
        if thing_group is not None:
            return iot.describe_thing_group(thingGroupName=thing_group)["thingGroupArn"]
        return iot.describe_thing(thingName=thing)["thingArn"]
    except ClientError as error:
        if _client_error_code(error) == "ResourceNotFoundException":
            kind, name = ("thing group", thing_group) if thing_group else ("thing", thing)
            raise GreengrassDeployError(
                f"no IoT {kind} {name!r} in {iot.meta.region_name}; create it when you install "
                "Greengrass on the core device (--thing-name / --thing-group-name)"
            ) from None
        raise


def create_deployment(
    greengrass: Any,
    *,
    target: str,
    component: PublishedComponent,
    configuration_update: Mapping[str, Any] | None = None,
    deployment_name: str | None = None,
) -> str:
    """Deploy ``component`` to ``target`` (an IoT thing or thing group ARN); return the deployment id.

    A deployment to a thing group replaces that group's previous deployment; the component's
    configuration is merged with ``configuration_update`` on each device.
    """
    spec: dict[str, Any] = {"componentVersion": component.component_version}
    if configuration_update:
        spec["configurationUpdate"] = {"merge": json.dumps(dict(configuration_update))}
    response = greengrass.create_deployment(
        targetArn=target,
        deploymentName=deployment_name
        or f"{component.component_name}-{component.component_version}",
        components={component.component_name: spec},
        deploymentPolicies={
            "failureHandlingPolicy": "ROLLBACK",
            "componentUpdatePolicy": {"timeoutInSeconds": 60, "action": "NOTIFY_COMPONENTS"},
        },
    )
    return response["deploymentId"]


@dataclass(frozen=True)
class DeploymentState:
    """A Greengrass deployment as ``get_deployment`` describes it."""

    deployment_id: str
    status: str
    target_arn: str
    name: str | None
    components: dict[str, str]
    created_at: str | None
    is_latest_for_target: bool | None

    @property
    def done(self) -> bool:
        return self.status in FINAL_DEPLOYMENT_STATES


def deployment_state(greengrass: Any, deployment_id: str) -> DeploymentState:
    """The state of a deployment (``ACTIVE``, ``COMPLETED``, ``CANCELED``, ``FAILED``, ``INACTIVE``)."""
    response = greengrass.get_deployment(deploymentId=deployment_id)
    created = response.get("creationTimestamp")
    return DeploymentState(
        deployment_id=response["deploymentId"],
        status=response.get("deploymentStatus", "UNKNOWN"),
        target_arn=response.get("targetArn", ""),
        name=response.get("deploymentName"),
        components={
            name: spec.get("componentVersion", "")
            for name, spec in (response.get("components") or {}).items()
        },
        created_at=created.isoformat() if hasattr(created, "isoformat") else created,
        is_latest_for_target=response.get("isLatestForTarget"),
    )


def wait_for_deployment(
    greengrass: Any, deployment_id: str, *, timeout_s: float = 600, interval_s: float = 10
) -> DeploymentState:
    """Poll until the deployment is done (or ``timeout_s``); return its last state.

    Note that a thing group deployment stays ``ACTIVE`` while it applies to the group (new
    devices joining get it too); check each device with :func:`core_device_state`.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        state = deployment_state(greengrass, deployment_id)
        if state.done or time.monotonic() >= deadline:
            return state
        time.sleep(interval_s)


@dataclass(frozen=True)
class InstalledComponent:
    name: str
    version: str
    lifecycle_state: str
    details: str | None = None


@dataclass(frozen=True)
class EffectiveDeployment:
    deployment_id: str
    name: str | None
    status: str
    reason: str | None = None
    modified_at: str | None = None


@dataclass(frozen=True)
class CoreDeviceState:
    """A Greengrass core device: its status, installed components and deployments."""

    thing_name: str
    status: str
    last_status_update: str | None
    platform: str | None
    architecture: str | None
    core_version: str | None
    installed: list[InstalledComponent] = field(default_factory=list)
    deployments: list[EffectiveDeployment] = field(default_factory=list)

    def component(self, name: str = DEFAULT_COMPONENT_NAME) -> InstalledComponent | None:
        """The installed component ``name`` (None when it is not installed)."""
        return next((c for c in self.installed if c.name == name), None)


def _iso(value: Any) -> str | None:
    return value.isoformat() if hasattr(value, "isoformat") else value


def core_device_state(greengrass: Any, thing_name: str) -> CoreDeviceState:
    """``get_core_device`` + ``list_installed_components`` + ``list_effective_deployments``.

    Raises:
        GreengrassDeployError: no core device of that name.
    """
    from botocore.exceptions import ClientError

    try:
        device = greengrass.get_core_device(coreDeviceThingName=thing_name)
    except ClientError as error:
        if _client_error_code(error) == "ResourceNotFoundException":
            raise GreengrassDeployError(
                f"no Greengrass core device {thing_name!r}; is Greengrass installed and "
                "registered on it?"
            ) from None
        raise
    installed = []
    for page in greengrass.get_paginator("list_installed_components").paginate(
        coreDeviceThingName=thing_name
    ):
        for item in page.get("installedComponents", []):
            installed.append(
                InstalledComponent(
                    name=item["componentName"],
                    version=item.get("componentVersion", ""),
                    lifecycle_state=item.get("lifecycleState", "UNKNOWN"),
                    details=item.get("lifecycleStateDetails"),
                )
            )
    deployments = []
    for page in greengrass.get_paginator("list_effective_deployments").paginate(
        coreDeviceThingName=thing_name
    ):
        for item in page.get("effectiveDeployments", []):
            deployments.append(
                EffectiveDeployment(
                    deployment_id=item["deploymentId"],
                    name=item.get("deploymentName"),
                    status=item.get("coreDeviceExecutionStatus", "UNKNOWN"),
                    reason=item.get("reason"),
                    modified_at=_iso(item.get("modifiedTimestamp")),
                )
            )
    return CoreDeviceState(
        thing_name=thing_name,
        status=device.get("status", "UNKNOWN"),
        last_status_update=_iso(device.get("lastStatusUpdateTimestamp")),
        platform=device.get("platform"),
        architecture=device.get("architecture"),
        core_version=device.get("coreVersion"),
        installed=installed,
        deployments=deployments,
    )


def list_core_devices(greengrass: Any, thing_group_arn: str | None = None) -> list[str]:
    """The thing names of the account's Greengrass core devices (of one thing group, if given)."""
    options = {"thingGroupArn": thing_group_arn} if thing_group_arn else {}
    names = []
    for page in greengrass.get_paginator("list_core_devices").paginate(**options):
        names += [item["coreDeviceThingName"] for item in page.get("coreDevices", [])]
    return sorted(names)


@dataclass(frozen=True)
class GreengrassDeployment:
    """What :func:`deploy_greengrass` did."""

    component: PublishedComponent
    bundle: Bundle
    target_arn: str
    deployment_id: str


def deploy_greengrass(
    settings: Settings,
    *,
    thing: str | None = None,
    thing_group: str | None = None,
    model: str | None = None,
    cameras: Iterable[Mapping[str, Any]] | None = None,
    device_id: str = "",
    component_name: str = DEFAULT_COMPONENT_NAME,
    component_version: str | None = None,
    ship_model: bool = True,
    heartbeat_s: float = 10.0,
    python: str = DEFAULT_PYTHON,
    out_dir: str | Path | None = None,
    s3: Any | None = None,
    greengrass: Any | None = None,
    iot: Any | None = None,
    sts: Any | None = None,
) -> GreengrassDeployment:
    """Build, publish and deploy the edge app component to a thing or a thing group.

    Args:
        settings: the aws target's settings (bucket, region, resource names).
        thing, thing_group: the deployment target (exactly one).
        model: a registered model for the cameras; None: they run what the control config names.
        cameras: camera configs; None: one synthetic demo camera (a video in the bundle).
        device_id: the device id for every device of the target; empty: each its thing name.
        component_name: the component.
        component_version: ``major.minor.patch``; default: the next free patch version.
        ship_model: put the model file into the artefact (devices start offline-ready).
        heartbeat_s: seconds between heartbeats.
        python: the interpreter the devices make the component's venv with (Python 3.11 or
            newer; e.g. ``python3.11`` on Ubuntu 22.04, see docs/deploy-aws.md).
        out_dir: where the bundle and ``recipe.json`` are kept (default:
            ``<state_dir>/packages/greengrass/<component>``).
        s3, greengrass, iot, sts: boto3 clients (default: from ``settings``).

    Raises:
        GreengrassDeployError: the thing or group does not exist, or Greengrass refused.
        LookupError: the model is not in the registry.
    """
    from kit.deploy.local import resolve_model

    s3 = s3 or settings.client("s3")
    greengrass = greengrass or settings.client("greengrassv2")
    iot = iot or settings.client("iot")
    arn = target_arn(iot, thing=thing, thing_group=thing_group)
    with tempfile.TemporaryDirectory(prefix="kit-greengrass-") as scratch:
        folder = Path(out_dir or settings.state_dir / "packages" / "greengrass" / component_name)
        resolved, model_file = (None, None)
        if model is not None:
            resolved, model_file = resolve_model(
                settings, model, cache_dir=Path(scratch) / "models"
            )
        videos: dict[str, Path] = {}
        if cameras is None:
            cameras, videos = demo_cameras(
                settings.state_dir / "demo-videos",
                model_name=resolved.split(":")[0] if resolved else None,
            )
        cameras = [dict(camera) for camera in cameras]
        values = device_settings(settings, target="aws")
        config = device_config(
            device_id or "greengrass-device",
            cameras,
            model=resolved,
            settings=values,
            heartbeat_s=heartbeat_s,
        )
        bundle = build_bundle(
            folder,
            device_config=config,
            models={resolved: model_file} if ship_model and model_file else None,
            videos=videos,
        )
        if component_version is None:
            account = (sts or settings.client("sts")).get_caller_identity()["Account"]
            arn_of_component = component_arn(greengrass, account, component_name)
            component_version = next_component_version(
                greengrass, arn_of_component, bundle.app_version
            )
        configuration = default_configuration(
            device_id=device_id,
            cameras=[] if videos else cameras,
            model=resolved or "",
            settings=values,
            heartbeat_s=heartbeat_s,
            python=python,
        )
        component = build_component(
            bundle,
            bucket=settings.resources.bucket,
            component_version=component_version,
            configuration=configuration,
            component_name=component_name,
            out_dir=folder,
        )
        try:
            component = publish_component(component, bundle, s3=s3, greengrass=greengrass)
            deployment_id = create_deployment(greengrass, target=arn, component=component)
        except Exception as error:
            if type(error).__module__.startswith("botocore"):
                raise GreengrassDeployError(f"Greengrass refused the deployment: {error}") from None
            raise
    return GreengrassDeployment(component, bundle, arn, deployment_id)
