"""COCO object detection json: ``images``, ``annotations`` (``bbox`` = x, y, w, h), ``categories``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from kit.data.core import DatasetFormatError, DetectionDataset, LabelledImage
from kit.data.formats._json import read_json
from kit.data.formats._parse import as_int, as_number, require_key, require_list, short
from kit.data.images import copy_images

_TOP_EXPECTED = "a COCO object with 'images', 'annotations' and 'categories' lists"


def load_coco(
    *, annotations_path: str | Path, images_dir: str | Path | None = None
) -> DetectionDataset:
    """Read a COCO json; see `DetectionDataset.from_coco`."""
    path = Path(annotations_path)
    folder = Path(images_dir) if images_dir is not None else path.parent
    data = read_json(path, expected=_TOP_EXPECTED)
    categories = require_list(
        require_key(data, "categories", file=path, location="top level", expected=_TOP_EXPECTED),
        file=path,
        location="categories",
        expected="a list of {'id', 'name'} objects",
    )
    category_ids, classes = _read_categories(path, categories)
    index_of_category = {category_id: index for index, category_id in enumerate(category_ids)}

    images = require_list(
        require_key(data, "images", file=path, location="top level", expected=_TOP_EXPECTED),
        file=path,
        location="images",
        expected="a list of image objects",
    )
    image_expected = "an image object with 'id', 'file_name', 'width' and 'height'"
    records: dict[int, dict] = {}
    for index, image in enumerate(images):
        location = f"images[{index}]"
        fields = {
            key: require_key(image, key, file=path, location=location, expected=image_expected)
            for key in ("id", "file_name", "width", "height")
        }
        image_id = as_int(fields["id"], file=path, location=location, name="id")
        if image_id in records:
            raise DatasetFormatError(path, location, f"image id {image_id} repeats", "unique ids")
        if not isinstance(fields["file_name"], str) or not fields["file_name"]:
            raise DatasetFormatError(
                path, location, f"file_name is {short(fields['file_name'])}", "a file name"
            )
        records[image_id] = {
            "path": folder / fields["file_name"],
            "width": as_int(fields["width"], file=path, location=location, name="width", minimum=1),
            "height": as_int(
                fields["height"], file=path, location=location, name="height", minimum=1
            ),
            "boxes": [],
            "class_ids": [],
        }

    annotations = require_list(
        data.get("annotations", []),
        file=path,
        location="annotations",
        expected="a list of annotation objects",
    )
    annotation_expected = "an annotation object with 'image_id', 'category_id' and 'bbox'"
    for index, annotation in enumerate(annotations):
        location = f"annotations[{index}]"
        image_id = as_int(
            require_key(
                annotation, "image_id", file=path, location=location, expected=annotation_expected
            ),
            file=path,
            location=location,
            name="image_id",
        )
        if image_id not in records:
            raise DatasetFormatError(
                path, location, f"image_id {image_id} is not in 'images'", "an id listed in images"
            )
        category_id = as_int(
            require_key(
                annotation,
                "category_id",
                file=path,
                location=location,
                expected=annotation_expected,
            ),
            file=path,
            location=location,
            name="category_id",
        )
        if category_id not in index_of_category:
            raise DatasetFormatError(
                path,
                location,
                f"category_id {category_id} is not in 'categories'",
                f"one of the category ids {category_ids}",
            )
        bbox = require_key(
            annotation, "bbox", file=path, location=location, expected=annotation_expected
        )
        if not isinstance(bbox, list) or len(bbox) != 4:
            raise DatasetFormatError(
                path, location, f"bbox is {short(bbox)}", "bbox [x, y, width, height] in pixels"
            )
        x, y = (as_number(v, file=path, location=location, name="bbox x/y") for v in bbox[:2])
        width, height = (
            as_number(v, file=path, location=location, name="bbox width/height", minimum=0)
            for v in bbox[2:]
        )
        records[image_id]["boxes"].append([x, y, x + width, y + height])
        records[image_id]["class_ids"].append(index_of_category[category_id])

    items = [
        LabelledImage(
            record["path"],
            record["width"],
            record["height"],
            np.array(record["boxes"], dtype=np.float64).reshape(-1, 4),
            np.array(record["class_ids"], dtype=np.int64),
        )
        for record in records.values()
    ]
    return DetectionDataset(classes=classes, items=items)


def save_coco(
    dataset: DetectionDataset,
    *,
    annotations_path: str | Path,
    images_dir: str | Path | None = None,
) -> Path:
    """Write a COCO json; see `DetectionDataset.as_coco`."""
    path = Path(annotations_path)
    if images_dir is not None:
        copied = copy_images([item.path for item in dataset], images_dir)
        names = {item.path: copied[item.path].name for item in dataset}
    else:
        names = {item.path: str(item.path.resolve()) for item in dataset}
    images, annotations = [], []
    for image_id, item in enumerate(dataset, start=1):
        images.append(
            {
                "id": image_id,
                "file_name": names[item.path],
                "width": item.width,
                "height": item.height,
            }
        )
        for (x1, y1, x2, y2), class_id in zip(item.boxes, item.class_ids, strict=True):
            width, height = float(x2 - x1), float(y2 - y1)
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": int(class_id),
                    "bbox": [float(x1), float(y1), width, height],
                    "area": width * height,
                    "iscrowd": 0,
                }
            )
    categories = [
        {"id": index, "name": name, "supercategory": "none"}
        for index, name in enumerate(dataset.classes)
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(
            {
                "info": {"description": "written by edge-vision-kit"},
                "images": images,
                "annotations": annotations,
                "categories": categories,
            },
            indent=1,
        )
    )
    return path


def _read_categories(path: Path, categories: list) -> tuple[list[int], list[str]]:
    expected = "a category object with an integer 'id' and a 'name'"
    by_id: dict[int, str] = {}
    for index, category in enumerate(categories):
        location = f"categories[{index}]"
        category_id = as_int(
            require_key(category, "id", file=path, location=location, expected=expected),
            file=path,
            location=location,
            name="id",
        )
        name = require_key(category, "name", file=path, location=location, expected=expected)
        if category_id in by_id:
            raise DatasetFormatError(
                path, location, f"category id {category_id} repeats", "unique category ids"
            )
        if str(name) in by_id.values():
            raise DatasetFormatError(
                path, location, f"category name {name!r} repeats", "unique category names"
            )
        by_id[category_id] = str(name)
    category_ids = sorted(by_id)
    return category_ids, [by_id[category_id] for category_id in category_ids]
