"""The spool on a disk that fills up or turns read-only: a real tmpfs (``small_disk``), not a
mocked write. Frames are evicted before payloads, oldest first, and counted; what the disk cannot
take is held in memory by the same rules; nothing raises; ``error`` says why while it lasts;
everything kept is replayed in order."""

from __future__ import annotations

import json
import logging

import pytest

from edge_app.spool import Spool, SpoolItem

FRAME = b"\xff\xd8" + b"j" * 20_000  # five or six 4 KiB pages on a tmpfs
PAYLOAD_SIZE = 200


def payload(n: int) -> bytes:
    return json.dumps({"n": n}).encode().ljust(PAYLOAD_SIZE)


def put_pairs(spool: Spool, start: int, count: int) -> dict[str, list[int]]:
    """Put ``count`` (frame, payload) pairs, payloads numbered from ``start``; their ids."""
    ids: dict[str, list[int]] = {"frame": [], "payload": []}
    for n in range(start, start + count):
        ids["frame"].append(spool.put("frame", FRAME, {"n": n}))
        ids["payload"].append(spool.put("payload", payload(n)))
    return ids


def replay_all(spool: Spool) -> list[SpoolItem]:
    sent: list[SpoolItem] = []
    result = spool.replay_pending(sent.append)
    assert result.completed and result.remaining == 0
    return sent


@pytest.fixture
def spool_on(tmp_path):
    """Open a spool in a directory (on a small disk); closed after the test."""
    opened: list[Spool] = []

    def open_(directory, **options) -> Spool:
        spool = Spool(directory, max_bytes=100_000_000, fsync=False, **options)
        opened.append(spool)
        return spool

    yield open_
    for spool in opened:
        spool.close()


def test_a_full_disk_evicts_old_frames_keeps_every_payload_and_recovers(
    small_disk, spool_on, caplog
):
    """GIVEN a spool bounded at 100 MB on a 256 KiB disk, WHEN far more than the disk holds is
    put, THEN the oldest frames are evicted and counted, every payload is kept (in memory once
    no frame is left on disk), ``error`` says the disk is full; once the disk grows new items go
    to disk again, and a replay sends everything kept in order."""
    disk = small_disk(256 * 1024)
    spool = spool_on(disk.path / "spool", error_hold_s=0)

    with caplog.at_level(logging.WARNING, logger="edge_app.spool"):
        full = put_pairs(spool, 0, 80)  # 80 x (frame + payload): several times the disk

    assert disk.free_bytes() < len(FRAME)
    kept = {entry.item_id: entry for entry in spool.pending()}
    evicted_frames = [i for i in full["frame"] if i is not None and i not in kept]
    kept_frames = [i for i in full["frame"] if i in kept]
    assert evicted_frames and spool.dropped["frame"] >= len(evicted_frames)
    assert kept_frames and min(kept_frames) > max(evicted_frames), "oldest frames go first"
    assert all(i in kept for i in full["payload"]) and spool.dropped["payload"] == 0
    assert any(entry.in_memory for entry in kept.values()), "the disk ran out of frames to evict"
    assert "full" in spool.error and "held in memory until sent" in spool.error
    assert any("on a full disk" in record.getMessage() for record in caplog.records)

    disk.remount("size=4m")
    roomy = put_pairs(spool, 80, 5)

    new_entries = [entry for entry in spool.pending() if entry.item_id >= roomy["frame"][0]]
    assert len(new_entries) == 10 and not any(entry.in_memory for entry in new_entries)
    sent = replay_all(spool)
    numbers = [json.loads(item.body)["n"] for item in sent if item.kind.value == "payload"]
    assert numbers == list(range(85)), "every payload, once, in order"
    assert [item.item_id for item in sent] == sorted(item.item_id for item in sent)
    assert spool.error is None and spool.memory_bytes == 0 and spool.depth == 0


def test_a_disk_problem_is_reported_until_the_hold_passes(small_disk, spool_on):
    disk = small_disk(64 * 1024)
    spool = spool_on(disk.path / "spool", error_hold_s=3600)
    put_pairs(spool, 0, 8)
    replay_all(spool)

    assert spool.depth == 0 and "full" in spool.error, "still within the hold after the loss"
    spool.error_hold_s = 0
    assert spool.error is None


def test_a_read_only_spool_directory_keeps_items_in_memory(small_disk, spool_on, caplog):
    """GIVEN a spool directory on a read-only disk, THEN the spool opens all the same, holds its
    items in memory (one log line naming the directory), sends them in order, and counts what
    it had to drop when it is closed with items unsent."""
    disk = small_disk(64 * 1024, read_only=True)

    with caplog.at_level(logging.ERROR, logger="edge_app.spool"):
        spool = spool_on(disk.path / "spool")

    errors = [record.getMessage() for record in caplog.records]
    assert len(errors) == 1 and str(disk.path / "spool") in errors[0]
    assert "Read-only file system" in spool.error and "memory only" in spool.error
    ids = put_pairs(spool, 0, 3)
    assert all(entry.in_memory for entry in spool.pending()) and spool.bytes_used == 0
    sent = replay_all(spool)
    assert [item.item_id for item in sent] == sorted(ids["frame"] + ids["payload"])
    put_pairs(spool, 3, 1)
    spool.close()
    assert spool.dropped == {"frame": 1, "payload": 1}


def test_a_disk_that_turns_read_only_keeps_the_queue_going(small_disk, spool_on):
    """GIVEN items on disk, WHEN the disk is re-mounted read-only, THEN new items are held in
    memory and everything is sent in order; sent items that cannot be deleted are reported."""
    disk = small_disk(1024 * 1024)
    spool = spool_on(disk.path / "spool", error_hold_s=3600)
    on_disk = put_pairs(spool, 0, 2)

    disk.remount("ro")
    later = put_pairs(spool, 2, 2)

    held = [entry.item_id for entry in spool.pending() if entry.in_memory]
    assert held == sorted(later["frame"] + later["payload"])
    assert "cannot write" in spool.error and "Read-only file system" in spool.error
    sent = replay_all(spool)
    assert [item.item_id for item in sent] == sorted(on_disk["frame"] + on_disk["payload"] + held)
    numbers = [json.loads(item.body)["n"] for item in sent if item.kind.value == "payload"]
    assert numbers == [0, 1, 2, 3]
    assert "cannot delete" in spool.error


def test_memory_is_bounded_by_the_same_rules(small_disk, spool_on):
    """Held in memory, frames are evicted before payloads, oldest first, and a new frame never
    evicts a payload (it is dropped instead)."""
    disk = small_disk(64 * 1024, read_only=True)
    spool = spool_on(disk.path / "spool", memory_max_bytes=3 * len(FRAME))
    spool.put("frame", FRAME)
    p0 = spool.put("payload", payload(0))
    f1, f2 = spool.put("frame", FRAME), spool.put("frame", FRAME)  # f2 evicts the first frame
    assert [entry.item_id for entry in spool.pending()] == [p0, f1, f2]

    # five 9 kB payloads leave no room for a frame beside them: both frames go, oldest first
    payloads = [spool.put("payload", b"p" * 9_000) for _ in range(5)]
    assert [entry.item_id for entry in spool.pending()] == [p0, *payloads]
    assert spool.put("frame", FRAME) is None, "a new frame never evicts a payload"
    assert spool.dropped == {"frame": 4, "payload": 0}
    assert spool.memory_bytes <= spool.memory_max_bytes
