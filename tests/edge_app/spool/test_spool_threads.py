"""Spool under concurrency: camera threads put while a publisher thread replays."""

from __future__ import annotations

import threading
from collections import defaultdict

from edge_app.spool import SpoolItem
from tests.support.wait import DEFAULT_TIMEOUT_S

THREADS = 4
ITEMS_PER_THREAD = 60


def _run_traffic(spool, *, fail_every: int | None = None) -> tuple[list[SpoolItem], int]:
    """Put from THREADS threads while one thread replays; returns what was sent and puts done."""
    done_putting = threading.Event()
    sent: list[SpoolItem] = []
    calls = 0

    def send(item: SpoolItem) -> None:
        nonlocal calls
        calls += 1
        if fail_every and calls % fail_every == 0:
            raise ConnectionError("flaky backend")
        sent.append(item)

    def camera(thread_index: int) -> None:
        for n in range(ITEMS_PER_THREAD):
            kind = "frame" if n % 3 == 0 else "payload"
            spool.put(kind, bytes(200 + n), {"thread": thread_index, "n": n})

    def publisher() -> None:
        while not (done_putting.is_set() and spool.depth == 0):
            spool.replay_pending(send)

    cameras = [threading.Thread(target=camera, args=(i,)) for i in range(THREADS)]
    replayer = threading.Thread(target=publisher)
    replayer.start()
    for thread in cameras:
        thread.start()
    for thread in cameras:
        thread.join(DEFAULT_TIMEOUT_S)
    done_putting.set()
    replayer.join(DEFAULT_TIMEOUT_S)
    assert not [thread for thread in cameras if thread.is_alive()], "the puts did not finish"
    assert not replayer.is_alive(), "the replay did not finish"
    return sent, THREADS * ITEMS_PER_THREAD


def test_concurrent_puts_and_replay_deliver_everything_once_in_order(open_spool) -> None:
    spool = open_spool(max_bytes=10_000_000)

    sent, puts = _run_traffic(spool, fail_every=7)

    ids = [item.item_id for item in sent]
    assert len(sent) == puts and len(set(ids)) == puts
    assert ids == sorted(ids)  # sent strictly in put order
    per_thread: dict[int, list[int]] = defaultdict(list)
    for item in sent:
        per_thread[item.meta["thread"]].append(item.meta["n"])
    assert all(ns == list(range(ITEMS_PER_THREAD)) for ns in per_thread.values())
    assert spool.depth == 0 and spool.bytes_used == 0


def test_concurrent_puts_under_byte_pressure_keep_accounts(tmp_path, open_spool) -> None:
    spool = open_spool(max_bytes=4_000, fsync=False)

    sent, puts = _run_traffic(spool)

    dropped = spool.dropped
    assert len(sent) + dropped["payload"] + dropped["frame"] + spool.depth == puts
    ids = [item.item_id for item in sent]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    on_disk = sum(p.stat().st_size for p in (tmp_path / "spool" / "items").iterdir())
    assert spool.bytes_used == on_disk <= spool.max_bytes
