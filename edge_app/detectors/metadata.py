"""What a model says about itself: class names, input size, stride, task.

Ultralytics writes this metadata into every export: as ONNX ``metadata_props`` (string values
holding Python literals) and as ``metadata.yaml`` next to an OpenVINO ``.xml``.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

SUPPORTED_TASKS = ("detect",)


@dataclass(frozen=True)
class DetectorMetadata:
    """The facts about a model file that pre- and post-processing need.

    Read from the model file itself; the registry's record of a model version is
    `kit.core.contracts.ModelMetadata`.

    Attributes:
        class_names: Class names by class id.
        imgsz: Network input size as ``(height, width)``.
        stride: Largest stride of the network (letterbox padding granularity).
        task: Ultralytics task, ``"detect"`` for object detection.
        batch: Batch size the model was exported with.
        end2end: Whether the model outputs final ``(1, max_det, 6)`` boxes (NMS-free heads).
        description: Free text from the exporter.
        source: Where the metadata was read from (for messages).

    Examples:
        >>> meta = DetectorMetadata.from_mapping({"names": "{0: 'fish'}", "imgsz": "[320, 320]"})
        >>> meta.class_names, meta.imgsz, meta.stride
        ({0: 'fish'}, (320, 320), 32)
    """

    class_names: dict[int, str]
    imgsz: tuple[int, int]
    stride: int = 32
    task: str = "detect"
    batch: int = 1
    end2end: bool = False
    description: str = ""
    source: str = field(default="", compare=False)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], source: str = "") -> DetectorMetadata:
        """Metadata from ultralytics' keys; values may be typed or Python-literal strings.

        Raises:
            ValueError: when ``names`` or ``imgsz`` is missing or malformed.
        """
        where = f" in {source}" if source else ""
        values = {key: _literal(value) for key, value in values.items()}
        names = values.get("names")
        if isinstance(names, (list, tuple)):
            names = dict(enumerate(names))
        if not isinstance(names, Mapping) or not names:
            raise ValueError(
                f"model metadata{where} has no class names ('names': {values.get('names')!r}); "
                "export the model with ultralytics or pass class_names explicitly"
            )
        imgsz = values.get("imgsz")
        if isinstance(imgsz, int):
            imgsz = (imgsz, imgsz)
        if not (isinstance(imgsz, (list, tuple)) and len(imgsz) == 2):
            raise ValueError(
                f"model metadata{where} has no input size ('imgsz': {values.get('imgsz')!r}); "
                "expected [height, width]"
            )
        return cls(
            class_names={int(k): str(v) for k, v in names.items()},
            imgsz=(int(imgsz[0]), int(imgsz[1])),
            stride=int(values.get("stride") or 32),
            task=str(values.get("task") or "detect"),
            batch=int(values.get("batch") or 1),
            end2end=bool(values.get("end2end") or False),
            description=str(values.get("description") or ""),
            source=source,
        )

    def check_supported(self) -> None:
        """Raise `ValueError` when the model is not an object detector these runtimes decode."""
        if self.task not in SUPPORTED_TASKS:
            raise ValueError(
                f"model task {self.task!r} ({self.source or 'model'}) is not supported; "
                f"supported tasks: {list(SUPPORTED_TASKS)}"
            )


def _literal(value: Any) -> Any:
    """Python literal strings (as ONNX metadata holds them) to values; other values unchanged."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text in ("True", "False", "None") or (text[:1] in "[{(-0123456789" and text):
        try:
            return ast.literal_eval(text)
        except (ValueError, SyntaxError):
            return value
    return value


def read_metadata_yaml(path: str | Path) -> dict[str, Any]:
    """The mapping in an ultralytics ``metadata.yaml`` file.

    Raises:
        FileNotFoundError: when the file does not exist.
        ValueError: when it does not hold a YAML mapping.
    """
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a YAML mapping, not {type(data).__name__}")
    return data


_ONNX_METADATA_FIELD = 14  # ModelProto.metadata_props (repeated StringStringEntryProto)


def read_onnx_metadata(path: str | Path) -> dict[str, str]:
    """The ``metadata_props`` of an ONNX file, read without the onnx package.

    Walks the top-level fields of the ``ModelProto`` protobuf message and decodes only the
    key/value entries, skipping the graph by its length prefix.

    Raises:
        ValueError: when the file is not a protobuf ONNX model.

    Examples:
        >>> # read_onnx_metadata("best.onnx")["names"]  -> "{0: 'fish', 1: 'bottle'}"
    """
    data = memoryview(Path(path).read_bytes())
    metadata: dict[str, str] = {}
    for field_number, value in _protobuf_fields(data, str(path)):
        if field_number == _ONNX_METADATA_FIELD and isinstance(value, memoryview):
            entry = {
                number: bytes(v).decode("utf-8") for number, v in _protobuf_fields(value, str(path))
            }
            metadata[entry.get(1, "")] = entry.get(2, "")
    return metadata


def _protobuf_fields(data: memoryview, source: str):
    """Yield ``(field_number, value)`` of one protobuf message; bytes fields as memoryviews."""
    position = 0
    while position < len(data):
        key, position = _varint(data, position, source)
        field_number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            value, position = _varint(data, position, source)
        elif wire_type == 1:
            value, position = None, position + 8
        elif wire_type == 2:
            length, position = _varint(data, position, source)
            value, position = data[position : position + length], position + length
        elif wire_type == 5:
            value, position = None, position + 4
        else:
            raise ValueError(f"{source} is not an ONNX model (protobuf wire type {wire_type})")
        if position > len(data):
            raise ValueError(f"{source} is not an ONNX model (truncated protobuf field)")
        yield field_number, value


def _varint(data: memoryview, position: int, source: str) -> tuple[int, int]:
    result = shift = 0
    while position < len(data):
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, position
        shift += 7
    raise ValueError(f"{source} is not an ONNX model (truncated varint)")
