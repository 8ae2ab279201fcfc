"""Spool byte bound: frames evicted before payloads, oldest first, every eviction counted."""

from __future__ import annotations

import logging
import random

import pytest

from edge_app.spool import ItemKind

SMALL = b'{"count": 3}' + b" " * 88  # 100-byte payload body
LARGE = b"\xff\xd8" + b"j" * 1998  # 2,000-byte "JPEG" body
MEDIUM = b"\xff\xd8" + b"j" * 598  # 600-byte "JPEG" body


def _ids(spool) -> list[int]:
    return [entry.item_id for entry in spool.pending()]


def test_frames_are_evicted_first_oldest_first(open_spool, item_size, caplog) -> None:
    payload, frame = item_size("payload", SMALL), item_size("frame", LARGE)
    spool = open_spool(max_bytes=2 * payload + 4 * frame + payload // 2)
    p0, p1 = spool.put("payload", SMALL), spool.put("payload", SMALL)
    f0, f1, f2, f3 = (spool.put("frame", LARGE) for _ in range(4))
    assert spool.dropped == {"payload": 0, "frame": 0}

    with caplog.at_level(logging.WARNING, logger="edge_app.spool"):
        p2 = spool.put("payload", SMALL)  # needs half a payload more: evicts f0 only
        assert _ids(spool) == [p0, p1, f1, f2, f3, p2]
        assert spool.dropped == {"payload": 0, "frame": 1}

        f4 = spool.put("frame", LARGE)  # evicts f1, the oldest frame left
        assert _ids(spool) == [p0, p1, f2, f3, p2, f4]
        assert spool.dropped == {"payload": 0, "frame": 2}

    assert spool.bytes_used <= spool.max_bytes
    assert sum("evicted 1 frame(s) and 0 payload(s)" in r.getMessage() for r in caplog.records) == 2


def test_payload_evicts_oldest_payloads_once_no_frame_is_left(open_spool, item_size) -> None:
    payload = item_size("payload", SMALL)
    big_body = SMALL * 2  # larger than one item, smaller than two
    assert payload < item_size("payload", big_body) <= 2 * payload
    spool = open_spool(max_bytes=5 * payload)
    p0, p1, p2, p3 = (spool.put("payload", SMALL) for _ in range(4))
    f0 = spool.put("frame", SMALL)
    assert _ids(spool) == [p0, p1, p2, p3, f0]

    big = spool.put("payload", big_body)

    assert _ids(spool) == [p1, p2, p3, big]
    assert spool.dropped == {"payload": 1, "frame": 1}


def test_frame_never_evicts_a_payload(open_spool, item_size, caplog) -> None:
    payload, frame = item_size("payload", SMALL), item_size("frame", MEDIUM)
    spool = open_spool(max_bytes=3 * payload + frame // 2)
    assert frame <= spool.max_bytes  # it would fit, but only by evicting payloads
    payloads = [spool.put("payload", SMALL) for _ in range(3)]

    with caplog.at_level(logging.WARNING, logger="edge_app.spool"):
        assert spool.put("frame", MEDIUM) is None

    assert _ids(spool) == payloads
    assert spool.dropped == {"payload": 0, "frame": 1}
    assert "dropped new frame" in caplog.text


def test_item_larger_than_the_spool_is_refused(open_spool, item_size) -> None:
    spool = open_spool(max_bytes=item_size("frame", LARGE) - 1)
    kept = spool.put("payload", SMALL)

    with pytest.raises(ValueError, match=r"larger than the whole spool \(max_bytes="):
        spool.put("frame", LARGE)

    assert _ids(spool) == [kept] and spool.dropped == {"payload": 0, "frame": 0}


def test_byte_bound_and_accounting_hold_for_random_traffic(tmp_path, open_spool) -> None:
    rng = random.Random(3)
    spool = open_spool(max_bytes=30_000, fsync=False)
    accepted: dict[ItemKind, list[int]] = {ItemKind.PAYLOAD: [], ItemKind.FRAME: []}
    puts = refused = acked = 0

    for step in range(400):
        kind = ItemKind.FRAME if rng.random() < 0.6 else ItemKind.PAYLOAD
        size = rng.randint(1_000, 6_000) if kind is ItemKind.FRAME else rng.randint(50, 3_000)
        item_id = spool.put(kind, bytes(size), {"step": step})
        puts += 1
        if item_id is None:
            refused += 1
        else:
            accepted[kind].append(item_id)
        if step % 17 == 0 and spool.depth:
            acked += spool.ack(spool.pending()[0].item_id)

        on_disk = sum(path.stat().st_size for path in (tmp_path / "spool" / "items").iterdir())
        assert spool.bytes_used == on_disk <= spool.max_bytes

    pending = spool.pending()
    dropped = spool.dropped
    assert puts == len(pending) + acked + dropped["payload"] + dropped["frame"]
    assert dropped["frame"] > 0 and dropped["payload"] > 0 and refused > 0
    assert [e.item_id for e in pending] == sorted(e.item_id for e in pending)
    # evictions only ever take the oldest of a kind: what is left is the newest of each kind
    for kind, ids in accepted.items():
        left = [e.item_id for e in pending if e.kind is kind]
        assert ids[len(ids) - len(left) :] == left


def test_dropped_counts_survive_restart(open_spool, item_size) -> None:
    frame = item_size("frame", LARGE)
    spool = open_spool(max_bytes=2 * frame)
    for _ in range(5):
        spool.put("frame", LARGE)
    assert spool.dropped == {"payload": 0, "frame": 3}
    spool.close()

    reopened = open_spool(max_bytes=2 * frame)

    assert reopened.dropped == {"payload": 0, "frame": 3}
    reopened.put("frame", LARGE)
    assert reopened.dropped == {"payload": 0, "frame": 4}


def test_reopening_with_smaller_bound_evicts_to_fit(open_spool, item_size) -> None:
    payload, frame = item_size("payload", SMALL), item_size("frame", LARGE)
    spool = open_spool(max_bytes=100_000)
    p0 = spool.put("payload", SMALL)
    spool.put("frame", LARGE)
    p1 = spool.put("payload", SMALL)
    f1 = spool.put("frame", LARGE)
    spool.close()

    smaller = open_spool(max_bytes=2 * payload + frame)

    assert _ids(smaller) == [p0, p1, f1]
    assert smaller.dropped == {"payload": 0, "frame": 1}
    assert smaller.bytes_used <= smaller.max_bytes
