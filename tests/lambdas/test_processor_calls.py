"""What a payload costs in DynamoDB calls (issue 19): counted at botocore, by operation.

On AWS every call is latency and every write is write units, the running cost of a camera. The
steady path (a payload that changes no alert) must take at most 3 calls a payload over batches
of 10 payloads from 10 cameras, a batch write counting as one call, however many devices the
cameras are on.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import timedelta

CAMERAS = [f"shelf-{i}" for i in range(10)]
DEVICES = ("edge-a", "edge-b")
"""Ten cameras on two edge devices (an edge device runs many cameras)."""
BATCHES = 3
STEADY = {"defaults": {"rules": [{"type": "count_below", "class_name": "bottle", "threshold": 3}]}}
MAX_CALLS_PER_PAYLOAD = 3


class DynamoDBCalls:
    """How many calls of each DynamoDB operation a client makes (one per API call, whatever the
    retries underneath)."""

    def __init__(self, client):
        self.by_operation: Counter[str] = Counter()
        client.meta.events.register("provide-client-params.dynamodb.*", self._record)

    def _record(self, model, **_) -> None:
        self.by_operation[model.name] += 1

    def per_payload(self, payloads: int) -> dict[str, float]:
        return {name: count / payloads for name, count in sorted(self.by_operation.items())}


def batches(harness, count: int, devices: Sequence[str] = DEVICES) -> list[dict]:
    """``count`` SQS events, each one payload from each camera (camera n on device n modulo the
    devices), 5 s apart, 6 bottles (no breach)."""
    events = []
    for index in range(count):
        bodies = [
            harness.payload(
                camera_id=camera,
                device_id=devices[n % len(devices)],
                at=timedelta(seconds=5 * index),
                counts={"bottle": 6},
                payload_id=uuid.uuid4().hex,
            )
            for n, camera in enumerate(CAMERAS)
        ]
        events.append(harness.sqs_event(*bodies))
    return events


def run(harness, events: list[dict]) -> None:
    for event in events:
        response = harness.process_event(event)
        assert response["batchItemFailures"] == []


def test_the_steady_path_costs_at_most_three_calls_a_payload(harness):
    """GIVEN a count rule on 10 cameras (two devices) that no payload breaches
    WHEN 3 batches of 10 payloads, one per camera, are processed
    THEN each payload costs one claim (PutItem) and one camera update (UpdateItem), and each
    batch one config read, one batch write of the payloads and one of the results: 2.3 calls a
    payload, at most 3."""
    harness.set_config(**STEADY)
    events = batches(harness, BATCHES)
    calls = DynamoDBCalls(harness.services.dynamodb)

    run(harness, events)

    payloads = BATCHES * len(CAMERAS)
    per_batch = {
        "GetItem": 1,
        "BatchWriteItem": 2,
        "UpdateItem": len(CAMERAS),
        "PutItem": len(CAMERAS),
    }
    assert calls.by_operation == {name: BATCHES * n for name, n in per_batch.items()}, (
        calls.per_payload(payloads)
    )
    total = sum(calls.by_operation.values()) / payloads
    assert total <= MAX_CALLS_PER_PAYLOAD, calls.per_payload(payloads)
    # What was paid for was done: every payload stored, every camera and device moved on.
    assert all(len(harness.detection_items(camera)) == BATCHES for camera in CAMERAS)
    newest = harness.store.get_camera("shelf-0").last_seen
    assert {c.last_seen for c in harness.store.list_cameras()} == {newest}
    assert {d.device_id: d.last_payload_at for d in harness.store.list_devices()} == {
        device: newest for device in DEVICES
    }
    assert harness.alerts() == []


def test_a_batch_from_ten_devices_costs_what_a_batch_from_one_does(harness):
    """GIVEN 10 cameras each on a device of its own
    WHEN 3 batches of 10 payloads, one per camera, are processed
    THEN the calls are those of cameras on two devices (nothing is written per device), and
    each device's newest payload time is its camera's newest."""
    harness.set_config(**STEADY)
    devices = [f"edge-{n}" for n in range(len(CAMERAS))]
    events = batches(harness, BATCHES, devices)
    calls = DynamoDBCalls(harness.services.dynamodb)

    run(harness, events)

    per_batch = {"GetItem": 1, "BatchWriteItem": 2, "UpdateItem": len(CAMERAS), "PutItem": 10}
    assert calls.by_operation == {name: BATCHES * n for name, n in per_batch.items()}
    assert sum(calls.by_operation.values()) / (BATCHES * len(CAMERAS)) <= MAX_CALLS_PER_PAYLOAD
    newest = harness.store.get_camera("shelf-0").last_seen
    assert {d.device_id: d.last_payload_at for d in harness.store.list_devices()} == {
        device: newest for device in devices
    }
    assert {c.camera_id: c.device_id for c in harness.store.list_cameras()} == dict(
        zip(CAMERAS, devices, strict=True)
    )


def test_a_redelivered_batch_costs_one_claim_a_payload_and_writes_nothing_else(harness):
    """GIVEN a batch processed once WHEN SQS delivers it again
    THEN each payload's claim finds it completed and nothing else is read or written."""
    harness.set_config(**STEADY)
    [event] = batches(harness, 1)
    run(harness, [event])
    calls = DynamoDBCalls(harness.services.dynamodb)

    run(harness, [event])

    assert calls.by_operation == {"GetItem": 1, "PutItem": len(CAMERAS)}
    assert all(len(harness.detection_items(camera)) == 1 for camera in CAMERAS)
