"""Waiting for a condition, the one way tests synchronise with threads and processes.

A test never sleeps a fixed time and hopes: it waits until what it needs is true, with a timeout
long enough for a loaded machine, and fails naming what it waited for.

Examples:
    >>> from tests.support.wait import wait_until
    >>> wait_until(lambda: 1 + 1, what="arithmetic")
    2
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

DEFAULT_TIMEOUT_S = 60.0
"""Long enough for a busy, shared two-core machine; a passing wait returns as soon as it can."""


def wait_until(
    condition: Callable[[], T],
    timeout: float = DEFAULT_TIMEOUT_S,
    *,
    interval: float = 0.02,
    what: str | None = None,
) -> T:
    """Call ``condition`` until it returns something truthy; return that.

    Exceptions raised by ``condition`` count as "not yet" (the last one is reported).

    Raises:
        AssertionError: ``timeout`` seconds passed; the message names ``what`` (or the condition).
    """
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            value = condition()
            if value:
                return value
        except Exception as error:  # noqa: BLE001 - any failure means "not yet"
            last_error = error
        if time.monotonic() >= deadline:
            name = what or getattr(condition, "__name__", "a condition")
            detail = f"; last error: {last_error!r}" if last_error else ""
            raise AssertionError(f"timed out after {timeout:g} s waiting for {name}{detail}")
        time.sleep(interval)
