"""A recorded source (file, image folder) created with ``wait_for_consumer`` is opened at once
but plays only once its consumer is ready: a few images cannot be over before anyone looks."""

from __future__ import annotations

from edge_app.sources import CameraReader, CameraState

IDLE_S = 5.0


def test_an_image_folder_plays_only_once_its_consumer_is_ready(
    make_image_folder, frame_level
) -> None:
    folder = make_image_folder({"1.png": 1, "2.png": 2})

    with CameraReader("cam", str(folder), wait_for_consumer=True, every_frame=True) as reader:
        assert reader.read_latest(timeout=0.5) is None
        assert (reader.frame_count, reader.state) == (0, CameraState.STARTING)
        reader.consumer_ready()
        levels = [frame_level(frame.image) for frame in reader.frames(idle_timeout=IDLE_S)]

    assert levels == [1, 2]
    assert reader.state is CameraState.ENDED


def test_a_missing_folder_is_reported_while_the_reader_waits_for_its_consumer(
    tmp_path, wait_until
) -> None:
    reader = CameraReader("cam", f"{tmp_path / 'missing'}/", wait_for_consumer=True).start()
    try:
        wait_until(
            lambda: (
                reader.state is CameraState.RECONNECTING
                and "no such image folder" in (reader.last_error or "")
            ),
            what="the missing folder reported",
        )
    finally:
        reader.stop()


def test_a_waiting_reader_stops_promptly(make_video) -> None:
    reader = CameraReader("cam", str(make_video()), wait_for_consumer=True).start()
    assert reader.stop(timeout=IDLE_S)
    assert reader.state is CameraState.STOPPED and reader.frame_count == 0


def test_a_live_stream_does_not_wait_for_its_consumer(mjpeg_server_factory, wait_until) -> None:
    server = mjpeg_server_factory()
    with CameraReader("cam", server.url, wait_for_consumer=True) as reader:
        frame = wait_until(lambda: reader.read_latest(timeout=1.0), what="a frame of the stream")
    assert frame.image.size
