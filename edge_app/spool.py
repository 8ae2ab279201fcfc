"""A bounded, crash-safe on-disk FIFO for what the edge app could not send yet.

While the backend is unreachable the publisher puts outgoing items in a :class:`Spool`:
payloads (small JSON bodies for the detections queue) and frames (JPEG bodies for S3),
each with metadata such as the target key or queue. When the backend is back,
:meth:`Spool.replay_pending` sends them strictly in order and stops at the first failure,
so a payload never overtakes an earlier one.

On disk, every item is one file written atomically (temporary file, ``fsync``,
``os.replace``) whose name holds its sequence number and kind; a small ``state.json``
(also written atomically) keeps the counters and the sequence high-water mark, so a
reopened spool has the same items in the same order and keeps counting. A file left
broken by a crash is moved to ``quarantine/`` with a log line instead of stopping the app.

When a new item would push the spool past ``max_bytes``, older items are evicted: frames
before payloads, oldest first; a frame never evicts a payload (the new frame is dropped
instead). Every eviction is counted per kind and logged.

The disk may run out before the bound does (a bound larger than the free space, another program
filling the disk). A write that fails for lack of space (``ENOSPC``, ``EDQUOT``) evicts the
oldest frames on disk, counted as dropped, and is tried again. What the disk cannot take all the
same (no frame left to evict, a read-only or failing disk, a directory that cannot be opened at
all) is kept in memory, in order with the rest, up to ``memory_max_bytes`` by the same rules; it
is sent like any other item but lost if the app stops first. :attr:`Spool.error` says why while
the spool cannot keep everything on disk, for the heartbeat.

Examples:
    ```python
    import tempfile

    from edge_app.spool import Spool

    with Spool(tempfile.mkdtemp(), max_bytes=200_000_000) as spool:
        spool.put("payload", b'{"count": 3}', {"queue": "detections"})
        spool.put("frame", b"\xff\xd8...", {"key": "frames/dev-1/cam-1/2026/11/26/1.jpg"})
        result = spool.replay_pending(print)  # a real send raises while still offline
        print(result.sent, result.remaining, spool.dropped)
    ```
"""

from __future__ import annotations

import collections
import contextlib
import enum
import errno
import json
import logging
import os
import re
import threading
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # not POSIX: the directory is then not guarded against a second process
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

ITEM_MAGIC = b"EVKSPOOL1\n"
"""First bytes of every item file (format version 1)."""

STATE_FORMAT = 1
"""Version of ``state.json``."""

SEQUENCE_BLOCK = 1024
"""Sequence numbers reserved in ``state.json`` at a time, so a put rarely writes it."""

MAX_HEADER_BYTES = 1 << 20
"""Largest header (metadata) an item file may have."""

DEFAULT_MEMORY_MAX_BYTES = 16_000_000
"""Most bytes kept in memory while the disk cannot take them, unless the spool is given less."""

ERROR_HOLD_S = 60.0
"""How long :attr:`Spool.error` keeps reporting a disk problem after the last item it cost."""

NO_SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
"""Write errors that evicting older items can cure: the disk or the user's quota is full."""

_ITEM_NAME = re.compile(r"(?P<seq>\d{20})\.(?P<kind>payload|frame)")


class ItemKind(enum.StrEnum):
    """What a spooled item holds; frames are evicted before payloads."""

    PAYLOAD = "payload"
    """A small JSON message (e.g. for the detections queue)."""
    FRAME = "frame"
    """An encoded image (e.g. an annotated JPEG for S3)."""


@dataclass(frozen=True)
class SpoolEntry:
    """A pending item without its body.

    Attributes:
        item_id: Sequence number; later items have larger ids, also across restarts.
        kind: Payload or frame.
        size_bytes: Bytes the item takes on disk or in memory (body, metadata and header).
        created_at: When it was put (UTC).
        in_memory: Kept in memory, because the disk could not take it (lost if the app stops
            before it is sent).
    """

    item_id: int
    kind: ItemKind
    size_bytes: int
    created_at: datetime
    in_memory: bool = False


@dataclass(frozen=True)
class SpoolItem:
    """A pending item with its body and metadata.

    Attributes:
        item_id: Sequence number; later items have larger ids, also across restarts.
        kind: Payload or frame.
        body: The bytes to send.
        meta: What the sender needs to send it (target key, queue, camera id, ...).
        created_at: When it was put (UTC).
    """

    item_id: int
    kind: ItemKind
    body: bytes
    meta: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True)
class ReplayResult:
    """What one :meth:`Spool.replay_pending` call did.

    Attributes:
        sent: Items sent and removed.
        remaining: Items still pending when the replay returned.
        failed_item_id: The item whose send raised, if one did (it stays first in line).
        error: The exception that send raised, if any.
        skipped: Items that vanished (evicted) or were quarantined during the replay.
    """

    sent: int
    remaining: int
    failed_item_id: int | None = None
    error: Exception | None = None
    skipped: int = 0

    @property
    def completed(self) -> bool:
        """True when the replay met no failure."""
        return self.failed_item_id is None


class SpoolCorruptError(ValueError):
    """An item file is damaged (bad header, wrong length or checksum)."""


class SpoolInUseError(RuntimeError):
    """Another :class:`Spool` (another process, or an instance not closed) holds the directory."""


class Spool:
    """A bounded, crash-safe, thread-safe on-disk FIFO of outgoing items.

    Args:
        directory: Where the spool lives; created if missing. One process at a time. A
            directory that cannot be created or opened (read-only, no permission) is logged
            and the spool keeps its items in memory only (:attr:`error` says so).
        max_bytes: Most bytes the items may take on disk.
        fsync: Flush every write to the disk before it counts as done. Turn off only
            where losing the last items on power loss is acceptable (tests, tmpfs).
        memory_max_bytes: Most bytes kept in memory while the disk cannot take items
            (default: ``max_bytes``, at most :data:`DEFAULT_MEMORY_MAX_BYTES`).
        error_hold_s: How long :attr:`error` reports a disk problem after the last item it
            cost (evicted, dropped or kept in memory).

    Raises:
        ValueError: When ``max_bytes`` or ``memory_max_bytes`` is not a positive integer.
        SpoolInUseError: When another process holds the directory.

    Examples:
        ```python
        spool = Spool(tmp_dir, max_bytes=10_000_000)
        item_id = spool.put("payload", b'{"n": 1}', {"queue": "detections"})
        [entry.item_id for entry in spool.pending()]   # [item_id]
        spool.ack(item_id)
        spool.close()
        ```
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        max_bytes: int,
        *,
        fsync: bool = True,
        memory_max_bytes: int | None = None,
        error_hold_s: float = ERROR_HOLD_S,
    ):
        if memory_max_bytes is None and _positive_int(max_bytes):
            memory_max_bytes = min(max_bytes, DEFAULT_MEMORY_MAX_BYTES)
        for name, value in (("max_bytes", max_bytes), ("memory_max_bytes", memory_max_bytes)):
            if not _positive_int(value):
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.memory_max_bytes = memory_max_bytes
        self.fsync = fsync
        self.error_hold_s = error_hold_s
        self._items_dir = self.directory / "items"
        self._quarantine_dir = self.directory / "quarantine"
        self._state_path = self.directory / "state.json"
        self._lock = threading.RLock()
        self._replay_lock = threading.Lock()
        self._entries: dict[ItemKind, collections.OrderedDict[int, SpoolEntry]] = {
            kind: collections.OrderedDict() for kind in ItemKind
        }
        self._bytes_used = 0
        self._memory: dict[int, bytes] = {}
        self._memory_bytes = 0
        self._unusable: str | None = None
        self._disk_error: str | None = None
        self._disk_error_at = 0.0
        self._logged_errors: set[str] = set()
        self._dropped = dict.fromkeys(ItemKind, 0)
        self._quarantined = 0
        self._next_seq = 0
        self._reserved_seq = 0
        self._closed = False
        self._in_flight: int | None = None
        self._in_flight_evicted = False

        self._lock_file = None
        try:
            self._items_dir.mkdir(parents=True, exist_ok=True)
            self._lock_file = self._acquire_directory_lock()
            with self._lock:
                self._load_state()
                self._scan_items()
                self._evict_to_fit(0, ItemKind.PAYLOAD, reason="the spool is over max_bytes")
                self._reserve_sequence(force=True)
        except OSError as exc:
            self._release_directory_lock()
            self._open_in_memory(exc)
        except BaseException:
            self._release_directory_lock()
            raise

    def __repr__(self) -> str:
        return (
            f"Spool({str(self.directory)!r}, depth={self.depth}, "
            f"bytes_used={self.bytes_used}/{self.max_bytes})"
        )

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __len__(self) -> int:
        return self.depth

    # -- putting and taking ----------------------------------------------------------

    def put(
        self, kind: ItemKind | str, body: bytes, meta: Mapping[str, Any] | None = None
    ) -> int | None:
        """Add an item at the end of the queue, evicting older ones if the spool is full.

        A payload evicts frames (oldest first) and then, if still needed, older payloads.
        A frame evicts only older frames: when it could fit only by evicting payloads, the
        new frame itself is dropped and counted.

        When the disk is full before the bound is reached, the oldest frames on disk are
        evicted until the item fits. An item the disk cannot take all the same is kept in
        memory, within ``memory_max_bytes`` by the same rules (a new frame that could only
        fit by evicting payloads is dropped). Never raises for a full or failing disk.

        Args:
            kind: ``"payload"`` or ``"frame"``.
            body: The bytes to send later.
            meta: JSON-serialisable details the sender needs (target key, queue, ...).

        Returns:
            The new item's id, or None when the new item was dropped.

        Raises:
            ValueError: When the kind is unknown, the body is not bytes, the metadata is
                not JSON-serialisable, or the item alone is larger than ``max_bytes``.
        """
        kind = _coerce_kind(kind)
        if not isinstance(body, bytes | bytearray | memoryview):
            raise ValueError(f"spool item body must be bytes, got {type(body).__name__}")
        body = bytes(body)
        meta = dict(meta or {})
        created_at = datetime.now(UTC)
        with self._lock:
            self._check_open()
            seq = self._next_seq
            data = _encode_item(seq, kind, body, meta, created_at)
            size = len(data)
            if size > self.max_bytes:
                raise ValueError(
                    f"spool item of {size} bytes ({kind.value}, body {len(body)} bytes) is "
                    f"larger than the whole spool (max_bytes={self.max_bytes})"
                )
            if self._unusable is None:
                if not self._evict_to_fit(size, kind, reason=f"room for {kind.value} {seq}"):
                    self._drop_new(kind, size, "only payloads are left to evict")
                    return None
                stored = self._store_on_disk(seq, kind, data, created_at)
            else:
                stored = False
            if not stored and not self._keep_in_memory(seq, kind, data, created_at):
                return None
            self._next_seq = seq + 1
            self._reserve_sequence()
            return seq

    def pending(self) -> list[SpoolEntry]:
        """Every pending item, oldest first, without bodies."""
        with self._lock:
            return sorted(
                (entry for entries in self._entries.values() for entry in entries.values()),
                key=lambda entry: entry.item_id,
            )

    def peek(self, n: int = 1) -> list[SpoolItem]:
        """The first ``n`` pending items with bodies, oldest first, without removing them.

        A damaged item file met on the way is quarantined and skipped.
        """
        if n < 0:
            raise ValueError(f"peek needs n >= 0, got {n!r}")
        items: list[SpoolItem] = []
        after = -1
        while len(items) < n:
            with self._lock:
                self._check_open()
                entry = self._first_entry(after=after)
                if entry is None:
                    break
                after = entry.item_id
                item = self._load_or_quarantine(entry)
            if item is not None:
                items.append(item)
        return items

    def ack(self, item_id: int) -> bool:
        """Remove a pending item once it was sent.

        Returns:
            True when it was removed; False when it was no longer pending (evicted or
            acknowledged before).
        """
        with self._lock:
            self._check_open()
            entry = self._remove_entry(item_id)
            if entry is None:
                return False
            if not entry.in_memory:
                self._remove_file(self._item_path(entry.item_id, entry.kind))
            return True

    def replay_pending(
        self, send: Callable[[SpoolItem], object], *, max_items: int | None = None
    ) -> ReplayResult:
        """Send pending items in order, removing each once ``send`` returns.

        Stops at the first item whose ``send`` raises; that item stays first in line for
        the next replay. Items put while the replay runs wait for the next call. Only one
        replay runs at a time; puts go on meanwhile (``send`` is called without the lock).
        ``send`` should raise only for failures worth retrying; for an item that can never
        be sent it should log and return, or the queue stays blocked behind it.

        Args:
            send: Called with each item.
            max_items: Send at most this many items (None: all pending).

        Returns:
            What was sent, what remains, and the failure if there was one.
        """
        sent = skipped = 0
        with self._replay_lock:
            with self._lock:
                self._check_open()
                last_id = self._next_seq - 1
            after = -1
            while max_items is None or sent < max_items:
                with self._lock:
                    entry = self._first_entry(after=after)
                    if entry is None or entry.item_id > last_id:
                        break
                    after = entry.item_id
                    self._in_flight, self._in_flight_evicted = entry.item_id, False
                item = self._load_outside_lock(entry)
                if item is None:
                    with self._lock:
                        self._in_flight = None
                    skipped += 1
                    continue
                try:
                    send(item)
                except Exception as exc:
                    with self._lock:
                        self._in_flight = None
                    logger.warning(
                        "spool %s: replay stopped at %s %d: %s: %s",
                        self.directory,
                        item.kind.value,
                        item.item_id,
                        type(exc).__name__,
                        exc,
                    )
                    return ReplayResult(sent, self.depth, item.item_id, exc, skipped)
                with self._lock:
                    self._in_flight = None
                    if self._in_flight_evicted:
                        # evicted while being sent, yet delivered: not lost after all
                        self._dropped[item.kind] -= 1
                        self._write_state()
                    else:
                        self.ack(item.item_id)
                sent += 1
        return ReplayResult(sent, self.depth, skipped=skipped)

    # -- health ----------------------------------------------------------------------

    @property
    def depth(self) -> int:
        """Number of pending items."""
        with self._lock:
            return sum(len(entries) for entries in self._entries.values())

    @property
    def bytes_used(self) -> int:
        """Bytes the pending items take on disk (never above ``max_bytes``)."""
        with self._lock:
            return self._bytes_used

    @property
    def memory_bytes(self) -> int:
        """Bytes the items kept in memory take (never above ``memory_max_bytes``)."""
        with self._lock:
            return self._memory_bytes

    @property
    def error(self) -> str | None:
        """Why the spool cannot keep everything it is given on disk now; None while it can.

        Set while the directory cannot be used at all, while items wait in memory, and for
        ``error_hold_s`` after the last item a disk problem cost (evicted for space, dropped,
        or kept in memory).
        """
        with self._lock:
            if self._unusable is not None:
                return self._unusable
            in_memory = len(self._memory)
            recent = time.monotonic() - self._disk_error_at < self.error_hold_s
            if self._disk_error is None or not (in_memory or recent):
                return None
            if in_memory:
                return f"{self._disk_error}; {in_memory} item(s) held in memory until sent"
            return self._disk_error

    @property
    def dropped(self) -> dict[str, int]:
        """Items lost for lack of room (evicted, or a new frame refused), per kind, since the
        spool was created. An item evicted while being sent, whose send then succeeded, is
        not counted."""
        with self._lock:
            return {kind.value: count for kind, count in self._dropped.items()}

    @property
    def quarantined(self) -> int:
        """Damaged files moved to ``quarantine/`` since the spool was created."""
        with self._lock:
            return self._quarantined

    def stats(self) -> dict[str, Any]:
        """Depth, bytes and counters as JSON-ready values, for heartbeats."""
        with self._lock:
            return {
                "depth": self.depth,
                "depth_by_kind": {kind.value: len(e) for kind, e in self._entries.items()},
                "bytes_used": self._bytes_used,
                "max_bytes": self.max_bytes,
                "memory_depth": len(self._memory),
                "memory_bytes": self._memory_bytes,
                "dropped": self.dropped,
                "quarantined": self._quarantined,
                "error": self.error,
            }

    def close(self) -> None:
        """Save the counters and release the directory; the spool is unusable after. Items
        still held in memory are lost: logged and counted as dropped."""
        with self._lock:
            if self._closed:
                return
            lost = [entry for entry in self.pending() if entry.in_memory]
            for entry in lost:
                self._dropped[entry.kind] += 1
            if lost:
                logger.warning(
                    "spool %s: %d item(s) held in memory were not sent and are lost "
                    "(%d frame(s), %d payload(s))",
                    self.directory,
                    len(lost),
                    sum(entry.kind is ItemKind.FRAME for entry in lost),
                    sum(entry.kind is ItemKind.PAYLOAD for entry in lost),
                )
            try:
                self._write_state()
            finally:
                self._closed = True
                self._release_directory_lock()

    # -- internals -------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"spool {self.directory} is closed")

    def _item_path(self, seq: int, kind: ItemKind) -> Path:
        return self._items_dir / f"{seq:020d}.{kind.value}"

    def _first_entry(self, after: int = -1) -> SpoolEntry | None:
        """The oldest pending entry with an id above ``after``."""
        first: SpoolEntry | None = None
        for entries in self._entries.values():
            for entry in entries.values():  # ordered by id: the first match is the oldest
                if entry.item_id > after:
                    if first is None or entry.item_id < first.item_id:
                        first = entry
                    break
        return first

    def _remove_entry(self, item_id: int) -> SpoolEntry | None:
        for entries in self._entries.values():
            entry = entries.pop(item_id, None)
            if entry is not None:
                if entry.in_memory:
                    del self._memory[item_id]
                    self._memory_bytes -= entry.size_bytes
                else:
                    self._bytes_used -= entry.size_bytes
                return entry
        return None

    def _evict_to_fit(
        self, size: int, kind: ItemKind, reason: str, *, in_memory: bool = False
    ) -> bool:
        """Evict until ``size`` more bytes fit within the bound (``memory_max_bytes`` for the
        items in memory); False (nothing evicted) if they cannot."""
        if in_memory:
            needed = self._memory_bytes + size - self.memory_max_bytes
        else:
            needed = self._bytes_used + size - self.max_bytes
        if needed <= 0:
            return True
        order = [ItemKind.FRAME] if kind is ItemKind.FRAME else [ItemKind.FRAME, ItemKind.PAYLOAD]
        victims: list[SpoolEntry] = []
        freed = 0
        for victim_kind in order:
            for entry in self._entries[victim_kind].values():
                if freed >= needed:
                    break
                if entry.in_memory == in_memory:
                    victims.append(entry)
                    freed += entry.size_bytes
        if freed < needed:
            return False
        self._evict(victims, reason)
        return True

    def _evict_for_space(self, size: int, seq: int, kind: ItemKind, error: OSError) -> bool:
        """The disk is full: evict the oldest frames on disk that free ``size`` bytes (at
        least one); False when no frame is left on disk."""
        victims: list[SpoolEntry] = []
        freed = 0
        for entry in self._entries[ItemKind.FRAME].values():
            if victims and freed >= size:
                break
            if not entry.in_memory:
                victims.append(entry)
                freed += entry.size_bytes
        if not victims:
            return False
        self._note_disk_error(
            f"the disk of {self.directory} is full ({error.strerror or error}): the oldest "
            f"frames are evicted to keep what is new"
        )
        self._evict(victims, f"room for {kind.value} {seq} on a full disk")
        return True

    def _evict(self, victims: list[SpoolEntry], reason: str) -> None:
        """Remove ``victims``, count them as dropped, and log it."""
        evicted = dict.fromkeys(ItemKind, 0)
        for entry in victims:
            self._remove_entry(entry.item_id)
            if not entry.in_memory:
                self._remove_file(self._item_path(entry.item_id, entry.kind))
            evicted[entry.kind] += 1
            self._dropped[entry.kind] += 1
            if entry.item_id == self._in_flight:
                self._in_flight_evicted = True
        self._write_state()
        logger.warning(
            "spool %s: evicted %d frame(s) and %d payload(s), %d bytes, to make %s; "
            "dropped so far: %d frame(s), %d payload(s)",
            self.directory,
            evicted[ItemKind.FRAME],
            evicted[ItemKind.PAYLOAD],
            sum(entry.size_bytes for entry in victims),
            reason,
            self._dropped[ItemKind.FRAME],
            self._dropped[ItemKind.PAYLOAD],
        )

    def _store_on_disk(self, seq: int, kind: ItemKind, data: bytes, created_at: datetime) -> bool:
        """Write an item; on a full disk evict old frames and try again. False when the disk
        cannot take it (nothing left to evict, or another write error)."""
        path = self._item_path(seq, kind)
        while True:
            try:
                self._write_atomically(path, data)
            except OSError as exc:
                if exc.errno in NO_SPACE_ERRNOS and self._evict_for_space(
                    len(data), seq, kind, exc
                ):
                    continue
                self._note_disk_error(
                    f"cannot write to {self.directory} ({exc.strerror or exc}): new items are "
                    f"held in memory"
                )
                return False
            self._entries[kind][seq] = SpoolEntry(seq, kind, len(data), created_at)
            self._bytes_used += len(data)
            return True

    def _keep_in_memory(self, seq: int, kind: ItemKind, data: bytes, created_at: datetime) -> bool:
        """Hold an item the disk could not take in memory; False when it was dropped."""
        size = len(data)
        self._disk_error_at = time.monotonic()
        if size > self.memory_max_bytes:
            self._drop_new(kind, size, f"larger than memory_max_bytes ({self.memory_max_bytes})")
            return False
        if not self._evict_to_fit(
            size, kind, reason=f"room in memory for {kind.value} {seq}", in_memory=True
        ):
            self._drop_new(kind, size, "only payloads are left to evict from memory")
            return False
        self._memory[seq] = data
        self._entries[kind][seq] = SpoolEntry(seq, kind, size, created_at, in_memory=True)
        self._memory_bytes += size
        return True

    def _drop_new(self, kind: ItemKind, size: int, why: str) -> None:
        self._dropped[kind] += 1
        self._write_state()
        logger.warning(
            "spool %s: dropped new %s (%d bytes): %s; %ss dropped so far: %d",
            self.directory,
            kind.value,
            size,
            why,
            kind.value,
            self._dropped[kind],
        )

    def _note_disk_error(self, message: str) -> None:
        """Remember a disk problem for :attr:`error`; log each distinct one once."""
        self._disk_error = message
        self._disk_error_at = time.monotonic()
        if message not in self._logged_errors:
            self._logged_errors.add(message)
            logger.error("spool %s: %s", self.directory, message)

    def _remove_file(self, path: Path) -> None:
        """Delete an item file; a disk that refuses (read-only) is reported, not raised: the
        item may then be sent again after a restart, which the backend tolerates."""
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            self._note_disk_error(
                f"cannot delete sent or evicted items in {self.directory} ({exc.strerror or exc})"
            )

    def _open_in_memory(self, error: OSError) -> None:
        """The directory cannot be used: keep items in memory only, for this process's life."""
        for entries in self._entries.values():
            entries.clear()
        self._bytes_used = 0
        self._unusable = (
            f"spool directory {self.directory} cannot be used ({error.strerror or error}): "
            f"items are held in memory only (at most {self.memory_max_bytes} bytes) and lost "
            f"if the app stops before they are sent; make it writable and restart the app"
        )
        logger.error("%s", self._unusable)

    def _load_or_quarantine(self, entry: SpoolEntry) -> SpoolItem | None:
        if entry.in_memory:
            return _decode_item(self._memory[entry.item_id], entry.item_id, entry.kind)
        path = self._item_path(entry.item_id, entry.kind)
        try:
            return _decode_item(path.read_bytes(), entry.item_id, entry.kind)
        except (OSError, SpoolCorruptError) as exc:
            if self._remove_entry(entry.item_id) is not None:
                self._quarantine(path, f"unreadable item: {exc}")
            return None

    def _load_outside_lock(self, entry: SpoolEntry) -> SpoolItem | None:
        """Read an item without holding the lock; None if it vanished or is damaged."""
        if entry.in_memory:
            with self._lock:
                data = self._memory.get(entry.item_id)
            return None if data is None else _decode_item(data, entry.item_id, entry.kind)
        path = self._item_path(entry.item_id, entry.kind)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None  # evicted meanwhile
        except OSError:
            data = b""
        try:
            return _decode_item(data, entry.item_id, entry.kind)
        except SpoolCorruptError as exc:
            with self._lock:
                if self._remove_entry(entry.item_id) is not None:
                    self._quarantine(path, f"unreadable item: {exc}")
            return None

    def _quarantine(self, path: Path, reason: str) -> None:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        target = self._quarantine_dir / f"{path.name}.{stamp}"
        try:
            self._quarantine_dir.mkdir(exist_ok=True)
            os.replace(path, target)
        except FileNotFoundError:
            return
        except OSError as exc:
            logger.error("spool %s: could not quarantine %s: %s", self.directory, path.name, exc)
            self._remove_file(path)
            target = Path("(deleted)")
        self._quarantined += 1
        self._write_state()
        logger.warning(
            "spool %s: quarantined %s (%s) as %s", self.directory, path.name, reason, target.name
        )

    def _scan_items(self) -> None:
        found: list[SpoolEntry] = []
        for path in sorted(self._items_dir.iterdir()):
            match = _ITEM_NAME.fullmatch(path.name)
            if match is None:
                why = (
                    "temporary file left by an interrupted write"
                    if path.name.endswith(".tmp")
                    else "not a spool item"
                )
                if path.is_file():
                    self._quarantine(path, why)
                continue
            seq, kind = int(match["seq"]), ItemKind(match["kind"])
            try:
                created_at = _check_item_file(path, seq, kind)
            except (OSError, SpoolCorruptError) as exc:
                self._quarantine(path, f"damaged item: {exc}")
                continue
            found.append(SpoolEntry(seq, kind, path.stat().st_size, created_at))
        for entry in sorted(found, key=lambda e: e.item_id):
            self._entries[entry.kind][entry.item_id] = entry
            self._bytes_used += entry.size_bytes
            self._next_seq = max(self._next_seq, entry.item_id + 1)
        self._next_seq = max(self._next_seq, self._reserved_seq)

    def _load_state(self) -> None:
        try:
            state = json.loads(self._state_path.read_text(encoding="utf-8"))
            if state.get("format") != STATE_FORMAT:
                raise ValueError(f"format {state.get('format')!r}, expected {STATE_FORMAT}")
            reserved = int(state["reserved_seq"])
            dropped = {ItemKind(k): int(v) for k, v in state["dropped"].items()}
            quarantined = int(state["quarantined"])
        except FileNotFoundError:
            return
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            self._quarantine(self._state_path, f"unreadable state file: {exc}")
            logger.warning(
                "spool %s: counters start again from zero; item order is kept", self.directory
            )
            return
        self._reserved_seq = reserved
        self._dropped.update(dropped)
        self._quarantined += quarantined

    def _reserve_sequence(self, force: bool = False) -> None:
        if force or self._next_seq >= self._reserved_seq:
            self._reserved_seq = self._next_seq + SEQUENCE_BLOCK
            self._write_state()

    def _write_state(self) -> None:
        """Save the counters; a disk that refuses is reported, not raised (they stay in memory
        and are saved with the next write that succeeds)."""
        if self._unusable is not None:
            return
        state = {
            "format": STATE_FORMAT,
            "reserved_seq": self._reserved_seq,
            "dropped": {kind.value: count for kind, count in self._dropped.items()},
            "quarantined": self._quarantined,
        }
        try:
            self._write_atomically(self._state_path, json.dumps(state, indent=1).encode("utf-8"))
        except OSError as exc:
            self._note_disk_error(
                f"cannot save the spool's counters in {self.directory} ({exc.strerror or exc})"
            )

    def _write_atomically(self, path: Path, data: bytes) -> None:
        temporary = path.with_name(f".{path.name}.tmp")
        try:
            with open(temporary, "wb") as file:
                file.write(data)
                if self.fsync:
                    file.flush()
                    os.fsync(file.fileno())
            os.replace(temporary, path)
        except BaseException:
            _unlink(temporary)
            raise
        if self.fsync:
            _fsync_directory(path.parent)

    def _acquire_directory_lock(self) -> Any:
        if fcntl is None:
            return None
        # opened read-only: a lock needs no write access, and a spool that holds no file open
        # for writing lets its disk be re-mounted read-only under it
        descriptor = os.open(self.directory / ".lock", os.O_RDONLY | os.O_CREAT, 0o644)
        lock_file = os.fdopen(descriptor, "rb")
        try:
            fcntl.flock(lock_file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock_file.close()
            raise SpoolInUseError(
                f"spool directory {self.directory} is in use by another Spool (another "
                f"process, or an instance not closed); close it first"
            ) from None
        return lock_file

    def _release_directory_lock(self) -> None:
        lock_file, self._lock_file = getattr(self, "_lock_file", None), None
        if lock_file is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(lock_file.fileno(), fcntl.LOCK_UN)
            lock_file.close()


def _encode_item(
    seq: int, kind: ItemKind, body: bytes, meta: dict[str, Any], created_at: datetime
) -> bytes:
    header = {
        "item_id": f"{seq:020d}",  # fixed width: an item's size does not depend on its id
        "kind": kind.value,
        "created_at": created_at.isoformat(timespec="microseconds"),
        "meta": meta,
        "body_bytes": len(body),
        "crc32": zlib.crc32(body),
    }
    try:
        header_line = json.dumps(header, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"spool item meta must be JSON-serialisable: {exc} in {meta!r}") from None
    encoded = header_line.encode("utf-8") + b"\n"
    if len(encoded) > MAX_HEADER_BYTES:
        raise ValueError(
            f"spool item meta is {len(encoded)} bytes as JSON; at most {MAX_HEADER_BYTES} allowed"
        )
    return ITEM_MAGIC + encoded + body


def _parse_header(data: bytes, seq: int, kind: ItemKind) -> tuple[dict[str, Any], int]:
    """The header of an item file and where its body starts."""
    if not data.startswith(ITEM_MAGIC):
        raise SpoolCorruptError("missing header")
    end = data.find(b"\n", len(ITEM_MAGIC))
    if end < 0:
        raise SpoolCorruptError("truncated header")
    try:
        header = json.loads(data[len(ITEM_MAGIC) : end])
        if header["item_id"] != f"{seq:020d}" or header["kind"] != kind.value:
            raise SpoolCorruptError(
                f"header says {header['kind']} {header['item_id']}, file name says {kind.value} {seq}"
            )
        if not isinstance(header["body_bytes"], int) or not isinstance(header["crc32"], int):
            raise SpoolCorruptError("bad header: body_bytes and crc32 must be integers")
        datetime.fromisoformat(header["created_at"])
    except SpoolCorruptError:
        raise
    except (ValueError, KeyError, TypeError) as exc:
        raise SpoolCorruptError(f"bad header: {exc!r}") from None
    return header, end + 1


def _check_item_file(path: Path, seq: int, kind: ItemKind) -> datetime:
    """Check an item file's header and length without reading its body."""
    with open(path, "rb") as file:
        head = file.read(len(ITEM_MAGIC))
        head += file.readline(MAX_HEADER_BYTES + 1)
    header, body_start = _parse_header(head, seq, kind)
    expected = body_start + int(header["body_bytes"])
    actual = path.stat().st_size
    if actual != expected:
        raise SpoolCorruptError(f"{actual} bytes on disk, header promises {expected}")
    return datetime.fromisoformat(header["created_at"])


def _decode_item(data: bytes, seq: int, kind: ItemKind) -> SpoolItem:
    header, body_start = _parse_header(data, seq, kind)
    body = data[body_start:]
    if len(body) != header["body_bytes"]:
        raise SpoolCorruptError(
            f"body is {len(body)} bytes, header promises {header['body_bytes']}"
        )
    if zlib.crc32(body) != header["crc32"]:
        raise SpoolCorruptError("body checksum mismatch")
    return SpoolItem(
        item_id=seq,
        kind=kind,
        body=body,
        meta=header["meta"],
        created_at=datetime.fromisoformat(header["created_at"]),
    )


def _positive_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _coerce_kind(kind: ItemKind | str) -> ItemKind:
    try:
        return ItemKind(kind)
    except ValueError:
        raise ValueError(
            f"unknown spool item kind {kind!r}; allowed: {[k.value for k in ItemKind]}"
        ) from None


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def _fsync_directory(directory: Path) -> None:
    """Make a rename durable; not every platform or filesystem allows it."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


__all__ = [
    "ITEM_MAGIC",
    "ItemKind",
    "ReplayResult",
    "Spool",
    "SpoolCorruptError",
    "SpoolEntry",
    "SpoolInUseError",
    "SpoolItem",
]
