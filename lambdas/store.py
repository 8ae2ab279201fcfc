"""Every DynamoDB read and write of the backend, on the tables described in :mod:`kit.core.backend`.

Items keep scalars as DynamoDB scalars and nested documents (payloads, heartbeats, counts, rule
states) as JSON text, so the low-level client needs no Decimal conversions. Timestamps are
:func:`kit.core.timefmt.stamp` text, so sort keys order by time.

Tables (logical names; physical ones come from settings):

- ``detections`` (camera_id, sk = ``<captured_at>#<payload_id>``): one item per payload, TTL
  ``expires_at`` = captured_at + :data:`DETECTION_RETENTION_DAYS`.
- ``cameras`` (camera_id): the newest payload's time (``last_seen``) and id, the rest of what it
  said as one JSON attribute (``latest``: device, arrival, model, counts), the newest frame
  as another (``frame``: key and capture time; kept when a payload comes without one): few
  attributes keep the update every payload makes short. ``rules``: a map of rule key ->
  :class:`lambdas.alerts.RuleState` JSON. (Cameras stored before kept each of these in an
  attribute of its own, ``frame_key`` and ``frame_at`` among them; they read as they were.)
- ``devices`` (device_id): the latest heartbeat, when it arrived, its health. A device's newest
  payload time is its cameras' newest (:meth:`Store.list_devices`), so a payload writes nothing
  to its device.
- ``alerts`` (alert_id; indexes by-state, by-camera, recent): :class:`kit.core.contracts.Alert` fields.
- ``config``: the current config and its last good copy, laid out by
  :mod:`kit.core.config_record`; a stored config that fails validation is reported
  (:class:`ConfigRead`) and the last good one is used instead.
- ``audit`` (entity, at): who changed what, when, old -> new.
- ``idempotency`` (id = ``payload#<payload_id>``): each payload id's claim while a processor
  works on it (``status`` INPROGRESS) and then its result (``status`` COMPLETED, ``data``), kept
  :data:`PAYLOAD_MEMORY_DAYS` days (TTL ``expiration``). ``in_progress_until_ms`` says until
  when the record holds the id: a claim's deadline, a result's expiration; after it the id can
  be claimed again.

Examples:
    >>> from kit.core.settings import load_settings
    >>> settings = load_settings()                                  # doctest: +SKIP
    >>> store = Store(settings.client("dynamodb"), settings.resources)  # doctest: +SKIP
    >>> store.get_config().revision                                 # doctest: +SKIP
    0
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import time
import uuid
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from botocore.exceptions import ClientError

from kit.core.config_record import (
    CONFIG_KEY,
    LAST_GOOD_ID,
    LAST_GOOD_KEY,
    decode_config_item,
    encode_config_item,
    stored_revision,
)
from kit.core.contracts import (
    MAX_CLOCK_SKEW_S,
    Alert,
    ContractError,
    ControlConfig,
    DetectionPayload,
    Heartbeat,
    parse,
)
from kit.core.rules import CountSample
from kit.core.settings import ResourceNames
from kit.core.timefmt import epoch_s, parse_stamp, stamp
from lambdas.alerts import StateConflictError

INLINE_PAYLOAD_MAX = 100_000
"""Payload JSON longer than this is stored zlib-compressed (``payload_z``): DynamoDB items are
limited to 400 KB and a payload may carry 2,000 detections."""
DETECTION_RETENTION_DAYS = 30
"""Detections expire (DynamoDB TTL) this long after capture, like the frames in the bucket."""
RESOLVED_ALERT_RETENTION_DAYS = 90
AUDIT_RETENTION_DAYS = 365
ALERT_FEED = "alert"
"""The constant partition key of the alerts table's ``recent`` index (all alerts, newest first)."""

NOTIFICATION_CLAIM_S = 120
"""How long a claim to send an alert's notification holds: longer than any function's timeout
(60 s at most), so a claim older than this was left by a function that stopped before sending."""

Claim = Literal["claimed", "sent", "busy"]
"""What claiming a notification found (:meth:`Store.claim_notification`)."""
PAYLOAD_MEMORY_DAYS = 4
"""A payload id's claim and result are kept as long as the detections queue keeps a message."""
BATCH_WRITE_MAX = 25
"""DynamoDB's most items in one BatchWriteItem."""
BATCH_WRITE_ATTEMPTS = 6
"""Tries at writing the items DynamoDB left unprocessed (throttled) in a batch write."""
BATCH_WRITE_BACKOFF_S = 0.05
"""The first wait before retrying unprocessed items; it doubles with each try (1.6 s at most)."""
DYNAMODB_ITEM_MAX_BYTES = 400 * 1024
"""DynamoDB's item size limit."""
CONFIG_MAX_BYTES = 180_000
"""The largest control config, as stored (its JSON in UTF-8): its item, and the audit record of a
``PUT /config`` (the old and the new config together), must each fit
:data:`DYNAMODB_ITEM_MAX_BYTES`."""

log = logging.getLogger(__name__)


class ConfigTooLargeError(ValueError):
    """A config larger than :data:`CONFIG_MAX_BYTES` (nothing was written).

    Attributes:
        size: its size as stored, in bytes.
        allowed: the limit, in words.
    """

    def __init__(self, size: int):
        self.size = size
        self.allowed = (
            f"at most {CONFIG_MAX_BYTES:,} bytes as stored, so that the config and the audit "
            f"record of a change (old and new) each fit DynamoDB's 400 KB item limit "
            f"({DYNAMODB_ITEM_MAX_BYTES:,} bytes)"
        )
        super().__init__(f"the config is {size:,} bytes as stored; it must be {self.allowed}")


class BadCursorError(ValueError):
    """A paging cursor that this API did not hand out."""


class UnprocessedWritesError(RuntimeError):
    """DynamoDB left items of a batch write unprocessed after :data:`BATCH_WRITE_ATTEMPTS` tries.

    Attributes:
        unprocessed: table name -> how many of its items were not written.
    """

    def __init__(self, unprocessed: dict[str, int]):
        self.unprocessed = unprocessed
        tables = ", ".join(f"{count} in {table}" for table, count in sorted(unprocessed.items()))
        super().__init__(
            f"a batch write left items unprocessed after {BATCH_WRITE_ATTEMPTS} tries ({tables})"
        )


@dataclass(frozen=True)
class PayloadClaim:
    """What claiming a payload id found (:meth:`Store.claim_payload`).

    Attributes:
        state: ``"claimed"``: the caller processes the payload now; ``"completed"``: it was
            processed already and ``result`` is what that run returned; ``"in_progress"``:
            another caller's claim holds it.
        result: the earlier run's result, when ``"completed"``.
    """

    state: Literal["claimed", "completed", "in_progress"]
    result: dict[str, Any] | None = None


@dataclass(frozen=True)
class Page:
    """One page of a listing; ``cursor`` fetches the next one (None: no more)."""

    items: list[Any]
    cursor: str | None = None


@dataclass(frozen=True)
class RuleStatesWrite:
    """What :meth:`Store.replace_rule_states` did.

    Attributes:
        done: the states were written.
        current: when not, the camera's rule states as they are (rule key -> JSON; empty when
            the camera has none, or is not recorded).
    """

    done: bool
    current: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RejectedConfig:
    """A stored config that fails validation, which the backend does not run with.

    Attributes:
        revision: the revision its item claims (None: not a whole number).
        problems: what is wrong, as :class:`~kit.core.contracts.ContractError` problems.
    """

    revision: int | None
    problems: list[dict[str, Any]]

    def summary(self) -> str:
        """One line: the revision and its first problem."""
        first = self.problems[0]
        more = f" (and {len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
        return (
            f"stored config revision {self.revision if self.revision is not None else '?'} is "
            f"invalid: {first['field']}: {first['allowed']} (got {first['value']}){more}"
        )


@dataclass(frozen=True)
class ConfigRead:
    """The config the backend runs with, and what the config table holds.

    Attributes:
        config: the stored config; when it fails validation, the last good one (or the
            defaults, when no good one was ever stored).
        rejected: the stored config, when it fails validation.
        revision_attribute: the stored item's ``revision`` attribute as read (None: no item, or
            none in it): what the next write's condition compares with.
    """

    config: ControlConfig
    rejected: RejectedConfig | None = None
    revision_attribute: dict[str, Any] | None = None

    @property
    def next_revision(self) -> int:
        """The revision the next write gets: above the config run with and the stored item's."""
        stored = stored_revision({"revision": self.revision_attribute})
        return max(self.config.revision, stored or 0) + 1


@dataclass(frozen=True)
class CameraRecord:
    """A camera as the backend last saw it."""

    camera_id: str
    device_id: str | None = None
    last_seen: datetime | None = None
    received_at: datetime | None = None
    last_payload_id: str | None = None
    model: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    zone_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    frame_key: str | None = None
    frame_at: datetime | None = None
    rules: dict[str, str] = field(default_factory=dict)
    """Rule key -> stored :class:`lambdas.alerts.RuleState` JSON."""

    def to_json(self) -> dict[str, Any]:
        """For API responses (rule states reduced to the current alert id)."""
        return {
            "camera_id": self.camera_id,
            "device_id": self.device_id,
            "last_seen": _iso(self.last_seen),
            "received_at": _iso(self.received_at),
            "last_payload_id": self.last_payload_id,
            "model": self.model,
            "counts": self.counts,
            "zone_counts": self.zone_counts,
            "frame_key": self.frame_key,
            "frame_at": _iso(self.frame_at),
        }


@dataclass(frozen=True)
class DeviceRecord:
    """A device: its latest heartbeat and its newest payload."""

    device_id: str
    heartbeat: Heartbeat | None = None
    received_at: datetime | None = None
    last_payload_at: datetime | None = None
    health: str | None = None
    health_since: datetime | None = None


def _iso(moment: datetime | None) -> str | None:
    return stamp(moment) if moment else None


def _value(attribute: dict[str, Any]) -> Any:
    (kind, raw), *_ = attribute.items()
    if kind == "S":
        return raw
    if kind == "N":
        number = float(raw)
        return int(number) if number.is_integer() and "." not in raw and "e" not in raw else number
    if kind == "BOOL":
        return raw
    if kind == "NULL":
        return None
    if kind == "M":
        return {k: _value(v) for k, v in raw.items()}
    if kind == "L":
        return [_value(v) for v in raw]
    return raw


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    return {name: _value(attribute) for name, attribute in item.items()}


def _attribute(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int | float):
        return {"N": repr(value) if isinstance(value, float) else str(value)}
    if isinstance(value, datetime):
        return {"S": stamp(value)}
    if isinstance(value, str):
        return {"S": value}
    raise TypeError(f"cannot store {type(value).__name__} as a DynamoDB scalar: {value!r}")


def _item(values: dict[str, Any]) -> dict[str, Any]:
    return {name: _attribute(v) for name, v in values.items() if v is not None}


def _stored_heartbeat(device_id: str, text: str | None) -> Heartbeat | None:
    """A kept heartbeat; None when there is none, or when it fails today's contract (kept
    before a contract was tightened): the device's next heartbeat replaces it."""
    if not text:
        return None
    try:
        return parse(Heartbeat, text)
    except ContractError as error:
        log.warning("device %s: its kept heartbeat is unreadable, ignored: %s", device_id, error)
        return None


def _horizon(received_at: datetime) -> str:
    """The latest time a stored device timestamp can truly hold when a message arrives at
    ``received_at``: anything later was stored before future timestamps were refused."""
    return stamp(received_at + timedelta(seconds=MAX_CLOCK_SKEW_S))


def _compact_json(value: Any) -> str:
    # As small as the config's own JSON, so an audit record of a whole config fits an item.
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def encode_cursor(key: dict[str, Any] | None) -> str | None:
    """A URL-safe cursor for DynamoDB's ``LastEvaluatedKey``."""
    if not key:
        return None
    return base64.urlsafe_b64encode(json.dumps(key, sort_keys=True).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None, key_names: set[str]) -> dict[str, Any] | None:
    """The ``ExclusiveStartKey`` in ``cursor``.

    Raises:
        BadCursorError: when ``cursor`` is not one this API returned for this listing.
    """
    if not cursor:
        return None
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise BadCursorError("not a cursor this API returned") from None
    valid = (
        isinstance(key, dict)
        and set(key) == key_names
        and all(
            isinstance(v, dict) and set(v) == {"S"} and isinstance(v["S"], str)
            for v in key.values()
        )
    )
    if not valid:
        raise BadCursorError("not a cursor this API returned for this listing")
    return key


@dataclass(frozen=True)
class _ConditionalWrite:
    """What a write made on a condition did.

    Attributes:
        done: the condition held and the write was made.
        response: when done, the write's response (``Attributes``: what ``ReturnValues`` asked
            for); when not, the error's (``Item``: the item as it is, when the write asked for
            ``ReturnValuesOnConditionCheckFailure="ALL_OLD"`` and the item exists).
    """

    done: bool
    response: dict[str, Any]


def _conditionally(write: Callable[[], dict[str, Any]]) -> _ConditionalWrite:
    """Make one conditional write; a condition that does not hold is an outcome, not an error.

    ``write`` makes the client call (``lambda: client.update_item(..., ConditionExpression=...)``),
    so each call stays written out with its table: the IAM check reads them from the source.

    Raises:
        ClientError: any failure but the condition's.
    """
    try:
        response = write()
    except ClientError as error:
        if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise
        return _ConditionalWrite(False, dict(error.response))
    return _ConditionalWrite(True, response)


def _lacks_rule_states(written: _ConditionalWrite) -> bool:
    """The write failed on a camera that has no map of rule states yet."""
    camera = written.response.get("Item")
    return not written.done and camera is not None and "rules" not in camera


ALERT_INDEXES = {
    "by-camera": ("camera_id", {"alert_id", "camera_id", "opened_at"}),
    "by-state": ("state", {"alert_id", "state", "opened_at"}),
    "recent": ("feed", {"alert_id", "feed", "opened_at"}),
}


def alert_to_item(alert: Alert, *, expires_at: int | None = None) -> dict[str, Any]:
    values = {name: getattr(alert, name) for name in Alert.model_fields}
    values["feed"] = ALERT_FEED
    values["expires_at"] = expires_at
    return _item(values)


def item_to_alert(item: dict[str, Any]) -> Alert:
    values = _plain(item)
    return Alert.model_validate({k: v for k, v in values.items() if k in Alert.model_fields})


def detection_item(payload: DetectionPayload) -> dict[str, Any]:
    """A payload's item in the detections table (its JSON compressed when long)."""
    expires = payload.captured_at + timedelta(days=DETECTION_RETENTION_DAYS)
    document = payload.model_dump_json(by_alias=True)
    item = _item(
        {
            "camera_id": payload.camera_id,
            "sk": f"{stamp(payload.captured_at)}#{payload.payload_id}",
            "payload_id": payload.payload_id,
            "device_id": payload.device_id,
            "captured_at": payload.captured_at,
            "counts": json.dumps(payload.counts),
            "zone_counts": json.dumps(payload.zone_counts),
            "expires_at": epoch_s(expires),
        }
    )
    if len(document) > INLINE_PAYLOAD_MAX:
        item["payload_z"] = {"B": zlib.compress(document.encode(), 6)}
    else:
        item["payload"] = {"S": document}
    return item


def _epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _payload_key(payload_id: str) -> dict[str, Any]:
    return {"id": {"S": f"payload#{payload_id}"}}


class Store:
    """The backend's tables through one low-level DynamoDB client."""

    def __init__(self, client: Any, names: ResourceNames):
        self.client = client
        self.names = names

    # -- detections ----------------------------------------------------------------------------
    def store_detections(self, payloads: Sequence[DetectionPayload]) -> None:
        """Store payloads, in batch writes of :data:`BATCH_WRITE_MAX` (re-storing a payload
        rewrites the same item).

        Raises:
            UnprocessedWritesError: DynamoDB kept some of them unprocessed (throttled).
        """
        self._batch_put(self.names.detections_table, [detection_item(p) for p in payloads])

    def _batch_put(self, table: str, items: list[dict[str, Any]]) -> None:
        """Put ``items`` into ``table`` in batch writes, retrying what DynamoDB leaves
        unprocessed with a doubling wait.

        Raises:
            UnprocessedWritesError: items still unprocessed after :data:`BATCH_WRITE_ATTEMPTS`.
        """
        for start in range(0, len(items), BATCH_WRITE_MAX):
            pending = {
                table: [
                    {"PutRequest": {"Item": item}}
                    for item in items[start : start + BATCH_WRITE_MAX]
                ]
            }
            for attempt in range(BATCH_WRITE_ATTEMPTS):
                if attempt:
                    time.sleep(BATCH_WRITE_BACKOFF_S * 2 ** (attempt - 1))
                pending = self.client.batch_write_item(RequestItems=pending).get("UnprocessedItems")
                if not pending:
                    break
            else:
                raise UnprocessedWritesError({name: len(left) for name, left in pending.items()})

    # -- payload ids (exactly once) ------------------------------------------------------------
    def claim_payload(
        self, payload_id: str, *, token: str, now: datetime, until: datetime
    ) -> PayloadClaim:
        """Claim processing the payload ``payload_id`` until ``until``, in one conditional put.

        The claim is taken when the id is unknown, or its record no longer holds it: another
        caller's claim has run out (that caller stopped before it finished), or its result has
        expired. One comparison decides (``in_progress_until_ms``), which keeps the condition,
        paid on every payload, short.

        Args:
            token: identifies the claimant (:meth:`release_payload` releases only its own claim).
            now: the time of the claim.
            until: when the claim runs out (the claimant's deadline).
        """
        written = _conditionally(
            lambda: self.client.put_item(
                TableName=self.names.idempotency_table,
                Item={
                    **_payload_key(payload_id),
                    "status": {"S": "INPROGRESS"},
                    "claimed_by": {"S": token},
                    "in_progress_until_ms": {"N": str(_epoch_ms(until))},
                    "expiration": {"N": str(epoch_s(now + timedelta(days=PAYLOAD_MEMORY_DAYS)))},
                },
                ConditionExpression="attribute_not_exists(#id) OR #until < :now_ms",
                ExpressionAttributeNames={"#id": "id", "#until": "in_progress_until_ms"},
                ExpressionAttributeValues={":now_ms": {"N": str(_epoch_ms(now))}},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        )
        if written.done:
            return PayloadClaim("claimed")
        record = written.response.get("Item", {})
        if record.get("status") == {"S": "COMPLETED"}:
            return PayloadClaim("completed", json.loads(record["data"]["S"]))
        return PayloadClaim("in_progress")

    def release_payload(self, payload_id: str, *, token: str) -> None:
        """Give up the claim ``token`` holds on ``payload_id`` (its processing failed), so that a
        retry processes it again; a claim taken over by another caller meanwhile is left alone."""
        _conditionally(
            lambda: self.client.delete_item(
                TableName=self.names.idempotency_table,
                Key=_payload_key(payload_id),
                ConditionExpression="#status = :in_progress AND claimed_by = :token",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":in_progress": {"S": "INPROGRESS"},
                    ":token": {"S": token},
                },
            )
        )

    def complete_payloads(self, results: Mapping[str, dict[str, Any]], *, now: datetime) -> None:
        """Record payloads as processed, with their results (payload id -> JSON-able result), in
        batch writes: a claim on one of them from now on finds it completed.

        Raises:
            UnprocessedWritesError: DynamoDB kept some of them unprocessed (throttled).
        """
        expires = now + timedelta(days=PAYLOAD_MEMORY_DAYS)
        expiration = {"N": str(epoch_s(expires))}
        held_until = {"N": str(_epoch_ms(expires))}
        self._batch_put(
            self.names.idempotency_table,
            [
                {
                    **_payload_key(payload_id),
                    "status": {"S": "COMPLETED"},
                    "data": {"S": json.dumps(result, sort_keys=True)},
                    "in_progress_until_ms": held_until,
                    "expiration": expiration,
                }
                for payload_id, result in results.items()
            ],
        )

    def recent_samples(
        self, camera_id: str, limit: int, *, until: datetime | None = None
    ) -> list[CountSample]:
        """The camera's newest ``limit`` payloads' counts (captured at or before ``until``, when
        given), oldest first (strongly consistent).

        A payload judged while a newer one is being stored must not see the newer one's counts.
        """
        condition = "camera_id = :camera"
        values: dict[str, Any] = {":camera": {"S": camera_id}}
        if until is not None:
            condition += " AND sk <= :until"
            values[":until"] = {"S": stamp(until) + "#\uffff"}
        response = self.client.query(
            TableName=self.names.detections_table,
            KeyConditionExpression=condition,
            ExpressionAttributeValues=values,
            ProjectionExpression="captured_at, counts, zone_counts",
            ScanIndexForward=False,
            Limit=limit,
            ConsistentRead=True,
        )
        samples = [
            CountSample(
                parse_stamp(item["captured_at"]["S"]),
                json.loads(item["counts"]["S"]),
                json.loads(item["zone_counts"]["S"]),
            )
            for item in response["Items"]
        ]
        return samples[::-1]

    def query_detections(
        self,
        camera_id: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
        cursor: str | None = None,
        newest_first: bool = True,
    ) -> Page:
        """A page of the camera's payloads (as JSON dicts), captured in [since, until)."""
        condition = "camera_id = :camera"
        values: dict[str, Any] = {":camera": {"S": camera_id}}
        if since and until:
            condition += " AND sk BETWEEN :since AND :until"
            values[":since"] = {"S": stamp(since)}
            values[":until"] = {"S": stamp(until - timedelta(microseconds=1)) + "#\uffff"}
        elif since:
            condition += " AND sk >= :since"
            values[":since"] = {"S": stamp(since)}
        elif until:
            condition += " AND sk < :until"
            values[":until"] = {"S": stamp(until)}
        options: dict[str, Any] = {}
        start = decode_cursor(cursor, {"camera_id", "sk"})
        if start:
            options["ExclusiveStartKey"] = start
        response = self.client.query(
            TableName=self.names.detections_table,
            KeyConditionExpression=condition,
            ExpressionAttributeValues=values,
            ProjectionExpression="payload, payload_z",
            ScanIndexForward=not newest_first,
            Limit=limit,
            **options,
        )
        items = [
            json.loads(
                item["payload"]["S"]
                if "payload" in item
                else zlib.decompress(item["payload_z"]["B"])
            )
            for item in response["Items"]
        ]
        return Page(items, encode_cursor(response.get("LastEvaluatedKey")))

    # -- cameras -------------------------------------------------------------------------------
    def touch_camera(self, payload: DetectionPayload, received_at: datetime) -> CameraRecord | None:
        """Record ``payload`` as the camera's newest; None when a newer one is already recorded.

        A recorded time beyond ``received_at`` plus the clock-skew allowance
        (:data:`kit.core.contracts.MAX_CLOCK_SKEW_S`) cannot be a real payload's (the processor
        refuses those; it was stored before it did), so any payload replaces it.

        Every payload pays for this update, and its cost (DynamoDB's and the emulator's) grows
        with its clauses: what only the API reads is one JSON attribute (``latest``), the frame
        another (``frame``), and the rule states' map is created by the first rule state
        (:meth:`replace_rule_states`).
        """
        latest = {
            "device_id": payload.device_id,
            "received_at": stamp(received_at),
            "model": str(payload.model),
            "counts": payload.counts,
            "zone_counts": payload.zone_counts,
        }
        sets = ["last_seen = :seen", "last_payload_id = :payload", "latest = :latest"]
        values = {
            ":seen": {"S": stamp(payload.captured_at)},
            ":payload": {"S": payload.payload_id},
            ":latest": {"S": _compact_json(latest)},
            ":horizon": {"S": _horizon(received_at)},
        }
        if payload.frame_key:
            sets.append("frame = :frame")
            values[":frame"] = {
                "S": _compact_json({"key": payload.frame_key, "at": stamp(payload.captured_at)})
            }
        written = _conditionally(
            lambda: self.client.update_item(
                TableName=self.names.cameras_table,
                Key={"camera_id": {"S": payload.camera_id}},
                UpdateExpression="SET " + ", ".join(sets),
                # Refused only over a newer time within the horizon (a missing one compares false).
                ConditionExpression="NOT (last_seen > :seen AND last_seen <= :horizon)",
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )
        )
        return self._camera(written.response["Attributes"]) if written.done else None

    def replace_rule_states(
        self,
        camera_id: str,
        changes: Mapping[str, tuple[str, str | None]],
        *,
        newest_payload_id: str | None = None,
    ) -> RuleStatesWrite:
        """Set rule states, all or none, if each is still as expected.

        Args:
            changes: rule key -> (new state JSON, the state JSON it replaces; None: never stored).
            newest_payload_id: when given, also only while it is the camera's newest payload.

        Returns:
            Whether they were written, and if not, the camera's rule states as they are.
        """
        written = self._set_rule_states(camera_id, changes, newest_payload_id)
        if _lacks_rule_states(written):
            # The camera's first states: they make its map, if none was made meanwhile.
            if any(expected is not None for _, expected in changes.values()):
                return RuleStatesWrite(False, {})
            written = self._create_rule_states(camera_id, changes, newest_payload_id)
            if not written.done and "rules" in written.response.get("Item", {}):
                written = self._set_rule_states(camera_id, changes, newest_payload_id)
        if written.done:
            return RuleStatesWrite(True)
        camera = written.response.get("Item")
        return RuleStatesWrite(False, self._camera(camera).rules if camera else {})

    def _set_rule_states(
        self,
        camera_id: str,
        changes: Mapping[str, tuple[str, str | None]],
        newest_payload_id: str | None,
    ) -> _ConditionalWrite:
        """Set ``changes`` in the camera's map of rule states (fails when it has none)."""
        names = {"#rules": "rules"}
        values: dict[str, Any] = {}
        sets, conditions = [], ["attribute_exists(#rules)"]
        for index, (rule_key, (new, expected)) in enumerate(sorted(changes.items())):
            names[f"#r{index}"] = rule_key
            values[f":new{index}"] = {"S": new}
            sets.append(f"#rules.#r{index} = :new{index}")
            if expected is None:
                conditions.append(f"attribute_not_exists(#rules.#r{index})")
            else:
                conditions.append(f"#rules.#r{index} = :old{index}")
                values[f":old{index}"] = {"S": expected}
        if newest_payload_id is not None:
            conditions.append("last_payload_id = :newest")
            values[":newest"] = {"S": newest_payload_id}
        return _conditionally(
            lambda: self.client.update_item(
                TableName=self.names.cameras_table,
                Key={"camera_id": {"S": camera_id}},
                UpdateExpression="SET " + ", ".join(sets),
                ConditionExpression=" AND ".join(conditions),
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        )

    def _create_rule_states(
        self,
        camera_id: str,
        changes: Mapping[str, tuple[str, str | None]],
        newest_payload_id: str | None,
    ) -> _ConditionalWrite:
        """Make the camera's map of rule states of ``changes``, if it has none."""
        conditions = ["attribute_exists(camera_id)", "attribute_not_exists(#rules)"]
        values: dict[str, Any] = {
            ":states": {"M": {rule_key: {"S": new} for rule_key, (new, _) in changes.items()}}
        }
        if newest_payload_id is not None:
            conditions.append("last_payload_id = :newest")
            values[":newest"] = {"S": newest_payload_id}
        return _conditionally(
            lambda: self.client.update_item(
                TableName=self.names.cameras_table,
                Key={"camera_id": {"S": camera_id}},
                UpdateExpression="SET #rules = :states",
                ConditionExpression=" AND ".join(conditions),
                ExpressionAttributeNames={"#rules": "rules"},
                ExpressionAttributeValues=values,
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        )

    def get_camera(self, camera_id: str) -> CameraRecord | None:
        item = self.client.get_item(
            TableName=self.names.cameras_table, Key={"camera_id": {"S": camera_id}}
        ).get("Item")
        return self._camera(item) if item else None

    def list_cameras(self) -> list[CameraRecord]:
        items = []
        for page in self.client.get_paginator("scan").paginate(TableName=self.names.cameras_table):
            items += [self._camera(item) for item in page["Items"]]
        return sorted(items, key=lambda c: c.camera_id)

    @staticmethod
    def _camera(item: dict[str, Any]) -> CameraRecord:
        values = _plain(item)
        if values.get("latest"):
            latest = json.loads(values["latest"])
        else:  # stored before ``latest``: one attribute each, counts as JSON text
            latest = {
                **values,
                "counts": json.loads(values.get("counts") or "{}"),
                "zone_counts": json.loads(values.get("zone_counts") or "{}"),
            }

        if values.get("frame"):
            frame = json.loads(values["frame"])
        else:  # stored before ``frame``, or no frame yet
            frame = {"key": values.get("frame_key"), "at": values.get("frame_at")}

        def moment(text: str | None) -> datetime | None:
            return parse_stamp(text) if text else None

        return CameraRecord(
            camera_id=values["camera_id"],
            device_id=latest.get("device_id"),
            last_seen=moment(values.get("last_seen")),
            received_at=moment(latest.get("received_at")),
            last_payload_id=values.get("last_payload_id"),
            model=latest.get("model"),
            counts=latest["counts"],
            zone_counts=latest["zone_counts"],
            frame_key=frame["key"],
            frame_at=moment(frame["at"]),
            rules=dict(values.get("rules") or {}),
        )

    # -- devices -------------------------------------------------------------------------------
    def record_heartbeat(self, heartbeat: Heartbeat, received_at: datetime) -> bool:
        """Keep ``heartbeat`` as the device's latest; False when a newer one is already kept (a
        kept one dated beyond the clock-skew allowance is replaced, as in :meth:`touch_camera`)."""
        return _conditionally(
            lambda: self.client.update_item(
                TableName=self.names.devices_table,
                Key={"device_id": {"S": heartbeat.device_id}},
                UpdateExpression=(
                    "SET heartbeat = :heartbeat, sent_at = :sent, received_at = :received, "
                    "app_version = :version"
                ),
                ConditionExpression=(
                    "attribute_not_exists(sent_at) OR sent_at <= :sent OR sent_at > :horizon"
                ),
                ExpressionAttributeValues={
                    ":heartbeat": {"S": heartbeat.model_dump_json()},
                    ":sent": {"S": stamp(heartbeat.sent_at)},
                    ":received": {"S": stamp(received_at)},
                    ":version": {"S": heartbeat.app_version},
                    ":horizon": {"S": _horizon(received_at)},
                },
            )
        ).done

    def list_devices(self, cameras: Sequence[CameraRecord] | None = None) -> list[DeviceRecord]:
        """Every device: those that sent a heartbeat and those known from their cameras' payloads.

        A device's newest payload time is the newest ``last_seen`` of the cameras whose newest
        payload came from it: read here instead of written with every batch.

        Args:
            cameras: the cameras, when the caller listed them already (None: listed here).
        """
        newest_payload: dict[str, datetime] = {}
        for camera in self.list_cameras() if cameras is None else cameras:
            if camera.device_id and camera.last_seen:
                known = newest_payload.get(camera.device_id)
                newest_payload[camera.device_id] = max(known or camera.last_seen, camera.last_seen)
        devices = {}
        for page in self.client.get_paginator("scan").paginate(TableName=self.names.devices_table):
            for item in page["Items"]:
                values = _plain(item)
                device_id = values["device_id"]
                devices[device_id] = DeviceRecord(
                    device_id=device_id,
                    heartbeat=_stored_heartbeat(device_id, values.get("heartbeat")),
                    received_at=parse_stamp(values["received_at"])
                    if values.get("received_at")
                    else None,
                    last_payload_at=newest_payload.get(device_id),
                    health=values.get("health"),
                    health_since=parse_stamp(values["health_since"])
                    if values.get("health_since")
                    else None,
                )
        for device_id, last_payload_at in newest_payload.items():
            devices.setdefault(device_id, DeviceRecord(device_id, last_payload_at=last_payload_at))
        return sorted(devices.values(), key=lambda d: d.device_id)

    def set_device_health(self, device_id: str, health: str, since: datetime) -> None:
        self.client.update_item(
            TableName=self.names.devices_table,
            Key={"device_id": {"S": device_id}},
            UpdateExpression="SET health = :health, health_since = :since",
            ExpressionAttributeValues={":health": {"S": health}, ":since": {"S": stamp(since)}},
        )

    # -- config --------------------------------------------------------------------------------
    def read_config(self) -> ConfigRead:
        """The config to run with: the stored one, or when it fails validation the last good one
        (logged, and reported in ``rejected``); the defaults, revision 0, until one is stored."""
        item = self.client.get_item(
            TableName=self.names.config_table, Key=CONFIG_KEY, ConsistentRead=True
        ).get("Item")
        revision_attribute = (item or {}).get("revision")
        try:
            config = decode_config_item(item)
        except ContractError as error:
            rejected = RejectedConfig(stored_revision(item), error.problems)
        else:
            return ConfigRead(
                config or ControlConfig(updated_by="default"), None, revision_attribute
            )
        good = self._last_good_config()
        log.warning(
            "%s; running with the last good revision %d until a valid config is stored",
            rejected.summary(),
            good.revision,
        )
        return ConfigRead(good, rejected, revision_attribute)

    def _last_good_config(self) -> ControlConfig:
        item = self.client.get_item(
            TableName=self.names.config_table, Key=LAST_GOOD_KEY, ConsistentRead=True
        ).get("Item")
        try:
            config = decode_config_item(item)
        except ContractError as error:
            log.error("the last good config copy is invalid too, using the defaults: %s", error)
            config = None
        return config or ControlConfig(updated_by="default")

    def get_config(self) -> ControlConfig:
        """The config to run with (:meth:`read_config`'s ``config``)."""
        return self.read_config().config

    def put_config(
        self, config: ControlConfig, expected_revision: int | dict[str, Any] | None
    ) -> bool:
        """Store ``config`` (already validated) if the stored item's revision is still
        ``expected_revision``; False otherwise. Then keep it as the last good copy.

        Args:
            config: the new config.
            expected_revision: the revision read, or the stored ``revision`` attribute exactly as
                read (:attr:`ConfigRead.revision_attribute`: a damaged item's may be anything),
                or None when the item had none.

        Raises:
            ConfigTooLargeError: ``config`` is larger than :data:`CONFIG_MAX_BYTES`.
        """
        size = len(config.model_dump_json().encode())
        if size > CONFIG_MAX_BYTES:
            raise ConfigTooLargeError(size)
        expected = (
            {"N": str(expected_revision)}
            if isinstance(expected_revision, int)
            else expected_revision
        )
        condition = "attribute_not_exists(config_id) OR attribute_not_exists(revision)"
        values: dict[str, Any] = {}
        if expected is not None:
            condition += " OR revision = :expected"
            values[":expected"] = expected
        written = _conditionally(
            lambda: self.client.put_item(
                TableName=self.names.config_table,
                Item=encode_config_item(config),
                ConditionExpression=condition,
                **({"ExpressionAttributeValues": values} if values else {}),
            )
        )
        if written.done:
            # A slower writer of an older revision must not replace a newer last good copy.
            _conditionally(
                lambda: self.client.put_item(
                    TableName=self.names.config_table,
                    Item=encode_config_item(config, LAST_GOOD_ID),
                    ConditionExpression=(
                        "attribute_not_exists(revision) OR NOT attribute_type(revision, :number) "
                        "OR revision < :revision"
                    ),
                    ExpressionAttributeValues={
                        ":number": {"S": "N"},
                        ":revision": {"N": str(config.revision)},
                    },
                )
            )
        return written.done

    # -- alerts --------------------------------------------------------------------------------
    def create_alert(self, alert: Alert) -> bool:
        """Write a new alert record; False when it already exists (a retried transition)."""
        return _conditionally(
            lambda: self.client.put_item(
                TableName=self.names.alerts_table,
                Item=alert_to_item(alert),
                ConditionExpression="attribute_not_exists(alert_id)",
            )
        ).done

    def revise_alert(self, revised: Alert) -> bool:
        """Rewrite an open (or acked) alert's threshold, value and message, as its rule's new
        threshold reads; False when its record is missing or RESOLVED (a resolve came first)."""
        return _conditionally(
            lambda: self.client.update_item(
                TableName=self.names.alerts_table,
                Key={"alert_id": {"S": revised.alert_id}},
                UpdateExpression=(
                    "SET #threshold = :threshold, #value = :value, message = :message, "
                    "updated_at = :at"
                ),
                ConditionExpression="attribute_exists(alert_id) AND #state <> :resolved",
                ExpressionAttributeNames={
                    "#state": "state",
                    "#value": "value",
                    "#threshold": "threshold",
                },
                ExpressionAttributeValues={
                    ":threshold": _attribute(revised.threshold),
                    ":value": _attribute(revised.value),
                    ":message": {"S": revised.message},
                    ":at": {"S": stamp(revised.updated_at)},
                    ":resolved": {"S": "RESOLVED"},
                },
            )
        ).done

    def resolve_alert(self, resolved: Alert) -> Alert | None:
        """Mark an alert RESOLVED (keeping who acked it); None when its record did not exist
        (then ``resolved`` is written as its record: the resolve overtook the open)."""
        ttl = int(
            (resolved.resolved_at + timedelta(days=RESOLVED_ALERT_RETENTION_DAYS)).timestamp()
        )
        sets = (
            "SET #state = :resolved, resolved_at = if_not_exists(resolved_at, :at), "
            "updated_at = :at, #value = :value, #threshold = :threshold, message = :message, "
            "expires_at = :ttl"
        )
        values = {
            ":resolved": {"S": "RESOLVED"},
            ":at": {"S": stamp(resolved.resolved_at)},
            ":value": _attribute(resolved.value),
            ":threshold": _attribute(resolved.threshold),
            ":message": {"S": resolved.message},
            ":ttl": {"N": str(ttl)},
        }
        if resolved.frame_key:
            sets += ", frame_key = :frame"
            values[":frame"] = {"S": resolved.frame_key}
        for _ in range(2):
            written = _conditionally(
                lambda: self.client.update_item(
                    TableName=self.names.alerts_table,
                    Key={"alert_id": {"S": resolved.alert_id}},
                    UpdateExpression=sets,
                    ConditionExpression="attribute_exists(alert_id)",
                    ExpressionAttributeNames={
                        "#state": "state",
                        "#value": "value",
                        "#threshold": "threshold",
                    },
                    ExpressionAttributeValues=values,
                    ReturnValues="ALL_NEW",
                )
            )
            if written.done:
                return item_to_alert(written.response["Attributes"])
            # Created only if still missing: an open written meanwhile is updated instead.
            if _conditionally(
                lambda: self.client.put_item(
                    TableName=self.names.alerts_table,
                    Item=alert_to_item(resolved, expires_at=ttl),
                    ConditionExpression="attribute_not_exists(alert_id)",
                )
            ).done:
                return None
        raise StateConflictError(f"alert {resolved.alert_id} kept changing while it was resolved")

    def claim_notification(self, alert_id: str, state: str, *, now: datetime) -> Claim:
        """Claim sending the notification of ``alert_id`` entering ``state``.

        Returns:
            ``"claimed"`` for the one caller that should send it now, ``"sent"`` when it was sent
            already, ``"busy"`` while another caller's claim (younger than
            :data:`NOTIFICATION_CLAIM_S`) holds it.
        """
        stale = now - timedelta(seconds=NOTIFICATION_CLAIM_S)
        written = _conditionally(
            lambda: self.client.update_item(
                TableName=self.names.alerts_table,
                Key={"alert_id": {"S": alert_id}},
                UpdateExpression="SET #claim = :now",
                ConditionExpression=(
                    "attribute_exists(alert_id) AND attribute_not_exists(#sent) "
                    "AND (attribute_not_exists(#claim) OR #claim < :stale)"
                ),
                ExpressionAttributeNames={
                    "#claim": f"notifying_{state}",
                    "#sent": f"notified_{state}",
                },
                ExpressionAttributeValues={
                    ":now": {"S": stamp(now)},
                    ":stale": {"S": stamp(stale)},
                },
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        )
        if written.done:
            return "claimed"
        return "sent" if f"notified_{state}" in written.response.get("Item", {}) else "busy"

    def mark_notified(self, alert_id: str, state: str, *, now: datetime) -> None:
        """Record that the notification of ``alert_id`` entering ``state`` was sent."""
        self.client.update_item(
            TableName=self.names.alerts_table,
            Key={"alert_id": {"S": alert_id}},
            UpdateExpression="SET #sent = :now",
            ExpressionAttributeNames={"#sent": f"notified_{state}"},
            ExpressionAttributeValues={":now": {"S": stamp(now)}},
        )

    def ack_alert(
        self, alert_id: str, *, by: str, at: datetime
    ) -> tuple[Alert | None, Alert | None]:
        """Acknowledge an OPEN alert.

        Returns:
            ``(acked, unchanged)``: the ACKED alert, or (None, the alert as it is) when it was not
            OPEN, or (None, None) when no alert has that id.
        """
        written = _conditionally(
            lambda: self.client.update_item(
                TableName=self.names.alerts_table,
                Key={"alert_id": {"S": alert_id}},
                UpdateExpression="SET #state = :acked, acked_at = :at, acked_by = :by, updated_at = :at",
                ConditionExpression="attribute_exists(alert_id) AND #state = :open",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={
                    ":acked": {"S": "ACKED"},
                    ":open": {"S": "OPEN"},
                    ":at": {"S": stamp(at)},
                    ":by": {"S": by},
                },
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        )
        if written.done:
            return item_to_alert(written.response["Attributes"]), None
        old = written.response.get("Item")
        return None, (item_to_alert(old) if old else None)

    def query_alerts(
        self,
        *,
        state: str | None = None,
        camera_id: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page:
        """A page of alerts, newest first, of one state and/or one camera (or all)."""
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        options: dict[str, Any] = {}
        if camera_id is not None:
            index = "by-camera"
            names["#key"] = "camera_id"
            values[":key"] = {"S": camera_id}
            if state is not None:
                options["FilterExpression"] = "#state = :state"
                names["#state"] = "state"
                values[":state"] = {"S": state}
        elif state is not None:
            index = "by-state"
            names["#key"] = "state"
            values[":key"] = {"S": state}
        else:
            index = "recent"
            names["#key"] = "feed"
            values[":key"] = {"S": ALERT_FEED}
        start = decode_cursor(cursor, ALERT_INDEXES[index][1])
        if start:
            options["ExclusiveStartKey"] = start
        response = self.client.query(
            TableName=self.names.alerts_table,
            IndexName=index,
            KeyConditionExpression="#key = :key",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
            ScanIndexForward=False,
            Limit=limit,
            **options,
        )
        alerts = [item_to_alert(item) for item in response["Items"]]
        return Page(alerts, encode_cursor(response.get("LastEvaluatedKey")))

    # -- audit ---------------------------------------------------------------------------------
    def write_audit(
        self,
        *,
        entity: str,
        action: str,
        who: str,
        at: datetime,
        old: dict[str, Any] | None,
        new: dict[str, Any],
    ) -> None:
        """Record a change: ``entity`` (e.g. ``config/shelf-1``), who, when, old -> new."""
        self.client.put_item(
            TableName=self.names.audit_table,
            Item=_item(
                {
                    "entity": entity,
                    "at": f"{stamp(at)}#{uuid.uuid4().hex[:8]}",
                    "action": action,
                    "who": who,
                    "old": _compact_json(old),
                    "new": _compact_json(new),
                    "expires_at": epoch_s(at + timedelta(days=AUDIT_RETENTION_DAYS)),
                }
            ),
        )
