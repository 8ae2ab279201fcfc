"""CameraSet: a device's readers side by side (the edge app's cameras); a broken camera never
stops the others."""

from __future__ import annotations

import json

import pytest

from edge_app.sources import BackoffPolicy, CameraReader, CameraSet, CameraState
from tests.support.wait import wait_until

TINY_BACKOFF = BackoffPolicy(initial_s=0.01, factor=2, max_s=0.05, jitter=0)


def test_broken_cameras_do_not_stop_a_good_one(tmp_path, make_video) -> None:
    corrupt = tmp_path / "corrupt.avi"
    corrupt.write_bytes(b"garbage" * 100)
    sources = {
        "good": {"uri": str(make_video(frames=10)), "loop": True, "fps": 50},
        "missing": str(tmp_path / "missing.mp4"),
        "corrupt": str(corrupt),
    }

    with CameraSet.from_sources(sources, backoff=TINY_BACKOFF) as cameras:
        wait_until(lambda: cameras["missing"].reconnects >= 3, what="missing reconnecting")
        wait_until(lambda: cameras["corrupt"].reconnects >= 3, what="corrupt reconnecting")
        frames_then = cameras["good"].frame_count
        wait_until(
            lambda: cameras["good"].frame_count >= frames_then + 10, what="good's next frames"
        )
        states = cameras.states()
        statuses = cameras.statuses()

    assert states == {
        "good": CameraState.RUNNING,
        "missing": CameraState.RECONNECTING,
        "corrupt": CameraState.RECONNECTING,
    }
    assert statuses["good"].last_error is None
    assert "missing.mp4" in statuses["missing"].last_error
    json.dumps({cid: status.as_dict() for cid, status in statuses.items()})  # heartbeat-ready
    assert set(cameras.states().values()) == {CameraState.STOPPED}


def test_stop_all_is_prompt_even_during_backoff(tmp_path, make_video) -> None:
    """Readers waiting out a backoff far longer than the stop timeout still end within it."""
    slow_retry = BackoffPolicy(initial_s=600, max_s=600, jitter=0)
    cameras = CameraSet(
        [
            CameraReader(f"broken-{n}", str(tmp_path / f"{n}.mp4"), backoff=slow_retry)
            for n in range(4)
        ]
        + [CameraReader("good", {"uri": str(make_video()), "loop": True})]
    ).start()
    wait_until(
        lambda: all(state is not CameraState.STARTING for state in cameras.states().values()),
        what="every reader past starting",
    )
    assert {cameras[f"broken-{n}"].state for n in range(4)} == {CameraState.RECONNECTING}

    assert cameras.stop(timeout=60) is True, "every reader thread ended within the timeout"

    assert set(cameras.states().values()) == {CameraState.STOPPED}


def test_camera_ids_must_be_unique(make_video) -> None:
    video = str(make_video())
    cameras = CameraSet([CameraReader("a", video)])

    with pytest.raises(ValueError, match="'a' is already in the set"):
        cameras.add(CameraReader("a", video))


def test_lookup_names_known_cameras(make_video) -> None:
    cameras = CameraSet.from_sources({"a": str(make_video()), "b": "0"})

    assert cameras.camera_ids == ["a", "b"] and len(cameras) == 2 and "b" in cameras
    with pytest.raises(KeyError, match=r"no camera 'c'; cameras: \['a', 'b'\]"):
        cameras["c"]
