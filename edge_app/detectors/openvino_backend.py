"""OpenVINO backend: an ultralytics ``*_openvino_model/`` directory, an ``.xml`` or an ``.onnx``.

``openvino`` is imported when a backend is created, so that images without it can still run
ONNX Runtime models.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from edge_app.detectors.base import (
    BackendUnavailableError,
    InferenceBackend,
    InferenceJob,
    check_batch_dimension,
)
from edge_app.detectors.config import OPENVINO_VIRTUAL_DEVICES, OpenVinoConfig, hardware_devices
from edge_app.detectors.metadata import DetectorMetadata, read_metadata_yaml, read_onnx_metadata

log = logging.getLogger(__name__)

OPENVINO_PIN = "openvino==2026.4.1"
MAX_INPUT_SHAPES = 8
"""Input sizes a model with dynamic height and width keeps compiled at once (one per camera
aspect ratio in practice); the least recently used one is dropped beyond that."""


def resolve_openvino_model(path: str | Path) -> Path:
    """The model file OpenVINO should read for ``path`` (a directory, ``.xml`` or ``.onnx``).

    Raises:
        FileNotFoundError: when nothing loadable is there.
    """
    path = Path(path)
    if path.is_dir():
        candidates = sorted(path.glob("*.xml"))
        if len(candidates) != 1:
            found = [c.name for c in candidates] or "none"
            raise FileNotFoundError(f"expected exactly one .xml model in {path}, found {found}")
        return candidates[0]
    if not path.is_file():
        raise FileNotFoundError(f"no OpenVINO model at {path}")
    if path.suffix not in (".xml", ".onnx"):
        raise ValueError(f"OpenVINO reads .xml or .onnx models, got {path.name!r}")
    return path


def check_device_available(device: str, available: list[str]) -> None:
    """Raise `BackendUnavailableError` when ``device`` names hardware missing from ``available``.

    ``available`` is ``ov.Core().available_devices`` (``["CPU", "GPU.0", "GPU.1"]``): ``GPU``
    means any GPU there, and a single GPU listed as ``GPU`` is also ``GPU.0``.
    """
    for name in hardware_devices(device):
        kind, _, index = name.partition(".")
        present = (
            name in available
            or (not index and any(a.partition(".")[0] == kind for a in available))
            or (index == "0" and kind in available)
        )
        if not present:
            raise BackendUnavailableError(
                f"inference.device: OpenVINO device {name!r} is not available on this machine; "
                f"available: {available}"
            )


def compile_properties(config: OpenVinoConfig) -> dict:
    """The ``compile_model`` properties for ``config``: hint, CPU threads, precision."""
    properties: dict = {"PERFORMANCE_HINT": config.performance_hint.upper()}
    threads = config.thread_count
    if config.device == "CPU":
        properties["INFERENCE_NUM_THREADS"] = threads
    elif config.device.partition(":")[0] in OPENVINO_VIRTUAL_DEVICES:
        # the devices under AUTO/MULTI/HETERO are picked at compile time: the CPU's threads go
        # to the CPU, should it be one of them
        properties["DEVICE_PROPERTIES"] = {"CPU": {"INFERENCE_NUM_THREADS": threads}}
    if config.precision is not None:
        properties["INFERENCE_PRECISION_HINT"] = config.precision
    return properties


class OpenVinoBackend(InferenceBackend):
    """Runs a model with OpenVINO on reusable asynchronous infer requests.

    With the ``throughput`` hint (the default) OpenVINO splits the CPU into streams of one or
    a few threads and ``max_in_flight`` requests run at once, one per stream: the most frames a
    second for several cameras, or for one camera whose next frame is prepared while this one is
    inferred. ``latency`` runs one request at a time on all threads: the least time per frame.

    Metadata comes from ``metadata.yaml`` next to the ``.xml`` (written by ultralytics), the
    ONNX ``metadata_props`` for an ``.onnx``, or else the ``model_info`` labels in the IR.

    Args:
        model_path: A ``*_openvino_model`` directory, an ``.xml`` file or an ``.onnx`` file.
        config: Device, precision, threads, performance hint (the defaults when omitted: CPU,
            the device's precision, `default_thread_count` threads, ``throughput``).
        class_names: Overrides the names in the model's metadata.

    A model with dynamic height and width (a ``dynamic`` export) is compiled once per input
    size it is given, each with static shapes: static shapes are what the CPU plugin runs
    fastest, and a camera's frames are all one size (`Detector.rectangular`).

    Attributes:
        precision: The precision the compiled model computes in (``"f32"``, ``"bf16"`` ...):
            the config's when the device has it, else what the device chose instead.

    Raises:
        ImportError: when the ``openvino`` package is not installed.
        BackendUnavailableError: a device this machine does not have.

    Examples:
        >>> # backend = OpenVinoBackend("best_openvino_model", OpenVinoConfig(device="GPU"))
        >>> # raw = backend.infer(tensor)
    """

    name = "openvino"

    def __init__(
        self,
        model_path: str | Path,
        config: OpenVinoConfig | None = None,
        class_names: Mapping[int, str] | None = None,
    ) -> None:
        try:
            import openvino as ov
        except ImportError as error:
            raise ImportError(
                f"the openvino backend needs the openvino package (pip install {OPENVINO_PIN}); "
                "or load the .onnx model with backend='onnxruntime'"
            ) from error
        config = config or OpenVinoConfig()
        core = ov.Core()
        check_device_available(config.device, core.available_devices)
        model_file = resolve_openvino_model(model_path)
        model = core.read_model(str(model_file))
        shape = [d.get_length() if d.is_static else -1 for d in model.inputs[0].get_partial_shape()]
        check_batch_dimension(shape, model_file)
        values = self._metadata_values(model, model_file)
        if "imgsz" not in values and len(shape) == 4 and min(shape[2:]) > 0:
            values["imgsz"] = shape[2:]
        if class_names is not None:
            values["names"] = dict(class_names)
        super().__init__(
            Path(model_path), DetectorMetadata.from_mapping(values, source=str(model_file))
        )
        self.config = config
        self.dynamic_hw = len(shape) == 4 and min(shape[2:]) < 0
        self._core, self._model = core, model
        self._lock = threading.Lock()
        self._compile_lock = threading.Lock()
        self._shapes: OrderedDict[tuple[int, int], _Compiled] = OrderedDict()
        self.compiled_model = self._compiled_for(tuple(self.metadata.imgsz)).model
        self.precision = self._compiled_precision()
        if config.precision is not None and self.precision not in (None, config.precision):
            log.warning(
                "OpenVINO device %s computes %s in %s: it has no %s",
                config.device,
                model_file.name,
                self.precision,
                config.precision,
            )
        self.max_in_flight = 1
        if config.performance_hint == "throughput":
            optimal = self.compiled_model.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")
            self.max_in_flight = max(1, int(optimal))
        self._tensor = ov.Tensor
        self._input_dtype = self.compiled_model.inputs[0].get_element_type().to_dtype()

    @property
    def input_shapes(self) -> list[tuple[int, int]]:
        """The input sizes ``(height, width)`` compiled for now, least recently used first (a
        model with static shapes: its own)."""
        with self._lock:
            if not self.dynamic_hw:
                return [tuple(self.compiled_model.inputs[0].get_shape())[2:]]
            return list(self._shapes)

    def _key(self, input_hw: tuple[int, int]) -> tuple[int, int]:
        return tuple(input_hw) if self.dynamic_hw else (0, 0)

    def _compiled_for(self, input_hw: tuple[int, int]) -> _Compiled:
        """The model compiled for ``(1, 3, *input_hw)`` inputs (a static model: as it is),
        compiled now unless it is already."""
        key = self._key(input_hw)
        with self._compile_lock:  # one compilation at a time; cameras of other sizes go on
            with self._lock:
                compiled = self._shapes.get(key)
            if compiled is None:
                model = self._model
                if self.dynamic_hw:
                    model = model.clone()
                    model.reshape({model.inputs[0]: [1, 3, *input_hw]})
                    log.info("OpenVINO: compiling %s for %s inputs", self.model_path, input_hw)
                compiled = _Compiled(
                    self._core.compile_model(
                        model, self.config.device, compile_properties(self.config)
                    )
                )
                with self._lock:
                    self._shapes[key] = compiled
                    while len(self._shapes) > MAX_INPUT_SHAPES:
                        self._shapes.popitem(last=False)
        return compiled

    def _compiled_precision(self) -> str | None:
        """``INFERENCE_PRECISION_HINT`` of the compiled model; None where the device (AUTO,
        MULTI, HETERO) does not report it."""
        if "INFERENCE_PRECISION_HINT" not in self.compiled_model.get_property(
            "SUPPORTED_PROPERTIES"
        ):
            return None
        return self.compiled_model.get_property("INFERENCE_PRECISION_HINT").to_string()

    @staticmethod
    def _metadata_values(model, model_file: Path) -> dict:
        if model_file.suffix == ".onnx":
            return dict(read_onnx_metadata(model_file))
        metadata_file = model_file.parent / "metadata.yaml"
        if metadata_file.is_file():
            return read_metadata_yaml(metadata_file)
        if model.has_rt_info(["model_info", "labels"]):
            # ultralytics writes labels space-separated, with spaces in names turned into "_"
            labels = model.get_rt_info(["model_info", "labels"]).astype(str).split()
            return {"names": dict(enumerate(labels))}
        return {}

    def submit(self, tensor: np.ndarray) -> InferenceJob:
        """Start ``tensor`` (shared, not copied) on an idle infer request, or a new one.

        Never waits: OpenVINO queues requests beyond its streams itself. Requests are reused, so
        there are as many as jobs were ever in flight at once (cameras times pipeline depth).
        Whoever calls ``result()`` waits for the request without holding the GIL and copies the
        output; no Python callback runs on OpenVINO's threads, so a busy Python thread never
        holds up the next inference.
        """
        # wrapped as an ov.Tensor sharing the array's memory and set directly: half the Python
        # time of start_async({0: tensor}), whose generic input dispatch costs about 0.1 ms a
        # frame; a tensor of another dtype or layout is converted (copied) first
        tensor = np.ascontiguousarray(tensor, dtype=self._input_dtype)
        key = self._key(tensor.shape[2:])
        with self._lock:  # one lock a frame: the compiled model and an idle request
            compiled = self._shapes.get(key)
            if compiled is not None:
                self._shapes.move_to_end(key)
            request = compiled.idle.pop() if compiled is not None and compiled.idle else None
        if compiled is None:  # a new input size
            compiled = self._compiled_for(tensor.shape[2:])
        if request is None:
            request = compiled.model.create_infer_request()
        try:
            request.set_input_tensor(self._tensor(tensor, shared_memory=True))
            request.start_async()
        except BaseException:
            self._release(request, compiled)
            raise
        return _RequestJob(self, request, tensor, compiled)

    def _release(self, request, compiled: _Compiled) -> None:
        with self._lock:
            compiled.idle.append(request)


class _Compiled:
    """A compiled model and its infer requests not in use."""

    __slots__ = ("idle", "model")

    def __init__(self, model) -> None:
        self.model = model
        self.idle: list = []


class _RequestJob(InferenceJob):
    """A job on one OpenVINO infer request, which goes back to the backend once collected.

    `result` waits for the request and copies its output; call it from one thread at a time
    (the camera thread that submitted the job).
    """

    __slots__ = ("_backend", "_compiled", "_input", "_request")

    def __init__(
        self, backend: OpenVinoBackend, request, tensor: np.ndarray, compiled: _Compiled
    ) -> None:
        super().__init__()
        self._backend = backend
        self._request = request
        self._compiled = compiled
        self._input = tensor  # the request reads it until done: keep it alive until then

    def done(self) -> bool:
        request = self._request
        return request is None or bool(request.wait_for(0))

    def result(self, timeout: float | None = None) -> np.ndarray:
        request = self._request
        if request is not None:
            if timeout is None:
                finished = self._wait(request.wait)
            else:
                finished = self._wait(lambda: request.wait_for(max(0, int(timeout * 1000))))
            if not finished:
                raise TimeoutError(f"inference not done after {timeout} s")
            if self._error is None:
                try:
                    self.set_result(request.get_output_tensor(0).data.copy())
                except Exception as error:  # noqa: BLE001 - raised below, like any inference error
                    self.set_error(error)
            self._request = self._input = None
            self._backend._release(request, self._compiled)
        return super().result(timeout=0)

    def _wait(self, wait) -> bool:
        try:
            return wait() is not False
        except Exception as error:  # noqa: BLE001 - the inference failed; raised by result()
            self.set_error(error)
            return True
