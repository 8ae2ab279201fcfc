"""AWS Panorama code node adapter: the edge pipeline on the appliance's camera streams.

On a Panorama appliance the application SDK (``panoramasdk``, provided by the appliance's base
image) hands the code node its camera frames: ``self.inputs.video_in.get()`` returns a list of
media objects, one per camera stream, each with ``image`` (BGR ``numpy`` array),
``stream_id`` and drawing helpers ``add_rect(x1, y1, x2, y2)`` / ``add_label(text, x, y)`` in
normalised coordinates for the HDMI output; ``self.outputs.video_out.put(streams)`` passes them
on; ``self.call({input_name: tensor}, "model_node")`` runs the compiled model of the model node.

:class:`PanoramaAdapter` is a thin shell over the same :class:`edge_app.runtime.DeviceRuntime`
as the standalone :class:`edge_app.app.EdgeApp`: it hands each media object's frame to its
camera's runtime (one camera per stream, added on its first frame) and draws the detections on
the media. Everything else — publishing payloads, frames and heartbeats through the spool,
following the backend's control config (model, zones, thresholds), loading models — is the
runtime's, as on any device. The graph parameters ``threshold``, ``refresh_rate`` and
``device_id`` are the starting point until the control config says otherwise.

``panoramasdk`` is imported only by :func:`application_class` (or passed in), so this module
imports anywhere; the pipeline core knows nothing of Panorama.

Examples:
    >>> # on the appliance (the generated src/app.py does this):
    >>> # run_application("/panorama/bundle/device.yaml", model_node="model_node",
    >>> #                 state_dir="/opt/aws/panorama/storage")
"""

from __future__ import annotations

import collections
import functools
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
from pydantic import ValidationError

from edge_app.config import DeviceConfig, DeviceConfigError, load_device_config
from edge_app.detectors import (
    Detector,
    DetectorMetadata,
    InferenceBackend,
    InferenceJob,
    read_onnx_metadata,
)
from edge_app.pipeline import FrameResult
from edge_app.runtime import CameraRuntime, DeviceRuntime
from edge_app.sources import CameraState, Frame, SourceStatus
from kit.core.contracts import ControlConfig
from kit.core.contracts.base import contract_error
from kit.core.settings import Settings

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

    def __init__(self, node: Any, model_node: str, input_name: str, metadata: DetectorMetadata):
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


class PanoramaStream:
    """What the code node knows of one camera stream: the frames it was handed.

    The appliance's camera node reports nothing else, so the stream is running while frames
    come; its rate is measured over the last `FPS_WINDOW` frames. Safe to read from any thread.
    """

    def __init__(self, camera_id: str):
        self.camera_id = camera_id
        self.frames = 0
        self.last_frame_at: datetime | None = None
        self._times: collections.deque[float] = collections.deque(maxlen=FPS_WINDOW)
        self._lock = threading.Lock()

    def received(self, image: np.ndarray) -> Frame:
        """Count a frame handed to the code node now; the `Frame` the pipeline takes."""
        with self._lock:
            self._times.append(time.monotonic())
            self.last_frame_at = datetime.now(UTC)
            self.frames += 1
            return Frame(
                image=image,
                index=self.frames - 1,
                captured_at=self.last_frame_at,
                camera_id=self.camera_id,
            )

    @property
    def fps(self) -> float:
        """Frames a second over the last few frames."""
        with self._lock:
            times = list(self._times)
        if len(times) < 2 or times[-1] <= times[0]:
            return 0.0
        return (len(times) - 1) / (times[-1] - times[0])

    def status(self) -> SourceStatus:
        """The stream's health for heartbeats."""
        fps = self.fps
        with self._lock:
            return SourceStatus(
                camera_id=self.camera_id,
                source=f"panorama:{self.camera_id}",
                state=CameraState.RUNNING,
                fps=fps,
                frames=self.frames,
                dropped=0,
                reconnects=0,
                last_frame_at=self.last_frame_at,
                last_error=None,
            )


def camera_id_for_stream(stream_id: Any) -> str:
    """A camera id (letters, digits, ``_ . -``) from a Panorama stream id."""
    text = re.sub(r"[^A-Za-z0-9_.-]+", "-", str(stream_id)).strip("-._") or "camera"
    return text[:64]


def model_node_detector(node: Any, model_node: str, input_name: str, path: Path) -> Detector:
    """A detector whose inference is the model node's; class names and input size come from
    the ONNX file shipped with the app (``path``)."""
    metadata = DetectorMetadata.from_mapping(read_onnx_metadata(path), source=str(path))
    return Detector(PanoramaModelBackend(node, model_node, input_name, metadata))


def with_graph_parameters(
    config: DeviceConfig,
    *,
    threshold: float | None = None,
    refresh_s: int | None = None,
    device_id: str | None = None,
) -> DeviceConfig:
    """``config`` with the graph's parameters: its device id, and its confidence threshold and
    refresh rate as the control config's defaults until the backend's control config arrives.

    Raises:
        DeviceConfigError: naming a parameter the device config does not allow.
    """
    values = config.model_dump()
    control = values.get("control") or ControlConfig().model_dump()
    if threshold is not None:
        control["defaults"]["confidence"] = float(threshold)
    if refresh_s is not None:
        control["defaults"]["refresh_s"] = int(refresh_s)
    values["control"] = control
    if device_id:
        values["device_id"] = device_id
    try:
        return DeviceConfig.model_validate(values)
    except ValidationError as error:
        raise DeviceConfigError(
            f"the graph's parameters: {contract_error('DeviceConfig', error)}"
        ) from None


class PanoramaAdapter:
    """The edge pipeline behind a Panorama code node: a shell over the device's
    :class:`~edge_app.runtime.DeviceRuntime` that hands it the code node's media batches and
    draws the detections on them.

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
        self.config = with_graph_parameters(
            config, threshold=threshold, refresh_s=refresh_s, device_id=device_id
        )
        open_detector = (
            None
            if model_node is None
            else functools.partial(model_node_detector, node, model_node, model_input)
        )
        self.runtime = DeviceRuntime(
            self.config, settings=settings, open_detector=open_detector, control_poll=control_poll
        ).start()
        self.streams: dict[str, PanoramaStream] = {}

    def camera(self, stream_id: Any) -> tuple[CameraRuntime, PanoramaStream]:
        """The camera of a stream, added on its first frame: configured as the device config's
        camera of that id, else as its first camera."""
        camera_id = camera_id_for_stream(stream_id)
        stream = self.streams.get(camera_id)
        if stream is None:
            known = {camera.id: camera for camera in self.config.cameras}
            template = known.get(camera_id) or self.config.cameras[0]
            stream = PanoramaStream(camera_id)
            self.runtime.add_camera(template.model_copy(update={"id": camera_id}), stream.status)
            self.streams[camera_id] = stream
        return self.runtime.cameras[camera_id], stream

    def process(self, media: Sequence[Any]) -> list[FrameResult]:
        """Run the pipeline on one batch of media objects (one per stream): control changes
        first, then each frame; draw the detections on them; publish what is due."""
        results = []
        for item in media:
            camera, stream = self.camera(getattr(item, "stream_id", "camera"))
            frame = stream.received(np.asarray(item.image))
            camera.apply_pending(wait_for_first_model=True)
            result = camera.process(frame)
            if result is not None:
                self._draw(item, result, camera.processor.detector.class_names)
                results.append(result)
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

    def close(self) -> None:
        """Close the runtime: a last heartbeat (cameras stopped), flush, close the spool."""
        self.runtime.close()


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
