"""Reading a JSON file with a `DatasetFormatError` for syntax errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kit.data.core import DatasetFormatError


def read_json(path: Path, *, expected: str) -> Any:
    """Parsed JSON of ``path``; invalid JSON raises `DatasetFormatError` with its line."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise DatasetFormatError(
            path,
            f"line {error.lineno} column {error.colno}",
            f"not valid JSON ({error.msg})",
            expected,
        ) from None
