"""Waiting for a SageMaker job (training, Neo compilation): one polling loop for all of them."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from typing import Any


def poll_job(
    describe: Callable[[], dict[str, Any]],
    *,
    kind: str,
    job_name: str,
    status_key: str,
    final_states: Collection[str],
    completed: str,
    error: type[Exception],
    poll_s: float,
    timeout_s: float | None,
    progress: bool,
    on_described: Callable[[dict[str, Any], Any], str | None] | None = None,
) -> dict[str, Any]:
    """Call ``describe()`` every ``poll_s`` until ``described[status_key]`` is final; return it.

    Args:
        kind: what the job is, for messages (``"training job"``).
        completed: the final status that means success; any other final status raises ``error``.
        on_described: called with each description and the progress bar (or None); may return
            the text the bar shows after the job name.

    Raises:
        error: the job ended in another final state (with its ``FailureReason``).
        TimeoutError: still running after ``timeout_s``.
    """
    started = time.monotonic()
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=None, desc=job_name, bar_format="{desc} [{elapsed}]")
    try:
        while True:
            described = describe()
            status = described[status_key]
            shown = on_described(described, bar) if on_described is not None else None
            if bar is not None:
                bar.set_description_str(f"{job_name}: {shown or status}")
                bar.update(0)
            if status in final_states:
                break
            if timeout_s is not None and time.monotonic() - started > timeout_s:
                raise TimeoutError(f"{kind} {job_name} still {status} after {timeout_s:.0f} s")
            time.sleep(poll_s)
    finally:
        if bar is not None:
            bar.close()
    if status != completed:
        reason = described.get("FailureReason", "no reason given")
        raise error(f"{kind} {job_name} {status.lower()}: {reason}")
    return described
