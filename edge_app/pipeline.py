"""The edge pipeline: per camera, frames -> detector -> tracker -> zones/lines -> annotate -> publish.

Layers, from pure to threaded:

- :class:`CameraProcessor` — the per-frame logic of one camera (no threads, no I/O): detect,
  track, count in zones and across lines; render the published frame (privacy blur, annotations);
  build the :class:`~kit.core.contracts.DetectionPayload`. Benchmarks and the Panorama adapter drive it
  directly.
- :class:`ModelStore` — resolves a :class:`~kit.core.contracts.ModelRef` to a model file (shipped with
  the app, cached, or downloaded from the registry and checksum-verified) and loads each model
  once; several cameras share a loaded model.
- :class:`CameraWorker` — a thread per camera: takes the newest frame, runs the processor at up to
  ``process_fps``, publishes every ``refresh_s``, applies control changes hot (a new model is
  loaded in the background while the old one keeps running).
- :class:`EdgeApp` — the device: cameras, workers, publisher + spool, control polling, heartbeats.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

from edge_app.annotate import annotate, blur_classes, crop, encode_jpeg
from edge_app.config import CameraConfig, DeviceConfig
from edge_app.control import ControlClient
from edge_app.detections import Detections
from edge_app.detectors import Detector, InferenceJob, LetterboxInfo, load_detector
from edge_app.heartbeat import build_heartbeat
from edge_app.publisher import Publisher, crop_key, frame_key
from edge_app.sources import CameraReader, CameraState, CameraStatus, Frame
from edge_app.spool import Spool
from edge_app.tracking import ByteTracker
from edge_app.zones import LineCounter, PolygonZone
from kit.core.contracts import (
    CameraSettings,
    ControlConfig,
    DetectionPayload,
    LineSpec,
    ModelRef,
    ZoneSpec,
)
from kit.core.registry import RegistryReader
from kit.core.settings import Settings, load_settings

log = logging.getLogger(__name__)

JPEG_QUALITY = 80
EARLY_FRAME_FRACTION = 0.25
"""A frame up to this fraction of the analysis interval early is taken, so that a camera sending
exactly ``process_fps`` frames a second cannot fall into analysing every other frame when its
frames arrive just before each due time. The average rate stays at most ``process_fps``."""


@dataclass
class FrameResult:
    """What the pipeline made of one frame."""

    frame: Frame
    detections: Detections
    counts: dict[str, int]
    zone_counts: dict[str, dict[str, int]]
    line_counts: dict[str, dict[str, int]]
    inference_ms: float


class CameraProcessor:
    """The per-frame logic of one camera. Not thread-safe: one processor per camera.

    Args:
        camera_id: the camera.
        detector: the loaded model (may be shared with other cameras: the processor uses its own
            input buffer and only the detector's stateless stages).
        model: which model ``detector`` is, for payloads.
        settings: the camera's resolved control settings (confidence, zones, lines …).
        frame_rate: expected analysed frames per second (sizes the tracker's lost-track buffer).
    """

    def __init__(
        self,
        camera_id: str,
        detector: Detector,
        model: ModelRef,
        settings: CameraSettings | None = None,
        *,
        frame_rate: float = 10.0,
    ):
        self.camera_id = camera_id
        self.frame_rate = frame_rate
        self.settings = settings or CameraSettings()
        self.zones: list[PolygonZone] = []
        self.lines: list[LineCounter] = []
        self._line_specs: dict[str, LineSpec] = {}
        self._in_flight: deque[tuple[Frame, LetterboxInfo, np.ndarray, InferenceJob]] = deque()
        self.set_detector(detector, model)
        self.configure(self.settings)

    def set_detector(self, detector: Detector, model: ModelRef) -> None:
        """Switch model: a new tracker too (track ids of another model mean nothing).

        Raises:
            RuntimeError: while frames are in flight (`collect` them first).
        """
        self._check_idle("switch model")
        self.detector = detector
        self.model = model
        self._free_inputs: list[np.ndarray] = []
        self.tracker = ByteTracker(
            track_activation_threshold=self.settings.confidence,
            high_conf_det_threshold=self.settings.confidence,
            low_conf_det_threshold=min(0.1, self.settings.confidence),
            frame_rate=self.frame_rate,
            minimum_consecutive_frames=1,
        )

    def configure(self, settings: CameraSettings) -> None:
        """Apply zones, lines and confidence; a line whose spec did not change keeps its counts.

        Raises:
            RuntimeError: while frames are in flight (`collect` them first).
        """
        self._check_idle("change settings")
        confidence_changed = settings.confidence != self.settings.confidence
        self.settings = settings
        self.zones = [_zone_from_spec(spec) for spec in settings.zones]
        lines = []
        for spec in settings.lines:
            kept = next(
                (line for line in self.lines if self._line_specs.get(line.name) == spec), None
            )
            lines.append(kept or LineCounter(spec.name, spec.start, spec.end, normalized=True))
        self.lines = lines
        self._line_specs = {spec.name: spec for spec in settings.lines}
        if confidence_changed:
            self.set_detector(self.detector, self.model)

    # -- per frame ----------------------------------------------------------------------
    @property
    def pending(self) -> int:
        """Frames submitted and not collected yet."""
        return len(self._in_flight)

    @property
    def depth(self) -> int:
        """Frames worth keeping in flight: one per concurrent inference, one queued so that the
        runtime never waits for this thread to letterbox the next, and the one being tracked."""
        return self.detector.max_in_flight + 2

    def submit(self, frame: Frame) -> None:
        """Letterbox ``frame`` and start its inference; `collect` returns results in order.

        Raises:
            ValueError: for an image that is not an ``(H, W, 3)`` uint8 frame (nothing is queued).
        """
        buffer = self._free_inputs.pop() if self._free_inputs else self.detector.new_input_buffer()
        try:
            tensor, info = self.detector.preprocess(frame.image, out=buffer)
            job = self.detector.submit(tensor)
        except BaseException:
            self._free_inputs.append(buffer)
            raise
        self._in_flight.append((frame, info, buffer, job))

    def collect(self) -> FrameResult:
        """Wait for the oldest submitted frame, then track and count it.

        Raises:
            RuntimeError: when nothing is in flight.
            Exception: the frame's inference error (that frame is dropped; later ones are not).
        """
        if not self._in_flight:
            raise RuntimeError(f"camera {self.camera_id}: no frame in flight to collect")
        frame, info, buffer, job = self._in_flight.popleft()
        try:
            raw = job.result()
        finally:
            self._free_inputs.append(buffer)
        height, width = frame.image.shape[:2]
        low = min(0.1, self.settings.confidence)
        detections = self.detector.postprocess(raw, info, conf=low)
        tracked = self.tracker.update(detections)
        confident = tracked[tracked.confidence >= self.settings.confidence]
        zone_counts = {}
        for zone in self.zones:
            zone.trigger(confident, frame_wh=(width, height))
            zone_counts[zone.name] = zone.counts(self.detector.class_names)
        line_counts = {}
        for line in self.lines:
            line.trigger(confident, frame_wh=(width, height))
            line_counts[line.name] = {"in": line.in_count, "out": line.out_count}
        return FrameResult(
            frame=frame,
            detections=confident,
            counts=confident.counts(self.detector.class_names),
            zone_counts=zone_counts,
            line_counts=line_counts,
            inference_ms=job.elapsed_ms,
        )

    def process(self, frame: Frame) -> FrameResult:
        """Detect, track and count on one frame (nothing else may be in flight)."""
        self._check_idle("process a frame out of turn")
        self.submit(frame)
        return self.collect()

    def process_all(
        self, frames: Iterable[Frame], depth: int | None = None
    ) -> Iterator[FrameResult]:
        """Results of ``frames`` in order, keeping up to ``depth`` frames in flight.

        While the backend infers the newest frames, this thread letterboxes the next one and
        tracks the oldest, so the CPU work around inference overlaps inference itself.
        ``depth`` defaults to `depth`; 1 is `process` frame by frame.
        """
        depth = self.depth if depth is None else depth
        if depth < 1:
            raise ValueError(f"depth must be at least 1, got {depth}")
        try:
            for frame in frames:
                if len(self._in_flight) >= depth:
                    yield self.collect()
                self.submit(frame)
            while self._in_flight:
                yield self.collect()
        finally:
            self.drain()

    def drain(self) -> None:
        """Wait for the frames in flight and drop their results (tracking skips them)."""
        while self._in_flight:
            _, _, buffer, job = self._in_flight.popleft()
            try:
                job.result()
            except Exception as error:  # dropped anyway; the error was the frame's own
                log.debug("camera %s: dropped in-flight frame: %s", self.camera_id, error)
            self._free_inputs.append(buffer)

    def _check_idle(self, action: str) -> None:
        if self._in_flight:
            raise RuntimeError(
                f"camera {self.camera_id}: cannot {action} with {len(self._in_flight)} frame(s) "
                "in flight; collect() them first"
            )

    def render(
        self,
        result: FrameResult,
        *,
        blur: Iterable[str] = ("person",),
        blur_method: str = "gaussian",
    ) -> np.ndarray:
        """The frame that leaves the device: privacy classes blurred, then annotated."""
        names = self.detector.class_names
        private = blur_classes(
            result.frame.image, result.detections, names, classes=tuple(blur), method=blur_method
        )
        return annotate(
            private,
            result.detections,
            class_names=names,
            zones=self.zones,
            lines=self.lines,
            camera=self.camera_id,
            model=str(self.model),
            timestamp=result.frame.captured_at.timestamp(),
        )

    def crops(
        self,
        result: FrameResult,
        classes: Iterable[str],
        *,
        limit: int,
        pad: int,
        blur: Iterable[str] = (),
        blur_method: str = "gaussian",
    ) -> list[tuple[str, np.ndarray]]:
        """Crops of ``classes`` (at most ``limit``, most confident first), privacy classes blurred."""
        names = self.detector.class_names
        wanted = [c for c in classes if c in names.values()]
        if not wanted or not len(result.detections):
            return []
        source = blur_classes(
            result.frame.image, result.detections, names, classes=tuple(blur), method=blur_method
        )
        selected = result.detections[np.argsort(-result.detections.confidence)]
        selected = selected.filter(classes=wanted)[:limit]
        crops = []
        for index in range(len(selected)):
            # one at a time: crop() skips boxes that are empty once clipped to the frame
            for image in crop(source, selected[index], pad=pad, class_names=names):
                crops.append((names[int(selected.class_id[index])], image))
        return crops

    def payload(self, result: FrameResult, device_id: str, key: str | None) -> DetectionPayload:
        """The detection payload of ``result``; ``key`` is where its annotated frame goes."""
        height, width = result.frame.image.shape[:2]
        return DetectionPayload(
            device_id=device_id,
            camera_id=self.camera_id,
            model=self.model,
            captured_at=result.frame.captured_at,
            frame={"width": width, "height": height},
            detections=result.detections.to_list(self.detector.class_names),
            counts=result.counts,
            zone_counts=result.zone_counts,
            line_counts=result.line_counts,
            frame_key=key,
            inference_ms=round(result.inference_ms, 3),
        )


def _zone_from_spec(spec: ZoneSpec) -> PolygonZone:
    return PolygonZone(spec.name, spec.polygon, classes=spec.classes, normalized=True)


class ModelStoreError(RuntimeError):
    """A model cannot be found, downloaded, verified or loaded; the message says which and why."""


class ModelStore:
    """Model files and loaded detectors, shared by all cameras of a device.

    Looks for a model, in order: files shipped with the app (``preloaded`` by ``name:version`` or
    ``name``), then the registry (downloaded once into ``cache_dir``, sha256-verified).
    ``backend``, ``threads`` and ``performance_hint`` go to `load_detector` for every model.
    """

    def __init__(
        self,
        *,
        preloaded: dict[str, Path] | None = None,
        registry=None,
        cache_dir: Path | None = None,
        backend: str = "auto",
        threads: int | None = None,
        performance_hint: str = "throughput",
    ):
        self.preloaded = {key: Path(path) for key, path in (preloaded or {}).items()}
        self.registry = registry
        self.cache_dir = cache_dir
        self.backend = backend
        self.threads = threads
        self.performance_hint = performance_hint
        self._detectors: dict[str, Detector] = {}
        self._lock = threading.Lock()

    def model_path(self, ref: ModelRef) -> tuple[ModelRef, Path]:
        """The resolved reference (alias -> version) and the local model file."""
        for key in (f"{ref.name}:{ref.version}", ref.name):
            if key in self.preloaded:
                path = self.preloaded[key]
                if not path.exists():
                    raise ModelStoreError(
                        f"model {ref} is configured at {path}, which does not exist"
                    )
                return ref, path
        if self.registry is None:
            known = ", ".join(sorted(self.preloaded)) or "none"
            raise ModelStoreError(
                f"model {ref} is not shipped with the app (shipped: {known}) and no registry is set"
            )
        try:
            resolved = self.registry.resolve(ref)
            path = self.registry.download(resolved, "onnx", cache_dir=self.cache_dir)
        except Exception as error:  # registry lookups, S3 and checksum errors alike
            raise ModelStoreError(f"cannot fetch model {ref} from the registry: {error}") from error
        return resolved, Path(path)

    def load(self, ref: ModelRef) -> tuple[ModelRef, Detector]:
        """The detector for ``ref``, loaded once per resolved model."""
        resolved, path = self.model_path(ref)
        key = f"{resolved.name}:{resolved.version}:{path}"
        with self._lock:
            detector = self._detectors.get(key)
        if detector is None:
            try:
                detector = load_detector(
                    path,
                    backend=self.backend,
                    threads=self.threads,
                    performance_hint=self.performance_hint,
                )
            except (OSError, ValueError, ImportError, RuntimeError) as error:
                raise ModelStoreError(
                    f"cannot load model {resolved} from {path}: {error}"
                ) from error
            with self._lock:
                detector = self._detectors.setdefault(key, detector)
            log.info("loaded model %s from %s", resolved, path)
        return resolved, detector


@dataclass
class CameraCounters:
    processed: int = 0
    published: int = 0
    error: str | None = None
    last_publish_at: float = 0.0
    process_times_ms: list[float] = field(default_factory=list)


class CameraWorker:
    """One camera's thread: newest frame -> processor -> publish every refresh interval."""

    def __init__(
        self,
        camera: CameraConfig,
        reader: CameraReader,
        models: ModelStore,
        publisher: Publisher | None,
        device_id: str,
        loader: ThreadPoolExecutor,
        *,
        on_result: Callable[[FrameResult, np.ndarray | None], None] | None = None,
    ):
        self.camera = camera
        self.reader = reader
        self.models = models
        self.publisher = publisher
        self.device_id = device_id
        self.loader = loader
        self.on_result = on_result
        self.counters = CameraCounters()
        self.settings = CameraSettings(model=camera.model)
        self.processor: CameraProcessor | None = None
        self._pending_settings: CameraSettings | None = self.settings
        self._loading: tuple[ModelRef, Future] | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def model(self) -> ModelRef | None:
        return self.processor.model if self.processor else None

    def apply(self, settings: CameraSettings) -> None:
        """Take new control settings (from any thread); applied before the next frame."""
        if settings.model is None:
            settings = settings.model_copy(update={"model": self.camera.model})
        with self._lock:
            self._pending_settings = settings

    def start(self) -> CameraWorker:
        self._thread = threading.Thread(
            target=self._run, name=f"camera-{self.camera.id}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    # -- the loop ---------------------------------------------------------------------------
    def _run(self) -> None:
        """Take the newest due frame, infer it, and publish its result.

        When the next frame is already there and due as the last one goes into inference (the
        camera is behind: analysis slower than ``process_fps``), it is submitted too, up to the
        processor's depth, so letterboxing and tracking overlap inference. A camera that keeps
        up never has more than one frame in flight, so nothing waits for a later frame.
        """
        interval = 1.0 / self.camera.process_fps
        early = interval * EARLY_FRAME_FRACTION
        next_due = 0.0
        while not self._stop.is_set():
            try:
                processor = self.processor
                if processor is None or not processor.pending:
                    self._apply_pending()  # settings and models change between frames only
                    processor = self.processor
                busy = processor is not None and processor.pending > 0
                frame = self.reader.read_latest(timeout=0.0 if busy else 0.25)
                submitted = False
                if frame is not None and processor is not None:
                    now = time.monotonic()
                    if now >= next_due - early:
                        next_due = max(next_due + interval, now) if next_due else now + interval
                        processor.submit(frame)
                        submitted = True
                behind = submitted and processor.pending < processor.depth
                if processor is not None and processor.pending and not behind:
                    self._handle(processor.collect())
            except Exception as error:  # one bad frame or model must never stop the camera
                message = f"{type(error).__name__}: {error}"
                if message != self.counters.error:
                    log.exception("camera %s: %s", self.camera.id, message)
                self.counters.error = message
                self._stop.wait(0.5)
        if self.processor is not None:
            self.processor.drain()

    def _handle(self, result: FrameResult) -> None:
        started = time.perf_counter()
        self.counters.processed += 1
        rendered = None
        now = time.monotonic()
        if now - self.counters.last_publish_at >= self.settings.refresh_s:
            self.counters.last_publish_at = now
            rendered = self._publish(result)
        handled_ms = (time.perf_counter() - started) * 1000
        self.counters.process_times_ms.append(result.inference_ms + handled_ms)
        del self.counters.process_times_ms[:-100]
        if self.on_result is not None:
            self.on_result(result, rendered)

    def _publish(self, result: FrameResult) -> np.ndarray:
        rendered = publish_result(
            self.processor, self.camera, result, self.publisher, self.device_id
        )
        if self.publisher is not None:
            self.counters.published += 1
        return rendered

    def _apply_pending(self) -> None:
        with self._lock:
            settings, self._pending_settings = self._pending_settings, None
        if settings is not None:
            self.settings = settings
            if self.processor is not None:
                self.processor.configure(settings)
            wanted = settings.model
            current = self.processor.model if self.processor else None
            loading = self._loading[0] if self._loading else None
            if wanted is not None and wanted != current and wanted != loading:
                log.info("camera %s: loading model %s", self.camera.id, wanted)
                self._loading = (wanted, self.loader.submit(self.models.load, wanted))
        if self._loading is not None and self._loading[1].done():
            wanted, future = self._loading
            self._loading = None
            try:
                resolved, detector = future.result()
            except Exception as error:
                self.counters.error = str(error)
                log.error("camera %s: %s; keeping %s", self.camera.id, error, self.model)
                return
            if self.processor is None:
                self.processor = CameraProcessor(
                    self.camera.id,
                    detector,
                    resolved,
                    self.settings,
                    frame_rate=self.camera.process_fps,
                )
            else:
                self.processor.set_detector(detector, resolved)
            self.counters.error = None
            log.info("camera %s: now running model %s", self.camera.id, resolved)


def publish_result(
    processor: CameraProcessor,
    camera: CameraConfig,
    result: FrameResult,
    publisher: Publisher | None,
    device_id: str,
) -> np.ndarray:
    """Render ``result`` (privacy blur, annotations) and publish its frame, crops and payload.

    Returns:
        The rendered frame (also when ``publisher`` is None: nothing is sent then).
    """
    privacy = camera.privacy
    rendered = processor.render(result, blur=privacy.blur_classes, blur_method=privacy.method)
    if publisher is None:
        return rendered
    captured_at: datetime = result.frame.captured_at
    crops = [
        (
            crop_key(device_id, camera.id, captured_at, index, class_name),
            encode_jpeg(image, JPEG_QUALITY),
        )
        for index, (class_name, image) in enumerate(
            processor.crops(
                result,
                camera.crops.classes,
                limit=camera.crops.max_per_publish,
                pad=camera.crops.padding,
                blur=privacy.blur_classes,
                blur_method=privacy.method,
            )
        )
    ]
    payload = processor.payload(result, device_id, frame_key(device_id, camera.id, captured_at))
    publisher.publish(payload, encode_jpeg(rendered, JPEG_QUALITY), crops)
    return rendered


@dataclass
class DeviceServices:
    """What every device runtime (EdgeApp, the Panorama adapter) shares: settings, the spool and
    its publisher, the model store, and the control client."""

    settings: Settings
    spool: Spool
    publisher: Publisher
    models: ModelStore
    control: ControlClient

    @classmethod
    def from_config(
        cls,
        config: DeviceConfig,
        *,
        settings: Settings | None = None,
        initial_control: ControlConfig | None = None,
    ) -> DeviceServices:
        settings = settings or load_settings(**{"device_id": config.device_id, **config.settings})
        spool = Spool(
            config.path(config.spool.dir),
            max_bytes=int(config.spool.max_mb * 1e6),
            fsync=config.spool.fsync,
        )
        cache_dir = config.path(config.model_cache_dir)
        return cls(
            settings=settings,
            spool=spool,
            publisher=Publisher(settings, spool, retry_max_s=config.backend_retry_max_s),
            models=ModelStore(
                preloaded={key: config.path(path) for key, path in config.models.items()},
                registry=RegistryReader(
                    settings.client("s3"), settings.resources.bucket, cache_dir=cache_dir
                ),
                cache_dir=cache_dir,
                backend=config.inference.backend,
                threads=config.inference.threads,
                performance_hint=config.inference.performance_hint,
            ),
            control=ControlClient(
                settings,
                source=config.control_source,
                cache_file=config.path(config.spool.dir).parent / "control-config.json",
                initial=initial_control or config.control,
            ),
        )

    def close(self) -> None:
        """Flush what can be sent within a few seconds, then close the spool."""
        self.publisher.stop(timeout_s=5)
        self.spool.close()


class EdgeApp:
    """A device: every camera of ``config`` with its worker, one publisher, control and heartbeats.

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
        readers: dict[str, CameraReader] | None = None,
    ):
        self.config = config
        self.services = DeviceServices.from_config(config, settings=settings)
        self.settings = self.services.settings
        self.spool = self.services.spool
        self.publisher = self.services.publisher
        self.models = self.services.models
        self.control = self.services.control
        self.started_monotonic = time.monotonic()
        self.loader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model-loader")
        self.readers = readers or {c.id: CameraReader(c.id, c.source) for c in config.cameras}
        self.workers = {
            c.id: CameraWorker(
                c, self.readers[c.id], self.models, self.publisher, config.device_id, self.loader
            )
            for c in config.cameras
        }
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def apply_control(self, config: ControlConfig) -> None:
        for camera_id, worker in self.workers.items():
            worker.apply(config.for_camera(camera_id))

    def start(self) -> EdgeApp:
        self.publisher.start()
        self.apply_control(self.control.current)
        for camera_id, reader in self.readers.items():
            reader.start()
            self.workers[camera_id].start()
        for target, name in ((self._control_loop, "control"), (self._heartbeat_loop, "heartbeat")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        log.info(
            "edge app %s started with cameras %s", self.config.device_id, ", ".join(self.workers)
        )
        return self

    def run(self) -> None:
        """Start and block until :meth:`stop` (e.g. from a signal handler)."""
        self.start()
        self._stop.wait()
        self._shutdown()

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        """Stop everything started (for callers that used :meth:`start`)."""
        self._stop.set()
        self._shutdown()

    def _shutdown(self) -> None:
        for worker in self.workers.values():
            worker.stop()
        for reader in self.readers.values():
            reader.stop()
        for thread in self._threads:
            thread.join(5)
        self._threads.clear()
        try:
            self.publisher.send_heartbeat(self.heartbeat(stopping=True))
        except Exception as error:  # the spool may be closed already: a second close
            log.debug("no final heartbeat: %s", error)
        self.loader.shutdown(wait=False, cancel_futures=True)
        self.services.close()

    def heartbeat(self, *, stopping: bool = False):
        statuses: dict[str, CameraStatus] = {
            cid: reader.status() for cid, reader in self.readers.items()
        }
        if stopping:
            statuses = {cid: _with_state(s, CameraState.STOPPED) for cid, s in statuses.items()}
        return build_heartbeat(
            self.config.device_id,
            time.monotonic() - self.started_monotonic,
            statuses,
            models={cid: w.model for cid, w in self.workers.items()},
            published={cid: w.counters.published for cid, w in self.workers.items()},
            errors={cid: w.counters.error for cid, w in self.workers.items()},
            spool_stats=self.spool.stats(),
        )

    def _control_loop(self) -> None:
        while not self._stop.wait(self.config.control_poll_s):
            config = self.control.poll()
            if config is not None:
                self.apply_control(config)

    def _heartbeat_loop(self) -> None:
        while True:
            try:
                self.publisher.send_heartbeat(self.heartbeat())
            except Exception as error:  # a heartbeat must never take the device down
                log.warning("heartbeat not queued: %s", error)
            if self._stop.wait(self.config.heartbeat_s):
                return


def _with_state(status: CameraStatus, state: CameraState) -> CameraStatus:
    from dataclasses import replace

    return replace(status, state=state)
