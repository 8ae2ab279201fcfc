"""Message contracts shared by the edge app, the Lambda handlers and the kit.

Defined once, versioned (``schema_version``), validated at every boundary with :func:`parse`.
Only pydantic is imported here, so edge devices and Lambda functions can carry this package.

Examples:
    >>> from kit.core.contracts import EdgeMessage, parse_edge_message
    >>> msg = parse_edge_message('{"kind": "heartbeat", "device_id": "d1", "app_version": "1", "uptime_s": 1}')
    >>> msg.kind
    'heartbeat'
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, TypeAdapter, ValidationError

from kit.core.contracts.base import (
    INTEGER_MAX,
    SCHEMA_VERSION,
    Contract,
    ContractError,
    contract_error,
    parse,
    utc_now,
)
from kit.core.contracts.control import (
    RULE_TYPES,
    CameraOverrides,
    CameraSettings,
    CameraSilentRule,
    ControlConfig,
    CountAboveRule,
    CountBelowRule,
    LineSpec,
    PpeViolationRule,
    RisingTrendRule,
    Rule,
    ZoneSpec,
)
from kit.core.contracts.detection import (
    CAMERA_OBJECT_KINDS,
    Box,
    Detection,
    DetectionPayload,
    FrameSize,
    LineCount,
    camera_object_key_problem,
    camera_object_prefix,
    new_payload_id,
)
from kit.core.contracts.health import Alert, CameraHealth, DroppedCounts, Heartbeat
from kit.core.contracts.model import ModelArtifact, ModelMetadata, ModelRef
from kit.core.contracts.sampling import SampleRecord, SamplingSettings

EdgeMessage = Annotated[DetectionPayload | Heartbeat, Field(discriminator="kind")]
"""What an edge device puts on the detections queue: a payload or a heartbeat (by ``kind``)."""

_edge_message_adapter: TypeAdapter[DetectionPayload | Heartbeat] = TypeAdapter(EdgeMessage)


MAX_CLOCK_SKEW_S = 300
"""How far after the moment the queue accepted a message a device's timestamp may lie (a device
clock running ahead). A later one is refused: a payload dated in 2099 would stay its camera's
newest for ever, and no real payload after it would drive the rules."""


def device_clock_problems(
    message: DetectionPayload | Heartbeat, *, queued_at: datetime
) -> list[dict[str, Any]]:
    """The device timestamps of ``message`` dated more than :data:`MAX_CLOCK_SKEW_S` after
    ``queued_at`` (when the queue accepted it), as :class:`ContractError` problems."""
    latest = queued_at + timedelta(seconds=MAX_CLOCK_SKEW_S)
    if isinstance(message, DetectionPayload):
        stamps = {"captured_at": message.captured_at}
    else:
        stamps = {"sent_at": message.sent_at} | {
            f"cameras.{camera_id}.last_frame_at": camera.last_frame_at
            for camera_id, camera in message.cameras.items()
            if camera.last_frame_at is not None
        }
    allowed = (
        f"at most {MAX_CLOCK_SKEW_S} s after the queue accepted the message "
        f"({queued_at.isoformat()}); is the device's clock ahead?"
    )
    return [
        {"field": field, "value": moment.isoformat(), "allowed": allowed}
        for field, moment in stamps.items()
        if moment > latest
    ]


def parse_edge_message(
    data: Any, *, queued_at: datetime | None = None
) -> DetectionPayload | Heartbeat:
    """Validate a queue message body as a :data:`EdgeMessage` (JSON text or a dict).

    Args:
        data: the body.
        queued_at: when the queue accepted the message; when given, a device timestamp more
            than :data:`MAX_CLOCK_SKEW_S` later is refused too (:func:`device_clock_problems`).

    Raises:
        ContractError: when the body is not valid JSON, has no known ``kind``, breaks its contract
            or is dated in the future.
    """
    try:
        if isinstance(data, str | bytes | bytearray):
            message = _edge_message_adapter.validate_json(data)
        else:
            message = _edge_message_adapter.validate_python(data)
    except ValidationError as error:
        raise contract_error("EdgeMessage", error) from None
    if queued_at is not None:
        problems = device_clock_problems(message, queued_at=queued_at)
        if problems:
            raise ContractError(type(message).__name__, problems)
    return message


CONTRACTS: dict[str, type[Contract]] = {
    "DetectionPayload": DetectionPayload,
    "Heartbeat": Heartbeat,
    "ControlConfig": ControlConfig,
    "Alert": Alert,
    "ModelMetadata": ModelMetadata,
    "SampleRecord": SampleRecord,
}


def json_schemas() -> dict[str, dict[str, Any]]:
    """The JSON Schema of every contract, by name (validation mode: what a reader accepts)."""
    return {name: model.model_json_schema() for name, model in CONTRACTS.items()}


def export_schemas(directory: str | Path) -> list[Path]:
    """Write ``<Name>.schema.json`` for every contract into ``directory``; return the paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in json_schemas().items():
        schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}
        schema["$comment"] = f"schema_version {SCHEMA_VERSION}; generated by `kit schemas`"
        path = directory / f"{name}.schema.json"
        path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
        written.append(path)
    return written


__all__ = [
    "CAMERA_OBJECT_KINDS",
    "INTEGER_MAX",
    "MAX_CLOCK_SKEW_S",
    "RULE_TYPES",
    "SCHEMA_VERSION",
    "Alert",
    "Box",
    "CameraHealth",
    "CameraOverrides",
    "CameraSettings",
    "CameraSilentRule",
    "Contract",
    "ContractError",
    "ControlConfig",
    "CountAboveRule",
    "CountBelowRule",
    "Detection",
    "DetectionPayload",
    "DroppedCounts",
    "EdgeMessage",
    "FrameSize",
    "Heartbeat",
    "LineCount",
    "LineSpec",
    "ModelArtifact",
    "ModelMetadata",
    "ModelRef",
    "PpeViolationRule",
    "RisingTrendRule",
    "Rule",
    "SampleRecord",
    "SamplingSettings",
    "ZoneSpec",
    "camera_object_key_problem",
    "camera_object_prefix",
    "device_clock_problems",
    "export_schemas",
    "json_schemas",
    "new_payload_id",
    "parse",
    "parse_edge_message",
    "utc_now",
]
