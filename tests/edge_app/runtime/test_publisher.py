"""The publisher against a real moto server: order, outage, restart, nothing lost."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from edge_app.publisher import Publisher, frame_key
from edge_app.spool import Spool
from kit.core.contracts import DetectionPayload, Heartbeat, parse_edge_message
from kit.core.settings import load_settings
from kit.local import LocalStack
from kit.local.processes import free_port
from tests.support.wait import DEFAULT_TIMEOUT_S, wait_until


def payload(n: int, device="dev-1", camera="cam-1") -> DetectionPayload:
    at = datetime(2026, 11, 26, 10, tzinfo=UTC) + timedelta(seconds=n)
    return DetectionPayload(
        device_id=device,
        camera_id=camera,
        model={"name": "shelf", "version": 1},
        captured_at=at,
        frame={"width": 64, "height": 48},
        counts={"bottle": n},
        frame_key=frame_key(device, camera, at),
    )


def _queue_url(settings) -> str:
    sqs = settings.client("sqs")
    return sqs.get_queue_url(QueueName=settings.resources.detections_queue)["QueueUrl"]


def drain(settings, expected: int) -> list:
    """Receive and delete ``expected`` messages from the detections queue, in arrival order."""
    sqs, url = settings.client("sqs"), _queue_url(settings)
    messages = []

    def received_all() -> bool:
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        for m in batch.get("Messages", []):
            messages.append(parse_edge_message(m["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        return len(messages) >= expected

    wait_until(received_all, what=f"{expected} messages on the detections queue")
    return messages


def queued(settings) -> int:
    """Messages left on the detections queue, visible or received and not deleted."""
    attributes = settings.client("sqs").get_queue_attributes(
        QueueUrl=_queue_url(settings),
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(count) for count in attributes.values())


def test_frame_key_layout():
    at = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    assert frame_key("d", "c", at) == "frames/d/c/2026/01/02/20260102T030405678Z.jpg"


@pytest.fixture(scope="module")
def quiet_backend(tmp_path_factory):
    """A local stack without the Lambda runner: what the publisher sends stays on the queue."""
    stack = LocalStack(
        load_settings(state_dir=tmp_path_factory.mktemp("quiet"), local_port=0, prefix="quiet")
    )
    stack.up(runner=False)
    yield stack.settings.model_copy(update={"endpoint_url": stack.endpoint_url})
    stack.down(snapshot=False)


def test_payloads_and_frames_arrive_in_order(quiet_backend, tmp_path):
    backend_settings = quiet_backend
    spool = Spool(tmp_path / "spool", max_bytes=10_000_000, fsync=False)
    publisher = Publisher(backend_settings, spool).start()
    try:
        for n in range(5):
            publisher.publish(payload(n), frame_jpeg=b"\xff\xd8" + bytes([n]))
        publisher.send_heartbeat(Heartbeat(device_id="dev-1", app_version="t", uptime_s=1))
        assert publisher.flush(DEFAULT_TIMEOUT_S)
    finally:
        publisher.stop()
        spool.close()
    messages = drain(backend_settings, 6)
    assert [m.counts["bottle"] for m in messages[:5]] == [0, 1, 2, 3, 4]
    assert messages[5].kind == "heartbeat"
    s3 = backend_settings.client("s3")
    body = s3.get_object(Bucket=backend_settings.resources.bucket, Key=messages[3].frame_key)[
        "Body"
    ].read()
    assert body == b"\xff\xd8\x03"


def test_backend_outage_spools_and_replays_everything_once_in_order(tmp_path):
    """GIVEN a publisher sending to a local stack, WHEN the stack is stopped mid-run and started
    again on the same port, THEN every payload arrives exactly once and in order."""
    port = free_port()
    stack = LocalStack(
        load_settings(state_dir=tmp_path / "state", local_port=port, prefix="outage")
    )
    stack.up(runner=False)
    settings = stack.settings.model_copy(update={"endpoint_url": stack.endpoint_url})
    spool = Spool(tmp_path / "spool", max_bytes=10_000_000, fsync=False)
    publisher = Publisher(settings, spool, retry_min_s=0.1, retry_max_s=0.5).start()
    try:
        for n in range(10):
            publisher.publish(payload(n), frame_jpeg=b"jpeg%d" % n)
        assert publisher.flush(DEFAULT_TIMEOUT_S)
        before = drain(settings, 10)  # what the processor consumed before the outage
        stack.down()
        for n in range(10, 25):
            publisher.publish(payload(n), frame_jpeg=b"jpeg%d" % n)
        wait_until(lambda: not publisher.stats.backend_reachable, what="a failed send")
        assert spool.depth > 0
        stack.up(runner=False)
        assert publisher.flush(DEFAULT_TIMEOUT_S), f"spool still holds {spool.depth} items"
        messages = before + drain(settings, 15)
        # everything was sent before the flush returned: a duplicate would be on the queue now
        left_over = queued(settings)
    finally:
        publisher.stop(flush=False)
        spool.close()
        stack.down(snapshot=False)
    counts = [m.counts["bottle"] for m in messages]
    assert counts == list(range(25))
    assert left_over == 0
    assert publisher.stats.send_failures >= 1


def test_unsent_items_survive_a_restart_of_the_app(tmp_path):
    settings = load_settings(endpoint_url=f"http://127.0.0.1:{free_port()}", prefix="nobackend")
    spool = Spool(tmp_path / "spool", max_bytes=10_000_000, fsync=False)
    publisher = Publisher(settings, spool, retry_min_s=0.05, retry_max_s=0.1).start()
    for n in range(3):
        publisher.publish(payload(n), frame_jpeg=b"x")
    wait_until(lambda: publisher.stats.send_failures >= 1, what="a failed send")
    publisher.stop(flush=False)
    spool.close()
    reopened = Spool(tmp_path / "spool", max_bytes=10_000_000, fsync=False)
    try:
        kinds = [e.kind.value for e in reopened.pending()]
        assert kinds == ["frame", "payload"] * 3
        first_payload = reopened.peek(2)[1]
        assert json.loads(first_payload.body)["counts"] == {"bottle": 0}
    finally:
        reopened.close()


def test_a_payload_without_frame_key_cannot_carry_a_frame(tmp_path):
    spool = Spool(tmp_path / "spool", max_bytes=1_000_000, fsync=False)
    publisher = Publisher(load_settings(prefix="nokey"), spool)
    with pytest.raises(ValueError, match="frame_key"):
        publisher.publish(payload(0).model_copy(update={"frame_key": None}), frame_jpeg=b"x")
    spool.close()
