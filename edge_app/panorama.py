"""AWS Panorama code node adapter: the edge pipeline on the appliance's camera streams.

On a Panorama appliance the application SDK (``panoramasdk``, provided by the appliance's base
image) hands the code node its camera frames: ``self.inputs.video_in.get()`` returns a list of
media objects, one per camera stream, each with ``image`` (BGR ``numpy`` array),
``stream_id`` and drawing helpers ``add_rect(x1, y1, x2, y2)`` / ``add_label(text, x, y)`` in
normalised coordinates for the HDMI output; ``self.outputs.video_out.put(streams)`` passes them
on; ``self.call({input_name: tensor}, "model_node")`` runs the compiled model of the model node.

:class:`PanoramaAdapter` drives the pipeline core (:class:`edge_app.pipeline.CameraProcessor`)
with those media objects and publishes payloads, frames and heartbeats through the same
spool-backed :class:`edge_app.publisher.Publisher` as the standalone app; it follows the
backend's control config (model, zones, thresholds) like :class:`edge_app.pipeline.EdgeApp`.
The graph parameters ``threshold``, ``refresh_rate`` and ``device_id`` are the starting point
until the control config says otherwise.

``panoramasdk`` is imported only by :func:`application_class` (or passed in), so this module
imports anywhere; the pipeline core knows nothing of Panorama.

Examples:
    >>> # on the appliance (the generated src/app.py does this):
    >>> # run_application("/panorama/bundle/device.yaml", model_node="model_node",
    >>> #                 state_dir="/opt/aws/panorama/storage")
"""

from __future__ import annotations

import collections
import importlib
import logging
import re
import signal
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from edge_app.config import CameraConfig, DeviceConfig, load_device_config
from edge_app.detectors import (
    Detector,
    InferenceBackend,
    InferenceJob,
    ModelMetadata,
    read_onnx_metadata,
)
from edge_app.heartbeat import build_heartbeat
from edge_app.pipeline import CameraProcessor, DeviceServices, FrameResult, publish_result
from edge_app.sources import CameraState, CameraStatus, Frame
from kit.core.contracts import CameraSettings, ControlConfig, ModelRef
from kit.core.settings import Settings, load_settings

log = logging.getLogger(__name__)

MAX_DRAWN_DETECTIONS = 50
FPS_WINDOW = 30


class PanoramaModelBackend(InferenceBackend):
    """Inference on the Panorama model node (the model compiled by Neo), through ``node.call``.

    Args:
        node: the code node (a ``panoramasdk.node``).
        model_node: the model node's name in the graph.
        input_name: the model's input name in its descriptor (``images`` for ONNX exports).
        metadata: class names and input size (read from the ONNX file shipped with the app).
    """

    name = "panorama"

    def __init__(self, node: Any, model_node: str, input_name: str, metadata: ModelMetadata):
        super().__init__(Path(f"panorama://{model_node}"), metadata)
        self.node = node
        self.model_node = model_node
        self.input_name = input_name

    def submit(self, tensor: np.ndarray) -> InferenceJob:
        """Run the model node now: ``node.call`` is synchronous, so the job is done on return."""
        job = InferenceJob()
        job.run(self._call, tensor)
        return job

    def _call(self, tensor: np.ndarray) -> np.ndarray:
        outputs = self.node.call({self.input_name: tensor}, self.model_node)
        if outputs is None:
            raise RuntimeError(f"model node {self.model_node!r} returned no output")
        first = outputs[0] if isinstance(outputs, list | tuple) else outputs
        return np.asarray(first, dtype=np.float32)


class _RateMeter:
    """Frames per second over the last few frames."""

    def __init__(self, window: int = FPS_WINDOW):
        self.times: collections.deque[float] = collections.deque(maxlen=window)

    def tick(self, now: float) -> None:
        self.times.append(now)

    @property
    def fps(self) -> float:
        if len(self.times) < 2 or self.times[-1] <= self.times[0]:
            return 0.0
        return (len(self.times) - 1) / (self.times[-1] - self.times[0])


class _Stream:
    """One camera stream's processor and counters."""

    def __init__(self, camera: CameraConfig):
        self.camera = camera
        self.processor: CameraProcessor | None = None
        self.settings = CameraSettings(model=camera.model)
        self.rate = _RateMeter()
        self.frames = 0
        self.published = 0
        self.last_publish_at = 0.0
        self.last_frame_at: datetime | None = None
        self.error: str | None = None


def camera_id_for_stream(stream_id: Any) -> str:
    """A camera id (letters, digits, ``_ . -``) from a Panorama stream id."""
    text = re.sub(r"[^A-Za-z0-9_.-]+", "-", str(stream_id)).strip("-._") or "camera"
    return text[:64]


class PanoramaAdapter:
    """The edge pipeline behind a Panorama code node.

    Args:
        node: the code node (``panoramasdk.node``); used for ``call`` with a model node.
        config: the device config (cameras by stream id, models, spool, backend settings).
        threshold: the graph's confidence parameter (0-1).
        refresh_s: the graph's refresh rate parameter (seconds between published frames).
        device_id: the graph's device id parameter (default: the config's).
        model_node: the model node's name; None runs the shipped ONNX with ONNX Runtime.
        model_input: the model node's input name.
        settings: kit settings (default: from the config's ``settings``).
        control_poll: poll the backend's control config in a background thread.
    """

    def __init__(
        self,
        node: Any,
        config: DeviceConfig,
        *,
        threshold: float | None = None,
        refresh_s: int | None = None,
        device_id: str | None = None,
        model_node: str | None = None,
        model_input: str = "images",
        settings: Settings | None = None,
        control_poll: bool = True,
    ):
        self.node = node
        self.device_id = device_id or config.device_id
        self.config = config
        self.model_node = model_node
        self.model_input = model_input
        defaults: dict[str, Any] = {}
        if threshold is not None:
            defaults["confidence"] = float(threshold)
        if refresh_s is not None:
            defaults["refresh_s"] = int(refresh_s)
        initial = config.control or ControlConfig()
        if defaults:
            initial = initial.model_copy(
                update={"defaults": initial.defaults.model_copy(update=defaults)}
            )
        if settings is None:
            settings = load_settings(**{**config.settings, "device_id": self.device_id})
        self.services = DeviceServices.from_config(
            config, settings=settings, initial_control=initial
        )
        self.settings = self.services.settings
        self.spool = self.services.spool
        self.publisher = self.services.publisher
        self.models = self.services.models
        self.control = self.services.control
        self.started_monotonic = time.monotonic()
        self.streams: dict[str, _Stream] = {}
        self._detectors: dict[str, tuple[ModelRef, Detector]] = {}
        self._pending: dict[str, CameraSettings] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._last_heartbeat = 0.0
        self._control_thread: threading.Thread | None = None
        self.publisher.start()
        if control_poll:
            self._control_thread = threading.Thread(
                target=self._control_loop, name="control", daemon=True
            )
            self._control_thread.start()

    # -- models ------------------------------------------------------------------------------
    def detector(self, ref: ModelRef) -> tuple[ModelRef, Detector]:
        """The detector for ``ref``: the model node (metadata from the shipped ONNX) or ONNX Runtime."""
        key = str(ref)
        if key in self._detectors:
            return self._detectors[key]
        if self.model_node is None:
            loaded = self.models.load(ref)
        else:
            resolved, path = self.models.model_path(ref)
            metadata = ModelMetadata.from_mapping(read_onnx_metadata(path), source=str(path))
            backend = PanoramaModelBackend(self.node, self.model_node, self.model_input, metadata)
            loaded = (resolved, Detector(backend))
        self._detectors[key] = loaded
        return loaded

    # -- streams -----------------------------------------------------------------------------
    def _stream(self, stream_id: Any) -> _Stream:
        camera_id = camera_id_for_stream(stream_id)
        stream = self.streams.get(camera_id)
        if stream is None:
            known = {camera.id: camera for camera in self.config.cameras}
            template = known.get(camera_id) or self.config.cameras[0]
            camera = template.model_copy(update={"id": camera_id})
            stream = self.streams[camera_id] = _Stream(camera)
            self._configure(stream, self.control.current.for_camera(camera_id))
        return stream

    def _configure(self, stream: _Stream, settings: CameraSettings) -> None:
        if settings.model is None:
            settings = settings.model_copy(update={"model": stream.camera.model})
        stream.settings = settings
        if settings.model is None:
            stream.error = "no model: the control config names none and the camera has none"
            return
        try:
            resolved, detector = self.detector(settings.model)
        except Exception as error:  # a bad model must not stop the other cameras
            stream.error = f"{type(error).__name__}: {error}"
            log.error("camera %s: %s", stream.camera.id, stream.error)
            return
        if stream.processor is None:
            stream.processor = CameraProcessor(
                stream.camera.id, detector, resolved, settings, frame_rate=stream.camera.process_fps
            )
        else:
            if stream.processor.model != resolved or stream.processor.detector is not detector:
                stream.processor.set_detector(detector, resolved)
            stream.processor.configure(settings)
        stream.error = None

    def process(self, media: Sequence[Any]) -> list[FrameResult]:
        """Run the pipeline on one batch of media objects (one per stream); draw the detections
        on them; publish what is due; send a heartbeat when due."""
        with self._lock:
            pending, self._pending = self._pending, {}
        for camera_id, settings in pending.items():
            if camera_id in self.streams:
                self._configure(self.streams[camera_id], settings)
        results = []
        for item in media:
            stream = self._stream(getattr(item, "stream_id", "camera"))
            now = time.monotonic()
            stream.rate.tick(now)
            stream.frames += 1
            stream.last_frame_at = datetime.now(UTC)
            if stream.processor is None:
                continue
            try:
                frame = Frame(
                    image=np.asarray(item.image),
                    index=stream.frames - 1,
                    captured_at=stream.last_frame_at,
                    camera_id=stream.camera.id,
                )
                result = stream.processor.process(frame)
                self._draw(item, result, stream.processor.detector.class_names)
                if now - stream.last_publish_at >= stream.settings.refresh_s:
                    stream.last_publish_at = now
                    self._publish(stream, result)
                results.append(result)
                stream.error = None
            except Exception as error:  # one bad frame must not stop the appliance's app
                message = f"{type(error).__name__}: {error}"
                if message != stream.error:
                    log.exception("camera %s: %s", stream.camera.id, message)
                stream.error = message
        if time.monotonic() - self._last_heartbeat >= self.config.heartbeat_s:
            self.send_heartbeat()
        return results

    def _draw(self, media: Any, result: FrameResult, names: dict[int, str]) -> None:
        height, width = result.frame.image.shape[:2]
        for index in range(min(len(result.detections), MAX_DRAWN_DETECTIONS)):
            x1, y1, x2, y2 = (float(v) for v in result.detections.xyxy[index])
            box = (x1 / width, y1 / height, x2 / width, y2 / height)
            media.add_rect(*box)
            class_id = int(result.detections.class_id[index])
            label = (
                f"{names.get(class_id, class_id)} {float(result.detections.confidence[index]):.2f}"
            )
            media.add_label(label, box[0], max(0.0, box[1] - 0.02))

    def _publish(self, stream: _Stream, result: FrameResult) -> None:
        publish_result(stream.processor, stream.camera, result, self.publisher, self.device_id)
        stream.published += 1

    # -- health ------------------------------------------------------------------------------
    def heartbeat(self, *, stopping: bool = False):
        statuses = {
            camera_id: CameraStatus(
                camera_id=camera_id,
                source=f"panorama:{camera_id}",
                state=CameraState.STOPPED if stopping else CameraState.RUNNING,
                fps=stream.rate.fps,
                frames=stream.frames,
                dropped=0,
                reconnects=0,
                last_frame_at=stream.last_frame_at,
                last_error=stream.error,
            )
            for camera_id, stream in self.streams.items()
        }
        return build_heartbeat(
            self.device_id,
            time.monotonic() - self.started_monotonic,
            statuses,
            models={
                cid: s.processor.model if s.processor else None for cid, s in self.streams.items()
            },
            published={cid: s.published for cid, s in self.streams.items()},
            errors={cid: s.error for cid, s in self.streams.items()},
            spool_stats=self.spool.stats(),
        )

    def send_heartbeat(self, *, stopping: bool = False) -> None:
        self._last_heartbeat = time.monotonic()
        try:
            self.publisher.send_heartbeat(self.heartbeat(stopping=stopping))
        except Exception as error:  # a heartbeat must never take the app down
            log.warning("heartbeat not queued: %s", error)

    # -- control -----------------------------------------------------------------------------
    def apply_control(self, config: ControlConfig) -> None:
        """Take a new control config (from any thread); applied before the next batch."""
        with self._lock:
            for camera_id in self.streams:
                self._pending[camera_id] = config.for_camera(camera_id)

    def _control_loop(self) -> None:
        while not self._stop.wait(self.config.control_poll_s):
            config = self.control.poll()
            if config is not None:
                self.apply_control(config)

    def close(self) -> None:
        """Send a last heartbeat (cameras stopped), flush the publisher, close the spool."""
        self._stop.set()
        if self._control_thread is not None:
            self._control_thread.join(5)
        self.send_heartbeat(stopping=True)
        self.services.close()


def _parameter(node: Any, name: str) -> Any:
    port = getattr(getattr(node, "inputs", None), name, None)
    return port.get() if port is not None else None


def application_class(sdk: Any | None = None) -> type:
    """The ``panoramasdk.node`` subclass that runs the adapter (``sdk``: default ``panoramasdk``).

    Its constructor takes ``(config, model_node=None, model_input="images")``; ``run()`` loops
    over ``process_streams()`` until :meth:`stop` (or SIGTERM when run in the main thread).
    """
    sdk = sdk or importlib.import_module("panoramasdk")

    class Application(sdk.node):
        """Panorama code node: camera streams -> edge pipeline -> backend and HDMI."""

        def __init__(
            self, config: DeviceConfig, model_node: str | None = None, model_input: str = "images"
        ):
            super().__init__()
            threshold = _parameter(self, "threshold")
            refresh = _parameter(self, "refresh_rate")
            device_id = _parameter(self, "device_id")
            self.adapter = PanoramaAdapter(
                self,
                config,
                threshold=threshold,
                refresh_s=int(refresh) if refresh is not None else None,
                device_id=device_id or None,
                model_node=model_node,
                model_input=model_input,
            )
            self._stopped = threading.Event()

        def process_streams(self) -> None:
            streams = self.inputs.video_in.get()
            self.adapter.process(streams)
            self.outputs.video_out.put(streams)

        def stop(self) -> None:
            self._stopped.set()

        def run(self, max_batches: int | None = None) -> None:
            if threading.current_thread() is threading.main_thread():
                signal.signal(signal.SIGTERM, lambda *_: self.stop())
            batches = 0
            try:
                while not self._stopped.is_set():
                    self.process_streams()
                    batches += 1
                    if max_batches is not None and batches >= max_batches:
                        break
            finally:
                self.adapter.close()

    return Application


def run_application(
    config_path: str | Path,
    *,
    model_node: str | None = None,
    model_input: str = "images",
    state_dir: str | Path | None = None,
    sdk: Any | None = None,
    max_batches: int | None = None,
) -> int:
    """The code node's main: load the device config, run the application until stopped.

    Args:
        config_path: the bundle's ``device.yaml``.
        model_node: the graph's model node (None: ONNX Runtime on the shipped model).
        model_input: the model node's input name.
        state_dir: where the spool and model cache go (the appliance's writable storage,
            ``/opt/aws/panorama/storage``); default: as the config says.
        sdk: the ``panoramasdk`` module (default: imported).
        max_batches: stop after this many batches (tests).

    Returns:
        The exit code.
    """
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s",
    )
    config = load_device_config(config_path)
    if state_dir is not None:
        state = Path(state_dir)
        config = config.model_copy(
            update={
                "spool": config.spool.model_copy(update={"dir": state / "spool"}),
                "model_cache_dir": state / "model-cache",
            }
        )
    application = application_class(sdk)(config, model_node=model_node, model_input=model_input)
    application.run(max_batches=max_batches)
    return 0
