"""Fixtures for the spool tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from edge_app.spool import Spool


@pytest.fixture
def open_spool(tmp_path: Path) -> Iterator[Callable[..., Spool]]:
    """Open a :class:`Spool` in ``tmp_path / "spool"``; every one opened is closed after the test."""
    opened: list[Spool] = []

    def open_(
        max_bytes: int = 1_000_000, *, fsync: bool = True, directory: Path | None = None
    ) -> Spool:
        spool = Spool(directory or tmp_path / "spool", max_bytes, fsync=fsync)
        opened.append(spool)
        return spool

    yield open_
    for spool in opened:
        spool.close()


@pytest.fixture
def item_size(tmp_path: Path) -> Callable[..., int]:
    """Bytes one item takes on disk, measured by putting it in a scratch spool."""

    def measure(kind: str, body: bytes, meta: dict | None = None) -> int:
        with Spool(tmp_path / "measure", 10_000_000, fsync=False) as scratch:
            item_id = scratch.put(kind, body, meta)
            size = scratch.bytes_used
            scratch.ack(item_id)
        return size

    return measure
