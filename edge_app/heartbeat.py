"""Heartbeats: what a device tells the backend about itself every few seconds."""

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


def camera_health(
    source: SourceStatus,
    *,
    model: ModelRef | None,
    published: int,
    error: str | None,
    stopping: bool = False,
) -> CameraHealth:
    """One camera's part of a heartbeat: its source's health and what its pipeline runs.

    Args:
        source: the camera source's status (a reader's, or a Panorama stream's).
        model: the model the camera runs (None before the first one loaded).
        published: frames published since start.
        error: the pipeline's error (a model that failed to load, a frame that failed).
        stopping: the device is stopping: the camera is reported stopped.

    While the source is not running its own error wins: without frames nothing else matters.
    """
    reported = error if source.state is CameraState.RUNNING else source.last_error
    if reported is not None and len(reported) > MAX_ERROR_CHARS:
        reported = reported[: MAX_ERROR_CHARS - 1] + "…"
    state = CameraState.STOPPED if stopping else source.state
    return CameraHealth(
        state=state.value,
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
    """A :class:`Heartbeat` from the cameras' health and the spool's counters."""
    dropped = spool_stats.get("dropped", {})
    return Heartbeat(
        device_id=device_id,
        app_version=__version__,
        uptime_s=round(uptime_s, 1),
        cameras=dict(cameras),
        spool_depth=int(spool_stats.get("depth", 0)),
        spool_bytes=int(spool_stats.get("bytes_used", 0)),
        dropped=DroppedCounts(frames=dropped.get("frame", 0), payloads=dropped.get("payload", 0)),
    )
