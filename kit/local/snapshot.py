"""Save and restore the local backend's data (tables, bucket, queued messages) across restarts.

moto keeps everything in memory: ``kit local down`` saves a snapshot into the state dir and the
next ``kit local up`` restores it. Both run inside the moto server process
(:mod:`kit.local.moto_server`), on its in-memory data (:mod:`kit.local.moto_state`), while the
server accepts no request: what a client was told is stored is in the snapshot.

A snapshot cannot destroy data:

- **Generations.** Each save writes a new generation; the newest :data:`KEEP_GENERATIONS` are
  kept, and a generation found damaged is never deleted (``DAMAGED.json`` in it says what).
- **Atomic.** A generation is written into a staging folder, flushed to disk, then renamed into
  place; a crash leaves the previous generations as they were.
- **Verified.** ``manifest.json`` records the size and SHA-256 of every file. A restore checks
  every file *before* it loads anything; a damaged file is named, and its part (one table, one
  queue, the bucket index) comes from the newest older generation that holds it intact. Every
  other part is restored from the newest generation.
- **Contained.** Objects are stored by the SHA-256 of their body, never by their S3 key: a key
  such as ``../../x`` or ``/etc/x`` writes nothing outside the snapshot folder. Generations
  share the bodies they have in common, so a save writes only what is new.
- **Bounded.** Items whose TTL attribute (``expires_at`` of detections, alerts, audit) has
  passed are left out, as DynamoDB's TTL would have deleted them.

Layout of ``<state_dir>/local/snapshot/``::

    generations/<UTC time>/     one snapshot (newest = last in name order)
        manifest.json           when, counts, and size + SHA-256 of each file below
        tables/<logical>.json   items in DynamoDB JSON
        queues/<logical>.json   messages (in flight ones too) with ids, attributes, receive counts
        bucket.json             every object: key, SHA-256, size, metadata, last modified
        DAMAGED.json            written by a restore that found a damaged file here
    objects/<ab>/<sha256>       object bodies, shared by the generations
    .staging-*                  a generation being written (a crash leaves it; the next save
                                removes it)

A snapshot written by earlier versions (``manifest.json``, ``tables/``, ``queues/`` and
``bucket/<key>`` directly in the folder) is restored as the oldest generation, and deleted once
:data:`KEEP_GENERATIONS` newer ones exist.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from kit.core.backend import BackendSpec
from kit.local.moto_state import MotoState, StoredMessage, StoredObject

log = logging.getLogger(__name__)

FORMAT = 2
KEEP_GENERATIONS = 3
"""How many generations a save keeps (damaged ones are kept besides)."""
TTL_IGNORED_AFTER_S = 5 * 365 * 86400
"""DynamoDB's TTL leaves items alone whose expiry is more than five years in the past."""

_BINARY_TAG = "__evk_b64__"
T = TypeVar("T")


class SnapshotError(RuntimeError):
    """A snapshot cannot be written; the message says which file and why."""


# -- what is saved -----------------------------------------------------------------------------
@dataclass(frozen=True)
class SnapshotTargets:
    """The physical resources a snapshot holds, by logical name."""

    tables: dict[str, str]
    ttl_attributes: dict[str, str]
    bucket: str
    queues: dict[str, str]

    @classmethod
    def of(cls, spec: BackendSpec) -> SnapshotTargets:
        queues = {}
        for queue in spec.queues:
            queues[queue.logical] = queue.name
            if queue.dlq:
                queues[f"{queue.logical}-dlq"] = queue.dlq
        return cls(
            tables={t.logical: t.name for t in spec.tables},
            ttl_attributes={t.logical: t.ttl_attribute for t in spec.tables if t.ttl_attribute},
            bucket=spec.bucket.name,
            queues=queues,
        )


def _encode(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return {_BINARY_TAG: base64.b64encode(value).decode()}
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {_BINARY_TAG}:
            return base64.b64decode(value[_BINARY_TAG])
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def _expired(item: dict[str, Any], attribute: str, now: float) -> bool:
    value = item.get(attribute, {}).get("N")
    try:
        expiry = float(value) if value is not None else None
    except ValueError:
        return False
    return expiry is not None and now - TTL_IGNORED_AFTER_S < expiry < now


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write_atomically(path: Path, data: bytes, *, durable: bool = False) -> None:
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    with open(temporary, "wb") as handle:
        handle.write(data)
        if durable:
            handle.flush()
            os.fsync(handle.fileno())
    os.replace(temporary, path)


def _fsync_directory(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


# -- reading generations -----------------------------------------------------------------------
class DamagedFile(Exception):
    """A snapshot file is missing, of the wrong size or content, or not readable JSON."""

    def __init__(self, path: Path, problem: str):
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


@dataclass(frozen=True)
class ObjectEntry:
    key: str
    sha256: str
    bytes: int
    metadata: dict[str, str] = field(default_factory=dict)
    last_modified: str = ""


class Generation:
    """One saved snapshot: a folder under ``generations/`` with a manifest of checksums."""

    def __init__(self, root: Path, folder: Path):
        self.root = root
        self.folder = folder
        self.name = folder.name
        self._manifest: dict[str, Any] | None = None

    def __repr__(self) -> str:
        return f"Generation({self.name})"

    @property
    def damaged_marker(self) -> Path:
        return self.folder / "DAMAGED.json"

    def manifest(self) -> dict[str, Any]:
        """The parsed manifest.

        Raises:
            DamagedFile: it is missing or not a manifest this version can read.
        """
        if self._manifest is None:
            path = self.folder / "manifest.json"
            try:
                manifest = json.loads(path.read_bytes())
            except FileNotFoundError:
                raise DamagedFile(path, "missing") from None
            except (ValueError, OSError) as error:
                raise DamagedFile(path, f"not readable JSON ({error})") from None
            if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
                raise DamagedFile(path, f"not a format-{FORMAT} snapshot manifest")
            self._manifest = manifest
        return self._manifest

    def has(self, part: str) -> bool:
        return part in self.manifest().get("files", {})

    def read_part(self, part: str) -> Any:
        """The verified, parsed content of ``part`` (e.g. ``tables/alerts.json``).

        Raises:
            DamagedFile: the file is missing, its size or SHA-256 differs from the manifest's,
                or it is not JSON.
        """
        expected = self.manifest()["files"].get(part)
        path = self.folder / part
        if expected is None:
            raise DamagedFile(path, "not listed in the manifest")
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise DamagedFile(path, "missing") from None
        if len(data) != expected["bytes"]:
            raise DamagedFile(path, f"{len(data):,} bytes, the manifest says {expected['bytes']:,}")
        if _sha256(data) != expected["sha256"]:
            raise DamagedFile(path, "its SHA-256 differs from the manifest's")
        try:
            return json.loads(data)
        except ValueError as error:
            raise DamagedFile(path, f"not readable JSON ({error})") from None

    def items(self, logical: str) -> list[dict[str, Any]]:
        return self.read_part(f"tables/{logical}.json")

    def messages(self, logical: str) -> list[StoredMessage]:
        return [StoredMessage(**m) for m in _decode(self.read_part(f"queues/{logical}.json"))]

    def objects(self) -> list[ObjectEntry]:
        return [ObjectEntry(**entry) for entry in self.read_part("bucket.json")]

    def object_body(self, entry: ObjectEntry) -> bytes:
        """The verified body of ``entry``.

        Raises:
            DamagedFile: the stored body is missing or differs from its SHA-256.
        """
        path = _object_path(self.root, entry.sha256)
        try:
            body = path.read_bytes()
        except FileNotFoundError:
            raise DamagedFile(path, f"missing (object {entry.key!r})") from None
        if len(body) != entry.bytes or _sha256(body) != entry.sha256:
            raise DamagedFile(path, f"differs from its SHA-256 (object {entry.key!r})")
        return body

    def object_hashes(self) -> set[str]:
        return {entry.sha256 for entry in self.objects()}

    def remove(self) -> None:
        shutil.rmtree(self.folder)


class LegacyGeneration(Generation):
    """A snapshot in the layout of earlier versions (no checksums: readable JSON is all a restore
    can check)."""

    def __init__(self, root: Path):
        super().__init__(root, root)
        self.name = "legacy"

    def manifest(self) -> dict[str, Any]:
        if self._manifest is None:
            path = self.folder / "manifest.json"
            try:
                self._manifest = json.loads(path.read_bytes())
            except (ValueError, OSError) as error:
                raise DamagedFile(path, f"not readable JSON ({error})") from None
        return self._manifest

    def has(self, part: str) -> bool:
        return part == "bucket.json" or (self.folder / part).is_file()

    def read_part(self, part: str) -> Any:
        path = self.folder / part
        try:
            return json.loads(path.read_bytes())
        except (ValueError, OSError) as error:
            raise DamagedFile(path, f"not readable JSON ({error})") from None

    def items(self, logical: str) -> list[dict[str, Any]]:
        def wire(value: Any) -> Any:
            if isinstance(value, dict):
                if set(value) == {_BINARY_TAG}:
                    return value[_BINARY_TAG]
                return {k: wire(v) for k, v in value.items()}
            if isinstance(value, list):
                return [wire(v) for v in value]
            return value

        return wire(self.read_part(f"tables/{logical}.json"))

    def messages(self, logical: str) -> list[StoredMessage]:
        saved = self.read_part(f"queues/{logical}.json")
        return [
            StoredMessage(
                message_id=str(uuid.uuid4()),
                body=message["body"],
                attributes=_decode(message.get("attributes") or {}),
                receive_count=0,
                sent_timestamp=None,
            )
            for message in saved
        ]

    def objects(self) -> list[ObjectEntry]:
        bucket = self.folder / "bucket"
        entries = []
        for path in sorted(p for p in bucket.rglob("*") if p.is_file()):
            entries.append(
                ObjectEntry(
                    key=path.relative_to(bucket).as_posix(),
                    sha256="",
                    bytes=path.stat().st_size,
                )
            )
        return entries

    def object_body(self, entry: ObjectEntry) -> bytes:
        path = self.folder / "bucket" / entry.key
        try:
            return path.read_bytes()
        except OSError as error:
            raise DamagedFile(path, f"not readable ({error})") from None

    def object_hashes(self) -> set[str]:
        return set()

    def remove(self) -> None:
        for name in ("tables", "queues", "bucket"):
            shutil.rmtree(self.folder / name, ignore_errors=True)
        (self.folder / "manifest.json").unlink(missing_ok=True)


def _object_path(root: Path, sha256: str) -> Path:
    return root / "objects" / sha256[:2] / sha256


def generations(root: Path) -> list[Generation]:
    """Every generation in ``root``, newest first (a snapshot of earlier versions last)."""
    found: list[Generation] = []
    folder = root / "generations"
    if folder.is_dir():
        found = [
            Generation(root, path)
            for path in sorted(folder.iterdir(), reverse=True)
            if path.is_dir() and not path.name.startswith(".")
        ]
    if (root / "manifest.json").is_file():
        found.append(LegacyGeneration(root))
    return found


# -- saving ------------------------------------------------------------------------------------
@dataclass
class SaveResult:
    generation: str
    counts: dict[str, int]
    expired: dict[str, int]
    new_objects: int


def save_snapshot(state: MotoState, targets: SnapshotTargets, root: Path) -> SaveResult:
    """Write everything the backend holds as a new generation in ``root``; prune old ones.

    The caller makes sure nothing writes to the backend meanwhile (the server's gate is closed).
    """
    root.mkdir(parents=True, exist_ok=True)
    for leftover in root.glob(".staging-*"):
        shutil.rmtree(leftover, ignore_errors=True)
    staging = root / f".staging-{uuid.uuid4().hex[:12]}"
    (staging / "tables").mkdir(parents=True)
    (staging / "queues").mkdir()
    files: dict[str, dict[str, Any]] = {}
    counts: dict[str, int] = {}
    expired: dict[str, int] = {}

    def put(part: str, content: Any) -> None:
        data = json.dumps(content, separators=(",", ":")).encode()
        (staging / part).write_bytes(data)
        files[part] = {"sha256": _sha256(data), "bytes": len(data)}

    now = time.time()
    for logical, name in targets.tables.items():
        items = state.table_items(name)
        attribute = targets.ttl_attributes.get(logical)
        if attribute:
            kept = [item for item in items if not _expired(item, attribute, now)]
            if len(kept) < len(items):
                expired[f"table:{logical}"] = len(items) - len(kept)
            items = kept
        put(f"tables/{logical}.json", items)
        counts[f"table:{logical}"] = len(items)

    index = []
    new_objects = 0
    for stored in state.bucket_objects(targets.bucket):
        digest = _sha256(stored.body)
        path = _object_path(root, digest)
        if not (path.is_file() and path.stat().st_size == len(stored.body)):
            path.parent.mkdir(parents=True, exist_ok=True)
            _write_atomically(path, stored.body)
            new_objects += 1
        index.append(
            asdict(
                ObjectEntry(
                    key=stored.key,
                    sha256=digest,
                    bytes=len(stored.body),
                    metadata=stored.metadata,
                    last_modified=stored.last_modified,
                )
            )
        )
    put("bucket.json", index)
    counts["bucket"] = len(index)

    for logical, name in targets.queues.items():
        messages = state.queue_messages(name)
        put(f"queues/{logical}.json", _encode([asdict(m) for m in messages]))
        counts[f"queue:{logical}"] = len(messages)

    # One flush of everything written (object bodies included) costs less than an fsync per
    # file; the manifest, written after it, is what makes the generation exist.
    os.sync()
    saved_at = datetime.now(UTC)
    manifest = {
        "format": FORMAT,
        "saved_at": saved_at.isoformat(),
        "counts": counts,
        "expired_left_out": expired,
        "files": files,
    }
    _write_atomically(
        staging / "manifest.json", json.dumps(manifest, indent=1).encode(), durable=True
    )
    folder = root / "generations"
    folder.mkdir(exist_ok=True)
    stamp = saved_at.strftime("%Y%m%dT%H%M%S.%fZ")
    name, repeat = stamp, 0
    while (folder / name).exists():
        repeat += 1
        name = f"{stamp}-{repeat}"
    staging.rename(folder / name)
    _fsync_directory(folder)
    prune(root)
    log.info("snapshot %s saved: %s (%d new object bodies)", name, counts, new_objects)
    return SaveResult(name, counts, expired, new_objects)


def prune(root: Path, keep: int = KEEP_GENERATIONS) -> list[str]:
    """Delete the generations beyond the newest ``keep`` (never a damaged one), then the object
    bodies no kept generation refers to. Returns the names deleted."""
    found = generations(root)
    removed = []
    for generation in found[keep:]:
        if generation.damaged_marker.is_file():
            continue
        generation.remove()
        removed.append(generation.name)
    kept = [g for g in found if g.name not in removed]
    referenced: set[str] = set()
    for generation in kept:
        try:
            referenced |= generation.object_hashes()
        except DamagedFile:
            # Without a readable index no restore can reach this generation's bodies.
            continue
    store = root / "objects"
    if store.is_dir():
        for path in store.glob("*/*"):
            if path.name not in referenced and not path.name.startswith("."):
                path.unlink(missing_ok=True)
    return removed


# -- restoring ---------------------------------------------------------------------------------
@dataclass
class Damage:
    """One damaged file a restore found, and what it did instead."""

    file: str
    problem: str
    instead: str

    def describe(self) -> str:
        return f"{self.file} is damaged ({self.problem}): {self.instead}"


@dataclass
class RestoreReport:
    generation: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    damaged: list[Damage] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "generation": self.generation,
            "counts": self.counts,
            "damaged": [asdict(d) for d in self.damaged],
        }


def _mark_damaged(generation: Generation, damage: list[Damage]) -> None:
    try:
        _write_atomically(
            generation.damaged_marker, json.dumps([asdict(d) for d in damage], indent=1).encode()
        )
    except OSError as error:
        log.error("cannot mark %s damaged: %s", generation.folder, error)


def restore_snapshot(state: MotoState, targets: SnapshotTargets, root: Path) -> RestoreReport:
    """Verify the newest snapshot in ``root``, then load it into the (empty) backend.

    Everything is checked before anything is loaded. A damaged file is reported by name and
    its part is taken from the newest older generation that holds it intact (or left empty
    when none does); the generation it was found in is marked damaged and kept.
    """
    report = RestoreReport()
    damaged_in: dict[str, tuple[Generation, list[Damage]]] = {}

    def note(generation: Generation, error: DamagedFile, instead: str) -> None:
        damage = Damage(str(error.path), error.problem, instead)
        report.damaged.append(damage)
        damaged_in.setdefault(generation.name, (generation, []))[1].append(damage)
        log.error("snapshot: %s", damage.describe())

    found = generations(root)
    readable: list[Generation] = []
    for position, generation in enumerate(found):
        try:
            generation.manifest()
        except DamagedFile as error:
            older = next((g.name for g in found[position + 1 :]), "none")
            note(generation, error, f"the whole generation is skipped (next older: {older})")
            continue
        readable.append(generation)

    def intact(part: str, read: Callable[[Generation], T]) -> tuple[Generation, T] | None:
        """``read`` from the newest generation whose ``part`` verifies (None: the newest one
        has no such part, or none holds it intact)."""
        for position, generation in enumerate(readable):
            if not generation.has(part):
                if position == 0:
                    return None
                continue
            try:
                return generation, read(generation)
            except DamagedFile as error:
                older = next((g.name for g in readable[position + 1 :] if g.has(part)), None)
                instead = (
                    f"taken from the older snapshot {older}"
                    if older
                    else "nothing restored for it (no older snapshot holds it)"
                )
                note(generation, error, instead)
        return None

    tables: dict[str, list[dict[str, Any]]] = {}
    for logical in targets.tables:
        found_items = intact(f"tables/{logical}.json", lambda g, lg=logical: g.items(lg))
        tables[logical] = found_items[1] if found_items else []
    queues: dict[str, list[StoredMessage]] = {}
    for logical in targets.queues:
        found_messages = intact(f"queues/{logical}.json", lambda g, lg=logical: g.messages(lg))
        queues[logical] = found_messages[1] if found_messages else []
    objects: list[tuple[ObjectEntry, bytes]] = []
    index = intact("bucket.json", lambda g: g.objects())
    if index is not None:
        source, entries = index
        for entry in entries:
            try:
                objects.append((entry, source.object_body(entry)))
            except DamagedFile as error:
                note(source, error, "this object is not restored")
    for generation, damage in damaged_in.values():
        _mark_damaged(generation, damage)
    if not readable:
        return report

    report.generation = readable[0].name
    for logical, items in tables.items():
        state.put_table_items(targets.tables[logical], items)
        report.counts[f"table:{logical}"] = len(items)
    for entry, body in objects:
        state.put_object(
            targets.bucket,
            StoredObject(entry.key, body, entry.metadata, entry.last_modified or _now_iso()),
        )
    report.counts["bucket"] = len(objects)
    for logical, messages in queues.items():
        state.put_queue_messages(targets.queues[logical], messages)
        report.counts[f"queue:{logical}"] = len(messages)
    log.info("snapshot %s restored: %s", report.generation, report.counts)
    return report


def _now_iso() -> str:
    return datetime.now(UTC).replace(tzinfo=None).isoformat()


# -- describing --------------------------------------------------------------------------------
def snapshot_summary(root: Path) -> dict[str, Any] | None:
    """What ``kit local status`` shows: the newest readable generation's time and counts, and
    every generation that is unreadable or marked damaged. Reads manifests only (no checksum),
    and never raises on a damaged file."""
    found = generations(root)
    if not found:
        return None
    summary: dict[str, Any] = {"generations": len(found), "problems": []}
    for generation in found:
        try:
            manifest = generation.manifest()
        except DamagedFile as error:
            summary["problems"].append(f"{generation.name}: {error}")
            continue
        if "saved_at" not in summary:
            summary.update(
                generation=generation.name,
                saved_at=manifest.get("saved_at"),
                counts=manifest.get("counts", {}),
            )
        marker = generation.damaged_marker
        if marker.is_file():
            try:
                for damage in json.loads(marker.read_bytes()):
                    summary["problems"].append(
                        f"{generation.name}: {damage['file']} is damaged ({damage['problem']})"
                    )
            except (ValueError, OSError, KeyError, TypeError):
                summary["problems"].append(f"{generation.name}: marked damaged ({marker})")
    return summary
