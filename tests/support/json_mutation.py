"""JSON documents with one leaf replaced by raw JSON text (``Infinity``, ``1e309``, ...) that
``json.dumps`` would never write: what the fuzz tests send."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

MARK = "__fuzzed__"


def leaves(value: Any, path: tuple = ()) -> Iterator[tuple[tuple, Any]]:
    """(path, leaf) of every scalar in a JSON document."""
    if isinstance(value, dict):
        for key, child in value.items():
            yield from leaves(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from leaves(child, (*path, index))
    else:
        yield path, value


def with_raw(document: dict, path: tuple, literal: str) -> str:
    """``document`` (left unchanged) as JSON text with the raw JSON ``literal`` at ``path``."""
    document = json.loads(json.dumps(document))
    node = document
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = MARK
    return json.dumps(document).replace(f'"{MARK}"', literal)
