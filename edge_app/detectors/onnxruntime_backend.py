"""ONNX Runtime backend: an ``.onnx`` model on the execution providers its config lists."""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import onnxruntime as ort

from edge_app.detectors.base import (
    BackendUnavailableError,
    InferenceBackend,
    InferenceJob,
    check_batch_dimension,
)
from edge_app.detectors.config import OnnxRuntimeConfig
from edge_app.detectors.metadata import DetectorMetadata
from edge_app.detectors.onnx_graph import rewrite_for_onnxruntime

INPUT_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16}
"""numpy dtype a submitted tensor is converted to, by the model input's ONNX type."""


class OnnxRuntimeBackend(InferenceBackend):
    """Runs an ``.onnx`` model with ONNX Runtime.

    With the ``throughput`` hint (the default) ``threads`` runs of one intra-op thread each go
    on at once (``max_in_flight == threads``): small detectors scale far better across frames
    than inside one frame, so several cameras, or one camera's consecutive frames, get the most
    frames a second. ``latency`` runs one frame at a time on ``threads`` intra-op threads.

    Unless ``rewrite_graph`` is off, the session runs the model with the head's DFL softmax
    over the last axis (`rewrite_for_onnxruntime`; ``graph_rewritten`` says whether there was
    one): the same outputs, computed faster by ONNX Runtime's CPU kernels.

    The session runs on the config's ``execution_providers`` (in that order); ONNX Runtime would
    quietly fall back to the CPU for a provider it lacks or cannot start, so both are refused.

    Args:
        model_path: The ``.onnx`` file.
        config: Threads, performance hint, execution providers, spinning (the defaults when
            omitted: CPU, `default_thread_count` threads, ``throughput``).
        class_names: Overrides the names in the model's metadata (models not from ultralytics).

    Raises:
        BackendUnavailableError: an execution provider this onnxruntime build lacks, or one that
            failed to start.
        ValueError: a model with a batch size other than 1.

    Examples:
        >>> # backend = OnnxRuntimeBackend(Path("best.onnx"))
        >>> # raw = backend.infer(tensor)  # (1, 4 + nc, N) for a YOLOv8/11 detector
    """

    name = "onnxruntime"

    def __init__(
        self,
        model_path: str | Path,
        config: OnnxRuntimeConfig | None = None,
        class_names: Mapping[int, str] | None = None,
    ) -> None:
        config = config or OnnxRuntimeConfig()
        model_path = Path(model_path)
        providers = list(config.execution_providers)
        available = ort.get_available_providers()
        missing = [p for p in providers if p not in available]
        if missing:
            raise BackendUnavailableError(
                f"inference.execution_providers: {missing} not in this onnxruntime build "
                f"({ort.__version__}); available here: {available}"
            )
        threads = config.thread_count
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1 if config.performance_hint == "throughput" else threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        options.add_session_config_entry(
            "session.intra_op.allow_spinning", "1" if config.allow_spinning else "0"
        )
        rewritten = rewrite_for_onnxruntime(model_path) if config.rewrite_graph else None
        self.graph_rewritten = rewritten is not None
        self.session = ort.InferenceSession(
            rewritten or str(model_path), sess_options=options, providers=providers
        )
        started = self.session.get_providers()
        failed = [p for p in providers if p not in started]
        if failed:
            raise BackendUnavailableError(
                f"inference.execution_providers: {failed} failed to start for {model_path.name} "
                f"(its libraries or driver are missing: see ONNX Runtime's log); the session "
                f"would run on {started}"
            )
        model_input = self.session.get_inputs()[0]
        check_batch_dimension(model_input.shape, model_path)
        values: dict = dict(self.session.get_modelmeta().custom_metadata_map)
        if "imgsz" not in values and all(isinstance(d, int) for d in model_input.shape[2:]):
            values["imgsz"] = list(model_input.shape[2:])
        if class_names is not None:
            values["names"] = dict(class_names)
        super().__init__(model_path, DetectorMetadata.from_mapping(values, source=str(model_path)))
        self.config = config
        self.max_in_flight = threads if config.performance_hint == "throughput" else 1
        self.dynamic_hw = len(model_input.shape) == 4 and not all(
            isinstance(d, int) for d in model_input.shape[2:]
        )
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
