"""Counts over time of one camera, kept from the payloads ``GET /detections`` returns.

The first read takes the newest payloads of the window; later reads ask only for what came after
the newest one kept (``since`` is inclusive, so that one comes again and is recognised by its
``payload_id``). A series per class over the whole frame, and per class and zone (``"fish in
tank"``); a class a payload does not report counts 0 there, as the rules count it.

Examples:
    >>> history = CountHistory(window_s=600)
    >>> history.add([
    ...     {"payload_id": "a", "captured_at": "2026-01-31T12:00:00Z", "counts": {"bottle": 3}},
    ...     {"payload_id": "b", "captured_at": "2026-01-31T12:00:05Z", "counts": {"bottle": 2}},
    ... ])
    True
    >>> history.series()["bottle"][1]
    [3, 2]
    >>> history.next_query(now=None)["since"]
    '2026-01-31T12:00:05.000000Z'
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

DEFAULT_WINDOW_S = 900
DEFAULT_MAX_POINTS = 300


def parse_time(text: str) -> datetime:
    """An ISO time from the API (``...Z`` or with an offset) as an aware UTC datetime.

    Raises:
        ValueError: the text is not an ISO time with a timezone.
    """
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError(f"time {text!r} has no timezone; the API sends UTC times ending in Z")
    return value.astimezone(UTC)


def iso(value: datetime) -> str:
    """``2026-01-31T12:00:00.000000Z``: the form the API sorts and filters by."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class CountPoint:
    """One payload's counts: per class, and per ``"<class> in <zone>"``."""

    payload_id: str
    captured_at: datetime
    counts: dict[str, int]

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> CountPoint:
        """From a ``DetectionPayload`` as JSON."""
        counts = {str(name): int(n) for name, n in (payload.get("counts") or {}).items()}
        for zone, per_class in (payload.get("zone_counts") or {}).items():
            for name, n in per_class.items():
                counts[f"{name} in {zone}"] = int(n)
        return cls(str(payload["payload_id"]), parse_time(payload["captured_at"]), counts)


class CountHistory:
    """A camera's recent counts, for the chart.

    Args:
        window_s: keep payloads captured at most this long before the newest one.
        max_points: keep at most this many (the newest).
    """

    def __init__(self, window_s: float = DEFAULT_WINDOW_S, max_points: int = DEFAULT_MAX_POINTS):
        if window_s <= 0 or max_points < 1:
            raise ValueError(
                f"window_s must be > 0 and max_points >= 1 (got {window_s}, {max_points})"
            )
        self.window_s = window_s
        self.max_points = max_points
        self._points: dict[str, CountPoint] = {}

    def __len__(self) -> int:
        return len(self._points)

    @property
    def points(self) -> list[CountPoint]:
        """The kept payloads, oldest first."""
        return sorted(self._points.values(), key=lambda p: (p.captured_at, p.payload_id))

    def add(self, payloads: Iterable[dict[str, Any]]) -> bool:
        """Keep ``payloads`` (any order; repeats ignored); True when something new was kept."""
        before = set(self._points)
        for payload in payloads:
            point = CountPoint.from_payload(payload)
            self._points.setdefault(point.payload_id, point)
        self._trim()
        return set(self._points) != before

    def _trim(self) -> None:
        points = self.points
        if not points:
            return
        oldest_kept = points[-1].captured_at - timedelta(seconds=self.window_s)
        kept = [p for p in points if p.captured_at >= oldest_kept][-self.max_points :]
        self._points = {p.payload_id: p for p in kept}

    def next_query(self, now: datetime | None) -> dict[str, Any]:
        """The ``GET /detections`` parameters for the next read.

        Args:
            now: the current time (used for the first read's window start).

        Returns:
            ``since``, ``order`` and ``limit``: the newest of the window first when nothing is
            kept yet, else everything from the newest kept payload on, oldest first.
        """
        points = self.points
        if not points:
            start = (now or datetime.now(UTC)) - timedelta(seconds=self.window_s)
            return {"since": iso(start), "order": "desc", "limit": self.max_points}
        return {
            "since": iso(points[-1].captured_at),
            "order": "asc",
            "limit": self.max_points,
        }

    def series(self) -> dict[str, tuple[list[datetime], list[int]]]:
        """Per series name, the times and counts (0 where a payload did not report it)."""
        points = self.points
        names = sorted({name for p in points for name in p.counts})
        times = [p.captured_at for p in points]
        return {name: (times, [p.counts.get(name, 0) for p in points]) for name in names}

    def latest_counts(self) -> dict[str, int]:
        """The newest payload's counts ({} when none)."""
        points = self.points
        return dict(points[-1].counts) if points else {}
