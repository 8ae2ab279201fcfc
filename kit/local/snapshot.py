"""Save and restore the local backend's data (tables, bucket, queued messages) across restarts.

moto keeps everything in memory: ``kit local down`` saves a snapshot into the state dir and the
next ``kit local up`` restores it, so local data survives a restart.

Layout of ``<state_dir>/local/snapshot/``::

    manifest.json               when, and how many items/objects/messages per resource
    tables/<logical>.json       items in DynamoDB's low-level JSON (binary values base64-tagged)
    queues/<logical>.json       message bodies and attributes, in receive order
    bucket/<key>                every object, by key
"""

from __future__ import annotations

import base64
import json
import logging
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kit.core.backend import BackendSpec
from kit.core.settings import Settings

log = logging.getLogger(__name__)

_BINARY_TAG = "__evk_b64__"


def _encode(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return {_BINARY_TAG: base64.b64encode(value).decode()}
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {_BINARY_TAG}:
            return base64.b64decode(value[_BINARY_TAG])
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def save_snapshot(
    spec: BackendSpec, settings: Settings, directory: Path, *, keep_queued: bool = False
) -> dict[str, int]:
    """Write everything the backend holds into ``directory`` (replaced atomically); return counts.

    Queued messages are received while they are saved. With ``keep_queued`` they are made
    visible again afterwards (the same messages, not copies), for a snapshot of a stack that
    keeps running; without it they stay hidden, for a stack about to stop.
    """
    staging = directory.with_name(directory.name + ".new")
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "tables").mkdir(parents=True)
    (staging / "queues").mkdir()
    (staging / "bucket").mkdir()
    counts: dict[str, int] = {}

    dynamodb = settings.client("dynamodb")
    for table in spec.tables:
        items = []
        for page in dynamodb.get_paginator("scan").paginate(TableName=table.name):
            items.extend(page["Items"])
        (staging / "tables" / f"{table.logical}.json").write_text(json.dumps(_encode(items)))
        counts[f"table:{table.logical}"] = len(items)

    s3 = settings.client("s3")
    objects = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=spec.bucket.name):
        for entry in page.get("Contents", []):
            target = staging / "bucket" / entry["Key"]
            target.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(spec.bucket.name, entry["Key"], str(target))
            objects += 1
    counts["bucket"] = objects

    sqs = settings.client("sqs")
    urls = {
        logical: sqs.get_queue_url(QueueName=name)["QueueUrl"]
        for logical, name in _queue_names(spec)
    }
    release_in_flight(settings, list(urls.values()))
    received: list[tuple[str, str]] = []
    for logical, url in urls.items():
        messages = []
        while True:
            batch = sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=10,
                VisibilityTimeout=600,
                WaitTimeSeconds=0,
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not batch:
                break
            messages += [
                {"body": m["Body"], "attributes": m.get("MessageAttributes", {})} for m in batch
            ]
            received += [(url, m["ReceiptHandle"]) for m in batch]
        (staging / "queues" / f"{logical}.json").write_text(json.dumps(_encode(messages)))
        counts[f"queue:{logical}"] = len(messages)

    if keep_queued:
        for url, handle in received:
            sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=handle, VisibilityTimeout=0)
    manifest = {"saved_at": datetime.now(UTC).isoformat(), "counts": counts}
    (staging / "manifest.json").write_text(json.dumps(manifest, indent=2))
    if directory.exists():
        previous = directory.with_name(directory.name + ".old")
        shutil.rmtree(previous, ignore_errors=True)
        directory.rename(previous)
        staging.rename(directory)
        shutil.rmtree(previous, ignore_errors=True)
    else:
        staging.rename(directory)
    log.info("snapshot saved to %s: %s", directory, counts)
    return counts


def restore_snapshot(spec: BackendSpec, settings: Settings, directory: Path) -> dict[str, int]:
    """Load a snapshot written by :func:`save_snapshot` into a freshly provisioned backend."""
    if not (directory / "manifest.json").is_file():
        return {}
    counts: dict[str, int] = {}
    dynamodb = settings.client("dynamodb")
    for table in spec.tables:
        path = directory / "tables" / f"{table.logical}.json"
        if not path.is_file():
            continue
        items = _decode(json.loads(path.read_text()))
        for start in range(0, len(items), 25):
            requests = [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]
            pending = {table.name: requests}
            while pending:
                pending = (
                    dynamodb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
                )
        counts[f"table:{table.logical}"] = len(items)

    s3 = settings.client("s3")
    bucket_dir = directory / "bucket"
    objects = 0
    for path in sorted(p for p in bucket_dir.rglob("*") if p.is_file()):
        s3.upload_file(str(path), spec.bucket.name, path.relative_to(bucket_dir).as_posix())
        objects += 1
    counts["bucket"] = objects

    counts.update(restore_queues(spec, settings, directory))
    log.info("snapshot restored from %s: %s", directory, counts)
    return counts


def release_in_flight(settings: Settings, queue_urls: list[str]) -> int:
    """Make messages that a consumer received but did not delete visible again, so that a snapshot
    holds them too. moto lists every message with its receipt handle at ``/moto-api/data.json``.

    Returns:
        How many in-flight messages were released.
    """
    import requests

    endpoint = settings.aws_endpoint()
    try:
        response = requests.get(f"{endpoint}/moto-api/data.json", timeout=30)
        response.raise_for_status()
        state = response.json()
    except (requests.RequestException, ValueError) as error:
        # moto's state dump fails on some S3 objects (large multipart uploads): snapshot what is
        # visible, and say that messages in flight right now, if any, are not in it.
        log.warning(
            "cannot list in-flight messages (%s); the snapshot holds the visible ones only", error
        )
        return 0
    handles = [
        m["receipt_handle"]
        for m in state.get("sqs", {}).get("Message", [])
        if not m.get("visible", True) and m.get("receipt_handle")
    ]
    sqs = settings.client("sqs")
    released = 0
    for handle in handles:
        for url in queue_urls:
            try:
                sqs.change_message_visibility(
                    QueueUrl=url, ReceiptHandle=handle, VisibilityTimeout=0
                )
            except sqs.exceptions.ClientError:
                continue
            released += 1
            break
    if released:
        log.info("released %d in-flight message(s) before the snapshot", released)
    return released


def restore_queues(spec: BackendSpec, settings: Settings, directory: Path) -> dict[str, int]:
    """Send the saved messages back to their queues, in the order they were saved."""
    counts = {}
    sqs = settings.client("sqs")
    for logical, name in _queue_names(spec):
        path = directory / "queues" / f"{logical}.json"
        if not path.is_file():
            continue
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        messages = _decode(json.loads(path.read_text()))
        for message in messages:
            sqs.send_message(
                QueueUrl=url, MessageBody=message["body"], MessageAttributes=message["attributes"]
            )
        counts[f"queue:{logical}"] = len(messages)
    return counts


def _queue_names(spec: BackendSpec) -> list[tuple[str, str]]:
    """(logical, physical) for every queue and dead-letter queue of ``spec``."""
    names = []
    for queue in spec.queues:
        names.append((queue.logical, queue.name))
        if queue.dlq:
            names.append((f"{queue.logical}-dlq", queue.dlq))
    return names
