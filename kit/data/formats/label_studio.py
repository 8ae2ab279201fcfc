"""Label Studio JSON export: tasks whose annotations hold ``rectanglelabels`` results.

A result's ``value`` has ``x``, ``y``, ``width`` and ``height`` in percent of the image's
``original_width`` / ``original_height`` and an optional ``rotation`` in degrees about
the top-left corner; a rotated rectangle is read as the box that encloses it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from kit.data.core import DatasetFormatError, DetectionDataset, LabelledImage
from kit.data.formats._json import read_json
from kit.data.formats._parse import as_int, as_number, require_key, require_list, short
from kit.data.images import copy_images, find_image_by_reference, read_image_size

_TASK_EXPECTED = "a task object with 'data': {'image': ...} and an 'annotations' list"
_VALUE_EXPECTED = "'value' with numeric x, y, width, height (percent) and one rectanglelabels name"


def load_label_studio(
    *,
    json_path: str | Path,
    images_dir: str | Path,
    classes: Sequence[str] | None = None,
) -> DetectionDataset:
    """Read a Label Studio JSON export; see `DetectionDataset.from_label_studio`."""
    path = Path(json_path)
    folder = Path(images_dir)
    tasks = require_list(
        read_json(path, expected="a Label Studio JSON export (a list of tasks)"),
        file=path,
        location="top level",
        expected="a Label Studio JSON export (a list of tasks)",
    )
    records = [_read_task(path, index, task, folder) for index, task in enumerate(tasks)]
    names_found = sorted({name for record in records for name, _, _ in record["boxes"]})
    class_names = list(classes) if classes is not None else names_found
    index_of = {name: index for index, name in enumerate(class_names)}
    items = []
    for record in records:
        boxes, class_ids = [], []
        for name, location, box in record["boxes"]:
            if name not in index_of:
                raise DatasetFormatError(
                    path, location, f"label {name!r} is unknown", f"one of {class_names}"
                )
            boxes.append(box)
            class_ids.append(index_of[name])
        items.append(
            LabelledImage(
                record["path"],
                record["width"],
                record["height"],
                np.array(boxes, dtype=np.float64).reshape(-1, 4),
                np.array(class_ids, dtype=np.int64),
            )
        )
    return DetectionDataset(classes=class_names, items=items)


def save_label_studio(
    dataset: DetectionDataset,
    *,
    json_path: str | Path,
    images_dir: str | Path | None = None,
    image_url_prefix: str | None = None,
) -> Path:
    """Write Label Studio tasks; see `DetectionDataset.as_label_studio`."""
    path = Path(json_path)
    if images_dir is not None:
        copied = copy_images([item.path for item in dataset], images_dir)
    else:
        copied = {item.path: item.path for item in dataset}
    tasks = []
    for task_id, item in enumerate(dataset, start=1):
        image_path = copied[item.path].resolve()
        reference = (
            f"{image_url_prefix}{image_path.name}"
            if image_url_prefix is not None
            else str(image_path)
        )
        results = []
        for number, ((x1, y1, x2, y2), class_id) in enumerate(
            zip(item.boxes, item.class_ids, strict=True), start=1
        ):
            results.append(
                {
                    "id": f"{task_id}-{number}",
                    "type": "rectanglelabels",
                    "from_name": "label",
                    "to_name": "image",
                    "original_width": item.width,
                    "original_height": item.height,
                    "image_rotation": 0,
                    "value": {
                        "x": float(x1) / item.width * 100,
                        "y": float(y1) / item.height * 100,
                        "width": float(x2 - x1) / item.width * 100,
                        "height": float(y2 - y1) / item.height * 100,
                        "rotation": 0,
                        "rectanglelabels": [dataset.classes[class_id]],
                    },
                }
            )
        tasks.append(
            {
                "id": task_id,
                "data": {"image": reference},
                "annotations": [
                    {
                        "id": task_id,
                        "result": results,
                        "was_cancelled": False,
                        "ground_truth": False,
                    }
                ],
                "predictions": [],
            }
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(tasks, indent=1))
    return path


def _read_task(path: Path, index: int, task: object, images_dir: Path) -> dict:
    task_location = f"task {index}"
    data = require_key(task, "data", file=path, location=task_location, expected=_TASK_EXPECTED)
    if isinstance(task, dict) and "id" in task:
        task_location = f"task {index} (id {task['id']})"
    reference = require_key(
        data, "image", file=path, location=f"{task_location} data", expected=_TASK_EXPECTED
    )
    if not isinstance(reference, str) or not reference:
        raise DatasetFormatError(
            path, f"{task_location} data.image", f"found {short(reference)}", "an image URL or path"
        )
    image_path = find_image_by_reference(reference, images_dir)
    annotations = require_list(
        task.get("annotations", []),
        file=path,
        location=f"{task_location} annotations",
        expected="a list of annotation objects",
    )
    chosen = next(
        (
            (number, annotation)
            for number, annotation in enumerate(annotations)
            if isinstance(annotation, dict) and not annotation.get("was_cancelled", False)
        ),
        None,
    )
    results = []
    if chosen is not None:
        number, annotation = chosen
        results = require_list(
            require_key(
                annotation,
                "result",
                file=path,
                location=f"{task_location} annotations[{number}]",
                expected="an annotation object with a 'result' list",
            ),
            file=path,
            location=f"{task_location} annotations[{number}].result",
            expected="a list of result objects",
        )
        prefix = f"{task_location} annotations[{number}].result"
        results = [
            (f"{prefix}[{position}]", result)
            for position, result in enumerate(results)
            if isinstance(result, dict) and result.get("type") == "rectanglelabels"
        ]

    width = height = None
    boxes = []
    for location, result in results:
        result_width = as_int(
            require_key(
                result,
                "original_width",
                file=path,
                location=location,
                expected="a result with original_width and original_height",
            ),
            file=path,
            location=location,
            name="original_width",
            minimum=1,
        )
        result_height = as_int(
            require_key(
                result,
                "original_height",
                file=path,
                location=location,
                expected="a result with original_width and original_height",
            ),
            file=path,
            location=location,
            name="original_height",
            minimum=1,
        )
        width, height = width or result_width, height or result_height
        value = require_key(result, "value", file=path, location=location, expected=_VALUE_EXPECTED)
        numbers = {
            key: as_number(
                require_key(
                    value, key, file=path, location=f"{location}.value", expected=_VALUE_EXPECTED
                ),
                file=path,
                location=f"{location}.value",
                name=key,
            )
            for key in ("x", "y", "width", "height")
        }
        if numbers["width"] < 0 or numbers["height"] < 0:
            raise DatasetFormatError(
                path,
                f"{location}.value",
                f"width {numbers['width']} / height {numbers['height']}",
                "width and height >= 0 (percent)",
            )
        rotation = as_number(
            value.get("rotation", 0), file=path, location=f"{location}.value", name="rotation"
        )
        labels = require_key(
            value,
            "rectanglelabels",
            file=path,
            location=f"{location}.value",
            expected=_VALUE_EXPECTED,
        )
        if not isinstance(labels, list) or len(labels) != 1 or not isinstance(labels[0], str):
            raise DatasetFormatError(
                path,
                f"{location}.value.rectanglelabels",
                f"found {short(labels)}",
                "a list with exactly one label name",
            )
        box = _enclosing_box(
            numbers["x"] / 100 * result_width,
            numbers["y"] / 100 * result_height,
            numbers["width"] / 100 * result_width,
            numbers["height"] / 100 * result_height,
            rotation,
        )
        boxes.append((labels[0], location, box))
    if width is None:
        if not image_path.is_file():
            raise DatasetFormatError(
                path,
                task_location,
                f"image {image_path.name!r} is not in {images_dir} and the task has no "
                "original_width/original_height",
                "the image in images_dir (to read its size) or labelled results",
            )
        width, height = read_image_size(image_path)
    return {"path": image_path, "width": width, "height": height, "boxes": boxes}


def _enclosing_box(
    x: float, y: float, width: float, height: float, rotation_degrees: float
) -> list[float]:
    if rotation_degrees % 360 == 0:
        return [x, y, x + width, y + height]
    angle = math.radians(rotation_degrees)
    cos, sin = math.cos(angle), math.sin(angle)
    corners = [(0.0, 0.0), (width, 0.0), (width, height), (0.0, height)]
    xs = [x + dx * cos - dy * sin for dx, dy in corners]
    ys = [y + dx * sin + dy * cos for dx, dy in corners]
    return [min(xs), min(ys), max(xs), max(ys)]
