"""SageMaker Ground Truth bounding-box output manifest (one JSON object per line).

Each line has ``source-ref`` (the image's S3 URI), the labelling job's attribute with
``image_size`` and ``annotations`` (``class_id``, ``left``, ``top``, ``width``, ``height``
in integer pixels) and ``<attribute>-metadata`` whose ``class-map`` names the class ids.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from kit.data.core import DatasetFormatError, DetectionDataset, LabelledImage
from kit.data.formats._parse import as_int, as_number, require_key, require_list, short
from kit.data.images import copy_images, find_image_by_reference

_LINE_EXPECTED = (
    "a JSON object with 'source-ref', '<attribute>' {'image_size', 'annotations'} and "
    "'<attribute>-metadata' {'class-map'}"
)
_ANNOTATION_EXPECTED = "an annotation {'class_id', 'left', 'top', 'width', 'height'}"


def load_ground_truth_manifest(
    *,
    manifest_path: str | Path,
    images_dir: str | Path,
    label_attribute: str | None = None,
) -> DetectionDataset:
    """Read a Ground Truth output manifest; see `DetectionDataset.from_ground_truth_manifest`."""
    path = Path(manifest_path)
    folder = Path(images_dir)
    class_map: dict[int, str] = {}
    first_use: dict[int, str] = {}
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        location = f"line {number}"
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as error:
            raise DatasetFormatError(
                path,
                location,
                f"not valid JSON ({error.msg} at column {error.colno})",
                _LINE_EXPECTED,
            ) from None
        source_ref = require_key(
            entry, "source-ref", file=path, location=location, expected=_LINE_EXPECTED
        )
        if not isinstance(source_ref, str) or not source_ref:
            raise DatasetFormatError(
                path, location, f"source-ref is {short(source_ref)}", "an S3 URI or path"
            )
        attribute = label_attribute or _detect_attribute(path, location, entry)
        label = require_key(entry, attribute, file=path, location=location, expected=_LINE_EXPECTED)
        metadata = require_key(
            entry, f"{attribute}-metadata", file=path, location=location, expected=_LINE_EXPECTED
        )
        _merge_class_map(path, location, metadata, class_map)
        width, height = _read_image_size(path, location, label)
        annotations = require_list(
            require_key(
                label,
                "annotations",
                file=path,
                location=f"{location} {attribute}",
                expected="'annotations': a list",
            ),
            file=path,
            location=f"{location} {attribute}.annotations",
            expected="a list of annotations",
        )
        boxes, class_ids = [], []
        for index, annotation in enumerate(annotations):
            where = f"{location} {attribute}.annotations[{index}]"
            fields = {
                key: require_key(
                    annotation, key, file=path, location=where, expected=_ANNOTATION_EXPECTED
                )
                for key in ("class_id", "left", "top", "width", "height")
            }
            class_id = as_int(
                fields["class_id"], file=path, location=where, name="class_id", minimum=0
            )
            left = as_number(fields["left"], file=path, location=where, name="left")
            top = as_number(fields["top"], file=path, location=where, name="top")
            box_width = as_number(
                fields["width"], file=path, location=where, name="width", minimum=0
            )
            box_height = as_number(
                fields["height"], file=path, location=where, name="height", minimum=0
            )
            first_use.setdefault(class_id, where)
            boxes.append([left, top, left + box_width, top + box_height])
            class_ids.append(class_id)
        records.append(
            (find_image_by_reference(source_ref, folder), width, height, boxes, class_ids)
        )

    for class_id, where in first_use.items():
        if class_id not in class_map:
            raise DatasetFormatError(
                path,
                where,
                f"class_id {class_id} is not in any class-map",
                f"a class id named in '<attribute>-metadata'.'class-map' {class_map}",
            )
    job_ids = sorted(class_map)
    index_of = {class_id: index for index, class_id in enumerate(job_ids)}
    items = [
        LabelledImage(
            image_path,
            width,
            height,
            np.array(boxes, dtype=np.float64).reshape(-1, 4),
            np.array([index_of[c] for c in class_ids], dtype=np.int64),
        )
        for image_path, width, height, boxes, class_ids in records
    ]
    return DetectionDataset(classes=[class_map[c] for c in job_ids], items=items)


def save_ground_truth_manifest(
    dataset: DetectionDataset,
    *,
    manifest_path: str | Path,
    images_dir: str | Path | None = None,
    label_attribute: str = "bounding-box",
    source_ref_prefix: str | None = None,
    job_name: str = "edge-vision-kit-export",
) -> Path:
    """Write a Ground Truth output manifest; see `DetectionDataset.as_ground_truth_manifest`."""
    path = Path(manifest_path)
    if images_dir is not None:
        copied = copy_images([item.path for item in dataset], images_dir)
    else:
        copied = {item.path: item.path for item in dataset}
    class_map = {str(index): name for index, name in enumerate(dataset.classes)}
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
    lines = []
    for item in dataset:
        image_path = copied[item.path].resolve()
        annotations = []
        for (x1, y1, x2, y2), class_id in zip(item.boxes, item.class_ids, strict=True):
            left, top, right, bottom = (round(float(v)) for v in (x1, y1, x2, y2))
            annotations.append(
                {
                    "class_id": int(class_id),
                    "left": left,
                    "top": top,
                    "width": right - left,
                    "height": bottom - top,
                }
            )
        entry = {
            "source-ref": (
                f"{source_ref_prefix}{image_path.name}"
                if source_ref_prefix is not None
                else str(image_path)
            ),
            label_attribute: {
                "image_size": [{"width": item.width, "height": item.height, "depth": 3}],
                "annotations": annotations,
            },
            f"{label_attribute}-metadata": {
                "objects": [{"confidence": 1.0} for _ in annotations],
                "class-map": class_map,
                "type": "groundtruth/object-detection",
                "human-annotated": "yes",
                "creation-date": created,
                "job-name": f"labeling-job/{job_name}",
            },
        }
        lines.append(json.dumps(entry))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return path


def _detect_attribute(path: Path, location: str, entry: object) -> str:
    if not isinstance(entry, dict):
        raise DatasetFormatError(
            path, location, f"found {type(entry).__name__} {short(entry)}", _LINE_EXPECTED
        )
    candidates = sorted(key for key in entry if f"{key}-metadata" in entry)
    if len(candidates) != 1:
        found = (
            f"label attributes {candidates}" if candidates else "no '<key>' with '<key>-metadata'"
        )
        raise DatasetFormatError(
            path,
            location,
            f"found {found}",
            "exactly one label attribute with its '-metadata', or pass label_attribute",
        )
    return candidates[0]


def _merge_class_map(path: Path, location: str, metadata: object, class_map: dict) -> None:
    if not isinstance(metadata, dict):
        raise DatasetFormatError(
            path, f"{location} metadata", f"found {short(metadata)}", "a metadata object"
        )
    mapping = metadata.get("class-map", {})
    if not isinstance(mapping, dict):
        raise DatasetFormatError(
            path,
            f"{location} class-map",
            f"found {short(mapping)}",
            "a mapping of class id strings to names, e.g. {'0': 'bottle'}",
        )
    for key, name in mapping.items():
        class_id = as_int(
            key, file=path, location=f"{location} class-map", name="class id", minimum=0
        )
        if class_map.setdefault(class_id, str(name)) != str(name):
            raise DatasetFormatError(
                path,
                f"{location} class-map",
                f"class id {class_id} is {name!r} here but {class_map[class_id]!r} before",
                "one name per class id across the manifest",
            )
        others = [other for other, known in class_map.items() if known == str(name)]
        if len(others) > 1:
            raise DatasetFormatError(
                path,
                f"{location} class-map",
                f"class name {name!r} has the ids {sorted(others)}",
                "one id per class name",
            )


def _read_image_size(path: Path, location: str, label: object) -> tuple[int, int]:
    expected = "'image_size': [{'width': W, 'height': H, 'depth': 3}]"
    sizes = require_key(label, "image_size", file=path, location=location, expected=expected)
    if not isinstance(sizes, list) or not sizes:
        raise DatasetFormatError(path, f"{location} image_size", f"found {short(sizes)}", expected)
    width = as_int(
        require_key(
            sizes[0], "width", file=path, location=f"{location} image_size", expected=expected
        ),
        file=path,
        location=f"{location} image_size",
        name="width",
        minimum=1,
    )
    height = as_int(
        require_key(
            sizes[0], "height", file=path, location=f"{location} image_size", expected=expected
        ),
        file=path,
        location=f"{location} image_size",
        name="height",
        minimum=1,
    )
    return width, height
