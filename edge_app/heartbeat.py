"""Heartbeats: what a device tells the backend about itself every few seconds.

A camera is ``degraded`` while its source delivers frames but the model it should run cannot be
loaded (it runs an older one, or none); the device's ``spool_error`` says why the spool cannot
keep everything on disk (a full or read-only disk). Both are ``DEGRADED`` for the backend.
"""

from __future__ import annotations

from collections.abc import Mapping

from edge_app import __version__
from edge_app.sources import CameraState, SourceStatus
from kit.core.contracts import CameraHealth, DroppedCounts, Heartbeat, ModelRef

MAX_ERROR_CHARS = next(
    rule.max_length
    for rule in CameraHealth.model_fields["error"].metadata
    if hasattr(rule, "max_length")
)
"""The longest error a heartbeat carries per camera; a longer one is cut (inference runtimes
can raise pages of text, and a heartbeat that fails validation would not be sent at all)."""

DEGRADED = "degraded"
"""A camera's state while its frames arrive but the model it should run cannot be loaded."""


def _cut(error: str | None) -> str | None:
    if error is not None and len(error) > MAX_ERROR_CHARS:
        return error[: MAX_ERROR_CHARS - 1] + "…"
    return error


def camera_health(
    source: SourceStatus,
    *,
    model: ModelRef | None,
    published: int,
    error: str | None,
    degraded: bool = False,
    stopping: bool = False,
) -> CameraHealth:
    """One camera's part of a heartbeat: its source's health and what its pipeline runs.

    Args:
        source: the camera source's status (a reader's, or a Panorama stream's).
        model: the model the camera runs (None before the first one loaded).
        published: frames published since start.
        error: the pipeline's error (a model that failed to load, a frame that failed).
        degraded: the model the camera should run cannot be loaded: a running source is
            reported ``degraded``.
        stopping: the device is stopping: the camera is reported stopped.

    While the source is not running its own error and state win: without frames nothing else
    matters.
    """
    running = source.state is CameraState.RUNNING
    reported = _cut(error if running else source.last_error)
    if stopping:
        state = CameraState.STOPPED.value
    elif running and degraded:
        state = DEGRADED
    else:
        state = source.state.value
    return CameraHealth(
        state=state,
        fps=round(source.fps, 2),
        last_frame_at=source.last_frame_at,
        model=model,
        frames_published=published,
        reconnects=source.reconnects,
        error=reported,
    )


def build_heartbeat(
    device_id: str,
    uptime_s: float,
    cameras: Mapping[str, CameraHealth],
    spool_stats: Mapping[str, object],
) -> Heartbeat:
    """A :class:`Heartbeat` from the cameras' health and the spool's counters and error."""
    dropped = spool_stats.get("dropped", {})
    return Heartbeat(
        device_id=device_id,
        app_version=__version__,
        uptime_s=round(uptime_s, 1),
        cameras=dict(cameras),
        spool_depth=int(spool_stats.get("depth", 0)),
        spool_bytes=int(spool_stats.get("bytes_used", 0)),
        dropped=DroppedCounts(frames=dropped.get("frame", 0), payloads=dropped.get("payload", 0)),
        spool_error=_cut(spool_stats.get("error")),
    )
