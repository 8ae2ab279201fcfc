"""The device's lifecycle, whoever hands its cameras their frames.

- :class:`ModelStore` — resolves a :class:`~kit.core.contracts.ModelRef` to a model file (shipped
  with the app, cached, or downloaded from the registry and checksum-verified: the format of the
  device's backend in the camera's precision, FP32 when there is no INT8 one) and loads each
  model once; several cameras share a loaded model.
- :class:`DeviceServices` — what a device talks to: settings, the AWS clients (made once
  credentials can be had), the spool and its publisher, the model store, the control client.
- :class:`CameraRuntime` — one camera: its :class:`~edge_app.pipeline.CameraProcessor` (model +
  control settings), control changes applied between frames (only a change of the model it is
  told to run, or of its precision, loads one, in the background while the current one keeps running; thresholds,
  zones, lines, rules and refresh rate apply in place; a model the registry could not deliver is
  tried again with backoff; an alias it runs is checked every ``model_check_s`` and followed when
  it moved), results counted and published every ``refresh_s``, its health (``degraded`` while
  the model it should run cannot be loaded).
- :class:`DeviceRuntime` — the device: services, cameras, the control loop, heartbeats, shutdown.

Two shells drive a :class:`DeviceRuntime`: :class:`edge_app.app.EdgeApp` (a reader and a worker
thread per camera) and :class:`edge_app.panorama.PanoramaAdapter` (a Panorama code node's media
batches). Neither repeats what is here.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import NamedTuple

import numpy as np

from edge_app.clients import BackendClients, LazyClient
from edge_app.config import CameraConfig, DeviceConfig
from edge_app.control import ControlClient
from edge_app.detectors import Detector, load_detector
from edge_app.heartbeat import build_heartbeat, camera_health
from edge_app.pipeline import CameraProcessor, FrameResult, publish_result, publish_sample
from edge_app.publisher import Publisher
from edge_app.sources import CameraState, Frame, SourceStatus
from edge_app.spool import Spool
from kit.core.contracts import CameraHealth, CameraSettings, ControlConfig, Heartbeat, ModelRef
from kit.core.contracts.control import Precision
from kit.core.contracts.model import INT8_FORMATS, ModelMetadata
from kit.core.registry import RegistryError, RegistryReader, fetch_artifact
from kit.core.settings import Settings, load_settings

log = logging.getLogger(__name__)

SHUTDOWN_JOIN_S = 5.0
"""How long closing waits for the control and heartbeat threads."""

MODEL_RETRY_MIN_S = 5.0
"""The first wait before a model the registry could not deliver is asked for again."""

MODEL_RETRY_MAX_S = 300.0
"""The longest wait between two attempts at a model the registry could not deliver."""

KEEP_IDLE_DETECTORS = 2
"""Detectors no camera runs that a `ModelStore` keeps loaded, for a quick switch back."""

SPOOL_ERROR_HEARTBEATS = 3
"""A spool's disk problem is reported for this many heartbeat intervals after the last item it
cost, so a disk that is full now and then between heartbeats is not reported as well."""

ResultCallback = Callable[[FrameResult, np.ndarray | None], None]
"""Called with each handled result and its rendered frame (None when it was not published)."""


class ModelChoice(NamedTuple):
    """What a camera is told to run: a change of either loads a model, nothing else does."""

    model: ModelRef
    precision: Precision


class ModelStoreError(RuntimeError):
    """A model cannot be found, downloaded, verified or loaded; the message says which and why.

    Attributes:
        retryable: the registry could not be asked (no network or credentials yet, an S3
            error): the same model may load later. False when the answer was final (no such
            model, a bad checksum, a file that does not load).
    """

    def __init__(self, message: str, *, retryable: bool = False):
        super().__init__(message)
        self.retryable = retryable


FP32_FORMATS: dict[str, tuple[str, ...]] = {
    "onnxruntime": ("onnx",),
    "openvino": ("openvino", "onnx"),
}
"""The registry formats a device runs in FP32, by its inference backend, preferred first
(OpenVINO reads the ``.onnx`` too)."""


def _fetch_error(ref: ModelRef, error: Exception) -> ModelStoreError:
    """A registry failure for ``ref``: final for a lookup the registry answered (no such model,
    a malformed reference), retryable for anything else (network, credentials, S3)."""
    return ModelStoreError(
        f"cannot fetch model {ref} from the registry: {error}",
        retryable=not isinstance(error, RegistryError | ValueError),
    )


class ModelStore:
    """Model files and loaded detectors, shared by all cameras of a device.

    Looks for a model, in order: files shipped with the app (``preloaded`` by ``name:version`` or
    ``name``), then the registry (downloaded once into ``cache_dir``, sha256-verified), and
    opens each file once with ``open_detector``: `load_detector` by default (the backend the
    file calls for, default settings); a device passes its inference settings, and the Panorama
    code node its model node (which runs the model compiled for the appliance and only reads
    the file's metadata).

    From the registry it takes the format of the device's inference ``backend`` in the precision
    a camera asks for (:data:`FP32_FORMATS`, :data:`INT8_FORMATS`; ``auto`` takes ONNX Runtime's,
    whose ``.onnx`` it then runs). A camera asking ``int8`` of a version without that format, or
    of a model shipped with the app, runs it in FP32 and never stops;
    :meth:`precision_fallback` says why.

    Each `load` is a lease on the detector, given back with `release` once its camera stops
    running it. A detector nobody leases stays loaded for a quick switch back, the
    ``keep_idle`` most recently released ones; older ones are closed and forgotten (their
    files stay in the cache), so a device whose cameras switch model after model keeps in
    memory what its cameras run and a few more, not every model it ever ran.
    """

    def __init__(
        self,
        *,
        preloaded: dict[str, Path] | None = None,
        registry: RegistryReader | None = None,
        cache_dir: Path | None = None,
        open_detector: Callable[[Path], Detector] = load_detector,
        backend: str = "auto",
        keep_idle: int = KEEP_IDLE_DETECTORS,
    ):
        if keep_idle < 0:
            raise ValueError(f"keep_idle must be 0 or more, got {keep_idle}")
        self.preloaded = {key: Path(path) for key, path in (preloaded or {}).items()}
        self.registry = registry
        self.cache_dir = cache_dir
        self.open_detector = open_detector
        self.backend = "openvino" if backend == "openvino" else "onnxruntime"
        self.keep_idle = keep_idle
        self._detectors: dict[str, Detector] = {}
        self._leases: dict[str, int] = {}
        self._idle: dict[str, None] = {}  # keys nobody leases, least recently released first
        self._fallbacks: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()

    def _shipped(self, ref: ModelRef) -> Path | None:
        """The file shipped with the app for ``ref``, if any."""
        for key in (f"{ref.name}:{ref.version}", ref.name):
            if key in self.preloaded:
                return self.preloaded[key]
        return None

    def resolve(self, ref: ModelRef) -> ModelRef:
        """What ``ref`` names now (an alias -> its version), without fetching any file: a
        shipped model is what it is; a registry one is asked to the registry.

        Raises:
            ModelStoreError: no such model, or the registry cannot be asked (``retryable``).
        """
        if self._shipped(ref) is not None:
            return ref
        if self.registry is None:
            known = ", ".join(sorted(self.preloaded)) or "none"
            raise ModelStoreError(
                f"model {ref} is not shipped with the app (shipped: {known}) and no registry is set"
            )
        try:
            return self.registry.resolve(ref)
        except Exception as error:  # registry lookups and S3 errors alike
            raise _fetch_error(ref, error) from error

    def model_path(self, ref: ModelRef, precision: Precision = "fp32") -> tuple[ModelRef, Path]:
        """The resolved reference (alias -> version) and the local model file for ``precision``."""
        path = self._shipped(ref)
        if path is not None:
            if not path.exists():
                raise ModelStoreError(f"model {ref} is configured at {path}, which does not exist")
            self._record_fallback(
                ref,
                precision,
                None
                if precision == "fp32"
                else f"model {ref} is shipped with the app ({path.name}) and runs as shipped; "
                f"{precision} is the registry's {INT8_FORMATS[self.backend]} format",
            )
            return ref, path
        resolved = self.resolve(ref)
        try:
            metadata = self.registry.get(resolved)
            fmt, fallback = self.format_for(metadata, precision)
            path = fetch_artifact(
                self.registry.s3,
                self.registry.bucket,
                metadata,
                fmt,
                self.cache_dir if self.cache_dir is not None else self.registry.cache_dir,
            )
        except Exception as error:  # registry lookups, S3 and checksum errors alike
            raise _fetch_error(ref, error) from error
        self._record_fallback(resolved, precision, fallback)
        return resolved, Path(path)

    def format_for(self, metadata: ModelMetadata, precision: Precision) -> tuple[str, str | None]:
        """The registry format to run ``metadata``'s version in ``precision`` on this device's
        backend, and why it is FP32 when ``int8`` was asked (None when it is what was asked)."""
        fallback = None
        if precision == "int8":
            wanted = INT8_FORMATS[self.backend]
            if wanted in metadata.formats:
                return wanted, None
            fallback = (
                f"{metadata.ref} has no {wanted} format for this device's {self.backend} "
                f"backend (formats: {', '.join(metadata.formats)}): running fp32; add it with "
                f"`kit models quantize {metadata.ref} --backend {self.backend}`"
            )
        candidates = FP32_FORMATS[self.backend]
        fmt = next((f for f in candidates if f in metadata.formats), candidates[-1])
        return fmt, fallback

    def precision_fallback(self, ref: ModelRef, precision: Precision) -> str | None:
        """Why ``ref`` (as :meth:`load` returned it) runs in FP32 for a camera asking
        ``precision``; None when it runs in the precision asked."""
        with self._lock:
            return self._fallbacks.get((str(ref), precision))

    def load(self, ref: ModelRef, precision: Precision = "fp32") -> tuple[ModelRef, Detector]:
        """The detector for ``ref`` in ``precision``, loaded once per resolved model file, and a
        lease on it (`release` it when done)."""
        resolved, path = self.model_path(ref, precision)
        key = f"{resolved.name}:{resolved.version}:{path}"
        with self._lock:
            detector = self._lease(key)
        if detector is None:
            try:
                opened = self.open_detector(path)
            except (OSError, ValueError, ImportError, RuntimeError) as error:
                raise ModelStoreError(
                    f"cannot load model {resolved} from {path}: {error}"
                ) from error
            with self._lock:
                detector = self._lease(key)
                if detector is None:
                    detector = self._detectors[key] = opened
                    self._leases[key] = 1
            if detector is not opened:  # another camera loaded the same file meanwhile
                opened.close()
            else:
                log.info("loaded model %s from %s", resolved, path)
        return resolved, detector

    def release(self, detector: Detector) -> None:
        """Give back a lease `load` gave on ``detector``. Unknown detectors (closed already, or
        not from this store) are ignored."""
        closing = []
        with self._lock:
            key = next((k for k, d in self._detectors.items() if d is detector), None)
            if key is None:
                return
            self._leases[key] -= 1
            if self._leases[key] > 0:
                return
            del self._leases[key]
            self._idle[key] = None
            while len(self._idle) > self.keep_idle:
                oldest = next(iter(self._idle))
                del self._idle[oldest]
                closing.append((oldest, self._detectors.pop(oldest)))
        for key, idle in closing:
            log.info(
                "closing model %s: no camera runs it, and %d left since stay loaded",
                key,
                self.keep_idle,
            )
            idle.close()

    @property
    def loaded(self) -> dict[str, int]:
        """Leases by loaded model (``name:version:path``); 0 for one kept idle."""
        with self._lock:
            return {key: self._leases.get(key, 0) for key in self._detectors}

    def _lease(self, key: str) -> Detector | None:
        """The detector loaded for ``key`` with one more lease on it, or None (lock held)."""
        detector = self._detectors.get(key)
        if detector is not None:
            self._idle.pop(key, None)
            self._leases[key] = self._leases.get(key, 0) + 1
        return detector

    def _record_fallback(self, ref: ModelRef, precision: str, fallback: str | None) -> None:
        with self._lock:
            known = self._fallbacks.get((str(ref), precision))
            if fallback is None:
                self._fallbacks.pop((str(ref), precision), None)
            else:
                self._fallbacks[(str(ref), precision)] = fallback
        if fallback is not None and fallback != known:
            log.warning("%s", fallback)


@dataclass
class DeviceServices:
    """What a device talks to: settings, the AWS clients, the spool and its publisher, the model
    store, and the control client."""

    settings: Settings
    spool: Spool
    publisher: Publisher
    models: ModelStore
    control: ControlClient
    clients: BackendClients

    @classmethod
    def from_config(
        cls,
        config: DeviceConfig,
        *,
        settings: Settings | None = None,
        open_detector: Callable[[Path], Detector] | None = None,
    ) -> DeviceServices:
        """The services ``config`` describes.

        Args:
            config: the device config.
            settings: kit settings (default: from the config's ``settings``).
            open_detector: how a model file becomes a detector (default: `load_detector` with
                the config's ``inference`` settings).

        The control client starts from the config's ``control`` until the backend's arrives. No
        AWS call is made here: a device starts without network or credentials, and its clients
        are made once they can be.

        Raises:
            kit.core.settings.SettingsError: a bad ``settings`` value (or ``EVK_*`` variable).
            edge_app.spool.SpoolInUseError: another process holds the spool directory.
        """
        settings = settings or load_settings(**{**config.settings, "device_id": config.device_id})
        clients = BackendClients(settings, retry_max_s=config.backend_retry_max_s)
        spool = Spool(
            config.path(config.spool.dir),
            max_bytes=int(config.spool.max_mb * 1e6),
            fsync=config.spool.fsync,
            memory_max_bytes=int(config.spool.memory_mb * 1e6),
            error_hold_s=SPOOL_ERROR_HEARTBEATS * config.heartbeat_s,
        )
        cache_dir = config.path(config.model_cache_dir)
        return cls(
            settings=settings,
            spool=spool,
            publisher=Publisher(
                settings, spool, retry_max_s=config.backend_retry_max_s, clients=clients
            ),
            models=ModelStore(
                preloaded={key: config.path(path) for key, path in config.models.items()},
                registry=RegistryReader(
                    LazyClient(clients, "s3"), settings.resources.bucket, cache_dir=cache_dir
                ),
                cache_dir=cache_dir,
                open_detector=open_detector or partial(load_detector, inference=config.inference),
                backend=config.inference.backend,
            ),
            control=ControlClient(
                settings,
                source=config.control_source,
                cache_file=config.path(config.spool.dir).parent / "control-config.json",
                initial=config.control,
                clients=clients,
            ),
            clients=clients,
        )

    def close(self) -> None:
        """Flush what can be sent within a few seconds, then close the spool."""
        self.publisher.stop(timeout_s=5)
        self.spool.close()


class CameraRuntime:
    """One camera of a device: what it runs, what it made of its frames, how it is doing.

    It holds the camera's :class:`~edge_app.pipeline.CameraProcessor` (model + control
    settings). New control settings arrive from any thread (`apply`) and are applied between
    frames (`apply_pending`). Only a change of the model they name or of its ``precision`` loads
    one (in the background, while the current one keeps running); anything else (confidence,
    IoU, zones, lines, rules, refresh rate) is applied to the running processor, and settings
    equal to the current ones (another camera's changed) leave the camera as it is. A model the registry could not deliver
    (no network or credentials yet) is asked for again, waiting :data:`MODEL_RETRY_MIN_S`
    doubling to :data:`MODEL_RETRY_MAX_S`. An alias (``shelf:production``) is resolved when it
    is named; `check_alias` resolves it again, and the camera switches when it moved.
    Each result is counted and published every ``refresh_s`` (`handle`); the camera's health
    (`health`) joins its source's status and the pipeline's own counters.

    One thread drives a camera (its `~edge_app.app.CameraWorker`, or the Panorama code node);
    `apply`, `health` and the counters may be used from any thread.

    Args:
        config: the camera's part of the device config (id, starting model, analysis rate,
            privacy, crops).
        models: where models come from (each loaded once, shared by the device's cameras).
        loader: runs model loads in the background.
        source_status: the camera source's health now (e.g. a reader's ``status``).
        publisher: where published frames and payloads go (None: rendered, not sent).
        device_id: the device, for payloads and object keys.
        on_result: called with each handled result and its rendered frame.

    Attributes:
        camera_settings: the control settings the camera runs with.
        processor: the per-frame pipeline (None until the first model loaded).
        processed: frames analysed since start.
        published: frames published since start.
        model_error: why the model named last is not running (None once one loaded).
        frame_error: the last frame's error (None once a frame went through).
    """

    def __init__(
        self,
        config: CameraConfig,
        models: ModelStore,
        *,
        loader: Executor,
        source_status: Callable[[], SourceStatus],
        publisher: Publisher | None = None,
        device_id: str,
        on_result: ResultCallback | None = None,
    ):
        self.config = config
        self.models = models
        self.loader = loader
        self.source_status = source_status
        self.publisher = publisher
        self.device_id = device_id
        self.on_result = on_result
        self.camera_settings = CameraSettings(model=config.model)
        self.processor: CameraProcessor | None = None
        self.processed = 0
        self.published = 0
        self.model_error: str | None = None
        self.frame_error: str | None = None
        self._last_publish_at: float | None = None
        self._model_asked: ModelChoice | None = None
        self._loading: tuple[ModelChoice, Future[tuple[ModelRef, Detector] | None]] | None = None
        self._pending: CameraSettings | None = self.camera_settings
        self._retry: tuple[ModelChoice, float] | None = None
        self._retry_delay_s = 0.0
        self._alias_check_asked = False
        self._lock = threading.Lock()

    @property
    def camera_id(self) -> str:
        return self.config.id

    @property
    def model(self) -> ModelRef | None:
        """The model running now (an alias resolved to its version)."""
        processor = self.processor
        return processor.model if processor is not None else None

    @property
    def loading(self) -> ModelRef | None:
        """The model being loaded in the background, as the control settings name it."""
        loading = self._loading
        return loading[0].model if loading is not None else None

    @property
    def precision_fallback(self) -> str | None:
        """Why the running model runs in FP32 though the camera asks another precision."""
        model = self.model
        if model is None:
            return None
        return self.models.precision_fallback(model, self.camera_settings.precision)

    @property
    def error(self) -> str | None:
        """The camera's problem now: a model that cannot run, else why it runs in another
        precision than asked, else the last frame's error."""
        return self.model_error or self.precision_fallback or self.frame_error

    # -- control ----------------------------------------------------------------------------
    def apply(self, camera_settings: CameraSettings) -> None:
        """Take new control settings (from any thread); `apply_pending` applies them."""
        with self._lock:
            self._pending = camera_settings

    def check_alias(self) -> None:
        """Ask (from any thread) for the alias the camera runs to be resolved again; between
        frames, the version it points at now is loaded when it is another (`apply_pending`).
        Nothing happens for a camera running a numbered version."""
        with self._lock:
            self._alias_check_asked = True

    def apply_pending(self, *, wait_for_first_model: bool = False) -> None:
        """Between frames (none in flight): apply new control settings, start loading a model
        they name, and switch to a model that finished loading.

        Args:
            wait_for_first_model: while no model runs yet, wait for the one loading (a shell
                with nothing else to do meanwhile, such as the Panorama code node); otherwise
                the camera has no processor until it loads, and its frames go unanalysed.
        """
        with self._lock:
            camera_settings, self._pending = self._pending, None
            alias_check, self._alias_check_asked = self._alias_check_asked, False
        if camera_settings is not None:
            self._configure(camera_settings)
        if alias_check:
            self._start_alias_check()
        if self._loading is None and self._retry is not None:
            wanted, due_at = self._retry
            if time.monotonic() >= due_at:
                self._retry = None
                log.info("camera %s: asking for model %s again", self.camera_id, wanted.model)
                self._loading = (wanted, self.loader.submit(self.models.load, *wanted))
        if self._loading is not None and (
            self._loading[1].done() or (wait_for_first_model and self.processor is None)
        ):
            self._switch_to_loaded()

    def _configure(self, camera_settings: CameraSettings) -> None:
        self._retry = None
        if camera_settings.model is None:
            camera_settings = camera_settings.model_copy(update={"model": self.config.model})
        changed = camera_settings != self.camera_settings
        self.camera_settings = camera_settings
        if self.processor is not None and changed:
            self.processor.configure(camera_settings)
        if camera_settings.model is None:
            self._abandon_loading()
            self.model_error = (
                "no model: neither the control config nor the camera's device config names one"
            )
            return
        wanted = ModelChoice(camera_settings.model, camera_settings.precision)
        if self._loading is not None and self._loading[0] == wanted:
            return
        if self.processor is not None and wanted == self._model_asked:
            self._abandon_loading()  # back to the running model while another one was loading
            self.model_error = None
            return
        log.info("camera %s: loading model %s (%s)", self.camera_id, wanted.model, wanted.precision)
        self._abandon_loading()
        self._loading = (wanted, self.loader.submit(self.models.load, *wanted))

    def _abandon_loading(self) -> None:
        """Forget the model loading now; once it has loaded, its lease goes back to the store."""
        loading, self._loading = self._loading, None
        if loading is not None:
            loading[1].add_done_callback(self._release_loaded)

    def _release_loaded(self, future: Future[tuple[ModelRef, Detector] | None]) -> None:
        if future.cancelled() or future.exception() is not None:
            return
        loaded = future.result()
        if loaded is not None:
            self.models.release(loaded[1])

    def _start_alias_check(self) -> None:
        """Resolve the alias the camera runs again in the background (see `check_alias`)."""
        wanted = self._model_asked
        if (
            wanted is None
            or isinstance(wanted.model.version, int)
            or self.processor is None
            or self._loading is not None
            or ModelChoice(self.camera_settings.model, self.camera_settings.precision) != wanted
        ):
            return
        self._loading = (wanted, self.loader.submit(self._load_if_moved, *wanted, self.model))

    def _load_if_moved(
        self, alias: ModelRef, precision: Precision, running: ModelRef | None
    ) -> tuple[ModelRef, Detector] | None:
        """The model ``alias`` points at now, loaded, when it is not ``running``; else None
        (also when the registry cannot answer now: the camera keeps its model and the next
        check asks again)."""
        try:
            resolved = self.models.resolve(alias)
        except ModelStoreError as error:
            log.warning(
                "camera %s: cannot check alias %s: %s; keeping %s",
                self.camera_id,
                alias,
                error,
                running,
            )
            return None
        if resolved == running:
            return None
        log.info("camera %s: %s moved to %s; loading it", self.camera_id, alias, resolved)
        return self.models.load(resolved, precision)

    def _switch_to_loaded(self) -> None:
        wanted, future = self._loading
        self._loading = None
        try:
            loaded = future.result()
        except Exception as error:  # a model that cannot load must not stop the camera
            self.model_error = str(error)
            if isinstance(error, ModelStoreError) and error.retryable:
                self._retry_delay_s = min(
                    max(2 * self._retry_delay_s, MODEL_RETRY_MIN_S), MODEL_RETRY_MAX_S
                )
                self._retry = (wanted, time.monotonic() + self._retry_delay_s)
                log.error(
                    "camera %s: %s; keeping %s, asking again in %.0f s",
                    self.camera_id,
                    error,
                    self.model,
                    self._retry_delay_s,
                )
            else:
                log.error("camera %s: %s; keeping %s", self.camera_id, error, self.model)
            return
        if loaded is None:  # an alias checked again still points at the running model
            return
        resolved, detector = loaded
        self._model_asked = wanted
        self._retry_delay_s = 0.0
        self.model_error = None
        if self.processor is None:
            self.processor = CameraProcessor(
                self.camera_id,
                detector,
                resolved,
                self.camera_settings,
                frame_rate=self.config.process_fps,
            )
        elif resolved != self.processor.model or detector is not self.processor.detector:
            previous = self.processor.detector
            self.processor.set_detector(detector, resolved)
            self.models.release(previous)
        else:
            self.models.release(detector)  # this load's lease on the detector running already
            return
        log.info("camera %s: now running model %s", self.camera_id, resolved)

    # -- results ----------------------------------------------------------------------------
    def handle(self, result: FrameResult) -> np.ndarray | None:
        """Count ``result``, and publish it when ``refresh_s`` passed since the last one.

        Returns:
            The rendered frame when it was published, else None.
        """
        self.processed += 1
        rendered = None
        now = time.monotonic()
        if (
            self._last_publish_at is None
            or now - self._last_publish_at >= self.camera_settings.refresh_s
        ):
            self._last_publish_at = now
            rendered = publish_result(
                self.processor, self.config, result, self.publisher, self.device_id
            )
            if self.publisher is not None:
                self.published += 1
        publish_sample(self.processor, self.config, result, self.publisher, self.device_id)
        self.frame_error = None
        if self.on_result is not None:
            self.on_result(result, rendered)
        return rendered

    def process(self, frame: Frame) -> FrameResult | None:
        """One frame through the pipeline and `handle` (for a shell that hands frames one at a
        time, with none in flight).

        Returns:
            The result; None while no model runs, or when the frame failed (`error` says why).
        """
        if self.processor is None:
            return None
        try:
            result = self.processor.process(frame)
            self.handle(result)
        except Exception as error:  # one bad frame must never stop the camera
            self.record_error(error)
            return None
        return result

    def record_error(self, error: Exception) -> None:
        """Keep a frame's error for the heartbeat; log it unless it repeats the last one."""
        message = f"{type(error).__name__}: {error}"
        if message != self.frame_error:
            log.error("camera %s: %s", self.camera_id, message, exc_info=error)
        self.frame_error = message

    def health(self, *, stopping: bool = False) -> CameraHealth:
        """The camera's part of a heartbeat (``stopping``: reported stopped; ``degraded`` while
        the model it should run cannot be loaded)."""
        source = self.source_status()
        if source.state is CameraState.STARTING and self.processor is None and self.model_error:
            # A file or image folder plays only once its first model runs: a source opened and
            # waiting is not the camera's problem, the model that cannot be loaded is.
            source = replace(source, state=CameraState.RUNNING)
        return camera_health(
            source,
            model=self.model,
            published=self.published,
            error=self.error,
            degraded=self.model_error is not None,
            stopping=stopping,
        )


class DeviceRuntime:
    """A device's lifecycle, whoever hands its cameras their frames.

    It owns the device's services (spool, publisher, model store, control client), one
    :class:`CameraRuntime` per camera, the control loop (poll the backend's control config,
    give each camera its settings), heartbeats (every ``heartbeat_s``, and a last one with every
    camera stopped) and shutdown.

    Args:
        config: the device config.
        settings: kit settings (default: from the config's ``settings``).
        open_detector: how a model file becomes a detector (default: `load_detector` with the
            config's ``inference`` settings).
        control_poll: poll the backend's control config every ``control_poll_s``.

    Examples:
        >>> runtime = DeviceRuntime(config).start()                     # doctest: +SKIP
        >>> camera = runtime.add_camera(config.cameras[0], reader.status)  # doctest: +SKIP
        >>> runtime.close()                                              # doctest: +SKIP
    """

    def __init__(
        self,
        config: DeviceConfig,
        *,
        settings: Settings | None = None,
        open_detector: Callable[[Path], Detector] | None = None,
        control_poll: bool = True,
    ):
        self.config = config
        self.services = DeviceServices.from_config(
            config, settings=settings, open_detector=open_detector
        )
        self.control_poll = control_poll
        self.cameras: dict[str, CameraRuntime] = {}
        self.loader = DaemonExecutor("model-loader")
        self.started_monotonic = time.monotonic()
        self._control = self.services.control.current
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._closed = False

    @property
    def device_id(self) -> str:
        return self.config.device_id

    def add_camera(
        self,
        camera: CameraConfig,
        source_status: Callable[[], SourceStatus],
        *,
        on_result: ResultCallback | None = None,
    ) -> CameraRuntime:
        """A new camera, set to run what the control config says for it.

        Args:
            camera: the camera's config.
            source_status: its source's health now (e.g. a reader's ``status``).
            on_result: called with each handled result and its rendered frame.

        Raises:
            ValueError: for a camera id the device already has.
        """
        with self._lock:
            if camera.id in self.cameras:
                raise ValueError(f"camera {camera.id!r} is already on device {self.device_id}")
            added = CameraRuntime(
                camera,
                self.services.models,
                loader=self.loader,
                source_status=source_status,
                publisher=self.services.publisher,
                device_id=self.device_id,
                on_result=on_result,
            )
            added.apply(self._control.for_camera(camera.id))
            self.cameras[camera.id] = added
        return added

    def apply_control(self, control: ControlConfig) -> None:
        """Give every camera its settings from ``control`` (from any thread; each camera applies
        them before its next frame). Cameras added later start with them too."""
        with self._lock:
            self._control = control
            cameras = list(self.cameras.values())
        for camera in cameras:
            camera.apply(control.for_camera(camera.camera_id))

    def check_aliases(self) -> None:
        """Have every camera that runs an alias resolve it again (between its frames); those
        whose alias moved load the version it points at now (a promotion reaches the device)."""
        with self._lock:
            cameras = list(self.cameras.values())
        for camera in cameras:
            camera.check_alias()

    def start(self) -> DeviceRuntime:
        """Start sending, sending heartbeats and (with ``control_poll``) polling the control
        config and checking the cameras' model aliases every ``model_check_s``."""
        self.services.publisher.start()
        loops = [(self._heartbeat_loop, "heartbeat")]
        if self.control_poll:
            loops.append((self._control_loop, "control"))
        for target, name in loops:
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def heartbeat(self, *, stopping: bool = False) -> Heartbeat:
        """The device's health now (``stopping``: every camera reported stopped)."""
        with self._lock:
            cameras = list(self.cameras.values())
        return build_heartbeat(
            self.device_id,
            time.monotonic() - self.started_monotonic,
            {camera.camera_id: camera.health(stopping=stopping) for camera in cameras},
            self.services.spool.stats(),
        )

    def send_heartbeat(self, *, stopping: bool = False) -> None:
        """Queue a heartbeat; a failure is logged, never raised (it must not stop the device)."""
        try:
            self.services.publisher.send_heartbeat(self.heartbeat(stopping=stopping))
        except Exception as error:  # noqa: BLE001 - a heartbeat must never take the device down
            log.warning("heartbeat not queued: %s", error)

    def close(self) -> None:
        """Stop polling and heartbeats, queue a last heartbeat with every camera stopped, flush
        what can be sent within a few seconds and close the spool. The shell stops its cameras
        first; a second call does nothing."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._stop.set()
        for thread in self._threads:
            thread.join(SHUTDOWN_JOIN_S)
        self._threads.clear()
        self.send_heartbeat(stopping=True)
        self.loader.shutdown(wait=False, cancel_futures=True)
        self.services.close()

    def _control_loop(self) -> None:
        aliases_checked_at = time.monotonic()
        while not self._stop.wait(self.config.control_poll_s):
            if time.monotonic() - aliases_checked_at >= self.config.model_check_s:
                aliases_checked_at = time.monotonic()
                self.check_aliases()
            try:
                control = self.services.control.poll()
            except Exception:  # a bug in one answer must not stop the device following control
                log.exception("control config poll failed")
                continue
            if control is not None:
                self.apply_control(control)

    def _heartbeat_loop(self) -> None:
        while True:
            self.send_heartbeat()
            if self._stop.wait(self.config.heartbeat_s):
                return


class DaemonExecutor(Executor):
    """Runs submitted calls one after another on one daemon thread (the device's model loads).

    A `ThreadPoolExecutor`'s threads are joined when the interpreter exits, so a model download
    stuck on a connection that never answers (botocore waits 60 s a try, and tries again) held
    up the process's exit after SIGTERM; this thread does not.

    Args:
        name: the thread's name (in logs and stack dumps).
    """

    def __init__(self, name: str) -> None:
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._shutdown = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, fn, /, *args, **kwargs) -> Future:
        """Queue ``fn(*args, **kwargs)``; its future.

        Raises:
            RuntimeError: after `shutdown`.
        """
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot run anything more: the executor was shut down")
            future: Future = Future()
            self._queue.put((future, fn, args, kwargs))
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Run nothing more (what is queued is cancelled with ``cancel_futures``, else run
        first); with ``wait``, wait for the thread to finish."""
        with self._lock:
            self._shutdown = True
            if cancel_futures:
                while True:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is not None:  # a sentinel of an earlier shutdown
                        item[0].cancel()
            self._queue.put(None)
        if wait:
            self._thread.join()

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            future, fn, args, kwargs = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = fn(*args, **kwargs)
            except BaseException as error:  # noqa: BLE001 - handed to whoever waits on it
                future.set_exception(error)
            else:
                future.set_result(result)
