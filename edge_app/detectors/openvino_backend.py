"""OpenVINO backend: an ultralytics ``*_openvino_model/`` directory, an ``.xml`` or an ``.onnx``.

``openvino`` is imported when a backend is created, so that images without it can still run
ONNX Runtime models.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter, OrderedDict, deque
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
QUEUED_PER_STREAM = 2
"""With batching, requests started at once per stream: one running and one queued, so that a
stream never waits for Python to hand it its next batch."""
_IDLE_EXIT_S = 5.0  # a batching backend's completion thread ends after this long with no work


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

    With the ``throughput`` hint and a model whose batch size is dynamic (the kit's exports),
    frames of several cameras that wait for a busy device are inferred together, up to
    ``max_batch`` at once (`_Batcher`); each still gets its own output.

    Attributes:
        precision: The precision the compiled model computes in (``"f32"``, ``"bf16"`` ...):
            the config's when the device has it, else what the device chose instead.
        max_batch: The most frames inferred as one batch (1: one frame a request).

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
        self._dynamic_batch = bool(shape) and shape[0] == -1
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
        self.max_batch = 1
        if self._dynamic_batch and config.performance_hint == "throughput":
            self.max_batch = config.max_batch
        self._batcher = (
            _Batcher(self, self.max_in_flight * QUEUED_PER_STREAM) if self.max_batch > 1 else None
        )

    @property
    def batch_counts(self) -> dict[int, int]:
        """Batches run so far by their size (``{1: 900, 4: 25}``); empty without batching."""
        return dict(self._batcher.counts) if self._batcher is not None else {}

    @property
    def input_shapes(self) -> list[tuple[int, int]]:
        """The input sizes ``(height, width)`` compiled for now, least recently used first (a
        model with static shapes: its own)."""
        with self._lock:
            if not self.dynamic_hw:
                return [tuple(self.compiled_model.inputs[0].get_shape())[2:]]
            return list(self._shapes)

    def compiled_batches(self, input_hw: tuple[int, int]) -> list[int]:
        """The batch sizes compiled for inputs of ``input_hw``, ascending."""
        with self._lock:
            compiled = self._shapes.get(self._key(input_hw))
            return sorted(compiled.batches) if compiled is not None else []

    def _key(self, input_hw: tuple[int, int]) -> tuple[int, int]:
        return tuple(input_hw) if self.dynamic_hw else (0, 0)

    def _compiled_for(self, input_hw: tuple[int, int], batch: int = 1) -> _Compiled:
        """The model compiled for ``(batch, 3, *input_hw)`` inputs (a static model: as it is),
        compiled now unless it is already."""
        key = self._key(input_hw)
        with self._compile_lock:  # one compilation at a time; cameras of other sizes go on
            with self._lock:
                shape = self._shapes.get(key)
                compiled = shape.batches.get(batch) if shape is not None else None
            if compiled is None:
                model = self._model
                if self.dynamic_hw or self._dynamic_batch:
                    model = model.clone()
                    hw = input_hw
                    if not self.dynamic_hw:
                        hw = [d.get_length() for d in model.inputs[0].get_partial_shape()[2:]]
                    model.reshape({model.inputs[0]: [batch, 3, *hw]})
                    log.info(
                        "OpenVINO: compiling %s for %s inputs, batch %d",
                        self.model_path,
                        tuple(input_hw),
                        batch,
                    )
                compiled = _Compiled(
                    self._core.compile_model(
                        model, self.config.device, compile_properties(self.config)
                    ),
                    batch,
                )
                with self._lock:
                    shape = self._shapes.get(key)
                    if shape is None and batch == 1:
                        shape = self._shapes[key] = _Shape()
                        while len(self._shapes) > MAX_INPUT_SHAPES:
                            self._shapes.popitem(last=False)
                    if shape is not None:  # (a size dropped meanwhile keeps no batches)
                        shape.batches[batch] = compiled
        return compiled

    def prepare(self, input_hw: tuple[int, int]) -> None:
        """Compile the model for inputs of ``input_hw`` now, for single frames and every batch
        size it may run (`batch_sizes`); otherwise the first frame of a new size compiles single
        frames, and batch sizes follow in the background."""
        for batch in self.batch_sizes:
            self._compiled_for(input_hw, batch)

    @property
    def batch_sizes(self) -> list[int]:
        """The batch sizes frames are inferred in, ascending: ``[1]`` without batching, else
        the powers of two below ``max_batch`` and ``max_batch`` itself (``[1, 2, 4]``)."""
        sizes, size = {self.max_batch}, 1
        while size < self.max_batch:
            sizes.add(size)
            size *= 2
        return sorted(sizes)

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

        Never waits: OpenVINO queues requests beyond its streams itself; with batching (the
        class's description) a frame beyond what runs at once waits in the backend for a batch
        instead. Requests are reused, so there are as many as jobs were ever in flight at once
        (cameras times pipeline depth).
        Whoever calls ``result()`` waits for the request without holding the GIL and copies the
        output; no Python callback runs on OpenVINO's threads, so a busy Python thread never
        holds up the next inference.
        """
        # wrapped as an ov.Tensor sharing the array's memory and set directly: half the Python
        # time of start_async({0: tensor}), whose generic input dispatch costs about 0.1 ms a
        # frame; a tensor of another dtype or layout is converted (copied) first
        tensor = np.ascontiguousarray(tensor, dtype=self._input_dtype)
        if self._batcher is not None:
            return self._batcher.submit(tensor)
        compiled, request = self._checkout(tensor.shape[2:], (1,))
        compiled, request, _ = self._start_request(compiled, request, [tensor])
        return _RequestJob(self, request, tensor, compiled)

    def _checkout(
        self, input_hw: tuple[int, int], batches
    ) -> tuple[_Compiled | None, object | None]:
        """Under one lock: the model compiled for ``input_hw`` at the first of ``batches`` it
        is compiled for (None for a size not compiled, or dropped), and one of its idle
        requests (None when all are in use); the size becomes the most recently used."""
        key = self._key(input_hw)
        with self._lock:
            shape = self._shapes.get(key)
            if shape is None:
                return None, None
            self._shapes.move_to_end(key)
            compiled = next((shape.batches[b] for b in batches if b in shape.batches), None)
            request = compiled.idle.pop() if compiled is not None and compiled.idle else None
        return compiled, request

    def _start_request(
        self, compiled: _Compiled | None, request, tensors: list[np.ndarray]
    ) -> tuple[_Compiled, object, np.ndarray]:
        """Start ``tensors`` (one frame, or a batch stacked here) on ``request`` of
        ``compiled``, compiling the size or creating a request where they are None; the
        compiled model, the request and the input it reads (keep it alive until done).
        On an error the request goes back idle and the error is raised."""
        if compiled is None:  # a new input size (or one dropped since)
            compiled = self._compiled_for(tensors[0].shape[2:], len(tensors))
        if request is None:
            request = compiled.model.create_infer_request()
        try:
            batch_input = tensors[0] if len(tensors) == 1 else np.concatenate(tensors)
            request.set_input_tensor(self._tensor(batch_input, shared_memory=True))
            request.start_async()
        except BaseException:
            self._release(request, compiled)
            raise
        return compiled, request, batch_input

    def _release(self, request, compiled: _Compiled) -> None:
        with self._lock:
            compiled.idle.append(request)

    def close(self) -> None:
        """Fail the frames still waiting for a batch; the completion thread ends."""
        if self._batcher is not None:
            self._batcher.close()


class _Shape:
    """The models compiled for one input size, by batch size."""

    __slots__ = ("batches",)

    def __init__(self) -> None:
        self.batches: dict[int, _Compiled] = {}


class _Compiled:
    """A compiled model, the batch size it takes, and its infer requests not in use."""

    __slots__ = ("batch", "idle", "model")

    def __init__(self, model, batch: int = 1) -> None:
        self.model = model
        self.batch = batch
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


class _BatchedJob(InferenceJob):
    """A frame waiting for (or in) a batch; the batcher's completion thread sets its output."""

    __slots__ = ("tensor",)

    def __init__(self, tensor: np.ndarray) -> None:
        super().__init__()
        self.tensor = tensor


class _Batch:
    """Frames started together on one infer request."""

    __slots__ = ("compiled", "input", "jobs", "request")

    def __init__(self, compiled: _Compiled, request, jobs: list[_BatchedJob], batch_input) -> None:
        self.compiled = compiled
        self.request = request
        self.jobs = jobs
        self.input = batch_input  # the request reads it until done: keep it alive until then


class _Batcher:
    """Cross-camera batching for a throughput `OpenVinoBackend` whose model has a dynamic batch.

    A frame starts at once, alone, while fewer than ``capacity`` requests are started
    (``QUEUED_PER_STREAM`` per stream): a camera that keeps up waits for nothing. Beyond that,
    frames wait here, and each time a request finishes the frames waiting are started together,
    as many as the largest compiled batch size (powers of two up to ``max_batch``) allows, the
    oldest first. So batches form only when the device is the bottleneck, and grow with the
    queue: one inference of four frames costs less than four of one.

    The batch sizes are compiled in the background when an input size is first seen (a second
    or so each); smaller batches run meanwhile. One completion thread waits on the started
    requests (without the GIL), hands each frame its row of the output and starts what waits;
    it ends after `_IDLE_EXIT_S` without work and starts again with the next frame.
    """

    def __init__(self, backend: OpenVinoBackend, capacity: int) -> None:
        self._backend = backend
        self._capacity = capacity
        self._sizes = backend.batch_sizes[::-1]  # largest first
        self._cond = threading.Condition()
        self._pending: deque[_BatchedJob] = deque()
        self._running: deque[_Batch] = deque()
        self._started = 0  # requests reserved or running (dispatched and not collected)
        self._thread: threading.Thread | None = None
        self._scheduled: set[tuple[int, int]] = set()  # sizes compiled (batches: or compiling)
        self._closed = False
        self.counts: Counter[int] = Counter()

    def submit(self, tensor: np.ndarray) -> InferenceJob:
        input_hw = tuple(tensor.shape[2:])
        if input_hw not in self._scheduled:  # a new size (or one dropped since)
            self._backend._compiled_for(input_hw)  # single frames: here, in the camera's thread
            with self._cond:
                schedule = input_hw not in self._scheduled
                self._scheduled.add(input_hw)
            if schedule:
                self._compile_later(input_hw)  # batch sizes: in the background
        job = _BatchedJob(tensor)
        with self._cond:
            if self._closed:
                raise RuntimeError(f"{self._backend!r} is closed")
            self._pending.append(job)
        self._start_waiting()
        return job

    def close(self) -> None:
        with self._cond:
            self._closed = True
            waiting, self._pending = list(self._pending), deque()
            self._cond.notify_all()
        for job in waiting:
            job.set_error(RuntimeError(f"{self._backend!r} was closed before this frame ran"))

    def _start_waiting(self) -> None:
        """Start batches of the frames waiting while fewer than ``capacity`` requests run."""
        while True:
            with self._cond:
                taken = self._take()
            if taken is None:
                return
            self._start(*taken)

    def _take(self):
        """Under the lock: the next batch to start (reserving a request), or None."""
        if not self._pending or self._started >= self._capacity:
            return None
        tensor_shape = self._pending[0].tensor.shape  # batched with its own shape only
        same = [job for job in self._pending if job.tensor.shape == tensor_shape]
        input_hw = tuple(tensor_shape[2:])
        sizes = [size for size in self._sizes if size <= len(same)]  # largest first
        compiled, request = self._backend._checkout(input_hw, sizes)
        if compiled is None:  # dropped (more input sizes than kept): compiled again on start
            self._scheduled.discard(input_hw)
        jobs = same[: compiled.batch if compiled is not None else 1]
        for job in jobs:
            self._pending.remove(job)
        self._started += 1
        self._ensure_thread()
        return compiled, request, jobs

    def _start(self, compiled: _Compiled | None, request, jobs: list[_BatchedJob]) -> None:
        try:
            compiled, request, batch_input = self._backend._start_request(
                compiled, request, [job.tensor for job in jobs]
            )
        except BaseException as error:
            with self._cond:
                self._started -= 1
            for job in jobs:
                job.set_error(error)
            if not isinstance(error, Exception):
                raise
            return
        with self._cond:
            self._running.append(_Batch(compiled, request, jobs, batch_input))
            self.counts[len(jobs)] += 1
            self._cond.notify_all()

    def _compile_later(self, input_hw: tuple[int, int]) -> None:
        """Compile the batch sizes above 1 for ``input_hw`` on a thread of their own."""

        def compile_() -> None:
            for batch in self._backend.batch_sizes[1:]:
                try:
                    self._backend._compiled_for(input_hw, batch)
                except Exception:  # noqa: BLE001 - smaller batches run instead; logged
                    log.exception("OpenVINO: compiling batch %d for %s failed", batch, input_hw)
                    return

        # not a daemon: exiting while OpenVINO compiles aborts the process (its threads are
        # torn down under it); the interpreter waits for this second or two instead
        threading.Thread(target=compile_, name="openvino-compile").start()

    def _ensure_thread(self) -> None:
        """Under the lock: start the completion thread unless it runs."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._complete, name="openvino-batches", daemon=True
            )
            self._thread.start()

    def _complete(self) -> None:
        """The completion thread: collect finished batches in order, start what waits."""
        while True:
            with self._cond:
                if not self._running and not self._cond.wait_for(
                    lambda: self._running or (self._closed and not self._started),
                    timeout=_IDLE_EXIT_S,
                ):
                    if not self._started and not self._pending:
                        self._thread = None
                        return
                    continue
                if not self._running:  # closed, nothing started
                    self._thread = None
                    return
                batch = self._running[0]
            self._finish(batch, batch.request.wait)
            # others finished meanwhile (another stream) are collected without waiting
            while True:
                with self._cond:
                    batch = self._running[0] if self._running else None
                if batch is None or not self._finish(batch, lambda b=batch: b.request.wait_for(0)):
                    break
            self._start_waiting()

    def _finish(self, batch: _Batch, wait) -> bool:
        """Hand each frame of ``batch`` its output once ``wait()`` says it is done."""
        error: Exception | None = None
        try:
            if wait() is False:
                return False
            output = batch.request.get_output_tensor(0).data
            outputs = [output[i : i + 1].copy() for i in range(len(batch.jobs))]
        except Exception as exc:  # noqa: BLE001 - every frame of the batch gets the error
            error = exc
        with self._cond:
            self._running.remove(batch)
            self._started -= 1
        self._backend._release(batch.request, batch.compiled)
        for i, job in enumerate(batch.jobs):
            if error is None:
                job.set_result(outputs[i])
            else:
                job.set_error(error)
        return True
