"""Timestamps as the backend stores them: UTC ISO 8601 text that sorts in time order.

Every stored timestamp has the same shape (``2026-01-31T12:00:00.000000Z``: microseconds always,
``Z`` suffix), so DynamoDB sort keys and string comparisons order them correctly.

Examples:
    >>> from datetime import UTC, datetime
    >>> stamp(datetime(2026, 1, 31, 12, tzinfo=UTC))
    '2026-01-31T12:00:00.000000Z'
    >>> parse_stamp('2026-01-31T12:00:00.000000Z').hour
    12
"""

from __future__ import annotations

from datetime import UTC, datetime


def stamp(moment: datetime) -> str:
    """``moment`` (timezone-aware) as sortable UTC text with microseconds."""
    if moment.tzinfo is None:
        raise ValueError(f"timestamp {moment!r} has no timezone; the backend stores UTC only")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_stamp(text: str) -> datetime:
    """The timezone-aware datetime of a stored (or any ISO 8601, timezone-carrying) timestamp."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"timestamp {text!r} has no timezone; use e.g. 2026-01-31T12:00:00Z")
    return moment.astimezone(UTC)


def epoch_s(moment: datetime) -> int:
    """Whole seconds since the epoch (what DynamoDB TTL attributes hold)."""
    return int(moment.timestamp())
