"""A runner killed mid-batch dead-letters no valid payload (issue 14 item 8).

The processor locks each payload id while it stores it (Powertools idempotency, the lock lasting
the function's timeout). A runner that redelivered an interrupted batch after 1 s hit that lock
on every retry, and valid payloads reached the DLQ. The runner now leaves a received batch
hidden for the queue's visibility timeout, as SQS does, which AWS requires to be at least the
function's timeout: by the time the batch comes back, the lock has expired.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import psutil
import pytest

from tests.support.wait import wait_until, wait_until_exited

PAYLOADS = 300
WANTED_INTERRUPTED_LOCKS = 2
MAX_KILLS = 10


def payload(n: int) -> str:
    return json.dumps(
        {
            "kind": "detection",
            "payload_id": uuid.uuid4().hex,
            "device_id": "demo-1",
            "camera_id": f"cam-{n % 3}",
            "model": {"name": "shelf", "version": 1},
            "captured_at": datetime.now(UTC).isoformat(),
            "frame": {"width": 640, "height": 480},
            "counts": {"bottle": n % 7},
        }
    )


def queue_depth(sqs, url: str) -> tuple[int, int]:
    attributes = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return (
        int(attributes["ApproximateNumberOfMessages"]),
        int(attributes["ApproximateNumberOfMessagesNotVisible"]),
    )


def locks_in_progress(dynamodb) -> set[str]:
    """The payload ids whose claim is held (INPROGRESS), whether or not it has run out."""
    held: set[str] = set()
    for page in dynamodb.get_paginator("scan").paginate(
        TableName="lifecycle-idempotency",
        FilterExpression="#s = :in_progress",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":in_progress": {"S": "INPROGRESS"}},
        ProjectionExpression="id",
    ):
        held.update(item["id"]["S"] for item in page["Items"])
    return held


def stored_detections(dynamodb) -> int:
    total = 0
    for page in dynamodb.get_paginator("scan").paginate(
        TableName="lifecycle-detections", Select="COUNT"
    ):
        total += page["Count"]
    return total


@pytest.mark.timeout(900)
def test_runner_killed_mid_batch_dead_letters_no_valid_payload(own_stack, aws):
    """GIVEN valid payloads on the queue and a runner processing them, WHEN the runner is
    killed mid-batch (while a payload is locked) again and again and restarted each time,
    THEN every payload is stored once and none reaches the dead-letter queue."""
    endpoint = own_stack.up().endpoint_url
    sqs, dynamodb = aws("sqs", endpoint), aws("dynamodb", endpoint)
    url = sqs.get_queue_url(QueueName="lifecycle-detections")["QueueUrl"]
    dlq = sqs.get_queue_url(QueueName="lifecycle-detections-dlq")["QueueUrl"]
    # At least the processor's timeout, as AWS requires, and short enough for a test.
    processor_timeout_s = own_stack.spec.function("processor").timeout_s
    sqs.set_queue_attributes(
        QueueUrl=url, Attributes={"VisibilityTimeout": str(processor_timeout_s + 10)}
    )
    for start in range(0, PAYLOADS, 10):
        sqs.send_message_batch(
            QueueUrl=url,
            Entries=[{"Id": str(n), "MessageBody": payload(n)} for n in range(start, start + 10)],
        )

    # A kill counts when it leaves a claim held that no earlier kill left: the runner is killed
    # as soon as such a claim is seen (not on a guess at how long a batch takes to reach its
    # claims, which a cold start on a busy machine outlasts).
    interrupted_locks = 0
    left_held: set[str] = set()
    for _ in range(MAX_KILLS):
        if interrupted_locks >= WANTED_INTERRUPTED_LOCKS:
            break
        runner = psutil.Process(own_stack.status().services["runner"]["pid"])
        wait_until(
            lambda known=frozenset(left_held): locks_in_progress(dynamodb) - known,
            timeout=120,
            interval=0.005,
            what="the runner to claim a payload",
        )
        runner.kill()
        wait_until_exited([runner], what="the killed runner")
        new_held = locks_in_progress(dynamodb) - left_held
        if new_held:
            interrupted_locks += 1
            left_held |= new_held
        own_stack.up()  # a new runner
    assert interrupted_locks >= 1, "no kill interrupted a payload while it was locked"

    wait_until(
        lambda: stored_detections(dynamodb) == PAYLOADS and queue_depth(sqs, url) == (0, 0),
        timeout=600,
        what=f"all {PAYLOADS} payloads stored and the queue empty",
    )
    assert queue_depth(sqs, dlq) == (0, 0)
