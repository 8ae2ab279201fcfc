"""Export trained weights to ONNX (FP32, FP16, INT8) and OpenVINO (FP32, FP16, INT8 with NNCF).

What works on a CPU-only machine with the pinned packages:

- ONNX FP32: ultralytics' exporter (~1-2 s for yolov8n).
- ONNX FP16: ultralytics converts the FP32 graph with onnxruntime's float16 tool and keeps
  FP32 inputs/outputs; ONNX Runtime on a CPU runs it (no faster than FP32 there: FP16 pays
  off on GPUs/NPUs) at half the file size.
- ONNX INT8: ONNX Runtime static quantization of the Conv/MatMul weights, calibrated on the
  dataset's train images (``data`` is required; its val images stay unseen, to judge the
  result); about a quarter of the FP32 size.
- OpenVINO FP32 and FP16 (weights compressed to FP16): ultralytics' exporter.
- OpenVINO INT8: needs NNCF (``pip install nncf``); without it :class:`ExportError` says so.

Exports are made from a copy of the weights in a scratch folder and moved to their final
name, so FP32/FP16/INT8 exports of the same weights never overwrite each other.
"""

from __future__ import annotations

import importlib.util
import shutil
import tempfile
from pathlib import Path
from typing import Any

from kit.offline import configure_ultralytics


class ExportError(RuntimeError):
    """An export is not possible here (a missing package, an unsupported combination)."""


def _precision_tag(half: bool, int8: bool) -> str:
    if half and int8:
        raise ValueError("choose one of half=True (FP16) and int8=True (INT8), not both")
    return "_fp16" if half else "_int8" if int8 else ""


def _check_weights(weights: str | Path) -> Path:
    weights = Path(weights)
    if weights.suffix != ".pt" or not weights.is_file():
        raise FileNotFoundError(
            f"weights {weights} must be an existing ultralytics .pt file (e.g. TrainResult.weights)"
        )
    return weights


def _check_calibration_data(int8: bool, data: str | Path | None) -> Path | None:
    if data is None:
        if int8:
            raise ValueError(
                "int8=True needs data= (a data.yaml) for calibration images; its 'train' split calibrates"
            )
        return None
    from kit.sagemaker.train_entry import find_data_yaml

    return find_data_yaml(data)


def _calibration_yaml(data_yaml: Path, scratch: Path) -> str:
    """A data.yaml whose ``val`` is the dataset's train split: ultralytics calibrates INT8 on the
    ``val`` split, and the held-out images must stay unseen to judge the quantized model."""
    import yaml

    from kit.sagemaker.train_entry import absolute_data_yaml

    data = yaml.safe_load(absolute_data_yaml(data_yaml, scratch / "absolute").read_text())
    if data.get("train"):
        data["val"] = data["train"]
    out = scratch / "calibration" / "data.yaml"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return str(out)


def _export(weights: Path, format: str, scratch: Path, verbose: bool, **arguments: Any) -> Path:
    configure_ultralytics()
    from ultralytics import YOLO

    from kit.train.local import quiet_ultralytics

    copy = scratch / weights.name
    shutil.copyfile(weights, copy)
    with quiet_ultralytics(enabled=not verbose):
        exported = YOLO(str(copy)).export(format=format, **arguments)
    if exported is None:
        raise ExportError(f"ultralytics did not export {weights} to {format} (see its log)")
    return Path(exported)


def _move(source: Path, target: Path) -> Path:
    if target.is_dir():
        shutil.rmtree(target)
    elif target.exists():
        target.unlink()
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(source), str(target))
    return target


def export_onnx(
    weights: str | Path,
    imgsz: int | None = None,
    *,
    half: bool = False,
    int8: bool = False,
    data: str | Path | None = None,
    dynamic: bool = True,
    simplify: bool = True,
    opset: int | None = None,
    output: str | Path | None = None,
    verbose: bool = False,
) -> Path:
    """Export ``weights`` to ONNX; return the ``.onnx`` file.

    Args:
        weights: an ultralytics ``.pt`` file.
        imgsz: square input size (default: the size it was trained at).
        half: FP16 weights (inputs and outputs stay FP32).
        int8: INT8 static quantization with ONNX Runtime; needs ``data``.
        data: a data.yaml whose images calibrate INT8.
        dynamic: dynamic batch and image size axes (the default): the edge runtime infers each
            camera's frames at their aspect ratio, as ultralytics' rectangular inference does (a
            640x480 camera at 320 runs 320x256). ``False`` for a compiler or runtime that needs
            fixed shapes (SageMaker Neo).
        simplify: simplify the graph with onnxslim.
        opset: ONNX opset (default: ultralytics' choice).
        output: the file to write (default ``<weights stem>[_fp16|_int8].onnx`` next to the weights).
        verbose: show ultralytics' log.

    Raises:
        FileNotFoundError: the weights do not exist.
        ValueError: half and int8 together, or int8 without data.
        ExportError: ultralytics could not export.

    Examples:
        >>> export_onnx("runs/train/weights/best.pt")
        PosixPath('runs/train/weights/best.onnx')
        >>> export_onnx("best.pt", half=True).name
        'best_fp16.onnx'
    """
    weights = _check_weights(weights)
    tag = _precision_tag(half, int8)
    calibration = _check_calibration_data(int8, data)
    target = Path(output) if output else weights.with_name(f"{weights.stem}{tag}.onnx")
    arguments: dict[str, Any] = dict(dynamic=dynamic, simplify=simplify)
    if imgsz is not None:
        arguments["imgsz"] = imgsz
    if opset is not None:
        arguments["opset"] = opset
    if half or int8:
        arguments["quantize"] = 16 if half else 8
    with tempfile.TemporaryDirectory(prefix="kit-export-") as scratch:
        if calibration:
            arguments["data"] = _calibration_yaml(calibration, Path(scratch))
        exported = _export(weights, "onnx", Path(scratch), verbose, **arguments)
        return _move(exported, target)


def nncf_available() -> bool:
    """Whether NNCF (needed for OpenVINO INT8) is installed."""
    return importlib.util.find_spec("nncf") is not None


def export_openvino(
    weights: str | Path,
    imgsz: int | None = None,
    *,
    half: bool = False,
    int8: bool = False,
    data: str | Path | None = None,
    dynamic: bool = True,
    output: str | Path | None = None,
    verbose: bool = False,
) -> Path:
    """Export ``weights`` to OpenVINO IR; return the model folder (``.xml``, ``.bin``, ``metadata.yaml``).

    The folder name ends in ``_openvino_model`` so that ultralytics (and :func:`parity_check`)
    recognise it.

    Args:
        weights: an ultralytics ``.pt`` file.
        imgsz: square input size (default: the size it was trained at).
        half: compress weights to FP16.
        int8: INT8 post-training quantization with NNCF; needs ``data`` and the ``nncf`` package.
        data: a data.yaml whose images calibrate INT8.
        dynamic: dynamic input shapes (the default): the edge runtime compiles the model for
            each camera's frame size and infers it at the frame's aspect ratio, as ultralytics'
            rectangular inference does (a 640x480 camera at 320 runs 320x256: a fifth less
            work than 320x320). ``False`` for a runtime that needs fixed shapes.
        output: the folder to write (default ``<weights stem>[_fp16|_int8]_openvino_model`` next
            to the weights).
        verbose: show ultralytics' log.

    Raises:
        FileNotFoundError: the weights do not exist.
        ValueError: half and int8 together, int8 without data, or an output name ultralytics
            would not recognise.
        ExportError: INT8 without NNCF installed, or ultralytics could not export.

    Examples:
        >>> export_openvino("best.pt", half=True).name
        'best_fp16_openvino_model'
    """
    weights = _check_weights(weights)
    tag = _precision_tag(half, int8)
    if int8 and not nncf_available():
        raise ExportError(
            "OpenVINO INT8 needs NNCF, which is not installed (pip install nncf). Alternatives "
            "here: export_openvino(half=True) or export_onnx(int8=True) (ONNX Runtime quantization)"
        )
    calibration = _check_calibration_data(int8, data)
    target = Path(output) if output else weights.with_name(f"{weights.stem}{tag}_openvino_model")
    if not target.name.endswith("_openvino_model"):
        raise ValueError(
            f"output {target} must end in '_openvino_model' (ultralytics loads it by that name)"
        )
    arguments: dict[str, Any] = dict(dynamic=dynamic)
    if imgsz is not None:
        arguments["imgsz"] = imgsz
    if half or int8:
        arguments["quantize"] = 16 if half else 8
    with tempfile.TemporaryDirectory(prefix="kit-export-") as scratch:
        if calibration:
            arguments["data"] = _calibration_yaml(calibration, Path(scratch))
        exported = _export(weights, "openvino", Path(scratch), verbose, **arguments)
        return _move(exported, target)
