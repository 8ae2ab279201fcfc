"""Camera sources: video files, webcams, RTSP/HTTP streams and image folders.

A :class:`SourceSpec` says where frames come from and how fast; a :class:`CameraReader`
reads one source in its own daemon thread and keeps only the newest frame, so a slow
consumer never builds a backlog; a :class:`CameraSet` runs a device's readers side by side
(the edge app's cameras), and one broken camera never stops the others. Each reader reports
its health as a :class:`SourceStatus`.

Readers survive bad sources: when a source cannot be opened, a read fails or a stream
stalls, the reader reports it in ``state`` / ``last_error``, logs it with the camera id
and reconnects with exponential backoff. Nothing a source does raises into another thread.

Examples:
    ```python
    from edge_app.sources import CameraReader

    with CameraReader("shelf-1", {"uri": "videos/shelf.mp4", "loop": True}) as reader:
        frame = reader.read_latest(timeout=2.0)
        print(frame.index, frame.captured_at, frame.image.shape, reader.state)
    ```
"""

from __future__ import annotations

import abc
import collections
import enum
import logging
import math
import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit, urlunsplit

import cv2
import numpy as np

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
"""File name endings (case-insensitive) read from an image folder."""

IMAGE_FOLDER_DEFAULT_FPS = 10.0
"""Frames per second an image folder is played at when its spec gives no ``fps``."""

VIDEO_FILE_FALLBACK_FPS = 25.0
"""Frames per second a video file is played at when it does not declare a usable rate."""

STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "http", "https")
"""URL schemes read as network streams through OpenCV's FFmpeg back end."""

DEFAULT_DECODE_THREADS = 1
"""FFmpeg decoding threads per video file or stream: the least CPU time per frame, and no
decoder thread pool per camera (measured on a 640x480 MPEG-4 video, 2 cores, four runs: 0.28-0.33
ms of CPU a frame on one thread, 0.33-0.69 ms with FFmpeg's own choice of two)."""

MAX_DECODE_THREADS = 64
"""Most decoding threads a source may ask for."""

_OPTIONS = ("loop", "fps", "fastest", "decode_threads")


class SourceKind(enum.StrEnum):
    """What a camera source is."""

    FILE = "file"
    """A video file, played at its own frame rate (or ``fps``), optionally looped."""
    WEBCAM = "webcam"
    """A local camera: a device index (``0``) or a device path (``/dev/video0``)."""
    STREAM = "stream"
    """A network stream: ``rtsp://``, ``rtsps://``, ``rtmp://``, ``http(s)://``."""
    IMAGES = "images"
    """A folder of ``.jpg`` / ``.jpeg`` / ``.png`` images in natural name order."""


LIVE_KINDS = frozenset({SourceKind.WEBCAM, SourceKind.STREAM})
"""Sources that pace themselves; a failed read on them means the source broke."""


class CameraState(enum.StrEnum):
    """Where a :class:`CameraReader` stands."""

    STARTING = "starting"
    """Started; opening the source, no frame yet."""
    RUNNING = "running"
    """Frames are arriving."""
    RECONNECTING = "reconnecting"
    """The source failed; waiting out a backoff delay or reopening it."""
    FAILED = "failed"
    """Gave up after ``BackoffPolicy.max_attempts`` reconnect attempts (terminal)."""
    STOPPED = "stopped"
    """``stop()`` was called (terminal)."""
    ENDED = "ended"
    """A file or image folder that does not loop reached its end (terminal)."""


TERMINAL_STATES = frozenset({CameraState.FAILED, CameraState.STOPPED, CameraState.ENDED})
"""States a reader never leaves."""


class SourceError(RuntimeError):
    """A source could not be opened or read; the reader reconnects after it."""


@dataclass(frozen=True)
class SourceSpec:
    """Where a camera's frames come from and how fast to deliver them.

    Build one with :meth:`parse` from the forms a config file holds: a string such as
    ``"videos/shelf.mp4"``, ``"file:///data/shelf.mp4"``, ``"0"``, ``"webcam:0"``,
    ``"rtsp://user:pw@10.0.0.5/stream1"``, ``"http://cam.local/video.mjpg"``,
    ``"images:///data/frames"`` or a directory path; an int webcam index; or a dict with
    ``uri`` and options (``kind``, ``loop``, ``fps``, ``fastest``, ``decode_threads``).

    Attributes:
        kind: What the source is.
        location: A file or folder path, a webcam index or device path, or a stream URL.
        loop: Files and image folders only: start again at the end instead of ending.
        fps: Target frames per second. Files and image folders are played at this rate
            (default: the file's own rate, or ``IMAGE_FOLDER_DEFAULT_FPS`` for folders);
            live sources are read at their own rate and thinned out to at most this rate.
        fastest: Ignore all pacing and deliver frames as fast as they decode (benchmarks).
        decode_threads: Video files and streams: FFmpeg decoding threads for this camera.
            One (the default) costs the least CPU per frame, which is what a device running
            several cameras (one reader thread each) needs; FFmpeg's own choice (``0``: a
            thread per core) can decode a frame sooner but spends more CPU time on it. Raise it
            for a single high-resolution stream that one thread cannot decode in time.

    Examples:
        ```python
        from edge_app.sources import SourceSpec

        SourceSpec.parse("webcam:0").kind                     # SourceKind.WEBCAM
        SourceSpec.parse({"uri": "shelf.mp4", "loop": True, "fps": 5}).fps  # 5.0
        ```
    """

    kind: SourceKind
    location: str
    loop: bool = False
    fps: float | None = None
    fastest: bool = False
    decode_threads: int = DEFAULT_DECODE_THREADS

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", _coerce_kind(self.kind))
        if not isinstance(self.location, str) or not self.location.strip():
            raise ValueError(f"source location must be a non-empty string, got {self.location!r}")
        if not isinstance(self.loop, bool):
            raise ValueError(f"source option loop must be true or false, got {self.loop!r}")
        if not isinstance(self.fastest, bool):
            raise ValueError(f"source option fastest must be true or false, got {self.fastest!r}")
        if (
            isinstance(self.decode_threads, bool)
            or not isinstance(self.decode_threads, int)
            or not 0 <= self.decode_threads <= MAX_DECODE_THREADS
        ):
            raise ValueError(
                f"source option decode_threads must be a whole number from 0 (FFmpeg's choice) "
                f"to {MAX_DECODE_THREADS}, got {self.decode_threads!r}"
            )
        if self.fps is not None:
            if (
                isinstance(self.fps, bool)
                or not isinstance(self.fps, int | float)
                or not math.isfinite(self.fps)
                or self.fps <= 0
            ):
                raise ValueError(
                    f"source option fps must be a positive number or null, got {self.fps!r}"
                )
            object.__setattr__(self, "fps", float(self.fps))
        if self.loop and self.kind in LIVE_KINDS:
            raise ValueError(
                f"source option loop applies to files and image folders only, not to a "
                f"{self.kind.value} source ({self.redacted_location})"
            )

    @classmethod
    def parse(cls, value: SourceSpec | str | int | Mapping[str, Any]) -> SourceSpec:
        """Build a spec from a string, a webcam index or a config dict.

        Args:
            value: A spec (returned as is); a URI-ish string; an int webcam index; or a
                mapping with ``uri`` (required) and optional ``kind``, ``loop``, ``fps``,
                ``fastest``, ``decode_threads``.

        Returns:
            The spec.

        Raises:
            ValueError: When the value is empty, names an unknown scheme or kind, holds an
                unknown key, or an option has the wrong type.

        Examples:
            ```python
            SourceSpec.parse("rtsp://10.0.0.5/stream1")    # kind=STREAM
            SourceSpec.parse("/data/frames/")              # kind=IMAGES (trailing slash)
            SourceSpec.parse(0)                            # kind=WEBCAM, location "0"
            ```
        """
        if isinstance(value, SourceSpec):
            return value
        if isinstance(value, bool):
            raise ValueError(
                f"camera source must be a string, a webcam index or a dict, got {value!r}"
            )
        if isinstance(value, int):
            return cls._webcam(str(value))
        if isinstance(value, str):
            return cls._from_string(value)
        if isinstance(value, Mapping):
            return cls._from_mapping(value)
        raise ValueError(
            f"camera source must be a string, a webcam index or a dict, got "
            f"{type(value).__name__} {value!r}"
        )

    @property
    def redacted_location(self) -> str:
        """The location with any password in a stream URL replaced by ``***``."""
        if self.kind is not SourceKind.STREAM:
            return self.location
        parts = urlsplit(self.location)
        if parts.password is None:
            return self.location
        userinfo = f"{parts.username or ''}:***"
        host = parts.hostname or ""
        if ":" in host:  # IPv6 literal
            host = f"[{host}]"
        if parts.port is not None:
            host = f"{host}:{parts.port}"
        return urlunsplit(parts._replace(netloc=f"{userinfo}@{host}"))

    def __str__(self) -> str:
        return f"{self.kind.value}:{self.redacted_location}"

    @classmethod
    def _webcam(cls, location: str, **options: Any) -> SourceSpec:
        if not (location.isdigit() or location.startswith("/dev/")):
            raise ValueError(
                f"webcam must be a device index such as 0 or a device path such as "
                f"/dev/video0, got {location!r}"
            )
        return cls(SourceKind.WEBCAM, location, **options)

    @classmethod
    def _from_string(cls, text: str, kind: SourceKind | None = None, **options: Any) -> SourceSpec:
        text = text.strip()
        if not text:
            raise ValueError("camera source must not be empty")
        lowered = text.lower()
        scheme = lowered.split("://", 1)[0] if "://" in lowered else None
        if kind is SourceKind.WEBCAM or (kind is None and lowered.startswith("webcam:")):
            location = text.split(":", 1)[1].lstrip("/") if lowered.startswith("webcam:") else text
            if location.startswith("dev/"):
                location = "/" + location
            return cls._webcam(location, **options)
        if kind is None and (text.isdigit() or lowered.startswith("/dev/video")):
            return cls._webcam(text, **options)
        if scheme in STREAM_SCHEMES:
            if kind not in (None, SourceKind.STREAM):
                raise ValueError(f"a {scheme}:// URL is a stream, not a {kind.value} source")
            return cls(SourceKind.STREAM, text, **options)
        if kind is SourceKind.STREAM:
            raise ValueError(
                f"a stream source needs a URL starting with one of "
                f"{', '.join(s + '://' for s in STREAM_SCHEMES)}, got {text!r}"
            )
        if lowered.startswith("images:"):
            path, trailing_slash = _path_from_uri(text[len("images:") :]), True
            kind = kind or SourceKind.IMAGES
        elif lowered.startswith("file:"):
            path, trailing_slash = _path_from_uri(text[len("file:") :]), text.endswith("/")
        elif scheme is not None:
            raise ValueError(
                f"unknown camera source scheme {scheme!r} in {text!r}; allowed: a path, "
                f"file://, images://, webcam:N, {', '.join(s + '://' for s in STREAM_SCHEMES)}"
            )
        else:
            path, trailing_slash = Path(text).expanduser(), text.endswith(("/", "\\"))
        if kind is None:
            kind = SourceKind.IMAGES if trailing_slash or path.is_dir() else SourceKind.FILE
        return cls(kind, str(path), **options)

    @classmethod
    def _from_mapping(cls, mapping: Mapping[str, Any]) -> SourceSpec:
        allowed = {"uri", "kind", *_OPTIONS}
        unknown = sorted(set(mapping) - allowed)
        if unknown:
            raise ValueError(
                f"unknown camera source option(s) {unknown}; allowed: {sorted(allowed)}"
            )
        if "uri" not in mapping:
            raise ValueError(f"camera source dict needs a 'uri', got {dict(mapping)!r}")
        uri = mapping["uri"]
        kind = _coerce_kind(mapping["kind"]) if mapping.get("kind") is not None else None
        options = {key: mapping[key] for key in _OPTIONS if key in mapping}
        if isinstance(uri, int) and not isinstance(uri, bool):
            uri = str(uri)
            kind = kind or SourceKind.WEBCAM
        if not isinstance(uri, str):
            raise ValueError(f"camera source uri must be a string or an int, got {uri!r}")
        return cls._from_string(uri, kind=kind, **options)


@dataclass(frozen=True)
class BackoffPolicy:
    """How long a reader waits before each reconnect attempt.

    The n-th consecutive attempt waits ``min(max_s, initial_s * factor ** (n - 1))``,
    spread by up to ``±jitter`` of itself so that cameras behind one outage do not all
    retry at once. A source that ran healthily for ``reset_after_s`` starts again at
    ``initial_s`` when it next fails.

    Attributes:
        initial_s: First delay in seconds.
        factor: Growth per consecutive attempt (>= 1).
        max_s: Longest delay in seconds.
        jitter: Random spread as a fraction of the delay, 0 to 1.
        reset_after_s: Healthy running time after which the attempt count resets.
        max_attempts: Consecutive attempts before the reader gives up (state ``failed``);
            ``None`` retries forever.

    Examples:
        ```python
        BackoffPolicy(initial_s=1, factor=2, max_s=8, jitter=0).delay(4)  # 8.0
        ```
    """

    initial_s: float = 0.5
    factor: float = 2.0
    max_s: float = 30.0
    jitter: float = 0.1
    reset_after_s: float = 30.0
    max_attempts: int | None = None

    def __post_init__(self) -> None:
        if not self.initial_s > 0:
            raise ValueError(f"backoff initial_s must be > 0, got {self.initial_s!r}")
        if not self.factor >= 1:
            raise ValueError(f"backoff factor must be >= 1, got {self.factor!r}")
        if not self.max_s >= self.initial_s:
            raise ValueError(
                f"backoff max_s must be >= initial_s ({self.initial_s}), got {self.max_s!r}"
            )
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"backoff jitter must be between 0 and 1, got {self.jitter!r}")
        if not self.reset_after_s >= 0:
            raise ValueError(f"backoff reset_after_s must be >= 0, got {self.reset_after_s!r}")
        if self.max_attempts is not None and self.max_attempts < 0:
            raise ValueError(
                f"backoff max_attempts must be >= 0 or None, got {self.max_attempts!r}"
            )

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before reconnect attempt number ``attempt`` (1-based).

        Args:
            attempt: Consecutive attempt number, starting at 1.
            rng: Random source for the jitter (default: the ``random`` module's).

        Returns:
            The delay in seconds, never negative.
        """
        if attempt < 1:
            raise ValueError(f"attempt numbers start at 1, got {attempt!r}")
        exponent = min(attempt - 1, 1000)  # keeps factor ** exponent finite
        base = min(self.max_s, self.initial_s * self.factor**exponent)
        if not self.jitter:
            return base
        spread = (rng or random).uniform(-self.jitter, self.jitter)
        return max(0.0, base * (1.0 + spread))


@dataclass(frozen=True)
class Frame:
    """One captured image.

    Attributes:
        image: BGR image, shape ``(height, width, 3)``, dtype uint8.
        index: Position of this frame among those the reader delivered, from 0; keeps
            counting across loops and reconnects.
        captured_at: When the frame was captured (UTC).
        camera_id: The camera it came from.
    """

    image: np.ndarray
    index: int
    captured_at: datetime
    camera_id: str


class FrameSource(Protocol):
    """Where a camera worker takes its frames from: a :class:`CameraReader`, or anything that
    hands out frames the same way."""

    def read_latest(self, timeout: float | None = 0.0) -> Frame | None:
        """The newest frame not taken yet, waiting up to ``timeout`` seconds; None if none came."""


@dataclass(frozen=True)
class SourceStatus:
    """A snapshot of one camera source's health, for heartbeats and dashboards.

    Attributes:
        camera_id: The camera.
        source: The source, with any stream password hidden.
        state: Where the source stands.
        fps: Frames delivered per second over a sliding window.
        frames: Frames delivered since start.
        dropped: Frames replaced by a newer one before the consumer took them.
        reconnects: Reconnect attempts since start.
        last_frame_at: When the newest frame was captured (UTC), if any.
        last_error: The most recent error, if any.
    """

    camera_id: str
    source: str
    state: CameraState
    fps: float
    frames: int
    dropped: int
    reconnects: int
    last_frame_at: datetime | None
    last_error: str | None

    def as_dict(self) -> dict[str, Any]:
        """The snapshot as JSON-ready values (ISO 8601 time, state as text)."""
        return {
            "camera_id": self.camera_id,
            "source": self.source,
            "state": self.state.value,
            "fps": round(self.fps, 2),
            "frames": self.frames,
            "dropped": self.dropped,
            "reconnects": self.reconnects,
            "last_frame_at": self.last_frame_at.isoformat() if self.last_frame_at else None,
            "last_error": self.last_error,
        }


class CameraReader:
    """Reads one camera source in a daemon thread and keeps only its newest frame.

    The reader holds a one-frame slot: each new frame replaces the previous one, and a
    frame replaced before the consumer took it counts in ``dropped``. With
    ``every_frame=True`` the reader instead waits until the consumer took each frame, so
    none is lost (benchmarks, tests, offline processing of a file).

    A recorded source (a file or an image folder) plays out in seconds when nobody looks: with
    ``wait_for_consumer=True`` it is opened (so a missing file is reported at once) but delivers
    its first frame only after :meth:`consumer_ready`, so a short clip or a few images are not
    over before the camera's model has loaded. Live sources deliver from the start: their frames
    are of the moment, and a stream that is not read stalls.

    Args:
        camera_id: Name of the camera, used in frames, logs and statuses.
        spec: Where frames come from; anything :meth:`SourceSpec.parse` accepts.
        backoff: Reconnect delays; default ``BackoffPolicy()``.
        stall_timeout_s: A live source that delivers no frame for this long is treated
            as broken and reconnected (also the network read timeout of streams).
        open_timeout_s: How long opening a network stream may take.
        every_frame: Deliver every frame instead of only the newest.
        fps_window_s: Length of the sliding window ``fps`` is measured over.
        wait_for_consumer: Files and image folders: deliver nothing until
            :meth:`consumer_ready` is called.

    Examples:
        ```python
        reader = CameraReader("fish-tank", "rtsp://10.0.0.7/live").start()
        frame = reader.read_latest(timeout=1.0)   # None while reconnecting
        print(reader.state, reader.fps, reader.last_error)
        reader.stop()

        # every frame of a file, as fast as it decodes
        with CameraReader("bench", {"uri": "clip.mp4", "fastest": True},
                          every_frame=True) as reader:
            count = sum(1 for _ in reader.frames())
        ```
    """

    def __init__(
        self,
        camera_id: str,
        spec: SourceSpec | str | int | Mapping[str, Any],
        *,
        backoff: BackoffPolicy | None = None,
        stall_timeout_s: float = 10.0,
        open_timeout_s: float = 10.0,
        every_frame: bool = False,
        fps_window_s: float = 5.0,
        wait_for_consumer: bool = False,
    ) -> None:
        if not isinstance(camera_id, str) or not camera_id.strip():
            raise ValueError(f"camera_id must be a non-empty string, got {camera_id!r}")
        for name, value in (
            ("stall_timeout_s", stall_timeout_s),
            ("open_timeout_s", open_timeout_s),
            ("fps_window_s", fps_window_s),
        ):
            if not value > 0:
                raise ValueError(f"{name} must be > 0 seconds, got {value!r}")
        self.camera_id = camera_id
        self.spec = SourceSpec.parse(spec)
        self.backoff = backoff or BackoffPolicy()
        self.stall_timeout_s = float(stall_timeout_s)
        self.open_timeout_s = float(open_timeout_s)
        self.every_frame = every_frame
        self.fps_window_s = float(fps_window_s)

        self._condition = threading.Condition()
        self._stop_event = threading.Event()
        self._thread: threading.Thread | None = None
        self._rng = random.Random()
        self._state = CameraState.STARTING
        self._latest: Frame | None = None
        self._latest_taken = True
        self._frames = 0
        self._dropped = 0
        self._reconnects = 0
        self._last_error: str | None = None
        self._last_frame_at: datetime | None = None
        self._frame_times: collections.deque[float] = collections.deque()
        self._consumer_ready = not wait_for_consumer

    def __repr__(self) -> str:
        return f"CameraReader({self.camera_id!r}, {str(self.spec)!r}, state={self.state.value})"

    def __enter__(self) -> CameraReader:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> CameraReader:
        """Start the reading thread.

        Returns:
            The reader itself, for chaining.

        Raises:
            RuntimeError: When the reader was already started.
        """
        with self._condition:
            if self._thread is not None:
                raise RuntimeError(f"camera {self.camera_id}: reader already started")
            self._thread = threading.Thread(
                target=self._run, name=f"camera-{self.camera_id}", daemon=True
            )
        self._thread.start()
        return self

    def request_stop(self) -> None:
        """Ask the thread to stop without waiting for it (see :meth:`stop`)."""
        self._stop_event.set()
        with self._condition:
            self._condition.notify_all()

    def stop(self, timeout: float = 1.0) -> bool:
        """Stop the thread and wait for it, also during a backoff wait.

        The only waits ``stop`` cannot cut short are inside OpenCV: opening a network
        stream (up to ``open_timeout_s``) or a blocked network read (up to
        ``stall_timeout_s``). The daemon thread then ends on its own when they return.

        Args:
            timeout: Seconds to wait for the thread to end.

        Returns:
            True when the thread has ended (or never started).
        """
        self.request_stop()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        with self._condition:
            if self._state not in TERMINAL_STATES:
                self._state = CameraState.STOPPED
            self._condition.notify_all()
        return thread is None or not thread.is_alive()

    # -- consuming -------------------------------------------------------------------

    def consumer_ready(self) -> None:
        """Let a file or image folder created with ``wait_for_consumer`` start playing."""
        with self._condition:
            self._consumer_ready = True
            self._condition.notify_all()

    def read_latest(self, timeout: float | None = 0.0) -> Frame | None:
        """Take the newest frame not yet taken, waiting for one up to ``timeout``.

        Args:
            timeout: Seconds to wait for a new frame; 0 does not wait, None waits until
                a frame comes or the reader reaches a terminal state.

        Returns:
            The frame, or None when no new frame came in time or the reader has
            stopped, ended or failed and every frame was taken.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._condition:
            while True:
                if not self._latest_taken and self._latest is not None:
                    self._latest_taken = True
                    self._condition.notify_all()
                    return self._latest
                if self._state in TERMINAL_STATES:
                    return None
                if deadline is None:
                    self._condition.wait()
                    continue
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._condition.wait(remaining)

    def frames(self, idle_timeout: float | None = None) -> Iterator[Frame]:
        """Yield frames as they come until the reader stops, ends or fails.

        With ``every_frame=True`` this is every frame of the source; otherwise the newest
        frame each time the consumer asks.

        Args:
            idle_timeout: Stop iterating when no frame came for this many seconds;
                None waits as long as the reader is alive.

        Yields:
            Frames in capture order.

        Raises:
            RuntimeError: When the reader was not started.
        """
        if self._thread is None:
            raise RuntimeError(f"camera {self.camera_id}: start() the reader before frames()")
        while (frame := self.read_latest(idle_timeout)) is not None:
            yield frame

    # -- health ----------------------------------------------------------------------

    @property
    def state(self) -> CameraState:
        """Where the reader stands."""
        with self._condition:
            return self._state

    @property
    def fps(self) -> float:
        """Frames delivered per second over the last ``fps_window_s`` seconds."""
        with self._condition:
            self._prune_frame_times(time.monotonic())
            times = self._frame_times
            if len(times) < 2 or times[-1] <= times[0]:
                return 0.0
            return (len(times) - 1) / (times[-1] - times[0])

    @property
    def last_frame_at(self) -> datetime | None:
        """When the newest frame was captured (UTC), or None before the first."""
        with self._condition:
            return self._last_frame_at

    @property
    def last_error(self) -> str | None:
        """The most recent error text, or None when the source never failed."""
        with self._condition:
            return self._last_error

    @property
    def reconnects(self) -> int:
        """Reconnect attempts made since start."""
        with self._condition:
            return self._reconnects

    @property
    def dropped(self) -> int:
        """Frames replaced by a newer one before the consumer took them."""
        with self._condition:
            return self._dropped

    @property
    def frame_count(self) -> int:
        """Frames delivered since start."""
        with self._condition:
            return self._frames

    def status(self) -> SourceStatus:
        """A consistent snapshot of the reader's health."""
        fps = self.fps
        with self._condition:
            return SourceStatus(
                camera_id=self.camera_id,
                source=str(self.spec),
                state=self._state,
                fps=fps,
                frames=self._frames,
                dropped=self._dropped,
                reconnects=self._reconnects,
                last_frame_at=self._last_frame_at,
                last_error=self._last_error,
            )

    # -- the reading thread ----------------------------------------------------------

    def _run(self) -> None:
        try:
            self._read_until_done()
        except Exception as exc:  # a bug here must show up in state, not kill silently
            logger.exception(
                "camera %s: reader crashed", self.camera_id, extra={"camera_id": self.camera_id}
            )
            self._set_state(CameraState.FAILED, error=f"reader crashed: {exc!r}")
        finally:
            with self._condition:
                if self._state not in TERMINAL_STATES:
                    self._state = CameraState.STOPPED
                self._condition.notify_all()

    def _read_until_done(self) -> None:
        attempt = 0
        while not self._stop_event.is_set():
            healthy_since: float | None = None
            try:
                capture = _open_capture(self.spec, self.open_timeout_s, self.stall_timeout_s)
                try:
                    ended = self._pump(capture)
                finally:
                    healthy_since = capture.healthy_since
                    capture.release()
            except Exception as exc:  # any source failure leads to a reconnect
                error = exc
            else:
                if ended:
                    self._set_state(CameraState.ENDED)
                    logger.info(
                        "camera %s: %s ended",
                        self.camera_id,
                        self.spec,
                        extra={"camera_id": self.camera_id},
                    )
                return
            if self._stop_event.is_set():
                return
            if (
                healthy_since is not None
                and time.monotonic() - healthy_since >= self.backoff.reset_after_s
            ):
                attempt = 0
            attempt += 1
            if not self._wait_before_reconnect(error, attempt):
                return

    def _wait_before_reconnect(self, error: BaseException, attempt: int) -> bool:
        """Record a failure and sleep out the backoff; False when the reader should end."""
        message = (
            str(error) if isinstance(error, SourceError) else f"{type(error).__name__}: {error}"
        )
        max_attempts = self.backoff.max_attempts
        if max_attempts is not None and attempt > max_attempts:
            self._set_state(CameraState.FAILED, error=message)
            logger.error(
                "camera %s: %s; giving up after %d reconnect attempt(s)",
                self.camera_id,
                message,
                max_attempts,
                extra={"camera_id": self.camera_id},
            )
            return False
        delay = self.backoff.delay(attempt, self._rng)
        self._set_state(CameraState.RECONNECTING, error=message)
        logger.warning(
            "camera %s: %s; reconnect attempt %d in %.2f s",
            self.camera_id,
            message,
            attempt,
            delay,
            extra={"camera_id": self.camera_id, "attempt": attempt, "backoff_s": delay},
        )
        if self._stop_event.wait(delay):
            return False
        with self._condition:
            self._reconnects += 1
        return True

    def _pump(self, capture: _Capture) -> bool:
        """Deliver frames until the source ends (True), stop is asked (False) or it fails."""
        live = self.spec.kind in LIVE_KINDS
        if not live:
            with self._condition:
                self._condition.wait_for(lambda: self._consumer_ready or self._stop_event.is_set())
        period = None if self.spec.fastest else _period(self.spec, capture.native_fps)
        next_due: float | None = None
        frames_this_pass = 0
        last_frame_time = time.monotonic()
        while not self._stop_event.is_set():
            image = capture.read(self._report_skipped_image)
            now = time.monotonic()
            if image is None:
                if live:
                    silent_s = now - last_frame_time
                    if silent_s >= self.stall_timeout_s:
                        raise SourceError(f"{self.spec}: no frame for {silent_s:.1f} s (stalled)")
                    raise SourceError(f"{self.spec}: read failed")
                if frames_this_pass == 0:
                    raise SourceError(f"{self.spec}: no readable frame in the source")
                if not self.spec.loop:
                    return True
                capture.rewind()
                frames_this_pass = 0
                continue
            frames_this_pass += 1
            last_frame_time = now
            if period is not None:
                if next_due is not None and now < next_due:
                    if live:
                        continue  # thin a live source out to the target rate
                    if self._stop_event.wait(next_due - now):
                        return False
                    now = time.monotonic()
                behind = next_due is None or now - next_due >= period
                next_due = now + period if behind else next_due + period
            if not self._publish(image):
                return False
            if capture.healthy_since is None:
                capture.healthy_since = time.monotonic()
        return False

    def _publish(self, image: np.ndarray) -> bool:
        """Put a frame in the slot; False when stop was asked while waiting for room."""
        captured_at = datetime.now(UTC)
        with self._condition:
            if self.every_frame:
                self._condition.wait_for(lambda: self._latest_taken or self._stop_event.is_set())
                if self._stop_event.is_set():
                    return False
            elif not self._latest_taken:
                self._dropped += 1
            self._latest = Frame(image, self._frames, captured_at, self.camera_id)
            self._latest_taken = False
            self._frames += 1
            self._last_frame_at = captured_at
            now = time.monotonic()
            self._frame_times.append(now)
            self._prune_frame_times(now)
            if self._state not in (CameraState.RUNNING, CameraState.STOPPED):
                self._state = CameraState.RUNNING
                logger.info(
                    "camera %s: running (%s)",
                    self.camera_id,
                    self.spec,
                    extra={"camera_id": self.camera_id},
                )
            self._condition.notify_all()
        return True

    def _report_skipped_image(self, path: Path) -> None:
        message = f"{self.spec}: skipped unreadable image {path.name}"
        with self._condition:
            self._last_error = message
        logger.warning(
            "camera %s: %s", self.camera_id, message, extra={"camera_id": self.camera_id}
        )

    def _prune_frame_times(self, now: float) -> None:
        times = self._frame_times
        while times and times[0] < now - self.fps_window_s:
            times.popleft()

    def _set_state(self, state: CameraState, error: str | None = None) -> None:
        with self._condition:
            if self._state is CameraState.STOPPED:
                return
            self._state = state
            if error is not None:
                self._last_error = error
            self._condition.notify_all()


class CameraSet:
    """Several camera readers started, watched and stopped together.

    Each reader runs in its own thread, so one broken camera never stops the others.

    Args:
        readers: The readers; camera ids must be unique.

    Examples:
        ```python
        from edge_app.sources import CameraSet

        with CameraSet.from_sources({"shelf": "shelf.mp4", "door": "rtsp://10.0.0.9/1"}) as cameras:
            frame = cameras["shelf"].read_latest(timeout=1.0)
            print({cid: state.value for cid, state in cameras.states().items()})
        ```
    """

    def __init__(self, readers: Iterable[CameraReader] = ()) -> None:
        self._readers: dict[str, CameraReader] = {}
        for reader in readers:
            self.add(reader)

    @classmethod
    def from_sources(
        cls,
        sources: Mapping[str, SourceSpec | str | int | Mapping[str, Any]],
        **reader_options: Any,
    ) -> CameraSet:
        """Build readers from ``{camera_id: source}``.

        Args:
            sources: Camera ids and their sources (anything :meth:`SourceSpec.parse` takes).
            **reader_options: Keyword arguments for every :class:`CameraReader`.

        Returns:
            The set, not started.
        """
        return cls(
            CameraReader(camera_id, spec, **reader_options) for camera_id, spec in sources.items()
        )

    def add(self, reader: CameraReader) -> None:
        """Add a reader (not started by this call).

        Raises:
            ValueError: When a reader with the same camera id is already in the set.
        """
        if reader.camera_id in self._readers:
            raise ValueError(
                f"camera id {reader.camera_id!r} is already in the set; ids must be unique"
            )
        self._readers[reader.camera_id] = reader

    def __getitem__(self, camera_id: str) -> CameraReader:
        try:
            return self._readers[camera_id]
        except KeyError:
            raise KeyError(f"no camera {camera_id!r}; cameras: {sorted(self._readers)}") from None

    def __contains__(self, camera_id: object) -> bool:
        return camera_id in self._readers

    def __iter__(self) -> Iterator[CameraReader]:
        return iter(list(self._readers.values()))

    def __len__(self) -> int:
        return len(self._readers)

    def __enter__(self) -> CameraSet:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def camera_ids(self) -> list[str]:
        """The camera ids, in the order they were added."""
        return list(self._readers)

    def start(self) -> CameraSet:
        """Start every reader not yet started; a reader that cannot start is logged."""
        for reader in self:
            if reader._thread is not None:
                continue
            try:
                reader.start()
            except Exception:
                logger.exception(
                    "camera %s: could not start reader",
                    reader.camera_id,
                    extra={"camera_id": reader.camera_id},
                )
        return self

    def stop(self, timeout: float = 1.0) -> bool:
        """Stop all readers at once, waiting ``timeout`` seconds in total.

        Returns:
            True when every reader's thread has ended.
        """
        readers = list(self)
        for reader in readers:
            reader.request_stop()
        deadline = time.monotonic() + timeout
        return all([reader.stop(max(0.0, deadline - time.monotonic())) for reader in readers])

    def states(self) -> dict[str, CameraState]:
        """Each camera's state."""
        return {reader.camera_id: reader.state for reader in self}

    def statuses(self) -> dict[str, SourceStatus]:
        """Each camera's health snapshot."""
        return {reader.camera_id: reader.status() for reader in self}


# -- opening sources -----------------------------------------------------------------


class _Capture(abc.ABC):
    """An opened source: ``read()`` returns an image, or None at the end / on failure."""

    native_fps: float | None = None

    def __init__(self) -> None:
        self.healthy_since: float | None = None

    @abc.abstractmethod
    def read(self, on_unreadable: Callable[[Path], None]) -> np.ndarray | None:
        """The next image, or None at the end of the source or on a failure."""

    @abc.abstractmethod
    def rewind(self) -> None:
        """Start again from the first frame (files and folders that loop)."""

    def release(self) -> None:  # noqa: B027 - optional hook: most captures hold nothing to free
        """Free the source; the base has nothing to free."""


class _VideoCapture(_Capture):
    def __init__(self, spec: SourceSpec, open_timeout_s: float, read_timeout_s: float) -> None:
        super().__init__()
        self._spec = spec
        self._open_timeout_ms = int(open_timeout_s * 1000)
        self._read_timeout_ms = int(read_timeout_s * 1000)
        self._capture = self._open()
        fps = self._capture.get(cv2.CAP_PROP_FPS)
        self.native_fps = fps if math.isfinite(fps) and 0 < fps <= 1000 else None

    def _open(self) -> cv2.VideoCapture:
        spec = self._spec
        if spec.kind is SourceKind.FILE:
            path = Path(spec.location)
            if not path.is_file():
                raise SourceError(f"{spec}: no such video file")
            capture = cv2.VideoCapture(
                str(path), cv2.CAP_ANY, [cv2.CAP_PROP_N_THREADS, spec.decode_threads]
            )
        elif spec.kind is SourceKind.WEBCAM:
            location = spec.location
            capture = cv2.VideoCapture(int(location) if location.isdigit() else location)
        else:
            capture = cv2.VideoCapture(
                spec.location,
                cv2.CAP_FFMPEG,
                [
                    cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
                    self._open_timeout_ms,
                    cv2.CAP_PROP_READ_TIMEOUT_MSEC,
                    self._read_timeout_ms,
                    cv2.CAP_PROP_N_THREADS,
                    spec.decode_threads,
                ],
            )
        if not capture.isOpened():
            capture.release()
            raise SourceError(f"{spec}: cannot open (unreachable, unsupported or corrupt)")
        return capture

    def read(self, on_unreadable: Callable[[Path], None]) -> np.ndarray | None:
        ok, image = self._capture.read()
        return image if ok and image is not None and image.size else None

    def rewind(self) -> None:
        self._capture.release()
        self._capture = self._open()

    def release(self) -> None:
        self._capture.release()


class _ImageFolderCapture(_Capture):
    def __init__(self, spec: SourceSpec) -> None:
        super().__init__()
        self._spec = spec
        self._directory = Path(spec.location)
        self._paths = self._list()
        self._position = 0

    def _list(self) -> list[Path]:
        if not self._directory.is_dir():
            raise SourceError(f"{self._spec}: no such image folder")
        paths = sorted(
            (
                path
                for path in self._directory.iterdir()
                if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file()
            ),
            key=_natural_name_key,
        )
        if not paths:
            raise SourceError(f"{self._spec}: no {'/'.join(IMAGE_SUFFIXES)} images in the folder")
        return paths

    def read(self, on_unreadable: Callable[[Path], None]) -> np.ndarray | None:
        while self._position < len(self._paths):
            path = self._paths[self._position]
            self._position += 1
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is not None:
                return image
            on_unreadable(path)
        return None

    def rewind(self) -> None:
        self._paths = self._list()  # picks up images added since the last pass
        self._position = 0


def _open_capture(spec: SourceSpec, open_timeout_s: float, read_timeout_s: float) -> _Capture:
    if spec.kind is SourceKind.IMAGES:
        return _ImageFolderCapture(spec)
    return _VideoCapture(spec, open_timeout_s, read_timeout_s)


def _period(spec: SourceSpec, native_fps: float | None) -> float | None:
    """Seconds between delivered frames, or None when the source paces itself."""
    if spec.fps is not None:
        return 1.0 / spec.fps
    if spec.kind is SourceKind.FILE:
        return 1.0 / (native_fps or VIDEO_FILE_FALLBACK_FPS)
    if spec.kind is SourceKind.IMAGES:
        return 1.0 / IMAGE_FOLDER_DEFAULT_FPS
    return None


def _natural_name_key(path: Path) -> tuple[list[int | str], str]:
    """Sort key putting ``frame_2.jpg`` before ``frame_10.jpg``."""
    parts = re.split(r"(\d+)", path.name.lower())
    return [int(part) if index % 2 else part for index, part in enumerate(parts)], path.name


def _path_from_uri(rest: str) -> Path:
    """The path of a ``file:`` / ``images:`` URI after its scheme and colon."""
    if rest.startswith("//"):
        rest = rest[2:]
        if rest.startswith("localhost/"):
            rest = rest[len("localhost") :]
    return Path(unquote(rest)).expanduser()


def _coerce_kind(kind: SourceKind | str) -> SourceKind:
    try:
        return SourceKind(kind)
    except ValueError:
        raise ValueError(
            f"unknown camera source kind {kind!r}; allowed: {[k.value for k in SourceKind]}"
        ) from None


__all__ = [
    "IMAGE_FOLDER_DEFAULT_FPS",
    "IMAGE_SUFFIXES",
    "LIVE_KINDS",
    "STREAM_SCHEMES",
    "TERMINAL_STATES",
    "VIDEO_FILE_FALLBACK_FPS",
    "BackoffPolicy",
    "CameraReader",
    "CameraSet",
    "CameraState",
    "Frame",
    "FrameSource",
    "SourceError",
    "SourceKind",
    "SourceSpec",
    "SourceStatus",
]
