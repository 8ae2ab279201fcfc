"""The standalone edge app (``python -m edge_app --config device.yaml``): a reader thread and a
worker thread per camera around the device's :class:`~edge_app.runtime.DeviceRuntime`.

- :class:`FramePacer` — which frames a camera analyses: at most ``process_fps`` a second.
- :class:`CameraWorker` — a thread per camera: takes its source's newest due frame, runs the
  camera's processor, keeps several frames in flight when the camera falls behind, and hands
  each result to the camera's runtime (counted, published every ``refresh_s``). It takes no
  frame before the camera's first model has loaded, and a file or image folder starts playing
  only then (nothing of a short clip is lost to the model's load).
- :class:`EdgeApp` — the device: the runtime (services, control, heartbeats), the cameras'
  readers (a :class:`~edge_app.sources.CameraSet`) and their workers. A camera whose source is
  invalid is reported ``failed`` with one line naming it; the other cameras run.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from edge_app.config import DeviceConfig
from edge_app.detectors import Detector
from edge_app.runtime import CameraRuntime, DeviceRuntime
from edge_app.sources import CameraReader, CameraSet, CameraState, FrameSource, SourceStatus
from kit.core.settings import Settings

log = logging.getLogger(__name__)

EARLY_FRAME_FRACTION = 0.25
"""A frame up to this fraction of the analysis interval early is taken, so that a camera sending
exactly ``process_fps`` frames a second cannot fall into analysing every other frame when its
frames arrive just before each due time. The average rate stays at most ``process_fps``."""

IDLE_READ_S = 0.25
"""How long a worker with nothing in flight waits for a frame before it looks for control
changes again."""

ERROR_PAUSE_S = 0.5
"""How long a worker pauses after a failed frame, so a broken model cannot spin a core."""

WORKER_STOP_S = 5.0
"""How long stopping waits for a worker (it may be waiting for an inference)."""

READERS_STOP_S = 5.0
"""How long stopping waits for all readers together."""


class FramePacer:
    """Which frames a camera analyses: at most ``process_fps`` a second of the camera's time.

    Frames are judged by when they were captured, so what is analysed depends on the frames
    alone, not on when the worker gets to look at them. A camera whose frames come later than
    due (it fell behind) has its next frame taken as soon as it comes, so the average rate
    catches up without exceeding ``process_fps``. A capture time before the last analysed one
    (the clock was set back) starts the schedule again.

    Examples:
        >>> from datetime import UTC, datetime, timedelta
        >>> pacer, start = FramePacer(process_fps=5), datetime(2026, 1, 1, tzinfo=UTC)
        >>> [pacer.due(start + timedelta(seconds=0.1 * i)) for i in range(5)]
        [True, False, True, False, True]
    """

    def __init__(self, process_fps: float):
        if not process_fps > 0:
            raise ValueError(f"process_fps must be > 0 frames a second, got {process_fps!r}")
        self.interval_s = 1.0 / process_fps
        self.early_s = self.interval_s * EARLY_FRAME_FRACTION
        self._next_due: float | None = None
        self._last: float | None = None

    def due(self, captured_at: datetime) -> bool:
        """Whether a frame captured at ``captured_at`` is analysed (it then counts as taken)."""
        at = captured_at.timestamp()
        restart = self._next_due is None or self._last is None or at < self._last
        if not restart and at < self._next_due - self.early_s:
            return False
        if restart:
            self._next_due = at + self.interval_s
        else:
            self._next_due = max(self._next_due + self.interval_s, at)
        self._last = at
        return True


class CameraWorker:
    """One camera's thread: its source's newest due frame -> the camera's processor -> the
    camera's runtime (counted, published every ``refresh_s``).

    When the next frame is already there and due as the last one goes into inference (the
    camera is behind: analysis slower than ``process_fps``), it is submitted too, up to the
    processor's depth, so letterboxing and tracking overlap inference. A camera that keeps up
    never has more than one frame in flight, so nothing waits for a later frame. Control changes
    are applied while no frame is in flight.

    No frame is taken while the camera has no model yet: they would go unanalysed.

    Args:
        camera: the camera's runtime (model, control settings, counters, publishing).
        source: where its frames come from (its :class:`~edge_app.sources.CameraReader`).
        on_first_model: called once, when the camera's first model has loaded (the edge app
            lets a file or image folder start playing: `CameraReader.consumer_ready`).
    """

    def __init__(
        self,
        camera: CameraRuntime,
        source: FrameSource,
        *,
        on_first_model: Callable[[], None] | None = None,
    ):
        self.camera = camera
        self.source = source
        self.on_first_model = on_first_model
        self._model_announced = False
        self.pacer = FramePacer(camera.config.process_fps)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> CameraWorker:
        self._thread = threading.Thread(
            target=self._run, name=f"worker-{self.camera.camera_id}", daemon=True
        )
        self._thread.start()
        return self

    def request_stop(self) -> None:
        """Ask the thread to stop after the frame it is on, without waiting for it."""
        self._stop.set()

    def stop(self, timeout_s: float = WORKER_STOP_S) -> None:
        """Stop the thread and wait for it up to ``timeout_s``."""
        self.request_stop()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._step()
            except Exception as error:  # one bad frame or model must never stop the camera
                self.camera.record_error(error)
                self._stop.wait(ERROR_PAUSE_S)
        if self.camera.processor is not None:
            self.camera.processor.drain()

    def _step(self) -> None:
        """Take a frame if one is due, and collect the oldest in flight unless the camera is
        behind and the processor has room for the next."""
        camera = self.camera
        processor = camera.processor
        if processor is None or not processor.pending:
            camera.apply_pending()
            processor = camera.processor
        if processor is None:
            self._stop.wait(IDLE_READ_S)
            return
        if not self._model_announced:
            self._model_announced = True
            if self.on_first_model is not None:
                self.on_first_model()
        busy = processor.pending > 0
        frame = self.source.read_latest(timeout=0.0 if busy else IDLE_READ_S)
        submitted = False
        if frame is not None and self.pacer.due(frame.captured_at):
            processor.submit(frame)
            submitted = True
        behind = submitted and processor.pending < processor.depth
        if processor.pending and not behind:
            camera.handle(processor.collect())


class EdgeApp:
    """A device: every camera of ``config`` with its reader and worker, around the device's
    runtime (publisher + spool, models, control polling, heartbeats).

    Args:
        config: the device config.
        settings: kit settings (default: from the config's ``settings``).
        open_detector: how a model file becomes a detector (default: `load_detector` with the
            config's ``inference`` settings).

    Examples:
        >>> from edge_app.config import load_device_config
        >>> app = EdgeApp(load_device_config("device.yaml"))   # doctest: +SKIP
        >>> app.run()                                           # doctest: +SKIP
    """

    def __init__(
        self,
        config: DeviceConfig,
        *,
        settings: Settings | None = None,
        open_detector: Callable[[Path], Detector] | None = None,
    ):
        self.config = config
        self.runtime = DeviceRuntime(config, settings=settings, open_detector=open_detector)
        self.readers = CameraSet()
        self.workers: dict[str, CameraWorker] = {}
        for camera in config.cameras:
            try:
                reader = CameraReader(camera.id, camera.source, wait_for_consumer=True)
            except ValueError as error:
                failed = SourceStatus(
                    camera.id, "(invalid)", CameraState.FAILED, 0.0, 0, 0, 0, None,
                    f"invalid source: {error}",
                )  # fmt: skip
                self.runtime.add_camera(camera, lambda failed=failed: failed)
                log.error("camera %s: invalid source: %s; the other cameras run", camera.id, error)
                continue
            self.readers.add(reader)
            self.workers[camera.id] = CameraWorker(
                self.runtime.add_camera(camera, reader.status),
                reader,
                on_first_model=reader.consumer_ready,
            )
        self._stop = threading.Event()

    def start(self) -> EdgeApp:
        """Start the runtime, then every camera's reader and worker."""
        self.runtime.start()
        self.readers.start()
        for worker in self.workers.values():
            worker.start()
        log.info(
            "edge app %s started with cameras %s",
            self.config.device_id,
            ", ".join(self.workers) or "none",
        )
        return self

    def run(self) -> None:
        """Start and block until :meth:`stop` (e.g. from a signal handler), then close."""
        self.start()
        self._stop.wait()
        self.close()

    def stop(self) -> None:
        """Make :meth:`run` return (safe in a signal handler)."""
        self._stop.set()

    def close(self) -> None:
        """Stop the workers and readers, then the runtime (its last heartbeat reports every
        camera stopped)."""
        self._stop.set()
        for worker in self.workers.values():
            worker.request_stop()
        for worker in self.workers.values():
            worker.stop()
        self.readers.stop(timeout=READERS_STOP_S)
        self.runtime.close()
