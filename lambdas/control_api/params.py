"""Query-string and path parameters of the control API, checked with clear 400s."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime

from kit.core.contracts.base import IDENTIFIER_PATTERN, PATTERN_HELP
from kit.core.timefmt import parse_stamp
from lambdas.control_api.errors import ApiError

_IDENTIFIER = re.compile(IDENTIFIER_PATTERN)


def identifier(value: str | None, field: str, *, required: bool = True) -> str | None:
    """A camera/device/rule id; 400 naming ``field`` when missing or malformed."""
    if value is None or value == "":
        if required:
            raise ApiError.bad_field(field, None, f"required: {PATTERN_HELP[IDENTIFIER_PATTERN]}")
        return None
    if not _IDENTIFIER.match(value):
        raise ApiError.bad_field(field, value, PATTERN_HELP[IDENTIFIER_PATTERN])
    return value


def integer(params: Mapping[str, str], field: str, *, default: int, low: int, high: int) -> int:
    raw = params.get(field)
    if raw is None or raw == "":
        return default
    allowed = f"an integer from {low} to {high}"
    try:
        value = int(raw)
    except ValueError:
        raise ApiError.bad_field(field, raw, allowed) from None
    if not low <= value <= high:
        raise ApiError.bad_field(field, raw, allowed)
    return value


def timestamp(params: Mapping[str, str], field: str) -> datetime | None:
    raw = params.get(field)
    if raw is None or raw == "":
        return None
    try:
        return parse_stamp(raw)
    except ValueError:
        raise ApiError.bad_field(
            field, raw, "an ISO 8601 time with a timezone, e.g. 2026-01-31T12:00:00Z"
        ) from None


def choice(
    params: Mapping[str, str], field: str, choices: tuple[str, ...], default: str | None
) -> str | None:
    raw = params.get(field)
    if raw is None or raw == "":
        return default
    if raw not in choices:
        raise ApiError.bad_field(field, raw, f"one of {', '.join(choices)}")
    return raw


def revision(raw: str | None, field: str = "If-Match") -> int | None:
    """The revision a client read (``If-Match: 7``, quotes allowed), for optimistic updates."""
    if raw is None or raw.strip() in ("", "*"):
        return None
    text = raw.strip().removeprefix("W/").strip('"')
    if not text.isdigit():
        raise ApiError.bad_field(field, raw, "the config revision you read, e.g. 7")
    return int(text)
