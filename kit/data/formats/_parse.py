"""Small readers that turn a malformed value into a `DatasetFormatError` with context."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from kit.data.core import DatasetFormatError


def short(value: Any, limit: int = 80) -> str:
    """``repr`` of a value, cut to ``limit`` characters for error messages."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def require_mapping(value: Any, *, file: Path, location: str, expected: str) -> dict:
    """The value itself when it is a JSON object, else a `DatasetFormatError`."""
    if not isinstance(value, dict):
        raise DatasetFormatError(
            file, location, f"found {type(value).__name__} {short(value)}", expected
        )
    return value


def require_list(value: Any, *, file: Path, location: str, expected: str) -> list:
    """The value itself when it is a JSON array, else a `DatasetFormatError`."""
    if not isinstance(value, list):
        raise DatasetFormatError(
            file, location, f"found {type(value).__name__} {short(value)}", expected
        )
    return value


def require_key(mapping: Any, key: str, *, file: Path, location: str, expected: str) -> Any:
    """``mapping[key]``, or a `DatasetFormatError` naming the missing key."""
    require_mapping(mapping, file=file, location=location, expected=expected)
    if key not in mapping:
        present = ", ".join(sorted(map(str, mapping))) or "none"
        raise DatasetFormatError(
            file, location, f"missing key {key!r} (keys present: {present})", expected
        )
    return mapping[key]


def as_number(
    value: Any, *, file: Path, location: str, name: str, minimum: float | None = None
) -> float:
    """A finite float (optionally ``>= minimum``), or a `DatasetFormatError`."""
    expected = "a finite number" if minimum is None else f"a finite number >= {minimum:g}"
    if isinstance(value, bool):
        raise DatasetFormatError(file, location, f"{name} is {short(value)}", expected)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise DatasetFormatError(file, location, f"{name} is {short(value)}", expected) from None
    if not math.isfinite(number) or (minimum is not None and number < minimum):
        raise DatasetFormatError(file, location, f"{name} is {short(value)}", expected)
    return number


def as_int(value: Any, *, file: Path, location: str, name: str, minimum: int | None = None) -> int:
    """An integer (``3`` and ``3.0`` and ``"3"`` accepted), or a `DatasetFormatError`."""
    expected = "an integer" if minimum is None else f"an integer >= {minimum}"
    number = None if isinstance(value, bool) else _to_float(value)
    if number is None or not number.is_integer() or (minimum is not None and number < minimum):
        raise DatasetFormatError(file, location, f"{name} is {short(value)}", expected)
    return int(number)


def _to_float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None
