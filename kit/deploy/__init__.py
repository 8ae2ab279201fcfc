"""Deploying the edge app to devices and knowing how they are.

- :func:`deploy_local` / :class:`LocalDevice` — a device folder on this machine: receives the
  bundle, runs the app as the Greengrass recipe would, stop / restart / rollback by pid;
- :func:`deploy_greengrass` — publish the component and deploy it to a thing or thing group;
  :func:`deployment_state`, :func:`core_device_state`;
- :mod:`kit.deploy.panorama` — application instances on Panorama appliances (legacy);
- :func:`device_status` — devices, deployed apps, health, heartbeats, cameras and their fps.

Examples:
    >>> from kit.deploy import deploy_local, device_status, format_devices
    >>> deploy_local(settings, "demo-1", model="shelf:production")   # doctest: +SKIP
    >>> print(format_devices(device_status(settings)))                # doctest: +SKIP
"""

from kit.deploy.greengrass import (
    CoreDeviceState,
    DeploymentState,
    GreengrassDeployError,
    GreengrassDeployment,
    core_device_state,
    create_deployment,
    deploy_greengrass,
    deployment_state,
    list_core_devices,
    target_arn,
    wait_for_deployment,
)
from kit.deploy.local import (
    DeviceError,
    LocalDeployment,
    LocalDevice,
    deploy_local,
    local_devices,
    resolve_model,
)
from kit.deploy.panorama import (
    ApplicationInstanceState,
    PanoramaDevice,
    application_instance_state,
    deploy_application,
    panorama_client,
    panorama_devices,
)
from kit.deploy.status import CameraStatus, DeviceStatus, device_status, format_devices

__all__ = [
    "ApplicationInstanceState",
    "CameraStatus",
    "CoreDeviceState",
    "DeploymentState",
    "DeviceError",
    "DeviceStatus",
    "GreengrassDeployError",
    "GreengrassDeployment",
    "LocalDeployment",
    "LocalDevice",
    "PanoramaDevice",
    "application_instance_state",
    "core_device_state",
    "create_deployment",
    "deploy_application",
    "deploy_greengrass",
    "deploy_local",
    "deployment_state",
    "device_status",
    "format_devices",
    "list_core_devices",
    "local_devices",
    "panorama_client",
    "panorama_devices",
    "resolve_model",
    "target_arn",
    "wait_for_deployment",
]
