"""Whether the backend answers, how long to wait before asking again, and what is due when.

Plain classes the dashboard's poller uses; time is always passed in, so they test without
sleeping.

Examples:
    >>> from datetime import UTC, datetime
    >>> state = BackendState(backoff=Backoff(initial_s=1, max_s=8))
    >>> t = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)
    >>> [state.failed("ConnectionError", t) for _ in range(5)]
    [1.0, 2.0, 4.0, 8.0, 8.0]
    >>> state.reachable, state.down_since == t
    (False, True)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff: ``initial_s``, doubled after each further failure, at most ``max_s``."""

    initial_s: float = 1.0
    max_s: float = 30.0

    def __post_init__(self) -> None:
        if not 0 < self.initial_s <= self.max_s:
            raise ValueError(
                f"backoff needs 0 < initial_s <= max_s (got initial_s={self.initial_s}, "
                f"max_s={self.max_s})"
            )

    def delay_s(self, failures: int) -> float:
        """Seconds to wait after ``failures`` failures in a row (0 after none)."""
        if failures <= 0:
            return 0.0
        return float(min(self.max_s, self.initial_s * 2 ** min(failures - 1, 30)))


@dataclass
class BackendState:
    """What the dashboard knows about the backend's reachability.

    Attributes:
        reachable: None before the first answer, then whether the last attempt got one.
        down_since: when the current outage was first seen.
        failures: failed attempts in a row.
        last_error: the newest failure's text.
        last_ok: when an answer last came.
        recovered_after_s: how long the last outage lasted (None if there was none).
    """

    backoff: Backoff = field(default_factory=Backoff)
    reachable: bool | None = None
    down_since: datetime | None = None
    failures: int = 0
    last_error: str | None = None
    last_ok: datetime | None = None
    recovered_after_s: float | None = None

    def failed(self, error: str, now: datetime) -> float:
        """Record a failed attempt at ``now``; returns the seconds to wait before the next one."""
        if self.reachable is not False:
            self.down_since = now
        self.reachable = False
        self.failures += 1
        self.last_error = error
        return self.retry_in_s

    def succeeded(self, now: datetime) -> None:
        """Record an answer at ``now`` (ends an outage; its length is kept)."""
        if self.reachable is False and self.down_since is not None:
            self.recovered_after_s = (now - self.down_since).total_seconds()
        self.reachable = True
        self.down_since = None
        self.failures = 0
        self.last_error = None
        self.last_ok = now

    @property
    def retry_in_s(self) -> float:
        """Seconds until the next attempt while the backend is unreachable (0 when it answers)."""
        return self.backoff.delay_s(self.failures)


class Schedule:
    """When each recurring job (``"alerts"``, ``("frame", "shelf-1")`` …) is due next.

    Examples:
        >>> s = Schedule()
        >>> s.is_due("alerts", now=0.0)
        True
        >>> s.done("alerts", every_s=5, now=0.0); s.is_due("alerts", now=4.9), s.next_in(now=1.0)
        (False, 4.0)
    """

    def __init__(self) -> None:
        self._next_at: dict[object, float] = {}

    def is_due(self, job: object, now: float) -> bool:
        """Whether ``job`` should run at ``now`` (a job never run is due)."""
        return self._next_at.get(job, float("-inf")) <= now

    def done(self, job: object, every_s: float, now: float) -> None:
        """``job`` ran at ``now``; it is next due ``every_s`` later."""
        self._next_at[job] = now + every_s

    def forget(self, job: object) -> None:
        """Drop ``job`` (e.g. a camera that went away)."""
        self._next_at.pop(job, None)

    def reset(self) -> None:
        """Make every job due at once."""
        self._next_at.clear()

    def next_in(self, now: float) -> float:
        """Seconds until the next job is due (0 if one is due; inf without jobs)."""
        if not self._next_at:
            return float("inf")
        return max(0.0, min(self._next_at.values()) - now)
