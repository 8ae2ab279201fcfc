"""Deploy to AWS Panorama appliances (legacy) and read their state.

AWS Panorama reached end of support on 2026-05-31. For appliances that still run, the kit
deploys an application built by :func:`kit.package.build_panorama_app` whose packages were
registered with ``panorama-cli package-application`` (it builds the code node's container image
and uploads both packages; it needs Docker and is not part of the kit):
:func:`deploy_application` calls ``create_application_instance`` with the application manifest.
State: :func:`application_instance_state` (``describe_application_instance``) and
:func:`panorama_devices` (``list_devices`` + ``describe_device``).

botocore 1.44 no longer ships the Panorama API; :func:`panorama_client` then loads the copy in
``kit/deploy/aws_models`` (see its README).

Examples:
    >>> client = panorama_client(settings)                                     # doctest: +SKIP
    >>> instance = deploy_application(client, app, device_id="device-abc123",
    ...                               role_arn="arn:aws:iam::123456789012:role/evk-panorama-app")
    ...                                                                          # doctest: +SKIP
    >>> application_instance_state(client, instance).status                   # doctest: +SKIP
    'DEPLOYMENT_IN_PROGRESS'
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kit.core.settings import LOCAL_CREDENTIALS, Settings
from kit.package.panorama import PanoramaApp, check_panorama_app

AWS_MODELS_DIR = Path(__file__).resolve().parent / "aws_models"


def panorama_client(settings: Settings, **kwargs: Any) -> Any:
    """A boto3 ``panorama`` client for ``settings`` (with the kit's API model if botocore lacks it)."""
    import boto3
    import botocore.session

    session = botocore.session.get_session()
    # Ask a throwaway session: a failed lookup would stay cached in this session's loader.
    if "panorama" not in botocore.session.get_session().get_available_services():
        session.get_component("data_loader").search_paths.append(str(AWS_MODELS_DIR))
    options: dict[str, Any] = {"region_name": settings.region}
    endpoint = settings.aws_endpoint()
    if endpoint:
        options["endpoint_url"] = endpoint
    if settings.target == "local":
        options.update(LOCAL_CREDENTIALS)
    options.update(kwargs)
    return boto3.Session(botocore_session=session).client("panorama", **options)


def deploy_application(
    client: Any,
    app: PanoramaApp | str | Path,
    *,
    device_id: str,
    role_arn: str | None = None,
    name: str | None = None,
    description: str = "Edge Vision Kit edge app",
    replace: str | None = None,
    overrides: dict[str, Any] | None = None,
) -> str:
    """Create an application instance of ``app`` on a Panorama appliance; return its id.

    Args:
        client: a ``panorama`` client (:func:`panorama_client`).
        app: the application (or its folder); validated before anything is sent.
        device_id: the appliance (``device-...``).
        role_arn: the application's runtime role (``infra/edge.py``'s Panorama app role).
        name: the instance name (default: the application's name).
        description: the instance description.
        replace: an application instance id to replace.
        overrides: a manifest overrides document (e.g. which cameras feed ``camera_node``).

    Raises:
        kit.package.PanoramaPackageError: the application is invalid.
    """
    folder = app.path if isinstance(app, PanoramaApp) else Path(app)
    check_panorama_app(folder)
    graph_file = next((folder / "graphs").glob("*/graph.json"))
    request: dict[str, Any] = {
        "Name": name or graph_file.parent.name,
        "Description": description,
        "DefaultRuntimeContextDevice": device_id,
        "ManifestPayload": {"PayloadData": graph_file.read_text()},
    }
    if role_arn:
        request["RuntimeRoleArn"] = role_arn
    if replace:
        request["ApplicationInstanceIdToReplace"] = replace
    if overrides:
        request["ManifestOverridesPayload"] = {"PayloadData": json.dumps(overrides)}
    return client.create_application_instance(**request)["ApplicationInstanceId"]


@dataclass(frozen=True)
class ApplicationInstanceState:
    """An application instance: deployment status and health."""

    application_instance_id: str
    name: str | None
    device_id: str | None
    status: str
    health: str
    status_description: str | None
    created_at: str | None

    @property
    def health_label(self) -> str:
        """As the kit's device health: RUNNING, ERROR, STOPPED (removed) or OFFLINE."""
        if self.health == "RUNNING":
            return "RUNNING"
        if self.health == "ERROR" or self.status.endswith(("_ERROR", "_FAILED")):
            return "ERROR"
        if self.status.startswith("REMOVAL_"):
            return "STOPPED"
        return "OFFLINE"


def _iso(value: Any) -> str | None:
    return value.isoformat() if hasattr(value, "isoformat") else value


def application_instance_state(
    client: Any, application_instance_id: str
) -> ApplicationInstanceState:
    """``describe_application_instance``, reduced to what the kit shows."""
    response = client.describe_application_instance(ApplicationInstanceId=application_instance_id)
    return ApplicationInstanceState(
        application_instance_id=response["ApplicationInstanceId"],
        name=response.get("Name"),
        device_id=response.get("DefaultRuntimeContextDevice"),
        status=response.get("Status", "UNKNOWN"),
        health=response.get("HealthStatus", "NOT_AVAILABLE"),
        status_description=response.get("StatusDescription"),
        created_at=_iso(response.get("CreatedTime")),
    )


@dataclass(frozen=True)
class PanoramaDevice:
    """A Panorama appliance."""

    device_id: str
    name: str | None
    provisioning_status: str | None
    connection_status: str | None
    aggregated_status: str | None
    current_software: str | None
    latest_software: str | None


def panorama_devices(client: Any) -> list[PanoramaDevice]:
    """Every appliance of the account: ``list_devices`` then ``describe_device`` for each."""
    devices: list[dict[str, Any]] = []
    token = None
    while True:
        page = client.list_devices(**({"NextToken": token} if token else {}))
        devices += page.get("Devices", [])
        token = page.get("NextToken")
        if not token:
            break
    found = []
    for device in devices:
        detail = client.describe_device(DeviceId=device["DeviceId"])
        found.append(
            PanoramaDevice(
                device_id=detail["DeviceId"],
                name=detail.get("Name"),
                provisioning_status=detail.get("ProvisioningStatus"),
                connection_status=detail.get("DeviceConnectionStatus"),
                aggregated_status=detail.get("DeviceAggregatedStatus"),
                current_software=detail.get("CurrentSoftware"),
                latest_software=detail.get("LatestSoftware"),
            )
        )
    return sorted(found, key=lambda device: device.device_id)
