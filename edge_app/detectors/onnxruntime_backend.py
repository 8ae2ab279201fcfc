"""ONNX Runtime backend (CPU execution provider)."""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import onnxruntime as ort

from edge_app.detectors.base import (
    InferenceBackend,
    InferenceJob,
    check_batch_dimension,
    check_performance_hint,
    default_thread_count,
)
from edge_app.detectors.metadata import ModelMetadata

INPUT_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16}
"""numpy dtype a submitted tensor is converted to, by the model input's ONNX type."""


class OnnxRuntimeBackend(InferenceBackend):
    """Runs an ``.onnx`` model with ONNX Runtime.

    With the ``throughput`` hint (the default) ``threads`` runs of one intra-op thread each go
    on at once (``max_in_flight == threads``): small detectors scale far better across frames
    than inside one frame, so several cameras, or one camera's consecutive frames, get the most
    frames a second. ``latency`` runs one frame at a time on ``threads`` intra-op threads.

    Args:
        model_path: The ``.onnx`` file.
        threads: CPU threads in all; defaults to `default_thread_count`.
        performance_hint: ``"throughput"`` or ``"latency"`` (see above).
        providers: Execution providers, ``["CPUExecutionProvider"]`` unless given.
        allow_spinning: Let idle intra-op threads busy-wait for work (``latency`` only). Off by
            default: spinning saves a fraction of a millisecond on an idle machine, but on a
            device where video decoding, tracking and other cameras share the cores it steals
            their CPU and can make inference several times slower.
        class_names: Overrides the names in the model's metadata (models not from ultralytics).

    Raises:
        ValueError: for an unknown performance hint or a model with a batch size other than 1.

    Examples:
        >>> # backend = OnnxRuntimeBackend(Path("best.onnx"))
        >>> # raw = backend.infer(tensor)  # (1, 4 + nc, N) for a YOLOv8/11 detector
    """

    name = "onnxruntime"

    def __init__(
        self,
        model_path: str | Path,
        threads: int | None = None,
        performance_hint: str = "throughput",
        providers: list[str] | None = None,
        allow_spinning: bool = False,
        class_names: Mapping[int, str] | None = None,
    ) -> None:
        hint = check_performance_hint(performance_hint)
        threads = threads or default_thread_count()
        model_path = Path(model_path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1 if hint == "throughput" else threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        options.add_session_config_entry(
            "session.intra_op.allow_spinning", "1" if allow_spinning else "0"
        )
        self.session = ort.InferenceSession(
            str(model_path), sess_options=options, providers=providers or ["CPUExecutionProvider"]
        )
        model_input = self.session.get_inputs()[0]
        check_batch_dimension(model_input.shape, model_path)
        values: dict = dict(self.session.get_modelmeta().custom_metadata_map)
        if "imgsz" not in values and all(isinstance(d, int) for d in model_input.shape[2:]):
            values["imgsz"] = list(model_input.shape[2:])
        if class_names is not None:
            values["names"] = dict(class_names)
        super().__init__(model_path, ModelMetadata.from_mapping(values, source=str(model_path)))
        self.performance_hint = hint
        self.max_in_flight = threads if hint == "throughput" else 1
        self._input_name = model_input.name
        self._input_dtype = INPUT_DTYPES.get(model_input.type, np.float32)
        self._output_names = [self.session.get_outputs()[0].name]
        self._runners = ThreadPoolExecutor(
            self.max_in_flight, thread_name_prefix=f"onnxruntime-{model_path.stem}"
        )

    def submit(self, tensor: np.ndarray) -> InferenceJob:
        """Queue ``tensor`` for the next free runner thread: passed without a copy when it is a
        C-contiguous array of the model's input type, else converted first."""
        job = InferenceJob()
        tensor = np.ascontiguousarray(tensor, dtype=self._input_dtype)
        self._runners.submit(job.run, self._run, tensor)
        return job

    def _run(self, tensor: np.ndarray) -> np.ndarray:
        return self.session.run(self._output_names, {self._input_name: tensor})[0]

    def close(self) -> None:
        """Finish the runs in flight and stop the runner threads."""
        self._runners.shutdown(wait=True)
