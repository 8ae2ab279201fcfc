"""Waiting for a condition, the one way tests synchronise with threads and processes.

A test never sleeps a fixed time and hopes: it waits until what it needs is true, with a timeout
long enough for a loaded machine, and fails naming what it waited for. A test that checks that
processes stopped looks only at processes it started (their pids, as kit recorded them, and
their descendants), never at every process of the machine: other stacks may run there.

Examples:
    >>> from tests.support.wait import wait_until
    >>> wait_until(lambda: 1 + 1, what="arithmetic")
    2
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import TypeVar

import psutil

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


def process_tree(pid: int) -> list[psutil.Process]:
    """The running process ``pid`` and all its descendants, as handles that stay bound to these
    processes (a pid the system reuses later is not mistaken for them)."""
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def still_running(processes: Iterable[psutil.Process]) -> list[psutil.Process]:
    """Those of ``processes`` that still run; one that exited but is not reaped yet (a zombie)
    does not count."""
    running = []
    for process in processes:
        try:
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                running.append(process)
        except psutil.NoSuchProcess:
            continue
    return running


def wait_until_exited(
    processes: Iterable[psutil.Process], timeout: float = DEFAULT_TIMEOUT_S, *, what: str
) -> None:
    """Wait until none of ``processes`` runs.

    Raises:
        AssertionError: some still run after ``timeout`` seconds; the message names ``what`` and
            lists their pids and command lines.
    """
    processes = list(processes)
    try:
        wait_until(lambda: not still_running(processes), timeout, what=f"{what} to exit")
    except AssertionError as error:
        survivors = []
        for process in still_running(processes):
            try:
                survivors.append(f"pid {process.pid}: {' '.join(process.cmdline())}")
            except psutil.Error:
                continue
        raise AssertionError(f"{error}; still running: {survivors}") from None
