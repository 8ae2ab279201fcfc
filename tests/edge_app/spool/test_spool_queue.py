"""Spool as a FIFO: put, pending, peek, ack, replay in order, across restarts."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from edge_app.spool import ItemKind, ReplayResult, Spool, SpoolItem


def _payload(n: int) -> bytes:
    return json.dumps({"n": n}).encode()


def test_put_pending_peek_ack(open_spool) -> None:
    spool = open_spool()
    before = datetime.now(UTC)

    first = spool.put("payload", _payload(1), {"queue": "detections", "camera_id": "c1"})
    second = spool.put(ItemKind.FRAME, b"\xff\xd8jpeg", {"key": "frames/d/c1/1.jpg"})

    assert second > first
    assert [(e.item_id, e.kind) for e in spool.pending()] == [
        (first, ItemKind.PAYLOAD),
        (second, ItemKind.FRAME),
    ]
    assert spool.depth == 2 and len(spool) == 2
    head = spool.peek(1)[0]
    assert head.body == _payload(1) and head.meta == {"queue": "detections", "camera_id": "c1"}
    assert before <= head.created_at <= datetime.now(UTC)
    assert [item.item_id for item in spool.peek(5)] == [first, second]
    assert spool.ack(first) is True
    assert spool.ack(first) is False  # already gone
    assert [e.item_id for e in spool.pending()] == [second]
    assert spool.bytes_used == spool.pending()[0].size_bytes


def test_order_and_bodies_survive_restart(tmp_path, open_spool) -> None:
    spool = open_spool()
    ids = [
        spool.put("frame" if n % 3 == 0 else "payload", _payload(n), {"n": n}) for n in range(10)
    ]
    spool.ack(ids[0])
    used = spool.bytes_used
    spool.close()

    reopened = open_spool()

    assert [e.item_id for e in reopened.pending()] == ids[1:]
    assert [item.meta["n"] for item in reopened.peek(20)] == list(range(1, 10))
    assert [item.body for item in reopened.peek(20)] == [_payload(n) for n in range(1, 10)]
    assert reopened.bytes_used == used


def test_sequence_keeps_increasing_across_restarts_even_when_empty(open_spool) -> None:
    spool = open_spool()
    last = None
    for _ in range(3):
        item_id = spool.put("payload", b"{}")
        spool.ack(item_id)
        assert last is None or item_id > last
        last = item_id
    spool.close()

    for _ in range(3):
        reopened = open_spool()
        item_id = reopened.put("payload", b"{}")
        assert item_id > last
        reopened.ack(item_id)
        last = item_id
        reopened.close()


def test_replay_sends_in_order_and_removes(open_spool) -> None:
    spool = open_spool()
    ids = [spool.put("payload" if n % 2 else "frame", _payload(n), {"n": n}) for n in range(6)]
    sent: list[SpoolItem] = []

    result = spool.replay_pending(sent.append)

    assert result == ReplayResult(sent=6, remaining=0)
    assert result.completed
    assert [item.item_id for item in sent] == ids
    assert [item.kind.value for item in sent] == ["frame", "payload"] * 3
    assert spool.depth == 0 and spool.bytes_used == 0


def test_replay_stops_at_first_failure_and_resumes_in_order(open_spool) -> None:
    spool = open_spool()
    ids = [spool.put("payload", _payload(n), {"n": n}) for n in range(5)]
    sent: list[int] = []
    outage = ConnectionError("backend unreachable")

    def send_until_third(item: SpoolItem) -> None:
        if item.meta["n"] == 2:
            raise outage
        sent.append(item.item_id)

    result = spool.replay_pending(send_until_third)

    assert result.sent == 2 and result.remaining == 3
    assert result.failed_item_id == ids[2] and result.error is outage
    assert not result.completed
    assert sent == ids[:2]
    assert [e.item_id for e in spool.pending()] == ids[2:]  # the failed item stays first

    late = spool.put("payload", _payload(99))
    result = spool.replay_pending(lambda item: sent.append(item.item_id))

    assert result.completed and result.sent == 4
    assert sent == [*ids, late]  # every item exactly once, in put order


def test_replay_after_restart_continues_where_it_stopped(open_spool) -> None:
    spool = open_spool()
    ids = [spool.put("payload", _payload(n)) for n in range(4)]

    def fail_on_second(item: SpoolItem) -> None:
        if item.item_id == ids[1]:
            raise TimeoutError("timed out")

    assert spool.replay_pending(fail_on_second).sent == 1
    spool.close()

    sent: list[int] = []
    assert open_spool().replay_pending(lambda item: sent.append(item.item_id)).sent == 3
    assert sent == ids[1:]


def test_replay_max_items(open_spool) -> None:
    spool = open_spool()
    ids = [spool.put("payload", _payload(n)) for n in range(5)]
    sent: list[int] = []

    result = spool.replay_pending(lambda item: sent.append(item.item_id), max_items=2)

    assert result.sent == 2 and result.remaining == 3 and result.completed
    assert sent == ids[:2]


def test_items_put_during_replay_wait_for_next_replay(open_spool) -> None:
    spool = open_spool()
    spool.put("payload", _payload(0))
    added: list[int] = []

    def send_and_add(item: SpoolItem) -> None:
        if len(added) < 50:
            added.append(spool.put("payload", _payload(len(added) + 1)))

    result = spool.replay_pending(send_and_add)

    assert result.sent == 1 and result.remaining == 1
    assert [e.item_id for e in spool.pending()] == added


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda s: s.put("video", b"x"), "unknown spool item kind 'video'"),
        (lambda s: s.put("payload", "text"), "body must be bytes"),
        (lambda s: s.put("payload", b"x", {"when": datetime.now(UTC)}), "JSON-serialisable"),
        (lambda s: s.peek(-1), "n >= 0"),
    ],
)
def test_bad_input_is_rejected_with_clear_message(open_spool, call, message) -> None:
    spool = open_spool()

    with pytest.raises(ValueError, match=message):
        call(spool)

    assert spool.depth == 0


@pytest.mark.parametrize("max_bytes", [0, -5, 1.5, True])
def test_max_bytes_must_be_positive_int(tmp_path, max_bytes) -> None:
    with pytest.raises(ValueError, match="max_bytes must be a positive integer"):
        Spool(tmp_path, max_bytes)


def test_closed_spool_refuses_use(open_spool) -> None:
    spool = open_spool()
    spool.close()

    with pytest.raises(RuntimeError, match="is closed"):
        spool.put("payload", b"{}")


def test_second_instance_on_same_directory_is_refused(open_spool) -> None:
    open_spool()

    with pytest.raises(RuntimeError, match="in use by another Spool"):
        open_spool()


def test_stats_are_json_ready(open_spool) -> None:
    spool = open_spool(max_bytes=5000)
    spool.put("payload", b"{}")
    spool.put("frame", b"jpeg")

    stats = json.loads(json.dumps(spool.stats()))

    assert stats["depth"] == 2 and stats["depth_by_kind"] == {"payload": 1, "frame": 1}
    assert stats["max_bytes"] == 5000 and stats["bytes_used"] == spool.bytes_used
    assert stats["dropped"] == {"payload": 0, "frame": 0} and stats["quarantined"] == 0
