"""The device's lifecycle, whoever hands its cameras their frames.

- :class:`ModelStore` — resolves a :class:`~kit.core.contracts.ModelRef` to a model file (shipped
  with the app, cached, or downloaded from the registry and checksum-verified) and loads each
  model once; several cameras share a loaded model.
- :class:`DeviceServices` — what a device talks to: settings, the AWS clients (made once
  credentials can be had), the spool and its publisher, the model store, the control client.
- :class:`CameraRuntime` — one camera: its :class:`~edge_app.pipeline.CameraProcessor` (model +
  control settings), control changes applied between frames (a new model is loaded in the
  background while the current one keeps running; one the registry could not deliver is tried
  again with backoff), results counted and published every ``refresh_s``, its health
  (``degraded`` while the model it should run cannot be loaded).
- :class:`DeviceRuntime` — the device: services, cameras, the control loop, heartbeats, shutdown.

Two shells drive a :class:`DeviceRuntime`: :class:`edge_app.app.EdgeApp` (a reader and a worker
thread per camera) and :class:`edge_app.panorama.PanoramaAdapter` (a Panorama code node's media
batches). Neither repeats what is here.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from edge_app.clients import BackendClients, LazyClient
from edge_app.config import CameraConfig, DeviceConfig
from edge_app.control import ControlClient
from edge_app.detectors import Detector, load_detector
from edge_app.heartbeat import build_heartbeat, camera_health
from edge_app.pipeline import CameraProcessor, FrameResult, publish_result
from edge_app.publisher import Publisher
from edge_app.sources import Frame, SourceStatus
from edge_app.spool import Spool
from kit.core.contracts import CameraHealth, CameraSettings, ControlConfig, Heartbeat, ModelRef
from kit.core.registry import RegistryError, RegistryReader
from kit.core.settings import Settings, load_settings

log = logging.getLogger(__name__)

SHUTDOWN_JOIN_S = 5.0
"""How long closing waits for the control and heartbeat threads."""

MODEL_RETRY_MIN_S = 5.0
"""The first wait before a model the registry could not deliver is asked for again."""

MODEL_RETRY_MAX_S = 300.0
"""The longest wait between two attempts at a model the registry could not deliver."""

SPOOL_ERROR_HEARTBEATS = 3
"""A spool's disk problem is reported for this many heartbeat intervals after the last item it
cost, so a disk that is full now and then between heartbeats is not reported as well."""

ResultCallback = Callable[[FrameResult, np.ndarray | None], None]
"""Called with each handled result and its rendered frame (None when it was not published)."""


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


class ModelStore:
    """Model files and loaded detectors, shared by all cameras of a device.

    Looks for a model, in order: files shipped with the app (``preloaded`` by ``name:version`` or
    ``name``), then the registry (downloaded once into ``cache_dir``, sha256-verified), and
    opens each file once with ``open_detector``: `load_detector` by default (the backend the
    file calls for, default settings); a device passes its inference settings, and the Panorama
    code node its model node (which runs the model compiled for the appliance and only reads
    the file's metadata).
    """

    def __init__(
        self,
        *,
        preloaded: dict[str, Path] | None = None,
        registry: RegistryReader | None = None,
        cache_dir: Path | None = None,
        open_detector: Callable[[Path], Detector] = load_detector,
    ):
        self.preloaded = {key: Path(path) for key, path in (preloaded or {}).items()}
        self.registry = registry
        self.cache_dir = cache_dir
        self.open_detector = open_detector
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
            raise ModelStoreError(
                f"cannot fetch model {ref} from the registry: {error}",
                retryable=not isinstance(error, RegistryError | ValueError),
            ) from error
        return resolved, Path(path)

    def load(self, ref: ModelRef) -> tuple[ModelRef, Detector]:
        """The detector for ``ref``, loaded once per resolved model."""
        resolved, path = self.model_path(ref)
        key = f"{resolved.name}:{resolved.version}:{path}"
        with self._lock:
            detector = self._detectors.get(key)
        if detector is None:
            try:
                detector = self.open_detector(path)
            except (OSError, ValueError, ImportError, RuntimeError) as error:
                raise ModelStoreError(
                    f"cannot load model {resolved} from {path}: {error}"
                ) from error
            with self._lock:
                detector = self._detectors.setdefault(key, detector)
            log.info("loaded model %s from %s", resolved, path)
        return resolved, detector


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
    frames (`apply_pending`); a model they name is loaded in the background while the current
    one keeps running, and one the registry could not deliver (no network or credentials yet)
    is asked for again, waiting :data:`MODEL_RETRY_MIN_S` doubling to :data:`MODEL_RETRY_MAX_S`.
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
        self._model_asked: ModelRef | None = None
        self._loading: tuple[ModelRef, Future[tuple[ModelRef, Detector]]] | None = None
        self._pending: CameraSettings | None = self.camera_settings
        self._retry: tuple[ModelRef, float] | None = None
        self._retry_delay_s = 0.0
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
        return loading[0] if loading is not None else None

    @property
    def error(self) -> str | None:
        """The camera's problem now: a model that cannot run, else the last frame's error."""
        return self.model_error or self.frame_error

    # -- control ----------------------------------------------------------------------------
    def apply(self, camera_settings: CameraSettings) -> None:
        """Take new control settings (from any thread); `apply_pending` applies them."""
        with self._lock:
            self._pending = camera_settings

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
        if camera_settings is not None:
            self._configure(camera_settings)
        if self._loading is None and self._retry is not None:
            wanted, due_at = self._retry
            if time.monotonic() >= due_at:
                self._retry = None
                log.info("camera %s: asking for model %s again", self.camera_id, wanted)
                self._loading = (wanted, self.loader.submit(self.models.load, wanted))
        if self._loading is not None and (
            self._loading[1].done() or (wait_for_first_model and self.processor is None)
        ):
            self._switch_to_loaded()

    def _configure(self, camera_settings: CameraSettings) -> None:
        self._retry = None
        if camera_settings.model is None:
            camera_settings = camera_settings.model_copy(update={"model": self.config.model})
        self.camera_settings = camera_settings
        if self.processor is not None:
            self.processor.configure(camera_settings)
        wanted = camera_settings.model
        if wanted is None:
            self._loading = None
            self.model_error = (
                "no model: neither the control config nor the camera's device config names one"
            )
            return
        if self.loading == wanted:
            return
        # an alias is resolved again: it may point at another version since the last load
        fixed_version = isinstance(wanted.version, int)
        if self.processor is not None and wanted == self._model_asked and fixed_version:
            self._loading = None  # back to the running model while another one was loading
            self.model_error = None
            return
        log.info("camera %s: loading model %s", self.camera_id, wanted)
        self._loading = (wanted, self.loader.submit(self.models.load, wanted))

    def _switch_to_loaded(self) -> None:
        wanted, future = self._loading
        self._loading = None
        try:
            resolved, detector = future.result()
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
            self.processor.set_detector(detector, resolved)
        else:
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
        return camera_health(
            self.source_status(),
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
        self.loader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model-loader")
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

    def start(self) -> DeviceRuntime:
        """Start sending, sending heartbeats and (with ``control_poll``) polling the control
        config."""
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
        while not self._stop.wait(self.config.control_poll_s):
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
