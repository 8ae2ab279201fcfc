"""What the control API's routes do, as plain functions of the services (testable without events).

Every change is validated with the contracts, checked against the model registry, written with
an optimistic revision check (409 when someone changed it first) and audited: who, when,
old -> new.

Registry checks (422, :class:`kit.core.registry.RegistryReader`, the rule devices resolve by):

- every model reference must resolve (a version that exists, ``latest``, or a stored alias);
- a camera (or the defaults) with ``precision: int8`` must run a model version that has an INT8
  format (``onnx_int8`` or ``openvino_int8``); a camera without a configured model is not
  checked (its device runs FP32 and reports why);
- every class a rule, a PPE rule or a zone count names must be a class of the camera's model.
  The camera's model is its configured one (its override, else ``defaults.model``). A camera
  without a configured model runs its device's default (the device config's model, or the
  registry's ``production`` alias that device resolves), which the backend does not know in
  advance: its classes are checked against the model the camera last reported in a payload,
  and not at all for a camera that has not reported yet (the device then logs and counts 0).
  A reported model the registry does not have (shipped with the app) is not checked either.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from aws_lambda_powertools import Logger

from kit.core.contracts import (
    Alert,
    CameraOverrides,
    CameraSettings,
    ContractError,
    ControlConfig,
    camera_object_key_problem,
    camera_object_prefix,
    parse,
    utc_now,
)
from kit.core.contracts.model import INT8_FORMATS, ModelMetadata, ModelRef
from kit.core.registry import RegistryError, RegistryReader, parse_model_ref
from kit.core.timefmt import stamp
from lambdas.alerts import RuleState
from lambdas.control_api.errors import ApiError
from lambdas.runtime import Services
from lambdas.store import CameraRecord, ConfigRead, ConfigTooLargeError

logger = Logger(service="control-api", child=True)

REJECTED_REVISION_HEADER = "X-Evk-Config-Rejected-Revision"
"""Set on ``GET /config`` answers while the stored config fails validation: its revision."""
REJECTED_PROBLEM_HEADER = "X-Evk-Config-Problem"
"""Set with :data:`REJECTED_REVISION_HEADER`: what is wrong with it, on one line."""


def rejected_config_headers(read: ConfigRead) -> dict[str, str]:
    """Headers telling an operator that the stored config is invalid and which one runs instead
    (none when the stored config is valid)."""
    if read.rejected is None:
        return {}
    revision = read.rejected.revision
    summary = f"{read.rejected.summary()}; serving the last good revision {read.config.revision}"
    text = "".join(c if " " <= c <= "~" else "?" for c in summary)
    return {
        REJECTED_REVISION_HEADER: str(revision) if revision is not None else "unknown",
        REJECTED_PROBLEM_HEADER: text[:500],
    }


def _save(
    services: Services,
    *,
    read: ConfigRead,
    candidate: dict[str, Any],
    who: str,
    entity: str,
    action: str,
    old: dict[str, Any] | None,
    new_of: Callable[[ControlConfig], dict[str, Any]],
    now: datetime,
    cameras: list[str] | None = None,
) -> ControlConfig:
    """Validate ``candidate`` and store it as the next revision.

    ``cameras`` are the cameras whose classes are checked (None: the defaults, every configured
    camera and every camera seen).
    """
    values = {
        **candidate,
        "revision": read.next_revision,
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
    problems = _precision_problems(registry, config, cameras)
    if problems:
        lines = "; ".join(f"{p['field']}: {p['allowed']} (got {p['value']})" for p in problems)
        raise ApiError(422, f"no INT8 model: {lines}", problems=problems)
    problems = _class_problems(services, registry, config, cameras)
    if problems:
        lines = "; ".join(f"{p['field']}: {p['allowed']} (got {p['value']!r})" for p in problems)
        raise ApiError(422, f"class not in the camera's model: {lines}", problems=problems)
    try:
        saved = services.store.put_config(config, expected_revision=read.revision_attribute)
    except ConfigTooLargeError as error:
        raise ApiError(
            422, str(error), field="body", allowed=error.allowed, value=error.size
        ) from None
    if not saved:
        raise ApiError(409, "the config changed while it was being saved; read it again and retry")
    if read.rejected is not None:
        logger.info(
            "the invalid stored config is replaced",
            extra={"rejected_revision": read.rejected.revision, "revision": config.revision},
        )
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
    """PUT /config: the whole config; ``revision`` (body or If-Match), when sent, must be current.

    While the stored config fails validation, "current" is the last good one the backend runs
    with (what ``GET /config`` answers); a valid PUT replaces the invalid one.
    """
    read = services.store.read_config()
    current = read.config
    _check_revision(current, if_match, "If-Match")
    if "revision" in body:
        if not isinstance(body["revision"], int) or isinstance(body["revision"], bool):
            raise ApiError.bad_field("revision", body["revision"], "the integer revision you read")
        _check_revision(current, body["revision"], "revision")
    candidate = {k: v for k, v in body.items() if k not in ("updated_at", "updated_by")}
    return _save(
        services,
        read=read,
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
    read = services.store.read_config()
    current = read.config
    _check_revision(current, if_match, "If-Match")
    candidate = current.model_dump(mode="json")
    old = candidate["cameras"].get(camera_id)
    candidate["cameras"][camera_id] = overrides.model_dump(mode="json", exclude_none=True)
    return _save(
        services,
        read=read,
        candidate=candidate,
        who=who,
        entity=f"config/{camera_id}",
        action=f"PUT /config/{camera_id}",
        old=old,
        new_of=lambda config: config.cameras[camera_id].model_dump(mode="json", exclude_none=True),
        now=utc_now(),
        cameras=[camera_id],
    )


def _precision_problems(
    registry: RegistryReader, config: ControlConfig, cameras: list[str] | None
) -> list[dict[str, str]]:
    """``precision: int8`` on a model version without an INT8 format, as 422 problems."""
    checks: list[tuple[str, CameraSettings]] = []
    if cameras is None:
        checks.append(("defaults.precision", config.defaults))
        cameras = sorted(config.cameras)
    for camera_id in cameras:
        overrides = config.cameras.get(camera_id)
        if overrides is None or (overrides.precision is None and overrides.model is None):
            continue  # runs the defaults' model and precision, checked with the defaults
        own = overrides.precision is not None
        where = f"cameras.{camera_id}.precision" if own else "defaults.precision"
        checks.append((where, config.for_camera(camera_id)))
    problems: list[dict[str, str]] = []
    for where, settings in checks:
        if settings.precision != "int8" or settings.model is None:
            continue
        try:
            metadata = registry.get(settings.model)
        except (RegistryError, ValueError):
            continue  # an unresolvable model is reported as such
        if any(fmt in metadata.formats for fmt in INT8_FORMATS.values()):
            continue
        named = (
            str(settings.model)
            if settings.model.version == metadata.version
            else f"{settings.model} (= {metadata.ref})"
        )
        problem = {
            "field": where,
            "value": "int8",
            "allowed": f"fp32: {named} has no INT8 format (formats: "
            f"{', '.join(metadata.formats) or 'none'}); add one with `kit models quantize "
            f"{metadata.ref} --backend onnxruntime|openvino`",
        }
        if problem not in problems:
            problems.append(problem)
    return problems


def _class_problems(
    services: Services,
    registry: RegistryReader,
    config: ControlConfig,
    cameras: list[str] | None,
) -> list[dict[str, str]]:
    """Classes that rules and zones name but the camera's model lacks, as 422 problems."""
    models: dict[str, ModelMetadata | None] = {}

    def metadata_of(ref: ModelRef) -> ModelMetadata | None:
        key = str(ref)
        if key not in models:
            try:
                models[key] = registry.get(ref)
            except (RegistryError, ValueError):
                models[key] = None
        return models[key]

    checks: list[tuple[str | None, CameraSettings, ModelRef, str]] = []
    if cameras is None:
        if config.defaults.model is not None:
            checks.append((None, config.defaults, config.defaults.model, ""))
        seen = {record.camera_id for record in services.store.list_cameras()}
        cameras = sorted(set(config.cameras) | seen)
    for camera_id in cameras:
        settings = config.for_camera(camera_id)
        ref, origin = settings.model, ""
        if ref is None:
            record = services.store.get_camera(camera_id)
            if record is None or not record.model:
                continue
            try:
                ref = parse_model_ref(record.model)
            except ValueError:
                continue
            origin = f", the model camera {camera_id} last reported"
        checks.append((camera_id, settings, ref, origin))

    problems: list[dict[str, str]] = []
    for camera_id, settings, ref, origin in checks:
        metadata = metadata_of(ref)
        if metadata is None:
            continue
        overrides = config.cameras.get(camera_id) if camera_id is not None else None
        for field, class_name in settings.class_references():
            if class_name in metadata.classes:
                continue
            section = field.split("[", 1)[0]
            own = overrides is not None and getattr(overrides, section) is not None
            prefix = f"cameras.{camera_id}." if own else "defaults."
            named = str(ref) if ref.version == metadata.version else f"{ref} (= {metadata.ref})"
            problem = {
                "field": prefix + field,
                "value": class_name,
                "allowed": f"a class of {named}{origin}: {', '.join(metadata.classes)}",
            }
            if problem not in problems:
                problems.append(problem)
    return problems


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


def camera_config(
    services: Services, camera_id: str, read: ConfigRead | None = None
) -> dict[str, Any]:
    """GET /config/{camera}: the settings it runs with, and its own overrides."""
    config = (read or services.store.read_config()).config
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
    """GET /frames/latest: a presigned URL of the camera's newest annotated frame.

    Only a key under the camera's own ``frames/<device>/<camera>/`` prefix is ever presigned:
    the processor refuses payloads pointing elsewhere, and a key stored before it did is refused
    here (404).
    """
    record = require_camera(services, camera_id)
    if record is None or not record.frame_key:
        raise ApiError(
            404, f"camera {camera_id!r} has published no frame yet", field="camera", value=camera_id
        )
    problem = camera_object_key_problem(
        record.frame_key, device_id=record.device_id, camera_id=camera_id, kinds=("frames",)
    )
    if problem:
        logger.warning(
            "a stored frame key lies outside its camera's prefix; no link is given",
            extra={"camera_id": camera_id, "device_id": record.device_id, "problem": problem},
        )
        own = camera_object_prefix("frames", record.device_id or "<device>", camera_id)
        raise ApiError(
            404,
            f"camera {camera_id!r} has no frame that may be linked: its stored frame key lies "
            f"outside {own}",
            field="camera",
            value=camera_id,
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
