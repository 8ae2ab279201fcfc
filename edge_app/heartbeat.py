"""Heartbeats: what a device tells the backend about itself every few seconds."""

from __future__ import annotations

from collections.abc import Mapping

from edge_app import __version__
from edge_app.sources import CameraStatus
from kit.core.contracts import CameraHealth, DroppedCounts, Heartbeat, ModelRef


def build_heartbeat(
    device_id: str,
    uptime_s: float,
    statuses: Mapping[str, CameraStatus],
    *,
    models: Mapping[str, ModelRef | None],
    published: Mapping[str, int],
    errors: Mapping[str, str | None],
    spool_stats: Mapping[str, object],
) -> Heartbeat:
    """A :class:`Heartbeat` from the cameras' statuses and the spool's counters.

    ``errors`` carries per-camera pipeline errors (e.g. a model that failed to load); while a
    camera is not running, its reader's error wins, since without frames nothing else matters.
    """
    cameras = {}
    for camera_id, status in statuses.items():
        cameras[camera_id] = CameraHealth(
            state=status.state.value,
            fps=round(status.fps, 2),
            last_frame_at=status.last_frame_at,
            model=models.get(camera_id),
            frames_published=published.get(camera_id, 0),
            reconnects=status.reconnects,
            error=errors.get(camera_id) if status.state.value == "running" else status.last_error,
        )
    dropped = spool_stats.get("dropped", {})
    return Heartbeat(
        device_id=device_id,
        app_version=__version__,
        uptime_s=round(uptime_s, 1),
        cameras=cameras,
        spool_depth=int(spool_stats.get("depth", 0)),
        spool_bytes=int(spool_stats.get("bytes_used", 0)),
        dropped=DroppedCounts(frames=dropped.get("frame", 0), payloads=dropped.get("payload", 0)),
    )
