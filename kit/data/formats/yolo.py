"""YOLO (ultralytics) layout: ``images/<split>``, ``labels/<split>``, ``data.yaml``.

A label file holds one line per box, ``class x_center y_center width height``, with the
coordinates normalised to 0..1 by the image size. Ultralytics also accepts polygon lines
(``class x1 y1 x2 y2 ...``) for detection; they are read as the polygon's bounding box.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import yaml

from kit.data.core import DatasetFormatError, DetectionDataset, LabelledImage
from kit.data.formats._parse import as_int, as_number, short
from kit.data.images import copy_images, list_images, read_image_size

_LINE_EXPECTED = (
    "5 values 'class x_center y_center width height' (normalised 0..1) "
    "or a polygon 'class x1 y1 x2 y2 x3 y3 ...'"
)


def read_yolo_classes(data_yaml: str | Path) -> list[str]:
    """Class names from a ``data.yaml`` (``names`` as a list or as ``{id: name}``).

    Raises:
        DatasetFormatError: The file is not YAML or ``names`` is missing or malformed.

    Examples:
        >>> read_yolo_classes("shelf/data.yaml")
        ['bottle']
    """
    path = Path(data_yaml)
    data = _read_data_yaml(path)
    expected = "'names' as a list of class names or a mapping {0: name, 1: name, ...}"
    if "names" not in data:
        raise DatasetFormatError(path, "names", "missing key 'names'", expected)
    names = data["names"]
    if isinstance(names, dict):
        by_id = {
            as_int(key, file=path, location="names", name=f"class id {key!r}"): name
            for key, name in names.items()
        }
        if sorted(by_id) != list(range(len(by_id))):
            raise DatasetFormatError(
                path,
                "names",
                f"class ids are {sorted(by_id)}",
                f"ids 0..{len(by_id) - 1}; {expected}",
            )
        names = [by_id[index] for index in range(len(by_id))]
    if not isinstance(names, list) or not all(isinstance(n, str | int) for n in names):
        raise DatasetFormatError(path, "names", f"found {short(names)}", expected)
    classes = [str(name) for name in names]
    if "nc" in data and data["nc"] != len(classes):
        raise DatasetFormatError(
            path,
            "nc",
            f"nc is {short(data['nc'])} but there are {len(classes)} names",
            "nc equal to the number of names",
        )
    return classes


def load_yolo(
    *,
    images_dir: str | Path | None = None,
    labels_dir: str | Path | None = None,
    data_yaml: str | Path | None = None,
    classes: Sequence[str] | None = None,
    split: str = "train",
) -> DetectionDataset:
    """Read a YOLO dataset; see `DetectionDataset.from_yolo`."""
    if (data_yaml is None) == (classes is None):
        raise ValueError("give exactly one of data_yaml (a data.yaml path) or classes (names)")
    class_names = read_yolo_classes(data_yaml) if data_yaml is not None else list(classes or [])
    if images_dir is None:
        if data_yaml is None:
            raise ValueError("give images_dir, or data_yaml to take the split's folder from")
        images_dir = _split_images_dir(Path(data_yaml), split)
    images_dir = Path(images_dir)
    labels_dir = Path(labels_dir) if labels_dir is not None else _default_labels_dir(images_dir)
    items = []
    for image_path in list_images(images_dir):
        width, height = read_image_size(image_path)
        label_path = labels_dir / f"{image_path.stem}.txt"
        boxes, class_ids = (
            _read_label_file(label_path, width, height, class_names)
            if label_path.is_file()
            else (np.zeros((0, 4)), np.zeros(0, dtype=np.int64))
        )
        items.append(LabelledImage(image_path, width, height, boxes, class_ids))
    return DetectionDataset(classes=class_names, items=items)


def save_yolo(
    dataset: DetectionDataset,
    out_dir: str | Path,
    *,
    val: DetectionDataset | None = None,
    test: DetectionDataset | None = None,
) -> Path:
    """Write the YOLO layout and ``data.yaml``; see `DetectionDataset.as_yolo`."""
    out = Path(out_dir).resolve()
    splits = {"train": dataset, "val": val, "test": test}
    for name, split in splits.items():
        if split is not None and split.classes != dataset.classes:
            raise ValueError(
                f"{name} split has classes {split.classes}; expected the train classes "
                f"{dataset.classes}"
            )
    for name, split in splits.items():
        if split is not None:
            _write_split(split, out / "images" / name, out / "labels" / name)
    data = {
        "path": str(out),
        "train": str(out / "images" / "train"),
        "val": str(out / "images" / ("val" if val is not None else "train")),
    }
    if test is not None:
        data["test"] = str(out / "images" / "test")
    data["nc"] = len(dataset.classes)
    data["names"] = dict(enumerate(dataset.classes))
    data_yaml = out / "data.yaml"
    data_yaml.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return data_yaml


def boxes_to_yolo_lines(
    boxes: np.ndarray, class_ids: np.ndarray, *, width: int, height: int
) -> list[str]:
    """YOLO label lines for pixel ``xyxy`` boxes.

    Examples:
        >>> boxes_to_yolo_lines(np.array([[0, 0, 50, 25]]), np.array([1]), width=100, height=50)
        ['1 0.25000000 0.25000000 0.50000000 0.50000000']
    """
    lines = []
    for (x1, y1, x2, y2), class_id in zip(boxes, class_ids, strict=True):
        values = ((x1 + x2) / 2 / width, (y1 + y2) / 2 / height)
        values += ((x2 - x1) / width, (y2 - y1) / height)
        lines.append(f"{int(class_id)} " + " ".join(f"{v:.8f}" for v in values))
    return lines


def _write_split(dataset: DetectionDataset, images_dir: Path, labels_dir: Path) -> None:
    stems: dict[str, Path] = {}
    for item in dataset:
        if item.path.stem in stems:
            raise ValueError(
                f"images {stems[item.path.stem]} and {item.path} share the stem "
                f"{item.path.stem!r}; YOLO needs one label file per stem"
            )
        stems[item.path.stem] = item.path
    copy_images([item.path for item in dataset], images_dir)
    labels_dir.mkdir(parents=True, exist_ok=True)
    for item in dataset:
        lines = boxes_to_yolo_lines(
            item.boxes, item.class_ids, width=item.width, height=item.height
        )
        (labels_dir / f"{item.path.stem}.txt").write_text("".join(f"{line}\n" for line in lines))


def _read_data_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise DatasetFormatError(path, "", f"not valid YAML ({error})", "a YAML mapping") from None
    if not isinstance(data, dict):
        raise DatasetFormatError(
            path, "", f"found {type(data).__name__} {short(data)}", "a YAML mapping with 'names'"
        )
    return data


def _split_images_dir(data_yaml: Path, split: str) -> Path:
    data = _read_data_yaml(data_yaml)
    entry = data.get(split)
    if not isinstance(entry, str):
        raise DatasetFormatError(
            data_yaml, split, f"split {split!r} is {short(entry)}", "a folder path of images"
        )
    base = Path(data.get("path") or data_yaml.parent)
    if not base.is_absolute():
        base = data_yaml.parent / base
    return base / entry


def _default_labels_dir(images_dir: Path) -> Path:
    parts = list(images_dir.parts)
    if "images" not in parts:
        raise ValueError(
            f"cannot derive the labels folder from {images_dir}: it has no 'images' part; "
            "pass labels_dir"
        )
    index = len(parts) - 1 - parts[::-1].index("images")
    parts[index] = "labels"
    return Path(*parts)


def _read_label_file(
    path: Path, width: int, height: int, classes: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    return parse_yolo_lines(
        path.read_text().splitlines(), width=width, height=height, classes=classes, file=path
    )


def parse_yolo_lines(
    lines: list[str],
    *,
    width: int,
    height: int,
    classes: Sequence[str],
    file: str | Path = "<labels>",
) -> tuple[np.ndarray, np.ndarray]:
    """Pixel ``xyxy`` boxes and class ids from YOLO label lines (blank lines skipped).

    Args:
        lines: Label lines, ``class x_center y_center width height`` normalised, or polygons.
        width: Image width in pixels.
        height: Image height in pixels.
        classes: Class names, to check the class ids against.
        file: Named in error messages.

    Raises:
        DatasetFormatError: A line is malformed or its class id is out of range.

    Examples:
        >>> boxes, class_ids = parse_yolo_lines(["0 0.5 0.5 0.2 0.4"], width=100, height=50,
        ...                                     classes=["bottle"])
        >>> boxes.tolist(), class_ids.tolist()
        ([[40.0, 15.0, 60.0, 35.0]], [0])
    """
    path = Path(file)
    boxes, class_ids = [], []
    for number, line in enumerate(lines, start=1):
        tokens = line.split()
        if not tokens:
            continue
        location = f"line {number}"
        if len(tokens) != 5 and (len(tokens) < 7 or len(tokens) % 2 == 0):
            raise DatasetFormatError(
                path, location, f"found {len(tokens)} values {line.strip()!r}", _LINE_EXPECTED
            )
        class_id = as_int(tokens[0], file=path, location=location, name="class id", minimum=0)
        if class_id >= len(classes):
            raise DatasetFormatError(
                path,
                location,
                f"class id {class_id} is out of range",
                f"a class id 0..{len(classes) - 1} for classes {list(classes)}",
            )
        values = [
            as_number(token, file=path, location=location, name=f"value {index}")
            for index, token in enumerate(tokens[1:], start=2)
        ]
        if len(tokens) == 5:
            x_center, y_center, box_width, box_height = values
            if box_width < 0 or box_height < 0:
                raise DatasetFormatError(
                    path,
                    location,
                    f"negative width or height in {line.strip()!r}",
                    "width and height >= 0",
                )
            x1, x2 = x_center - box_width / 2, x_center + box_width / 2
            y1, y2 = y_center - box_height / 2, y_center + box_height / 2
        else:
            xs, ys = values[0::2], values[1::2]
            x1, y1, x2, y2 = min(xs), min(ys), max(xs), max(ys)
        boxes.append([x1 * width, y1 * height, x2 * width, y2 * height])
        class_ids.append(class_id)
    return np.array(boxes, dtype=np.float64).reshape(-1, 4), np.array(class_ids, dtype=np.int64)
