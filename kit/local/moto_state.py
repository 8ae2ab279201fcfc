"""The moto server's in-memory data, read and written from inside the server process.

The local stack's snapshot runs in the moto server process itself (:mod:`kit.local.moto_server`):
reading every object and item through the HTTP API took a request each (over a minute for an
hour of demo data); reading moto's models takes a second. This module is the one place that
knows those models (moto 5.2, pinned in ``requirements.txt``); the tests of
:mod:`kit.local.snapshot` round-trip every DynamoDB type, S3 metadata and SQS message attributes
through it, so a moto upgrade that changes them fails there.

Values cross this module in AWS's wire format: DynamoDB items as DynamoDB JSON with binary
values base64-encoded (what ``PutItem`` takes over HTTP), SQS message attributes as
``{"DataType", "StringValue" | "BinaryValue"}``.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

ACCOUNT_ID = "123456789012"
"""The account the local stack's moto server serves (its ``MOTO_ACCOUNT_ID``)."""


@dataclass(frozen=True)
class StoredObject:
    """One S3 object: its key, body, metadata (``content-type`` and user metadata, lower-case
    names) and last-modified time (UTC, ISO 8601)."""

    key: str
    body: bytes
    metadata: dict[str, str]
    last_modified: str


@dataclass(frozen=True)
class StoredMessage:
    """One SQS message, visible or in flight: what a restore needs to send it again."""

    message_id: str
    body: str
    attributes: dict[str, Any]
    receive_count: int
    sent_timestamp: int | None


def _wire(value: Any) -> dict[str, Any]:
    """A moto ``DynamoType`` as DynamoDB JSON (nested maps and lists included)."""
    if value.type == "M":
        return {"M": {name: _wire(member) for name, member in value.value.items()}}
    if value.type == "L":
        return {"L": [_wire(member) for member in value.value]}
    if value.type == "B" and isinstance(value.value, bytes):
        return {"B": base64.b64encode(value.value).decode()}
    if value.type == "BS":
        return {
            "BS": [base64.b64encode(v).decode() if isinstance(v, bytes) else v for v in value.value]
        }
    return {value.type: value.value}


class MotoState:
    """The data of one account and region of the moto server running in this process."""

    def __init__(self, region: str, account_id: str = ACCOUNT_ID):
        self.region = region
        self.account_id = account_id

    # -- DynamoDB ------------------------------------------------------------------------------
    def _dynamodb(self) -> Any:
        from moto.dynamodb.models import dynamodb_backends

        return dynamodb_backends[self.account_id][self.region]

    def table_items(self, table: str) -> list[dict[str, Any]]:
        """Every item of ``table``, in DynamoDB JSON."""
        items = self._dynamodb().get_table(table).all_items()
        return [{name: _wire(value) for name, value in item.attrs.items()} for item in items]

    def put_table_items(self, table: str, items: list[dict[str, Any]]) -> None:
        """Write ``items`` (DynamoDB JSON) into ``table``, replacing items with the same key."""
        backend = self._dynamodb()
        for item in items:
            backend.put_item(table, item)

    # -- S3 ------------------------------------------------------------------------------------
    def _s3(self) -> Any:
        from moto.s3.models import s3_backends
        from moto.utilities.utils import get_partition

        return s3_backends[self.account_id][get_partition(self.region)]

    def bucket_keys(self, bucket: str) -> list[str]:
        """The keys of the objects in ``bucket`` (delete markers of a versioned bucket left out)."""
        store = self._s3().get_bucket(bucket).keys
        return [key for key in list(store) if hasattr(store.get(key), "value")]

    def bucket_objects(self, bucket: str) -> Iterator[StoredObject]:
        """Each object of ``bucket`` (its current version), one at a time."""
        store = self._s3().get_bucket(bucket).keys
        for key in self.bucket_keys(bucket):
            stored = store.get(key)
            if stored is None:
                continue
            yield StoredObject(
                key=key,
                body=stored.value,
                metadata={name.lower(): str(value) for name, value in stored.metadata.items()},
                last_modified=stored.last_modified.isoformat(),
            )

    def put_object(self, bucket: str, stored: StoredObject) -> None:
        """Write ``stored`` into ``bucket`` with its metadata and last-modified time."""
        key = self._s3().put_object(bucket, stored.key, stored.body, disable_notification=True)
        key.set_metadata(dict(stored.metadata))
        key.last_modified = datetime.fromisoformat(stored.last_modified)

    # -- SQS -----------------------------------------------------------------------------------
    def _sqs(self) -> Any:
        from moto.sqs.models import sqs_backends

        return sqs_backends[self.account_id][self.region]

    def queue_messages(self, queue: str) -> list[StoredMessage]:
        """Every message of ``queue`` in send order, the ones in flight (received, not deleted)
        included."""
        backing = self._sqs().get_queue(queue)
        with backing._messages_lock:
            messages = list(backing._messages)
        return [
            StoredMessage(
                message_id=message.id,
                body=message.body,
                attributes=dict(message.message_attributes),
                receive_count=message.approximate_receive_count,
                sent_timestamp=message.sent_timestamp,
            )
            for message in messages
        ]

    def put_queue_messages(self, queue: str, messages: list[StoredMessage]) -> None:
        """Send ``messages`` to ``queue`` again, visible at once, keeping their ids, receive
        counts (so the redrive policy counts on) and sent times."""
        backend = self._sqs()
        for stored in messages:
            message = backend.send_message(
                queue, stored.body, message_attributes=stored.attributes or None
            )
            message.id = stored.message_id
            message.approximate_receive_count = stored.receive_count
            if stored.sent_timestamp is not None:
                message.sent_timestamp = stored.sent_timestamp
