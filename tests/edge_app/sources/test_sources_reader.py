"""CameraReader on files and image folders: order, pacing, latest-frame slot, failures, stop.

Nothing here depends on how fast the machine is: a test waits for the reader's state, and where it
is about pacing, the rates are chosen so that a wrong reader would need far longer than the
failure bound (a file at 0.01 fps shows its second frame after 100 s), not a little longer than
a right one.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from edge_app.sources import BackoffPolicy, CameraReader, CameraState
from tests.support.wait import DEFAULT_TIMEOUT_S

TINY_BACKOFF = BackoffPolicy(initial_s=0.01, factor=2, max_s=0.08, jitter=0, reset_after_s=60)
IDLE_S = DEFAULT_TIMEOUT_S
"""Failure bound for the next frame of a source that has one ready within milliseconds."""
SLOW_FPS = 0.01
"""A rate whose next frame is due after 100 s: longer than any failure bound here."""


def test_every_frame_mode_delivers_whole_file_in_order(make_video, frame_level) -> None:
    video = make_video(frames=12)
    before = datetime.now(UTC)

    with CameraReader("cam-a", {"uri": str(video), "fastest": True}, every_frame=True) as reader:
        frames = list(reader.frames(idle_timeout=IDLE_S))

    assert [frame.index for frame in frames] == list(range(12))
    assert [frame_level(frame.image) for frame in frames] == list(range(12))
    assert all(frame.camera_id == "cam-a" for frame in frames)
    assert all(frame.image.shape == (48, 64, 3) for frame in frames)
    captured = [frame.captured_at for frame in frames]
    assert captured == sorted(captured) and captured[0] >= before
    assert captured[0].tzinfo is UTC
    assert reader.state is CameraState.ENDED
    assert reader.dropped == 0 and reader.frame_count == 12


@pytest.mark.parametrize("threads", [1, 3])
def test_video_file_decodes_on_the_threads_its_spec_asks_for(make_video, threads) -> None:
    import cv2

    from edge_app.sources import SourceSpec, _open_capture

    spec = SourceSpec.parse({"uri": str(make_video(frames=3)), "decode_threads": threads})
    capture = _open_capture(spec, open_timeout_s=5, read_timeout_s=5)
    try:
        assert capture._capture.get(cv2.CAP_PROP_N_THREADS) == threads
        assert capture.read(lambda path: None) is not None
    finally:
        capture.release()


def test_every_frame_mode_waits_for_a_slow_consumer(make_video, wait_until) -> None:
    video = make_video(frames=8)

    with CameraReader("cam-a", {"uri": str(video), "fastest": True}, every_frame=True) as reader:
        indexes = []
        for frame in reader.frames(idle_timeout=IDLE_S):
            # away until the reader has the next frame in its slot: it must wait there for us
            next_count = min(frame.index + 2, 8)
            wait_until(lambda n=next_count: reader.frame_count >= n, what="the next frame")
            assert reader.frame_count == next_count
            indexes.append(frame.index)

    assert indexes == list(range(8))
    assert reader.dropped == 0


def test_file_plays_at_its_own_rate(make_video) -> None:
    video = make_video(frames=10, fps=20.0)  # 0.5 s of video

    started = time.monotonic()
    with CameraReader("rt", str(video), every_frame=True) as reader:
        assert len(list(reader.frames(idle_timeout=IDLE_S))) == 10

    # pacing only ever delays a frame, so a loaded machine cannot make this fail
    assert time.monotonic() - started >= 0.4  # 9 intervals of 50 ms, less clock rounding


def test_fastest_ignores_the_files_rate(make_video) -> None:
    video = make_video(frames=10, fps=SLOW_FPS)

    spec = {"uri": str(video), "fastest": True}
    with CameraReader("fast", spec, every_frame=True) as reader:
        frames = list(reader.frames(idle_timeout=IDLE_S))

    assert [frame.index for frame in frames] == list(range(10))
    assert reader.state is CameraState.ENDED


def test_target_fps_overrides_file_rate(make_video) -> None:
    video = make_video(frames=6, fps=SLOW_FPS)

    with CameraReader("cam", {"uri": str(video), "fps": 50}, every_frame=True) as reader:
        assert len(list(reader.frames(idle_timeout=IDLE_S))) == 6

    assert reader.state is CameraState.ENDED


def test_slow_consumer_gets_latest_frame_and_drops_are_counted(make_video, wait_until) -> None:
    video = make_video(frames=30)

    with CameraReader("cam", {"uri": str(video), "fps": 100}) as reader:
        taken = []
        while (frame := reader.read_latest(timeout=IDLE_S)) is not None:
            taken.append(frame.index)
            # away until the camera put two more frames in the slot (or ended): one is dropped
            wait_until(
                lambda n=frame.index + 3: (
                    reader.frame_count >= n or reader.state is CameraState.ENDED
                ),
                what="two newer frames",
            )

    assert reader.state is CameraState.ENDED
    assert reader.frame_count == 30
    assert taken == sorted(set(taken)) and taken[-1] == 29  # newest frames, no repeats
    # each wait let a newer frame replace one unseen: 0, 2, 4 ... 28 and the last, 29, at most
    assert len(taken) <= 16 and reader.dropped >= 14
    assert len(taken) + reader.dropped == 30  # every frame was either taken or dropped


def test_read_latest_times_out_without_new_frame(make_video) -> None:
    video = make_video(frames=3)

    with CameraReader("cam", {"uri": str(video), "fps": SLOW_FPS}) as reader:
        first = reader.read_latest(timeout=IDLE_S)
        started = time.monotonic()
        again = reader.read_latest(timeout=0.1)
        waited = time.monotonic() - started

    assert first is not None and first.index == 0
    assert again is None and waited >= 0.1  # it waited out its timeout: the next frame is not due


def test_file_without_loop_ends(make_video) -> None:
    video = make_video(frames=5)

    with CameraReader("cam", {"uri": str(video), "fastest": True}, every_frame=True) as reader:
        assert len(list(reader.frames(idle_timeout=IDLE_S))) == 5
        assert reader.read_latest(timeout=1) is None  # returns at once: nothing more comes

    assert reader.state is CameraState.ENDED


def test_looping_file_starts_again(make_video, frame_level) -> None:
    video = make_video(frames=4)

    spec = {"uri": str(video), "loop": True, "fastest": True}
    with CameraReader("cam", spec, every_frame=True) as reader:
        stream = reader.frames(idle_timeout=IDLE_S)
        frames = [next(stream) for _ in range(10)]
        assert reader.state is CameraState.RUNNING

    assert [frame.index for frame in frames] == list(range(10))
    assert [frame_level(frame.image) for frame in frames] == [0, 1, 2, 3, 0, 1, 2, 3, 0, 1]
    assert reader.state is CameraState.STOPPED


def test_image_folder_in_natural_name_order(make_image_folder, frame_level) -> None:
    folder = make_image_folder({"img_10.png": 3, "img_2.jpg": 2, "img_1.jpeg": 1, "a.PNG": 4})
    (folder / "notes.txt").write_text("not an image")

    with CameraReader("cam", {"uri": str(folder), "fastest": True}, every_frame=True) as reader:
        levels = [frame_level(frame.image) for frame in reader.frames(idle_timeout=IDLE_S)]

    assert levels == [4, 1, 2, 3]  # a.PNG, img_1, img_2, img_10
    assert reader.state is CameraState.ENDED


def test_image_folder_loop_picks_up_new_images(make_image_folder, frame_level) -> None:
    folder = make_image_folder({"01.png": 1, "02.png": 2})
    extra = make_image_folder({"03.png": 3}, name="extra") / "03.png"

    spec = {"uri": str(folder), "loop": True, "fastest": True}
    with CameraReader("cam", spec, every_frame=True) as reader:
        frames = reader.frames(idle_timeout=IDLE_S)
        first_pass = [frame_level(next(frames).image) for _ in range(2)]
        extra.rename(folder / "03.png")
        later = [frame_level(next(frames).image) for _ in range(8)]

    assert first_pass == [1, 2]
    assert 3 in later  # seen from the next pass on, in its place between 02 and 01
    for position, level in enumerate(later):
        if level == 3:
            assert position == 0 or later[position - 1] == 2
            assert position == len(later) - 1 or later[position + 1] == 1


def test_unreadable_image_is_skipped_and_reported(make_image_folder, frame_level, caplog) -> None:
    folder = make_image_folder({"1.png": 1, "3.png": 3})
    (folder / "2.jpg").write_bytes(b"not a jpeg")

    reader = CameraReader("shelf-7", {"uri": str(folder), "fastest": True}, every_frame=True)
    with caplog.at_level(logging.WARNING, logger="edge_app.sources"), reader:
        levels = [frame_level(frame.image) for frame in reader.frames(idle_timeout=IDLE_S)]

    assert levels == [1, 3]
    assert "2.jpg" in reader.last_error
    assert any(
        "shelf-7" in record.getMessage() and "2.jpg" in record.getMessage()
        for record in caplog.records
    )


def _backoffs(caplog, camera_id: str) -> list[float]:
    return [
        record.backoff_s
        for record in caplog.records
        if getattr(record, "camera_id", None) == camera_id and hasattr(record, "backoff_s")
    ]


def test_missing_file_reconnects_with_growing_backoff(tmp_path, caplog, wait_until) -> None:
    missing = tmp_path / "later.mp4"

    reader = CameraReader("door", str(missing), backoff=TINY_BACKOFF)
    with caplog.at_level(logging.WARNING, logger="edge_app.sources"), reader:
        wait_until(lambda: reader.reconnects >= 5, what="five reconnect attempts")
        state, error = reader.state, reader.last_error

    assert state is CameraState.RECONNECTING
    assert "no such video file" in error and "later.mp4" in error
    assert _backoffs(caplog, "door")[:5] == [0.01, 0.02, 0.04, 0.08, 0.08]
    assert any("door" in record.getMessage() for record in caplog.records)


def test_source_that_appears_later_recovers(tmp_path, make_video, wait_until) -> None:
    target = tmp_path / "arrives.mp4"

    spec = {"uri": str(target), "loop": True, "fps": 50}
    with CameraReader("cam", spec, backoff=TINY_BACKOFF) as reader:
        wait_until(lambda: reader.state is CameraState.RECONNECTING, what="a reconnect")
        make_video("staged.mp4", frames=5).rename(target)
        wait_until(lambda: reader.state is CameraState.RUNNING, what="the file found")
        frame = reader.read_latest(timeout=IDLE_S)

    assert frame is not None
    assert reader.reconnects >= 1
    assert reader.last_frame_at is not None


def test_gives_up_after_max_attempts(tmp_path, wait_until) -> None:
    policy = BackoffPolicy(initial_s=0.01, factor=1, max_s=0.01, jitter=0, max_attempts=2)

    reader = CameraReader("cam", str(tmp_path / "none.mp4"), backoff=policy).start()
    wait_until(lambda: reader.state is CameraState.FAILED, what="the reader to give up")

    assert reader.reconnects == 2
    assert reader.read_latest(timeout=5) is None  # terminal: returns at once
    assert reader.stop(timeout=IDLE_S) is True
    assert reader.state is CameraState.FAILED  # stop() keeps the terminal state


def test_corrupt_file_is_reported_not_raised(tmp_path, caplog, wait_until) -> None:
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00garbage" * 500)

    reader = CameraReader("cam-9", str(corrupt), backoff=TINY_BACKOFF)
    with caplog.at_level(logging.WARNING, logger="edge_app.sources"), reader:
        wait_until(lambda: reader.reconnects >= 2, what="two reconnect attempts")
        status = reader.status()

    assert status.state is CameraState.RECONNECTING
    assert "cannot open" in status.last_error and "corrupt.mp4" in status.last_error
    assert status.frames == 0
    assert any(getattr(r, "camera_id", None) == "cam-9" for r in caplog.records)


# A stop that is not prompt waits out an hour (backoff, pacing) or forever (a consumer that never
# comes back): stop(timeout=IDLE_S) returning True is the proof, without timing the stop.
def test_stop_is_prompt_during_long_backoff(tmp_path, wait_until) -> None:
    policy = BackoffPolicy(initial_s=3600, max_s=3600, jitter=0)
    reader = CameraReader("cam", str(tmp_path / "none.mp4"), backoff=policy).start()
    wait_until(lambda: reader.state is CameraState.RECONNECTING, what="the hour-long backoff")

    assert reader.stop(timeout=IDLE_S) is True
    assert reader.state is CameraState.STOPPED


def test_stop_is_prompt_while_pacing_a_slow_file(make_video) -> None:
    reader = CameraReader("cam", {"uri": str(make_video(frames=5)), "fps": SLOW_FPS}).start()
    assert reader.read_latest(timeout=IDLE_S) is not None  # the next frame is due in 100 s

    assert reader.stop(timeout=IDLE_S) is True


def test_stop_is_prompt_while_every_frame_consumer_is_away(make_video, wait_until) -> None:
    reader = CameraReader("cam", {"uri": str(make_video()), "fastest": True}, every_frame=True)
    reader.start()
    assert reader.read_latest(timeout=IDLE_S) is not None
    # nobody takes frame 1: the reader holds frame 2 until someone does
    wait_until(lambda: reader.frame_count == 2, what="frame 1 waiting in the slot")

    assert reader.stop(timeout=IDLE_S) is True


def test_fps_is_measured_over_sliding_window(make_video, wait_until) -> None:
    video = make_video(frames=120)  # long enough that reopening it at each loop costs little

    spec = {"uri": str(video), "loop": True, "fps": 40}
    with CameraReader("cam", spec, fps_window_s=2.0) as reader:
        # a rate, not a count (80 frames in the window) and, once frames flow, close to 40 fps
        wait_until(
            lambda: reader.frame_count > 100 and 30 <= reader.fps <= 42,
            what="30-42 fps measured on a 40 fps camera",
        )
        status = reader.status().as_dict()

    assert status["state"] == "running" and status["camera_id"] == "cam"
    assert status["frames"] > 100 and isinstance(status["last_frame_at"], str)
    # a window that slides: once the camera stopped, its frames leave the window
    wait_until(lambda: reader.fps == 0.0, what="the stopped camera's fps down to 0")


def test_frames_needs_a_started_reader(make_video) -> None:
    reader = CameraReader("cam", str(make_video()))

    with pytest.raises(RuntimeError, match="start"):
        next(reader.frames())


def test_start_twice_is_an_error(make_video) -> None:
    with (
        CameraReader("cam", str(make_video())) as reader,
        pytest.raises(RuntimeError, match="already"),
    ):
        reader.start()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"camera_id": ""}, "camera_id must be a non-empty string"),
        ({"stall_timeout_s": 0}, "stall_timeout_s must be > 0"),
    ],
)
def test_reader_rejects_bad_options(options: dict, message: str) -> None:
    arguments = {"camera_id": "cam", "spec": "a.mp4"} | options
    with pytest.raises(ValueError, match=message):
        CameraReader(**arguments)


def test_relative_paths_are_used_as_given(tmp_path, make_video, monkeypatch) -> None:
    make_video("here.mp4", frames=3)
    monkeypatch.chdir(tmp_path)

    with CameraReader("cam", {"uri": "here.mp4", "fastest": True}, every_frame=True) as reader:
        assert len(list(reader.frames(idle_timeout=IDLE_S))) == 3
    assert Path(reader.spec.location) == Path("here.mp4")
