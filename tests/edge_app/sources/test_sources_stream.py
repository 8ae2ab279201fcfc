"""CameraReader on a live HTTP MJPEG camera served on 127.0.0.1: break, stall, recover."""

from __future__ import annotations

import logging

from edge_app.sources import BackoffPolicy, CameraReader, CameraState

FAST_RETRY = BackoffPolicy(initial_s=0.05, factor=2, max_s=0.2, jitter=0, reset_after_s=0.0)
FRAME_TIMEOUT_S = 60.0
"""Failure bound for a frame of a camera that sends one every 20 ms."""


def _attempts(caplog, camera_id: str) -> list[int]:
    return [
        record.attempt
        for record in caplog.records
        if getattr(record, "camera_id", None) == camera_id and hasattr(record, "attempt")
    ]


def test_stream_delivers_frames(mjpeg_server_factory, frame_level, wait_until) -> None:
    server = mjpeg_server_factory()

    with CameraReader("live", server.url, backoff=FAST_RETRY, open_timeout_s=2) as reader:
        wait_until(lambda: reader.state is CameraState.RUNNING, what="the stream running")
        frame = reader.read_latest(timeout=FRAME_TIMEOUT_S)

    assert frame is not None and frame.image.shape == (48, 64, 3)
    assert 0 <= frame_level(frame.image) <= 12


def test_stream_that_goes_down_reconnects_and_recovers(
    mjpeg_server_factory, caplog, wait_until
) -> None:
    server = mjpeg_server_factory()
    reader = CameraReader(
        "gate", server.url, backoff=FAST_RETRY, open_timeout_s=1, stall_timeout_s=1
    )

    with caplog.at_level(logging.WARNING, logger="edge_app.sources"), reader:
        for _outage in range(2):
            wait_until(lambda: reader.state is CameraState.RUNNING, what="the stream running")
            server.stop()
            wait_until(lambda: reader.state is CameraState.RECONNECTING, what="a reconnect")
            wait_until(lambda: reader.reconnects >= 1, what="a reconnect attempt")
            server.start()  # same port
            wait_until(lambda: reader.state is CameraState.RUNNING, what="the stream back")
        frames_before = reader.frame_count
        wait_until(lambda: reader.frame_count > frames_before + 3, what="frames after the outages")
        status = reader.status()

    assert status.reconnects >= 2
    assert "gate" in caplog.text
    attempts = _attempts(caplog, "gate")
    # each outage came after a healthy run (reset_after_s=0), so each restarts at attempt 1
    assert attempts.count(1) >= 2


def _stall_reports(caplog, camera_id: str) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if getattr(record, "camera_id", None) == camera_id and "stalled" in record.getMessage()
    ]


def test_stalled_stream_is_detected_and_recovers(mjpeg_server_factory, caplog, wait_until) -> None:
    server = mjpeg_server_factory()
    reader = CameraReader(
        "tank", server.url, backoff=FAST_RETRY, open_timeout_s=0.5, stall_timeout_s=0.4
    )

    with caplog.at_level(logging.WARNING, logger="edge_app.sources"), reader:
        wait_until(lambda: reader.state is CameraState.RUNNING, what="the stream running")
        earlier = len(_stall_reports(caplog, "tank"))  # a busy machine can stall the server too
        server.pause()  # connection stays open, no frame comes
        # the log keeps the report: the reader's last_error moves on to the failed reopenings
        wait_until(lambda: len(_stall_reports(caplog, "tank")) > earlier, what="the stall reported")
        wait_until(lambda: reader.state is CameraState.RECONNECTING, what="a reconnect")
        server.resume()
        wait_until(lambda: reader.state is CameraState.RUNNING, what="the stream back")
        assert reader.read_latest(timeout=FRAME_TIMEOUT_S) is not None
