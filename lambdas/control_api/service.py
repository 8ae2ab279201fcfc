"""What the control API's routes do, as plain functions of the services (testable without events).

Every change is validated with the contracts, checked against the model registry, written with
an optimistic revision check (409 when someone changed it first) and audited: who, when,
old -> new.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from kit.core.contracts import (
    Alert,
    CameraOverrides,
    ContractError,
    ControlConfig,
    parse,
    utc_now,
)
from kit.core.registry import RegistryReader
from kit.core.timefmt import stamp
from lambdas.alerts import RuleState
from lambdas.control_api.errors import ApiError
from lambdas.runtime import Services
from lambdas.store import CameraRecord


def json_body(raw: str | None) -> dict[str, Any]:
    """The request body as a JSON object; 400 otherwise."""
    if not raw:
        raise ApiError.bad_field("body", None, "a JSON object")
    try:
        body = json.loads(raw)
    except ValueError as error:
        raise ApiError.bad_field("body", raw[:80], f"valid JSON ({error})") from None
    if not isinstance(body, dict):
        raise ApiError.bad_field("body", raw[:80], "a JSON object")
    return body


def _save(
    services: Services,
    *,
    current: ControlConfig,
    candidate: dict[str, Any],
    who: str,
    entity: str,
    action: str,
    old: dict[str, Any] | None,
    new_of: Callable[[ControlConfig], dict[str, Any]],
    now: datetime,
) -> ControlConfig:
    values = {
        **candidate,
        "revision": current.revision + 1,
        "updated_at": stamp(now),
        "updated_by": who,
    }
    try:
        config = parse(ControlConfig, values)
    except ContractError as error:
        raise ApiError.from_contract(error) from None
    registry = RegistryReader(services.s3, services.settings.resources.bucket)
    problems = registry.unresolvable(config.model_refs())
    if problems:
        lines = "; ".join(f"{p['field']}: {p['allowed']} (got {p['value']})" for p in problems)
        raise ApiError(422, f"unknown model: {lines}", problems=problems)
    if not services.store.put_config(config, expected_revision=current.revision):
        raise ApiError(409, "the config changed while it was being saved; read it again and retry")
    services.store.write_audit(
        entity=entity, action=action, who=who, at=now, old=old, new=new_of(config)
    )
    return config


def _check_revision(current: ControlConfig, expected: int | None, field: str) -> None:
    if expected is not None and expected != current.revision:
        raise ApiError(
            409,
            f"{field}: the config is at revision {current.revision}, you sent {expected}; "
            "read it again and reapply your change",
            field=field,
            allowed=f"the current revision {current.revision}",
            value=expected,
        )


def replace_config(
    services: Services, body: dict[str, Any], *, who: str, if_match: int | None = None
) -> ControlConfig:
    """PUT /config: the whole config; ``revision`` (body or If-Match), when sent, must be current."""
    current = services.store.get_config()
    _check_revision(current, if_match, "If-Match")
    if "revision" in body:
        if not isinstance(body["revision"], int) or isinstance(body["revision"], bool):
            raise ApiError.bad_field("revision", body["revision"], "the integer revision you read")
        _check_revision(current, body["revision"], "revision")
    candidate = {k: v for k, v in body.items() if k not in ("updated_at", "updated_by")}
    return _save(
        services,
        current=current,
        candidate=candidate,
        who=who,
        entity="config",
        action="PUT /config",
        old=current.model_dump(mode="json"),
        new_of=lambda config: config.model_dump(mode="json"),
        now=utc_now(),
    )


def replace_camera(
    services: Services,
    camera_id: str,
    body: dict[str, Any],
    *,
    who: str,
    if_match: int | None = None,
) -> ControlConfig:
    """PUT /config/{camera}: the camera's overrides (a new camera id adds the camera)."""
    try:
        overrides = parse(CameraOverrides, body)
    except ContractError as error:
        raise ApiError.from_contract(error) from None
    current = services.store.get_config()
    _check_revision(current, if_match, "If-Match")
    candidate = current.model_dump(mode="json")
    old = candidate["cameras"].get(camera_id)
    candidate["cameras"][camera_id] = overrides.model_dump(mode="json", exclude_none=True)
    return _save(
        services,
        current=current,
        candidate=candidate,
        who=who,
        entity=f"config/{camera_id}",
        action=f"PUT /config/{camera_id}",
        old=old,
        new_of=lambda config: config.cameras[camera_id].model_dump(mode="json", exclude_none=True),
        now=utc_now(),
    )


def require_camera(
    services: Services, camera_id: str, config: ControlConfig | None = None
) -> CameraRecord | None:
    """The camera's record (None when configured but never seen); 404 when it is unknown."""
    record = services.store.get_camera(camera_id)
    if record is not None:
        return record
    config = config or services.store.get_config()
    if camera_id in config.cameras:
        return None
    known = sorted({c.camera_id for c in services.store.list_cameras()} | set(config.cameras))
    raise ApiError(
        404,
        f"unknown camera {camera_id!r}; known cameras: {', '.join(known) or 'none yet'}",
        field="camera",
        value=camera_id,
        allowed=f"one of: {', '.join(known) or 'none yet'}",
    )


def camera_config(services: Services, camera_id: str) -> dict[str, Any]:
    """GET /config/{camera}: the settings it runs with, and its own overrides."""
    config = services.store.get_config()
    require_camera(services, camera_id, config)
    overrides = config.cameras.get(camera_id)
    return {
        "camera_id": camera_id,
        "revision": config.revision,
        "settings": config.for_camera(camera_id).model_dump(mode="json"),
        "overrides": overrides.model_dump(mode="json", exclude_none=True) if overrides else None,
    }


def _active_alerts(record: CameraRecord) -> list[dict[str, Any]]:
    active = []
    for rule_key, raw in sorted(record.rules.items()):
        state = RuleState.from_json(raw)
        if state.alert is not None:
            active.append(
                {
                    "rule": rule_key,
                    "alert_id": state.alert.alert_id,
                    "opened_at": stamp(state.alert.opened_at),
                }
            )
    return active


def list_cameras(services: Services) -> list[dict[str, Any]]:
    """GET /cameras: every camera seen or configured, its latest state and active alerts."""
    config = services.store.get_config()
    records = {record.camera_id: record for record in services.store.list_cameras()}
    cameras = []
    for camera_id in sorted(set(records) | set(config.cameras)):
        record = records.get(camera_id) or CameraRecord(camera_id)
        settings = config.for_camera(camera_id)
        cameras.append(
            {
                **record.to_json(),
                "configured": camera_id in config.cameras,
                "seen": camera_id in records,
                "configured_model": str(settings.model) if settings.model else None,
                "refresh_s": settings.refresh_s,
                "rules": [rule.key for rule in settings.rules if rule.enabled],
                "active_alerts": _active_alerts(record),
            }
        )
    return cameras


def acknowledge(services: Services, alert_id: str, *, who: str) -> dict[str, Any]:
    """POST /alerts/{id}/ack: OPEN -> ACKED (an ACKED alert is returned as it is)."""
    now = utc_now()
    acked, unchanged = services.store.ack_alert(alert_id, by=who, at=now)
    if acked is None and unchanged is None:
        raise ApiError(404, f"no alert {alert_id!r}", field="id", value=alert_id)
    if acked is None:
        assert unchanged is not None
        if unchanged.state == "RESOLVED":
            raise ApiError(
                409,
                f"alert {alert_id} is RESOLVED; only OPEN alerts can be acknowledged",
                field="id",
                value=alert_id,
            )
        return {"alert": unchanged.model_dump(mode="json"), "changed": False}
    services.store.write_audit(
        entity=f"alert/{alert_id}",
        action=f"POST /alerts/{alert_id}/ack",
        who=who,
        at=now,
        old={"state": "OPEN"},
        new={"state": "ACKED", "acked_by": who},
    )
    return {"alert": acked.model_dump(mode="json"), "changed": True}


def latest_frame(services: Services, camera_id: str, expires_s: int) -> dict[str, Any]:
    """GET /frames/latest: a presigned URL of the camera's newest annotated frame."""
    record = require_camera(services, camera_id)
    if record is None or not record.frame_key:
        raise ApiError(
            404, f"camera {camera_id!r} has published no frame yet", field="camera", value=camera_id
        )
    return {
        "camera_id": camera_id,
        "device_id": record.device_id,
        "frame_key": record.frame_key,
        "captured_at": stamp(record.frame_at) if record.frame_at else None,
        "url": services.frame_url(record.frame_key, expires_s),
        "expires_in_s": expires_s,
    }


def alert_json(alert: Alert) -> dict[str, Any]:
    return alert.model_dump(mode="json")
