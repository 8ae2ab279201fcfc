"""Device health from heartbeats, and the scheduled checks (silent cameras, device state).

Device health, from the newest heartbeat and the time it arrived (:func:`device_health`):

- ``OFFLINE``: no heartbeat arrived for more than :data:`DEVICE_OFFLINE_AFTER_S` seconds
  (or never);
- ``ERROR``: a camera of the device reports ``failed``;
- ``STOPPED``: the device reports no camera, or every camera ``stopped``/``ended``;
- ``DEGRADED``: a camera runs without the model it should (``degraded``), or the spool cannot
  keep everything on disk (``spool_error``: a full or read-only disk);
- ``RUNNING``: otherwise (cameras starting, running or reconnecting).

Examples:
    >>> from datetime import UTC, datetime
    >>> from lambdas.store import DeviceRecord
    >>> device_health(DeviceRecord("d1"), datetime.now(UTC))
    'OFFLINE'
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from kit.core.contracts import ControlConfig
from kit.core.timefmt import stamp
from lambdas.alerts import RuleOutcome, StateConflictError
from lambdas.rules import evaluate_on_schedule
from lambdas.runtime import Services
from lambdas.store import CameraRecord, DeviceRecord

DEVICE_OFFLINE_AFTER_S = 60
"""A device whose last heartbeat arrived longer ago than this is OFFLINE (edge sends every few s)."""

DEVICE_STATES = ("RUNNING", "DEGRADED", "STOPPED", "ERROR", "OFFLINE")


def device_health(
    device: DeviceRecord, now: datetime, offline_after_s: float = DEVICE_OFFLINE_AFTER_S
) -> str:
    """RUNNING, DEGRADED, STOPPED, ERROR or OFFLINE (see the module docstring)."""
    if device.heartbeat is None or device.received_at is None:
        return "OFFLINE"
    if (now - device.received_at).total_seconds() > offline_after_s:
        return "OFFLINE"
    states = [camera.state for camera in device.heartbeat.cameras.values()]
    if "failed" in states:
        return "ERROR"
    if not states or all(state in ("stopped", "ended") for state in states):
        return "STOPPED"
    if "degraded" in states or device.heartbeat.spool_error:
        return "DEGRADED"
    return "RUNNING"


def describe_device(device: DeviceRecord, now: datetime) -> dict[str, Any]:
    """A device as the API shows it: health, heartbeat age, cameras, spool."""
    health = device_health(device, now)
    heartbeat = device.heartbeat
    return {
        "device_id": device.device_id,
        "health": health,
        "health_since": stamp(device.health_since)
        if device.health_since and device.health == health
        else None,
        "last_heartbeat_at": stamp(heartbeat.sent_at) if heartbeat else None,
        "received_at": stamp(device.received_at) if device.received_at else None,
        "heartbeat_age_s": round((now - device.received_at).total_seconds(), 3)
        if device.received_at
        else None,
        "last_payload_at": stamp(device.last_payload_at) if device.last_payload_at else None,
        "app_version": heartbeat.app_version if heartbeat else None,
        "uptime_s": heartbeat.uptime_s if heartbeat else None,
        "cameras": {
            camera_id: camera.model_dump(mode="json")
            for camera_id, camera in (heartbeat.cameras.items() if heartbeat else [])
        },
        "spool_depth": heartbeat.spool_depth if heartbeat else None,
        "spool_bytes": heartbeat.spool_bytes if heartbeat else None,
        "dropped": heartbeat.dropped.model_dump() if heartbeat else None,
        "spool_error": heartbeat.spool_error if heartbeat else None,
    }


def check_silent_cameras(
    services: Services, config: ControlConfig, cameras: list[CameraRecord], now: datetime
) -> list[dict[str, str]]:
    """Evaluate every enabled rule a scheduled check judges (``camera_silent``) at ``now``; apply
    the alert state machine.

    A camera never seen is not judged (it has no last payload to be silent since).

    Returns:
        ``[{"alert_id", "state", "camera_id"}]`` for each alert written and notified.
    """
    sent = []
    for camera in cameras:
        if camera.last_seen is None:
            continue
        camera_settings = config.for_camera(camera.camera_id)
        outcomes = [
            RuleOutcome(
                camera_id=camera.camera_id,
                rule=rule,
                evaluation=evaluation,
                at=now,
                token=f"silent-since-{stamp(camera.last_seen)}",
                device_id=camera.device_id,
                frame_key=camera.frame_key,
                payload_id=camera.last_payload_id,
            )
            for rule, evaluation in evaluate_on_schedule(
                camera_settings, last_seen=camera.last_seen, now=now
            )
        ]
        try:
            applied = services.alerts.apply(
                outcomes, camera.rules, newest_payload_id=camera.last_payload_id
            )
        except StateConflictError:
            # A payload arrived meanwhile and evaluated the rules itself; the next run rechecks.
            continue
        sent += [
            {"alert_id": alert_id, "state": state, "camera_id": camera.camera_id}
            for rule in applied
            for alert_id, state in rule.sent
        ]
    return sent


def update_device_health(
    services: Services, devices: list[DeviceRecord], now: datetime
) -> dict[str, str]:
    """Store each device's health where it changed (with the time it changed); return the changes."""
    changes = {}
    for device in devices:
        health = device_health(device, now)
        if health != device.health:
            services.store.set_device_health(device.device_id, health, now)
            changes[device.device_id] = health
    return changes


def run_health_check(services: Services, now: datetime) -> dict[str, Any]:
    """One scheduled run: silent cameras (alerts) and device health changes."""
    config = services.store.get_config()
    cameras = services.store.list_cameras()
    alerts = check_silent_cameras(services, config, cameras, now)
    devices = update_device_health(services, services.store.list_devices(cameras), now)
    return {"checked_at": stamp(now), "cameras": len(cameras), "alerts": alerts, "devices": devices}
