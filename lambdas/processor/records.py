"""What the processor does with one queue message; plain functions, testable without events.

A message is a :data:`kit.core.contracts.EdgeMessage`: a detection payload or a heartbeat.

- A payload is stored once per ``payload_id`` (Powertools idempotency over the idempotency
  table: a redelivered message, or the same payload sent again, is not processed twice), the
  camera's and device's last-seen are moved on, and, when it is the camera's newest payload,
  the camera's rules are evaluated and the alert state machine applied. An older payload (a late
  replay) is stored but does not drive alerts: the rules always judge the newest data.
- A heartbeat replaces the device's kept heartbeat unless a newer one is kept already.

Processors run in parallel: a payload's rule states are written only while it is still its
camera's newest, from the states the previous newest left (:meth:`lambdas.alerts.AlertDesk.apply`);
when another payload got there first the record fails with
:class:`~lambdas.alerts.StateConflictError` and its retry finds out again whether it is newest.

Anything invalid raises :class:`~kit.core.contracts.ContractError` (a body that is not JSON, breaks
its contract, points at an object outside its camera's prefix, or is dated more than
:data:`~kit.core.contracts.MAX_CLOCK_SKEW_S` after the queue accepted it); the batch reports that
record as failed and the queue's redrive policy moves it to the dead-letter queue.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from kit.core.contracts import (
    ContractError,
    ControlConfig,
    DetectionPayload,
    Heartbeat,
    parse_edge_message,
    utc_now,
)
from lambdas.alerts import RuleOutcome
from lambdas.rules import evaluate_payload, history_needed
from lambdas.runtime import Services

logger = Logger(service="processor")


def process_detection(
    *,
    payload: DetectionPayload,
    services: Services,
    config: ControlConfig,
    received_at: datetime | None = None,
) -> dict[str, Any]:
    """Store ``payload``, update last-seen, evaluate the camera's rules, apply the alerts.

    Returns:
        A JSON-able summary: ``payload_id``, ``evaluated`` (False for a payload older than the
        camera's newest) and ``alerts``: ``[{"alert_id", "state"}]`` written and notified.
    """
    store = services.store
    received_at = received_at or utc_now()
    store.put_detection(payload)
    camera = store.touch_camera(payload, received_at)
    summary: dict[str, Any] = {"payload_id": payload.payload_id, "evaluated": False, "alerts": []}
    if camera is None:
        return summary
    store.touch_device(payload, received_at)
    camera_settings = config.for_camera(payload.camera_id)
    window = history_needed(camera_settings)
    history = (
        store.recent_samples(payload.camera_id, window, until=payload.captured_at) if window else []
    )
    outcomes = [
        RuleOutcome(
            camera_id=payload.camera_id,
            rule=rule,
            evaluation=evaluation,
            at=payload.captured_at,
            token=payload.payload_id,
            device_id=payload.device_id,
            frame_key=payload.frame_key,
            payload_id=payload.payload_id,
        )
        for rule, evaluation in evaluate_payload(camera_settings, payload, history)
    ]
    applied = services.alerts.apply(outcomes, camera.rules, newest_payload_id=payload.payload_id)
    summary["alerts"] = [
        {"alert_id": alert_id, "state": state} for rule in applied for alert_id, state in rule.sent
    ]
    summary["evaluated"] = True
    return summary


def process_heartbeat(*, heartbeat: Heartbeat, services: Services) -> dict[str, Any]:
    """Keep ``heartbeat`` as its device's latest (unless a newer one is kept)."""
    kept = services.store.record_heartbeat(heartbeat, received_at=utc_now())
    return {"device_id": heartbeat.device_id, "kept": kept}


def with_stable_payload_id(body: str) -> str:
    """The message body, with a payload id derived from its content when the sender set none.

    The contract would give such a payload a fresh random id each time it is parsed, so a
    redelivered message would not be recognised as a duplicate; a hash of the body is the same
    every time. Any other body comes back unchanged.
    """
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return body
    if not isinstance(data, dict) or data.get("kind") != "detection" or "payload_id" in data:
        return body
    data["payload_id"] = hashlib.sha256(body.encode()).hexdigest()[:32]
    return json.dumps(data)


def queued_at(record: SQSRecord) -> datetime:
    """When the queue accepted ``record`` (its ``SentTimestamp``; now, when it carries none)."""
    try:
        return datetime.fromtimestamp(int(record.attributes.sent_timestamp) / 1000, UTC)
    except (KeyError, TypeError, ValueError, OverflowError, OSError):
        return utc_now()


def handle_record(
    record: SQSRecord, *, services: Services, config: ControlConfig
) -> dict[str, Any]:
    """The batch's record handler: validate the body, then process it (raises when it fails)."""
    # Correlation id: the payload id (traceable from the edge device) once known, else the message.
    logger.set_correlation_id(record.message_id)
    logger.append_keys(
        message_id=record.message_id, payload_id=None, camera_id=None, device_id=None
    )
    try:
        message = parse_edge_message(
            with_stable_payload_id(record.body), queued_at=queued_at(record)
        )
    except ContractError as error:
        logger.warning(
            "message rejected: it breaks its contract",
            extra={
                "problems": error.problems,
                "receive_count": record.attributes.approximate_receive_count,
            },
        )
        raise
    try:
        if isinstance(message, Heartbeat):
            logger.append_keys(device_id=message.device_id)
            return process_heartbeat(heartbeat=message, services=services)
        logger.set_correlation_id(message.payload_id)
        logger.append_keys(
            payload_id=message.payload_id, camera_id=message.camera_id, device_id=message.device_id
        )
        result = services.once_per_payload(process_detection)(
            payload=message, services=services, config=config
        )
    except Exception:
        logger.exception("message failed; it will be retried")
        raise
    if result["alerts"]:
        logger.info("alerts sent", extra={"alerts": result["alerts"]})
    return result
