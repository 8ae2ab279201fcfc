"""Spool after a crash: damaged or stray files are quarantined, never fatal."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import edge_app
from edge_app.spool import ITEM_MAGIC


def _items_dir(tmp_path: Path) -> Path:
    return tmp_path / "spool" / "items"


def _quarantined(tmp_path: Path) -> list[str]:
    folder = tmp_path / "spool" / "quarantine"
    return sorted(path.name for path in folder.iterdir()) if folder.exists() else []


def _three_items(open_spool) -> list[int]:
    spool = open_spool()
    ids = [spool.put("payload", json.dumps({"n": n}).encode(), {"n": n}) for n in range(3)]
    spool.close()
    return ids


def test_truncated_item_is_quarantined_on_open(tmp_path, open_spool, caplog) -> None:
    ids = _three_items(open_spool)
    victim = next(_items_dir(tmp_path).glob(f"{ids[1]:020d}.*"))
    victim.write_bytes(victim.read_bytes()[:-3])

    with caplog.at_level(logging.WARNING, logger="edge_app.spool"):
        spool = open_spool()

    assert [e.item_id for e in spool.pending()] == [ids[0], ids[2]]
    assert spool.quarantined == 1
    assert [name.split(".")[0] for name in _quarantined(tmp_path)] == [f"{ids[1]:020d}"]
    assert "quarantined" in caplog.text and victim.name in caplog.text


def test_garbage_and_stray_files_are_quarantined(tmp_path, open_spool) -> None:
    ids = _three_items(open_spool)
    items = _items_dir(tmp_path)
    (items / f"{ids[-1] + 1:020d}.frame").write_bytes(b"\x00\x01 not a spool item")
    (items / f".{ids[-1] + 2:020d}.payload.tmp").write_bytes(ITEM_MAGIC + b'{"item_id"')
    (items / "notes.txt").write_text("hello")
    (items / f"{ids[-1] + 3:020d}.payload").write_bytes(ITEM_MAGIC + b"{not json}\n{}")

    spool = open_spool()

    assert [e.item_id for e in spool.pending()] == ids
    assert spool.quarantined == 4 and len(_quarantined(tmp_path)) == 4
    assert sorted(path.name for path in items.iterdir()) == sorted(
        f"{item_id:020d}.payload" for item_id in ids
    )
    assert spool.put("payload", b"{}") > ids[-1] + 3  # never reuses a seen number


def test_damaged_body_is_caught_at_replay_and_skipped(tmp_path, open_spool, caplog) -> None:
    ids = _three_items(open_spool)
    victim = next(_items_dir(tmp_path).glob(f"{ids[1]:020d}.*"))
    data = bytearray(victim.read_bytes())
    data[-2] ^= 0xFF  # same length, wrong checksum
    victim.write_bytes(bytes(data))
    spool = open_spool()
    assert spool.depth == 3  # a length check alone cannot tell
    sent: list[int] = []

    with caplog.at_level(logging.WARNING, logger="edge_app.spool"):
        result = spool.replay_pending(lambda item: sent.append(item.item_id))

    assert sent == [ids[0], ids[2]]
    assert result.sent == 2 and result.skipped == 1 and result.completed
    assert spool.quarantined == 1 and "checksum" in caplog.text


def test_damaged_item_is_skipped_by_peek(tmp_path, open_spool) -> None:
    ids = _three_items(open_spool)
    victim = next(_items_dir(tmp_path).glob(f"{ids[0]:020d}.*"))
    data = bytearray(victim.read_bytes())
    data[-1] ^= 0x01
    victim.write_bytes(bytes(data))
    spool = open_spool()

    assert [item.item_id for item in spool.peek(5)] == ids[1:]
    assert spool.depth == 2 and spool.quarantined == 1


def test_corrupt_state_file_is_quarantined_and_order_kept(tmp_path, open_spool, caplog) -> None:
    ids = _three_items(open_spool)
    (tmp_path / "spool" / "state.json").write_text("{ half written")

    with caplog.at_level(logging.WARNING, logger="edge_app.spool"):
        spool = open_spool()

    assert [e.item_id for e in spool.pending()] == ids
    assert spool.put("payload", b"{}") > ids[-1]
    assert any(name.startswith("state.json.") for name in _quarantined(tmp_path))
    assert "unreadable state file" in caplog.text


def test_leftover_state_temp_file_does_not_matter(tmp_path, open_spool) -> None:
    ids = _three_items(open_spool)
    (tmp_path / "spool" / ".state.json.tmp").write_text('{"format": 1, "reserved')

    spool = open_spool()

    assert [e.item_id for e in spool.pending()] == ids
    assert spool.quarantined == 0


def test_quarantined_count_survives_restart(tmp_path, open_spool) -> None:
    ids = _three_items(open_spool)
    next(_items_dir(tmp_path).glob(f"{ids[0]:020d}.*")).write_bytes(b"broken")
    open_spool().close()

    assert open_spool().quarantined == 1


CRASHING_WRITER = """
import os, sys
from edge_app.spool import Spool

spool = Spool(sys.argv[1], max_bytes=int(sys.argv[2]))
for n in range(6):
    spool.put("frame", bytes(500), {"n": n})
spool.put("payload", b'{"last": true}', {"n": 6})
os._exit(0)  # dies without close(): nothing flushed at exit
"""


def test_process_killed_without_close_loses_nothing(tmp_path, open_spool, item_size) -> None:
    frame = item_size("frame", bytes(500), {"n": 0})
    directory = tmp_path / "spool"
    subprocess.run(
        [sys.executable, "-c", CRASHING_WRITER, str(directory), str(3 * frame)],
        check=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(Path(edge_app.__file__).parents[1])},
    )

    spool = open_spool(max_bytes=3 * frame)

    assert [item.meta["n"] for item in spool.peek(10)] == [4, 5, 6]
    assert spool.dropped == {"payload": 0, "frame": 4}  # 3 evicted for frames, 1 for the payload
    assert spool.put("payload", b"{}") > spool.pending()[-2].item_id
