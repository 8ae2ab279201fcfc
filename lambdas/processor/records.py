"""What the processor does with a batch of queue messages; plain functions and one class, testable
without events.

A message is a :data:`kit.core.contracts.EdgeMessage`: a detection payload or a heartbeat.

- A payload is processed once per ``payload_id``: the batch claims each id in the idempotency
  table (:meth:`lambdas.store.Store.claim_payload`). A redelivered message, or the same payload
  sent again, finds its id completed and gets the first run's result without running again; a
  payload another processor is working on fails with :class:`PayloadInProgressError` and comes
  back later; a run that fails releases its claim, so the retry runs again. The payload is
  stored, the camera's last-seen moved on, and, when it is the camera's newest payload, the
  camera's rules are evaluated and the alert state machine applied. An older payload (a late
  replay) is stored but does not drive alerts: the rules always judge the newest data. Its
  device's newest payload time is noted.
- A heartbeat replaces the device's kept heartbeat unless a newer one is kept already.

What a batch costs in DynamoDB calls (:class:`PayloadBatch`): one conditional put per payload
(the claim) and one update per payload (the camera), plus per batch the config read, one batch
write of the payloads, one update per device and one batch write of the results. Every step is
safe to repeat (the payload's item is rewritten as it was, the camera's update is conditional on
its time, rule states and alert records are conditional writes), so a batch that stops anywhere
is right when it runs again once its claims have run out.

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
import uuid
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
)

from kit.core.contracts import (
    ContractError,
    ControlConfig,
    DetectionPayload,
    EdgeMessage,
    Heartbeat,
    parse_edge_message,
    utc_now,
)
from lambdas.alerts import RuleOutcome
from lambdas.rules import evaluate_payload, history_needed
from lambdas.runtime import Services
from lambdas.store import PayloadClaim

logger = Logger(service="processor")


class PayloadInProgressError(IdempotencyAlreadyInProgressError):
    """Another processor holds the claim on this payload id; the record is retried later.

    A Powertools idempotency error by kind, so code that retries those retries this too.
    """


def process_detection(
    *,
    payload: DetectionPayload,
    services: Services,
    config: ControlConfig,
    received_at: datetime | None = None,
    batch: PayloadBatch | None = None,
) -> dict[str, Any]:
    """Store ``payload``, update last-seen, evaluate the camera's rules, apply the alerts.

    Args:
        batch: the batch the payload came in: it stored the payload already, and notes each
            device's newest payload once at its end. None: store it and note its device here.

    Returns:
        A JSON-able summary: ``payload_id``, ``evaluated`` (False for a payload older than the
        camera's newest) and ``alerts``: ``[{"alert_id", "state"}]`` written and notified.
    """
    store = services.store
    received_at = received_at or utc_now()
    if batch is None:
        store.store_detections([payload])
    camera = store.touch_camera(payload, received_at)
    summary: dict[str, Any] = {"payload_id": payload.payload_id, "evaluated": False, "alerts": []}
    if camera is None:
        return summary
    if batch is None:
        store.touch_device(payload, received_at)
    else:
        batch.note_device(payload, received_at)
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


@dataclass
class _Parsed:
    """A record's message, or why it breaks its contract."""

    message: EdgeMessage | None = None
    error: ContractError | None = None


def _parse(record: SQSRecord) -> _Parsed:
    try:
        return _Parsed(
            parse_edge_message(with_stable_payload_id(record.body), queued_at=queued_at(record))
        )
    except ContractError as error:
        return _Parsed(error=error)


class PayloadBatch:
    """One batch of queue messages, with its DynamoDB writes gathered per batch.

    :meth:`open` parses every record, claims each payload id once (in-batch duplicates share the
    claim) and stores the claimed payloads in one batch write; :meth:`handle` then processes
    each record in order (the batch's record handler); :meth:`close` notes each device's newest
    payload once and records the results of the payloads processed in one batch write.

    A record that was not opened (or a duplicate whose first copy failed) is claimed and stored
    when it is handled.

    Examples:
        >>> batch = PayloadBatch(services, config)      # doctest: +SKIP
        >>> batch.open(records)                         # doctest: +SKIP
        >>> results = [batch.handle(r) for r in records]  # doctest: +SKIP
        >>> batch.close()                               # doctest: +SKIP
    """

    def __init__(self, services: Services, config: ControlConfig):
        self.services = services
        self.config = config
        self.token = uuid.uuid4().hex
        """Identifies this batch's claims (only its own are released)."""
        self._parsed: dict[str, deque[_Parsed]] = {}
        self._claims: dict[str, PayloadClaim] = {}
        self._not_stored: dict[str, Exception] = {}
        self._answers: dict[str, dict[str, Any]] = {}
        self._processed: dict[str, dict[str, Any]] = {}
        self._newest_by_device: dict[str, tuple[DetectionPayload, datetime]] = {}

    def open(self, records: Sequence[SQSRecord]) -> None:
        """Parse ``records``, claim their payload ids and store the claimed payloads."""
        fresh: dict[str, DetectionPayload] = {}
        for record in records:
            parsed = _parse(record)
            self._parsed.setdefault(record.message_id, deque()).append(parsed)
            if isinstance(parsed.message, DetectionPayload):
                fresh.setdefault(parsed.message.payload_id, parsed.message)
        claimed = []
        for payload_id, payload in fresh.items():
            try:
                self._claims[payload_id] = self._claim(payload_id)
            except Exception as error:  # noqa: BLE001  (the record fails with it when handled)
                self._not_stored[payload_id] = error
                continue
            if self._claims[payload_id].state == "claimed":
                claimed.append(payload)
        try:
            self.services.store.store_detections(claimed)
        except Exception as error:  # noqa: BLE001  (each of them fails with it when handled)
            self._not_stored.update({payload.payload_id: error for payload in claimed})

    def handle(self, record: SQSRecord) -> dict[str, Any]:
        """Process one record of the batch (raises when it fails)."""
        # Correlation id: the payload id (traceable from the edge device) once known, else the message.
        logger.set_correlation_id(record.message_id)
        logger.append_keys(
            message_id=record.message_id, payload_id=None, camera_id=None, device_id=None
        )
        waiting = self._parsed.get(record.message_id)
        parsed = waiting.popleft() if waiting else _parse(record)
        if parsed.error is not None:
            logger.warning(
                "message rejected: it breaks its contract",
                extra={
                    "problems": parsed.error.problems,
                    "receive_count": record.attributes.approximate_receive_count,
                },
            )
            raise parsed.error
        message = parsed.message
        try:
            if isinstance(message, Heartbeat):
                logger.append_keys(device_id=message.device_id)
                return process_heartbeat(heartbeat=message, services=self.services)
            logger.set_correlation_id(message.payload_id)
            logger.append_keys(
                payload_id=message.payload_id,
                camera_id=message.camera_id,
                device_id=message.device_id,
            )
            result = self._process_once(message)
        except Exception:
            logger.exception("message failed; it will be retried")
            raise
        if result["alerts"]:
            logger.info("alerts sent", extra={"alerts": result["alerts"]})
        return result

    def note_device(self, payload: DetectionPayload, received_at: datetime) -> None:
        """Remember ``payload`` as its device's newest of the batch, if it is."""
        newest = self._newest_by_device.get(payload.device_id)
        if newest is None or payload.captured_at > newest[0].captured_at:
            self._newest_by_device[payload.device_id] = (payload, received_at)

    def close(self) -> None:
        """Note each device's newest payload, then record the payloads processed as completed.

        Raises:
            ClientError, UnprocessedWritesError: a write failed; the batch fails as a whole and
                runs again (idempotently) once its claims have run out.
        """
        store = self.services.store
        for payload, received_at in self._newest_by_device.values():
            store.touch_device(payload, received_at)
        self._newest_by_device.clear()
        if self._processed:
            store.complete_payloads(self._processed, now=utc_now())
            self._processed.clear()

    def _claim(self, payload_id: str) -> PayloadClaim:
        now = utc_now()
        return self.services.store.claim_payload(
            payload_id,
            token=self.token,
            now=now,
            until=self.services.idempotency_config.claim_until(now),
        )

    def _process_once(self, payload: DetectionPayload) -> dict[str, Any]:
        payload_id = payload.payload_id
        if payload_id in self._answers:  # a copy earlier in this batch ran, or had run before
            return self._answers[payload_id]
        claim = self._claims.pop(payload_id, None)
        not_stored = self._not_stored.pop(payload_id, None)
        if not_stored is not None and claim is None:
            raise not_stored
        if claim is None:  # not opened, or a copy earlier in this batch failed
            claim = self._claim(payload_id)
            if claim.state == "claimed":
                try:
                    self.services.store.store_detections([payload])
                except Exception as error:  # noqa: BLE001  (released and raised below)
                    not_stored = error
        if claim.state == "completed":
            self._answers[payload_id] = claim.result or {}
            return self._answers[payload_id]
        if claim.state == "in_progress":
            raise PayloadInProgressError(
                f"payload {payload_id} is being processed by another function; "
                "it is retried once that one finishes or its claim runs out"
            )
        try:
            if not_stored is not None:
                raise not_stored
            result = process_detection(
                payload=payload, services=self.services, config=self.config, batch=self
            )
        except Exception:
            try:
                self.services.store.release_payload(payload_id, token=self.token)
            except Exception:  # noqa: BLE001  (the claim runs out instead; the first error counts)
                logger.exception("could not release the claim; it runs out by itself")
            raise
        self._answers[payload_id] = self._processed[payload_id] = result
        return result


def handle_record(
    record: SQSRecord, *, services: Services, config: ControlConfig
) -> dict[str, Any]:
    """One record on its own, as a batch of one: validate the body, then process it (raises when
    it fails)."""
    batch = PayloadBatch(services, config)
    batch.open([record])
    try:
        return batch.handle(record)
    finally:
        batch.close()
