"""Fixtures for the camera source tests: small videos, image folders, a loopback MJPEG server.

The tests wait with the ``wait_until`` fixture of ``tests/conftest.py``."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np
import pytest

FRAME_SIZE = (64, 48)  # width, height
LEVEL_STEP = 20


def frame_image(level_index: int) -> np.ndarray:
    """A flat grey image whose brightness encodes ``level_index`` (0..12)."""
    width, height = FRAME_SIZE
    return np.full((height, width, 3), level_index * LEVEL_STEP, np.uint8)


def level_of(image: np.ndarray) -> int:
    """The ``level_index`` a decoded :func:`frame_image` was made with."""
    return round(float(image.mean()) / LEVEL_STEP)


@pytest.fixture
def make_video(tmp_path: Path) -> Callable[..., Path]:
    """Write a video of ``frames`` flat frames (brightness = frame number) and return its path."""

    def make(name: str = "clip.mp4", frames: int = 10, fps: float = 20.0) -> Path:
        path = tmp_path / name
        fourcc = "mp4v" if path.suffix == ".mp4" else "MJPG"
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, FRAME_SIZE)
        assert writer.isOpened(), f"OpenCV cannot write {fourcc} {path.suffix} here"
        for index in range(frames):
            writer.write(frame_image(index % 13))
        writer.release()
        return path

    return make


class MjpegServer:
    """An HTTP MJPEG camera on 127.0.0.1 that a test can stop, restart and pause.

    It sends a frame every ``frame_interval_s`` seconds, as a live camera does: the pace of a
    simulated camera, not a wait for a condition. Paused, it keeps the connection open and sends
    nothing until resumed (a stalled camera).
    """

    def __init__(self, frame_interval_s: float = 0.02) -> None:
        self.frame_interval_s = frame_interval_s
        self.port = 0
        self._server: ThreadingHTTPServer | None = None
        self._stopping = threading.Event()
        self._pause_changed = threading.Condition()
        self._paused = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/stream.mjpg"

    def pause(self) -> None:
        """Stop sending frames; open connections stay open."""
        with self._pause_changed:
            self._paused = True

    def resume(self) -> None:
        """Send frames again."""
        with self._pause_changed:
            self._paused = False
            self._pause_changed.notify_all()

    def _wait_while_paused(self) -> None:
        with self._pause_changed:
            self._pause_changed.wait_for(lambda: not self._paused or self._stopping.is_set())

    def start(self) -> None:
        stopping, interval = self._stopping, self.frame_interval_s
        wait_while_paused = self._wait_while_paused
        stopping.clear()

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                index = 0
                try:
                    while True:
                        wait_while_paused()
                        if stopping.is_set():
                            break
                        ok, jpeg = cv2.imencode(".jpg", frame_image(index % 13))
                        body = jpeg.tobytes()
                        self.wfile.write(
                            b"--frame\r\nContent-Type: image/jpeg\r\n"
                            + f"Content-Length: {len(body)}\r\n\r\n".encode()
                            + body
                            + b"\r\n"
                        )
                        index += 1
                        stopping.wait(interval)
                except OSError:
                    pass

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self.port = server.server_address[1]
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        self._server = server

    def stop(self) -> None:
        self._stopping.set()
        with self._pause_changed:
            self._pause_changed.notify_all()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


@pytest.fixture
def frame_level() -> Callable[[np.ndarray], int]:
    """Decode the frame number a test video or image folder wrote into a frame's brightness."""
    return level_of


@pytest.fixture
def make_image_folder(tmp_path: Path) -> Callable[..., Path]:
    """Write ``{file name: frame number}`` images into a new folder and return it."""

    def make(images: dict[str, int], name: str = "frames") -> Path:
        folder = tmp_path / name
        folder.mkdir()
        for file_name, level_index in images.items():
            assert cv2.imwrite(str(folder / file_name), frame_image(level_index))
        return folder

    return make


@pytest.fixture
def mjpeg_server_factory() -> Iterator[Callable[[], MjpegServer]]:
    """Make started MJPEG servers; all are stopped after the test."""
    servers: list[MjpegServer] = []

    def make() -> MjpegServer:
        server = MjpegServer()
        server.start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()
