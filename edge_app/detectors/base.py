"""The one interface every inference backend implements (Frigate's ``detect_raw`` idea)."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np

from edge_app.detectors.metadata import ModelMetadata


def default_thread_count() -> int:
    """Threads for one model's inference: the CPUs this process may use, at most 4.

    Small detectors at 320-640 px gain little beyond 4 threads, and several models or cameras
    share the device, so a cap avoids oversubscription.
    """
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        available = os.cpu_count() or 1
    return max(1, min(4, available))


class InferenceBackend(ABC):
    """Runs a model on a preprocessed input tensor and returns its raw output.

    Attributes:
        name: Backend name as `load_detector` accepts it (``"onnxruntime"``, ``"openvino"``).
        model_path: The model file or directory it was loaded from.
        metadata: What the model says about itself (class names, input size, ...).
    """

    name: str = ""

    def __init__(self, model_path: Path, metadata: ModelMetadata) -> None:
        self.model_path = model_path
        self.metadata = metadata

    @abstractmethod
    def infer(self, tensor: np.ndarray) -> np.ndarray:
        """Raw output of the model for a ``(1, 3, H, W)`` float32 input (owned by the caller)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.model_path)!r})"


def check_batch_dimension(shape: list, source: Path) -> None:
    """Raise `ValueError` when a model's input has a fixed batch size other than 1."""
    batch = shape[0] if shape else None
    if isinstance(batch, int) and batch not in (1, -1):
        raise ValueError(
            f"{source} takes batches of {batch} images; the edge runtime feeds one frame at a "
            "time: export the model with batch=1"
        )
