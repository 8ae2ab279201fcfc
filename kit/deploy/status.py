"""Device status for the dashboard and the CLI: every device, what it runs, how it is.

Two sources are combined:

- the backend's **heartbeats** (the devices table, the same record ``GET /devices`` shows):
  health, last heartbeat, app version, uptime, cameras with their state and fps, spool;
- for **local devices**, the **process** (alive by pid + start time) and the deployment record
  (bundle, app version, model). Optionally, Greengrass core devices (installed component
  versions, core status).

Health is one of ``RUNNING``, ``STOPPED``, ``ERROR``, ``OFFLINE``:

- a local device whose process was stopped is ``STOPPED``; one whose process ended on its own
  is ``ERROR`` (the reason quotes its log);
- a running process, or a remote device, takes the backend's health
  (:func:`lambdas.health.device_health`): ``OFFLINE`` when no heartbeat arrived for a minute,
  ``ERROR`` when a camera failed, ``STOPPED`` when all cameras stopped, else ``RUNNING``.

Examples:
    >>> from kit.deploy import device_status, format_devices
    >>> print(format_devices(device_status(settings)))          # doctest: +SKIP
    DEVICE  HEALTH   HEARTBEAT  APP    DEPLOYED        CAMERAS
    demo-1  RUNNING  3s ago     0.1.0  local 2cba673d  shelf-1 running 9.8 fps, publishes 0.5/s
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from kit.core.settings import Settings
from kit.deploy.local import LocalDevice, local_devices

log = logging.getLogger(__name__)

HEALTH_STATES = ("RUNNING", "DEGRADED", "STOPPED", "ERROR", "OFFLINE")


@dataclass(frozen=True)
class CameraStatus:
    """One camera as the device's newest heartbeat reports it."""

    camera_id: str
    state: str
    fps: float = 0.0
    frames_published: int = 0
    model: str | None = None
    last_frame_at: str | None = None
    reconnects: int = 0
    error: str | None = None


@dataclass
class DeviceStatus:
    """A device: what is deployed, how it is, its cameras.

    Attributes:
        device_id: the device.
        health: ``RUNNING``, ``STOPPED``, ``ERROR`` or ``OFFLINE``.
        reason: why, in a few words (always set unless RUNNING with fresh heartbeats).
        target: ``local``, ``greengrass`` or ``backend`` (known only from its heartbeats).
        app_version: the edge app version (heartbeat, else the deployment record).
        deployed: what was deployed: bundle sha256 / component version, model, when.
        last_heartbeat_at: when the newest heartbeat was sent (ISO 8601), if any.
        heartbeat_age_s: seconds since it arrived at the backend, if any.
        uptime_s: the app's uptime in that heartbeat.
        cameras: the cameras in that heartbeat.
        process: for local devices: pid, state (running/stopped/exited), log file.
        spool_depth: items waiting on the device's disk.
    """

    device_id: str
    health: str
    reason: str | None = None
    target: str = "backend"
    app_version: str | None = None
    deployed: dict[str, Any] = field(default_factory=dict)
    last_heartbeat_at: str | None = None
    heartbeat_age_s: float | None = None
    uptime_s: float | None = None
    cameras: list[CameraStatus] = field(default_factory=list)
    process: dict[str, Any] | None = None
    spool_depth: int | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (for the dashboard and ``kit devices --json``)."""
        return asdict(self)

    @property
    def fps(self) -> dict[str, float]:
        """Frames a second by camera."""
        return {camera.camera_id: camera.fps for camera in self.cameras}


def _backend_devices(settings: Settings, now: datetime) -> dict[str, dict[str, Any]]:
    from lambdas.health import describe_device
    from lambdas.store import Store

    store = Store(settings.client("dynamodb"), settings.resources)
    return {record.device_id: describe_device(record, now) for record in store.list_devices()}


def _cameras(described: dict[str, Any] | None) -> list[CameraStatus]:
    cameras = []
    for camera_id, camera in sorted(((described or {}).get("cameras") or {}).items()):
        model = camera.get("model")
        cameras.append(
            CameraStatus(
                camera_id=camera_id,
                state=camera.get("state", "unknown"),
                fps=float(camera.get("fps") or 0.0),
                frames_published=int(camera.get("frames_published") or 0),
                model=f"{model['name']}:{model['version']}" if isinstance(model, dict) else model,
                last_frame_at=camera.get("last_frame_at"),
                reconnects=int(camera.get("reconnects") or 0),
                error=camera.get("error"),
            )
        )
    return cameras


def _backend_reason(described: dict[str, Any]) -> str | None:
    health = described["health"]
    if health == "OFFLINE":
        age = described.get("heartbeat_age_s")
        return "no heartbeat yet" if age is None else f"last heartbeat {age:.0f} s ago"
    if health == "ERROR":
        failed = [
            f"{cid}: {c.get('error') or 'failed'}"
            for cid, c in (described.get("cameras") or {}).items()
            if c.get("state") == "failed"
        ]
        return "camera failed: " + "; ".join(failed)
    if health == "STOPPED":
        return "the device reports its cameras stopped"
    if health == "DEGRADED":
        reasons = [
            f"{cid}: {c.get('error') or 'runs without its model'}"
            for cid, c in (described.get("cameras") or {}).items()
            if c.get("state") == "degraded"
        ]
        if described.get("spool_error"):
            reasons.append(f"spool: {described['spool_error']}")
        return "; ".join(reasons)
    return None


def _status_from_backend(device_id: str, described: dict[str, Any]) -> DeviceStatus:
    return DeviceStatus(
        device_id=device_id,
        health=described["health"],
        reason=_backend_reason(described),
        app_version=described.get("app_version"),
        last_heartbeat_at=described.get("last_heartbeat_at"),
        heartbeat_age_s=described.get("heartbeat_age_s"),
        uptime_s=described.get("uptime_s"),
        cameras=_cameras(described),
        spool_depth=described.get("spool_depth"),
    )


def local_device_status(
    device: LocalDevice, described: dict[str, Any] | None, backend_error: str | None = None
) -> DeviceStatus:
    """A local device's status from its process and (if any) its backend record."""
    deployment = device.deployment or {}
    process_state = device.process_state()
    record = device.process_record()
    status = (
        _status_from_backend(device.device_id, described)
        if described
        else DeviceStatus(device_id=device.device_id, health="OFFLINE")
    )
    status.target = "local"
    status.app_version = status.app_version or deployment.get("app_version")
    status.deployed = {
        key: deployment.get(key)
        for key in ("app", "app_version", "bundle_sha256", "model", "deployed_at")
    }
    status.process = {
        "state": process_state,
        "pid": record.pid if record else None,
        "log_file": str(device.log_file),
    }
    if process_state == "stopped":
        status.health, status.reason = "STOPPED", "stopped by the operator"
    elif process_state == "exited":
        tail = [
            line.strip()
            for line in device.log_tail(10)
            if line.strip() and not line.strip().startswith("For further information")
        ]
        status.health = "ERROR"
        status.reason = "the app exited on its own" + (f": {tail[-1]}" if tail else "")
    elif process_state == "never started":
        status.health, status.reason = "STOPPED", "deployed, never started"
    elif backend_error is not None:
        status.reason = f"process running (pid {record.pid}); backend unreachable: {backend_error}"
    elif described is None or _before_start(described, device):
        status.health = "OFFLINE"
        status.reason = (
            f"process running (pid {record.pid}); no heartbeat of it reached the backend yet"
        )
    return status


def _before_start(described: dict[str, Any], device: LocalDevice) -> bool:
    """True when the newest heartbeat is older than the running process (a previous run's)."""
    started = device.process_started_at()
    sent = described.get("last_heartbeat_at")
    if started is None or sent is None:
        return False
    return datetime.fromisoformat(sent.replace("Z", "+00:00")) < started


def device_status(
    settings: Settings,
    *,
    now: datetime | None = None,
    greengrass: Any | None = None,
) -> list[DeviceStatus]:
    """Every device the backend has heard of or this machine runs, sorted by id.

    Args:
        settings: where the backend is and where local devices live.
        now: the time to judge heartbeat ages against (default: now).
        greengrass: a ``greengrassv2`` client: also list core devices, with the component
            versions installed on them (see :func:`kit.deploy.greengrass.core_device_state`).

    Returns:
        One :class:`DeviceStatus` per device. With the backend unreachable, the local devices
        only, each saying so in its ``reason``.

    Raises:
        botocore.exceptions.EndpointConnectionError (and botocore's other errors): the backend
            is unreachable and no local device exists, so there is nothing to show.
    """
    now = now or datetime.now(UTC)
    backend_error = None
    local = local_devices(settings)
    try:
        described = _backend_devices(settings, now)
    except Exception as error:  # the backend may be down: local process state still counts
        if not local or not type(error).__module__.startswith(("botocore", "boto3", "urllib3")):
            raise  # nothing to show without the backend: say why, once
        backend_error = f"{type(error).__name__}: {error}"
        log.debug("device status without heartbeats: %s", backend_error)
        described = {}
    statuses: dict[str, DeviceStatus] = {}
    for device in local:
        statuses[device.device_id] = local_device_status(
            device, described.get(device.device_id), backend_error
        )
    for device_id, record in described.items():
        if device_id not in statuses:
            statuses[device_id] = _status_from_backend(device_id, record)
    if greengrass is not None:
        from kit.deploy.greengrass import core_device_state, list_core_devices

        for thing in list_core_devices(greengrass):
            state = core_device_state(greengrass, thing)
            status = statuses.get(thing) or DeviceStatus(
                device_id=thing, health="OFFLINE", reason="no heartbeat from the edge app yet"
            )
            status.target = "greengrass"
            status.deployed = {
                "core_status": state.status,
                "components": {c.name: c.version for c in state.installed},
                "lifecycle": {c.name: c.lifecycle_state for c in state.installed},
            }
            statuses[thing] = status
    return [statuses[key] for key in sorted(statuses)]


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    if seconds < 120:
        return f"{seconds:.0f}s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m ago"
    return f"{seconds / 3600:.0f}h ago"


FRAMES_ARRIVING = ("running", "degraded")
"""Camera states whose frames arrive, so whose rates mean something."""


def camera_text(camera: CameraStatus, status: DeviceStatus) -> str:
    """``shelf-1 running 9.8 fps, publishes 0.5/s``: a camera's state, the rate its frames are
    decoded at and the rate annotated frames leave the device at (frames published over the
    app's uptime); just the state for a camera that receives no frames, or whose device is not
    running (its newest heartbeat is then older than the device's stop)."""
    device_stopped = status.health in ("STOPPED", "OFFLINE") or (
        status.process is not None and status.process.get("state") != "running"
    )
    if camera.state not in FRAMES_ARRIVING or device_stopped:
        return f"{camera.camera_id} {camera.state}"
    text = f"{camera.camera_id} {camera.state} {camera.fps:.1f} fps"
    if status.uptime_s:
        text += f", publishes {camera.frames_published / status.uptime_s:.1f}/s"
    return text


def format_devices(statuses: list[DeviceStatus]) -> str:
    """A plain-text table for the CLI (one row per device, each camera with its decoding and
    publishing rates, see :func:`camera_text`)."""
    if not statuses:
        return "no devices: deploy one with `kit deploy --target local --device demo-1 --model <model>`"
    rows = [("DEVICE", "HEALTH", "HEARTBEAT", "APP", "DEPLOYED", "CAMERAS")]
    for status in statuses:
        deployed = status.target
        if status.deployed.get("bundle_sha256"):
            deployed += f" {status.deployed['bundle_sha256'][:8]}"
        if status.deployed.get("model"):
            deployed += f" {status.deployed['model']}"
        for name, version in (status.deployed.get("components") or {}).items():
            if not name.startswith("aws.greengrass."):
                deployed += f" {name}={version}"
        cameras = ", ".join(camera_text(c, status) for c in status.cameras)
        rows.append(
            (
                status.device_id,
                status.health,
                _age(status.heartbeat_age_s),
                status.app_version or "-",
                deployed,
                cameras or "-",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False))
        + "  "
        + row[-1]
        for row in rows
    ]
    for status in statuses:
        if status.reason:
            lines.append(f"  {status.device_id}: {status.reason}")
    return "\n".join(line.rstrip() for line in lines)
