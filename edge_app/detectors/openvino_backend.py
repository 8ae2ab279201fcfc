"""OpenVINO backend: an ultralytics ``*_openvino_model/`` directory, an ``.xml`` or an ``.onnx``.

``openvino`` is imported when a backend is created, so that images without it can still run
ONNX Runtime models.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from edge_app.detectors.base import InferenceBackend, check_batch_dimension, default_thread_count
from edge_app.detectors.metadata import ModelMetadata, read_metadata_yaml, read_onnx_metadata

OPENVINO_PIN = "openvino==2026.4.1"


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


class OpenVinoBackend(InferenceBackend):
    """Runs a model with OpenVINO, compiled with the LATENCY performance hint.

    Metadata comes from ``metadata.yaml`` next to the ``.xml`` (written by ultralytics), the
    ONNX ``metadata_props`` for an ``.onnx``, or else the ``model_info`` labels in the IR.

    Args:
        model_path: A ``*_openvino_model`` directory, an ``.xml`` file or an ``.onnx`` file.
        device: OpenVINO device name (``"CPU"``, ``"GPU"``, ``"AUTO"``, ...).
        threads: Inference threads; defaults to `default_thread_count`.
        precision: ``INFERENCE_PRECISION_HINT`` such as ``"f32"``; OpenVINO's default (bf16 on
            CPUs with AMX or AVX512-BF16, as ultralytics runs it too) when omitted.
        class_names: Overrides the names in the model's metadata.

    Raises:
        ImportError: when the ``openvino`` package is not installed.

    Examples:
        >>> # backend = OpenVinoBackend("best_openvino_model")
        >>> # raw = backend.infer(tensor)
    """

    name = "openvino"

    def __init__(
        self,
        model_path: str | Path,
        device: str = "CPU",
        threads: int | None = None,
        precision: str | None = None,
        class_names: Mapping[int, str] | None = None,
    ) -> None:
        try:
            import openvino as ov
        except ImportError as error:
            raise ImportError(
                f"the openvino backend needs the openvino package (pip install {OPENVINO_PIN}); "
                "or load the .onnx model with backend='onnxruntime'"
            ) from error
        model_file = resolve_openvino_model(model_path)
        core = ov.Core()
        model = core.read_model(str(model_file))
        shape = [d.get_length() if d.is_static else -1 for d in model.inputs[0].get_partial_shape()]
        check_batch_dimension(shape, model_file)
        values = self._metadata_values(model, model_file)
        if "imgsz" not in values and len(shape) == 4 and min(shape[2:]) > 0:
            values["imgsz"] = shape[2:]
        if class_names is not None:
            values["names"] = dict(class_names)
        super().__init__(
            Path(model_path), ModelMetadata.from_mapping(values, source=str(model_file))
        )
        config = {
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_NUM_THREADS": threads or default_thread_count(),
        }
        if precision is not None:
            config["INFERENCE_PRECISION_HINT"] = precision
        self.device = device
        self.compiled_model = core.compile_model(model, device, config)
        self._request = self.compiled_model.create_infer_request()
        self._lock = threading.Lock()

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

    def infer(self, tensor: np.ndarray) -> np.ndarray:
        """Run the compiled model on ``tensor`` (shared, not copied) and return a copy of the output.

        One infer request serves the backend; a lock keeps concurrent callers in turn.
        """
        with self._lock:
            return self._request.infer({0: tensor}, share_inputs=True, share_outputs=False)[0]
