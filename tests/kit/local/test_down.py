"""`kit local down` loses nothing a client was told is stored, and stops promptly
(issue 14 item 7, issue 18 item 5)."""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid

from botocore.config import Config

from tests.support.wait import process_tree, wait_until, wait_until_exited


def test_every_message_acknowledged_while_down_runs_is_in_the_next_stack(own_stack, aws):
    """GIVEN devices sending to the queue the whole time, WHEN the stack goes down and up,
    THEN every message whose send was acknowledged (a MessageId came back) is in the restored
    queue; sends the server did not acknowledge are the devices' to retry."""
    endpoint = own_stack.up(runner=False).endpoint_url
    sqs = aws("sqs", endpoint, config=Config(retries={"max_attempts": 1}, read_timeout=60))
    url = sqs.get_queue_url(QueueName="lifecycle-detections")["QueueUrl"]
    acknowledged: list[str] = []
    attempts: list[float] = []
    stop = threading.Event()

    def device() -> None:
        while not stop.is_set():
            body = uuid.uuid4().hex
            attempts.append(time.monotonic())
            try:
                if sqs.send_message(QueueUrl=url, MessageBody=body).get("MessageId"):
                    acknowledged.append(body)
            except Exception:  # noqa: BLE001 - refused or unreachable: not acknowledged
                pass
            stop.wait(0.02)

    devices = [threading.Thread(target=device) for _ in range(2)]
    for thread in devices:
        thread.start()
    try:
        wait_until(lambda: len(acknowledged) >= 20, what="the devices' first messages")
        down_started = time.monotonic()
        own_stack.down()
        down_ended = time.monotonic()
    finally:
        stop.set()
        for thread in devices:
            thread.join()
    assert any(down_started <= at <= down_ended for at in attempts), "no send while down ran"

    sqs = aws("sqs", own_stack.up(runner=False).endpoint_url)
    url = sqs.get_queue_url(QueueName="lifecycle-detections")["QueueUrl"]
    restored: set[str] = set()
    while batch := sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=600
    ).get("Messages"):
        restored |= {m["Body"] for m in batch}
    lost = [body for body in acknowledged if body not in restored]
    assert lost == [], f"{len(lost)} of {len(acknowledged)} acknowledged messages were lost"


def test_the_server_serves_again_after_a_live_snapshot(own_stack, aws):
    """A live snapshot closes the server's gate while it saves, then opens it again."""
    endpoint = own_stack.up(runner=False).endpoint_url
    s3 = aws("s3", endpoint)

    own_stack.snapshot()

    s3.put_object(Bucket="lifecycle-bucket", Key="after-snapshot", Body=b"x")
    assert s3.get_object(Bucket="lifecycle-bucket", Key="after-snapshot")["Body"].read() == b"x"


def test_the_moto_server_stops_on_sigterm(own_stack):
    """moto's own server ignored SIGTERM (down then waited 10 s and killed it)."""
    moto = own_stack.up(runner=False).services["moto"]
    processes = process_tree(moto["pid"])

    os.kill(moto["pid"], signal.SIGTERM)

    wait_until_exited(processes, what="the moto server after SIGTERM")
