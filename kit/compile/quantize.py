"""INT8 for the edge: quantize, check on held-out images, accept or refuse.

Post-training INT8 quantization (ONNX Runtime static quantization, or OpenVINO with NNCF),
calibrated on the model's own dataset, is accepted only when it keeps the model's accuracy:
its mAP50 on the dataset's held-out (``val``) images may drop by at most
:data:`MAX_INT8_MAP50_DROP` below the FP32 PyTorch model's on the same images. Otherwise
:class:`Int8Refused` says by how much it dropped and what to use instead.

Box agreement with the FP32 model is reported but does not decide: quantization moves scores a
little, so borderline boxes come and go while what the model finds on labelled images, the thing
a customer sees, stays.

An accepted INT8 model of a registered version is added to that version as its
``onnx_int8`` / ``openvino_int8`` format (:func:`quantize_registered`, ``kit models quantize``):
a camera running the version with ``precision: int8`` then runs it.

Examples:
    >>> from kit.compile.quantize import quantize_int8
    >>> int8 = quantize_int8("best.pt", "datasets/shelf/data.yaml", backend="openvino")
    >>> int8.path.name, round(int8.map50_drop, 3)
    ('best_int8_openvino_model', 0.004)
    >>> int8, metadata = quantize_registered("shelf:3", backend="onnxruntime")
    >>> sorted(metadata.formats)
    ['onnx', 'onnx_int8', 'pytorch']
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from kit.compile.export import export_onnx, export_openvino
from kit.compile.parity import ParityReport, parity_check
from kit.core.contracts.model import INT8_FORMATS

if TYPE_CHECKING:
    from kit.core.contracts.model import ModelMetadata, ModelRef
    from kit.core.settings import Settings
    from kit.registry import ModelRegistry

MAX_INT8_MAP50_DROP = 0.01
"""The most an INT8 model's mAP50 on held-out images may fall below the FP32 model's."""

Int8Backend = Literal["onnxruntime", "openvino"]


class Int8Refused(RuntimeError):
    """The INT8 model loses too much accuracy on held-out images; the message says how much.

    Attributes:
        report: the parity report that decided.
    """

    def __init__(self, message: str, report: ParityReport):
        super().__init__(message)
        self.report = report


@dataclass(frozen=True)
class Int8Model:
    """An INT8 model that passed the accuracy gate."""

    backend: Int8Backend
    path: Path
    report: ParityReport

    @property
    def format(self) -> str:
        """The registry format name (``onnx_int8`` or ``openvino_int8``)."""
        return INT8_FORMATS[self.backend]

    @property
    def map50_drop(self) -> float:
        """FP32 mAP50 minus INT8 mAP50 on the held-out images (negative: INT8 did better)."""
        return map50_drop(self.report)


def map50_drop(report: ParityReport) -> float:
    """How far the candidate's mAP50 fell below the reference's.

    Raises:
        ValueError: the report has no mAP50 (it was checked on images without labels).
    """
    if report.reference_map50 is None or report.candidate_map50 is None:
        raise ValueError(
            f"no mAP50 in the report on {report.candidate}: INT8 is judged on labelled held-out "
            "images; pass a data.yaml (or dataset folder) whose val split has labels"
        )
    return report.reference_map50 - report.candidate_map50


def int8_verdict(report: ParityReport, max_drop: float = MAX_INT8_MAP50_DROP) -> str | None:
    """Why an INT8 model is refused (None when it is accepted)."""
    drop = map50_drop(report)
    if drop <= max_drop:
        return None
    return (
        f"INT8 {Path(report.candidate).name} refused: mAP50 {report.candidate_map50:.4f} vs "
        f"{report.reference_map50:.4f} for FP32 on {len(report.images)} held-out images, a drop "
        f"of {drop:.4f} (at most {max_drop:.4f}); keep FP32 or FP16 for this model, or calibrate "
        "on more images of the scenes it will see"
    )


def quantize_int8(
    weights: str | Path,
    data: str | Path,
    *,
    backend: Int8Backend,
    imgsz: int | None = None,
    max_drop: float = MAX_INT8_MAP50_DROP,
    output: str | Path | None = None,
) -> Int8Model:
    """Quantize ``weights`` to INT8 for ``backend``, calibrated on ``data``, and gate it.

    Args:
        weights: the FP32 ultralytics ``.pt``.
        data: the model's dataset (a data.yaml or its folder): its train images calibrate, its
            ``val`` images (held out from training) judge.
        backend: ``onnxruntime`` (static quantization, QDQ) or ``openvino`` (NNCF).
        imgsz: input size (default: the size the weights were trained at).
        max_drop: the largest mAP50 drop accepted.
        output: where to write the model (default: next to the weights, ``_int8`` in its name).

    Returns:
        The accepted :class:`Int8Model`.

    Raises:
        Int8Refused: the mAP50 drop is larger than ``max_drop`` (the file is removed).
        ValueError: an unknown backend, or a dataset without labelled held-out images.
        kit.compile.ExportError: the quantization itself failed (e.g. NNCF missing).
    """
    if backend not in INT8_FORMATS:
        raise ValueError(f"backend {backend!r}: choose one of {', '.join(INT8_FORMATS)}")
    if backend == "onnxruntime":
        path = export_onnx(weights, imgsz, int8=True, data=data, output=output)
    else:
        path = export_openvino(weights, imgsz, int8=True, data=data, output=output)
    report = parity_check(weights, path, data, imgsz=imgsz)
    refused = int8_verdict(report, max_drop)
    if refused is not None:
        _remove(path)
        raise Int8Refused(refused, report)
    return Int8Model(backend=backend, path=path, report=report)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def quantize_registered(
    ref: ModelRef | str,
    *,
    backend: Int8Backend,
    data: str | Path | None = None,
    max_drop: float = MAX_INT8_MAP50_DROP,
    registry: ModelRegistry | None = None,
    settings: Settings | None = None,
) -> tuple[Int8Model, ModelMetadata]:
    """Quantize a registered version's weights to INT8 and add the accepted model to it.

    Args:
        ref: the version (``name:3``, ``name:production``); it needs its ``pytorch`` weights.
        backend: ``onnxruntime`` (added as ``onnx_int8``) or ``openvino`` (``openvino_int8``).
        data: what calibrates and judges: a data.yaml (or its folder), or an uploaded dataset
            (``name:v2``); default: the dataset the version was trained on (its ``dataset``).
        max_drop: the largest mAP50 drop accepted.
        registry: the registry (default: the settings').
        settings: the bucket and the state dir datasets are fetched into.

    Returns:
        The accepted model and the version's metadata with the new format, whose mAP50 and
        drop are recorded as ``<format>/mAP50`` and ``<format>/mAP50_drop``.

    Raises:
        Int8Refused: the INT8 model loses too much mAP50 (nothing is registered).
        kit.registry.RegistryConflictError: the version has that INT8 format already.
        kit.core.registry.RegistryError: the model or version does not exist.
        ValueError: no weights to quantize, or no dataset to calibrate on.
    """
    from kit.core.settings import load_settings
    from kit.registry import ModelRegistry

    if backend not in INT8_FORMATS:
        raise ValueError(f"backend {backend!r}: choose one of {', '.join(INT8_FORMATS)}")
    settings = settings or load_settings()
    registry = registry or ModelRegistry.from_settings(settings)
    metadata = registry.get(ref)
    fmt = INT8_FORMATS[backend]
    if fmt in metadata.formats:
        raise ValueError(f"{metadata.ref} has its {fmt} format already; nothing to do")
    if "pytorch" not in metadata.formats:
        raise ValueError(
            f"{metadata.ref} has no pytorch weights to quantize (formats: "
            f"{', '.join(metadata.formats)}); register the .pt with it"
        )
    data_yaml = _calibration_data(metadata, data, settings)
    weights = registry.download(metadata.ref, "pytorch")
    with tempfile.TemporaryDirectory(prefix="kit-int8-") as scratch:
        name = "model_int8.onnx" if backend == "onnxruntime" else "model_int8_openvino_model"
        accepted = quantize_int8(
            weights,
            data_yaml,
            backend=backend,
            imgsz=metadata.input_size,
            max_drop=max_drop,
            output=Path(scratch) / name,
        )
        updated = registry.add_format(
            metadata.ref,
            fmt,
            accepted.path,
            metrics={
                f"{fmt}/mAP50": accepted.report.candidate_map50,
                f"{fmt}/mAP50_drop": accepted.map50_drop,
            },
        )
    return accepted, updated


def _calibration_data(metadata: ModelMetadata, data: str | Path | None, settings: Settings) -> Path:
    """A local data.yaml for ``data``: a path, an uploaded dataset, or the version's own."""
    from kit.data.fetch import fetch_dataset

    if data is not None and Path(data).exists():
        return Path(data)
    if data is None:
        if not metadata.dataset:
            raise ValueError(
                f"{metadata.ref} does not record the dataset it was trained on: pass --data (a "
                "data.yaml whose val split has labels, or an uploaded dataset name:v<n>)"
            )
        _, name, version = metadata.dataset.strip("/").split("/")[:3]
        data = f"{name}:{version}"
    if ":" not in str(data) and "/" in str(data):
        raise ValueError(f"no data.yaml or dataset folder at {data}")
    return fetch_dataset(settings, str(data), settings.state_dir / "datasets")
