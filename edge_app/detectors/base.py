"""The one interface every inference backend implements (Frigate's ``detect_raw`` idea).

A backend runs a model on preprocessed tensors, synchronously (`InferenceBackend.infer`) or
asynchronously (`InferenceBackend.submit`, which returns an `InferenceJob`). Several jobs run at
once (``max_in_flight``): frames of different cameras sharing the model, or consecutive frames
of one camera, so the CPU work around inference overlaps inference itself.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np

from edge_app.detectors.metadata import DetectorMetadata


class InferenceJob:
    """One submitted inference: `result` waits for the raw output (or raises the error).

    Attributes:
        submitted_at: `time.perf_counter` when it was submitted.
        finished_at: `time.perf_counter` when the output was handed over: when the runtime
            finished, or, for a backend whose jobs are completed by `result`, when it was
            collected (None until then).
    """

    __slots__ = ("_done", "_error", "_output", "finished_at", "submitted_at")

    def __init__(self) -> None:
        self._done = threading.Event()
        self._output: np.ndarray | None = None
        self._error: BaseException | None = None
        self.submitted_at = time.perf_counter()
        self.finished_at: float | None = None

    def set_result(self, output: np.ndarray) -> None:
        """Called by the backend when the output is ready (owned by the job)."""
        self._output = output
        self.finished_at = time.perf_counter()
        self._done.set()

    def set_error(self, error: BaseException) -> None:
        """Called by the backend when the inference failed."""
        self._error = error
        self.finished_at = time.perf_counter()
        self._done.set()

    def run(self, infer, *args) -> None:
        """Complete the job with ``infer(*args)``: its output, or the error it raised."""
        try:
            output = infer(*args)
        except Exception as error:  # noqa: BLE001 - raised again by result()
            self.set_error(error)
        else:
            self.set_result(output)

    def done(self) -> bool:
        """True once the output (or an error) is there."""
        return self._done.is_set()

    def result(self, timeout: float | None = None) -> np.ndarray:
        """The raw output, waiting up to ``timeout`` seconds (None: as long as it takes).

        Raises:
            TimeoutError: when it is not done in time.
            Exception: whatever the inference raised.
        """
        if not self._done.wait(timeout):
            raise TimeoutError(f"inference not done after {timeout} s")
        if self._error is not None:
            raise self._error
        return self._output  # type: ignore[return-value]

    @property
    def elapsed_ms(self) -> float:
        """Milliseconds from submission to the output being handed over (queueing included)."""
        end = self.finished_at if self.finished_at is not None else time.perf_counter()
        return (end - self.submitted_at) * 1000


class InferenceBackend(ABC):
    """Runs a model on a preprocessed input tensor and returns its raw output.

    Attributes:
        name: Backend name as `load_detector` accepts it (``"onnxruntime"``, ``"openvino"``).
        model_path: The model file or directory it was loaded from.
        metadata: What the model says about itself (class names, input size, ...).
        max_in_flight: How many inferences run at once; more jobs wait in the backend's queue.
        dynamic_hw: Whether the model takes inputs of any height and width (a ``dynamic``
            export), so each frame can be inferred at its own aspect ratio.
    """

    name: str = ""
    max_in_flight: int = 1
    dynamic_hw: bool = False

    def __init__(self, model_path: Path, metadata: DetectorMetadata) -> None:
        self.model_path = model_path
        self.metadata = metadata

    @abstractmethod
    def submit(self, tensor: np.ndarray) -> InferenceJob:
        """Start inference on a ``(1, 3, H, W)`` float32 input and return at once.

        The caller keeps ``tensor`` unchanged until the job is done (it is not copied). Never
        waits: jobs beyond ``max_in_flight`` wait in the backend's queue.
        """

    def infer(self, tensor: np.ndarray) -> np.ndarray:
        """Raw output of the model for a ``(1, 3, H, W)`` float32 input (owned by the caller)."""
        return self.submit(tensor).result()

    def close(self) -> None:  # noqa: B027 - optional: backends holding threads release them
        """Release threads the backend holds; it must not be used afterwards."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.model_path)!r})"


class BackendUnavailableError(RuntimeError):
    """What the inference config asks for is not on this machine (a device, an execution
    provider); the message says what the machine has."""


def check_batch_dimension(shape: list, source: Path) -> None:
    """Raise `ValueError` when a model's input has a fixed batch size other than 1."""
    batch = shape[0] if shape else None
    if isinstance(batch, int) and batch not in (1, -1):
        raise ValueError(
            f"{source} takes batches of {batch} images; the edge runtime feeds one frame at a "
            "time: export the model with batch=1"
        )
