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
  replay) is stored but does not drive alerts: the rules always judge the newest data. (A
  device's newest payload time is read from its cameras: :meth:`lambdas.store.Store.list_devices`.)
- A heartbeat replaces the device's kept heartbeat unless a newer one is kept already.

What a batch costs in DynamoDB calls (:class:`PayloadBatch`): one conditional put per payload
(the claim) and one update per payload (the camera), plus per batch the config read, one batch
write of the payloads and one batch write of the results, however many devices sent them. Every
step is safe to repeat (the payload's item is rewritten as it was, the camera's update is
conditional on its time, rule states and alert records are conditional writes), so a batch that
stops anywhere is right when it runs again once its claims have run out.

The claims, and the cameras, of a batch are worked on concurrently (:data:`CAMERA_WORKERS`): each
camera's payloads in the order they came, as one processor would, and different cameras share
nothing but the config. On AWS each call is a round trip, so a batch takes about as long as its
busiest camera instead of all its calls in a row.

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
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

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

CAMERA_WORKERS = 10
"""Claims, or cameras, of a batch worked on at once: a batch holds at most 10 records, and the
DynamoDB client keeps 10 connections."""
_workers = ThreadPoolExecutor(max_workers=CAMERA_WORKERS, thread_name_prefix="processor")
_Item = TypeVar("_Item")
_Result = TypeVar("_Result")


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
    stored: bool = False,
) -> dict[str, Any]:
    """Store ``payload``, update last-seen, evaluate the camera's rules, apply the alerts.

    Args:
        stored: the payload's item is written already (its batch stored it in one batch write).

    Returns:
        A JSON-able summary: ``payload_id``, ``evaluated`` (False for a payload older than the
        camera's newest) and ``alerts``: ``[{"alert_id", "state"}]`` written and notified.
    """
    store = services.store
    received_at = received_at or utc_now()
    if not stored:
        store.store_detections([payload])
    camera = store.touch_camera(payload, received_at)
    summary: dict[str, Any] = {"payload_id": payload.payload_id, "evaluated": False, "alerts": []}
    if camera is None:
        return summary
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
    """A record's message, or why it breaks its contract; and, once its batch processed it,
    what that gave."""

    message: EdgeMessage | None = None
    error: ContractError | None = None
    processed: bool = False
    result: dict[str, Any] | None = None
    failure: Exception | None = None


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
    claim; the claims concurrently), stores the claimed payloads in one batch write and
    processes them, the cameras concurrently and each camera's payloads in order; :meth:`handle`
    then reports each record's outcome in order (the batch's record handler) and processes its
    heartbeats; :meth:`close` records the results of the payloads processed in one batch write.

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

    def open(self, records: Sequence[SQSRecord]) -> None:
        """Parse ``records``, claim their payload ids, store the claimed payloads and process them."""
        fresh: dict[str, DetectionPayload] = {}
        lanes: dict[str, list[tuple[_Parsed, DetectionPayload]]] = {}
        for record in records:
            parsed = _parse(record)
            self._parsed.setdefault(record.message_id, deque()).append(parsed)
            if isinstance(parsed.message, DetectionPayload):
                first = fresh.setdefault(parsed.message.payload_id, parsed.message)
                # A payload id's copies go down one lane, so the first one's answer serves the rest.
                lanes.setdefault(first.camera_id, []).append((parsed, parsed.message))
        claims = _concurrently(self._claim_or_error, fresh)
        claimed = []
        for (payload_id, payload), claim in zip(fresh.items(), claims, strict=True):
            if isinstance(claim, Exception):
                self._not_stored[payload_id] = claim
                continue
            self._claims[payload_id] = claim
            if claim.state == "claimed":
                claimed.append(payload)
        try:
            self.services.store.store_detections(claimed)
        except Exception as error:  # noqa: BLE001  (each of them fails with it when handled)
            self._not_stored.update({payload.payload_id: error for payload in claimed})
        _concurrently(self._process_lane, lanes.values())

    def handle(self, record: SQSRecord) -> dict[str, Any]:
        """Report one record of the batch (raises when it failed); process it if it was not
        processed when the batch was opened."""
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
            if not parsed.processed:
                self._process_parsed(parsed, message)
            if parsed.failure is not None:
                raise parsed.failure
            result = parsed.result or {}
        except Exception:
            logger.exception("message failed; it will be retried")
            raise
        if result["alerts"]:
            logger.info("alerts sent", extra={"alerts": result["alerts"]})
        return result

    def close(self) -> None:
        """Record the payloads processed as completed.

        Raises:
            ClientError, UnprocessedWritesError: the write failed; the batch fails as a whole and
                runs again (idempotently) once its claims have run out.
        """
        if self._processed:
            self.services.store.complete_payloads(self._processed, now=utc_now())
            self._processed.clear()

    def _claim(self, payload_id: str) -> PayloadClaim:
        now = utc_now()
        return self.services.store.claim_payload(
            payload_id,
            token=self.token,
            now=now,
            until=self.services.idempotency_config.claim_until(now),
        )

    def _claim_or_error(self, payload_id: str) -> PayloadClaim | Exception:
        try:
            return self._claim(payload_id)
        except Exception as error:  # noqa: BLE001  (the record fails with it when handled)
            return error

    def _process_lane(self, lane: list[tuple[_Parsed, DetectionPayload]]) -> None:
        """Process one camera's payloads of the batch, in order."""
        for parsed, payload in lane:
            self._process_parsed(parsed, payload)

    def _process_parsed(self, parsed: _Parsed, payload: DetectionPayload) -> None:
        """Process ``payload`` (``parsed``'s message); keep its result, or why it failed."""
        try:
            parsed.result = self._process_once(payload)
        except Exception as error:  # noqa: BLE001  (raised when the record is handled)
            parsed.failure = error
        parsed.processed = True

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
                payload=payload, services=self.services, config=self.config, stored=True
            )
        except Exception:
            try:
                self.services.store.release_payload(payload_id, token=self.token)
            except Exception:  # noqa: BLE001  (the claim runs out instead; the first error counts)
                logger.exception(
                    "could not release the claim on payload %s; it runs out by itself", payload_id
                )
            raise
        self._answers[payload_id] = self._processed[payload_id] = result
        return result


def _concurrently(work: Callable[[_Item], _Result], items: Iterable[_Item]) -> list[_Result]:
    """``work`` on each of ``items``, on the worker threads (here when there is one item only);
    the results in the order of ``items``."""
    items = list(items)
    if len(items) <= 1:
        return [work(item) for item in items]
    return list(_workers.map(work, items))


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
