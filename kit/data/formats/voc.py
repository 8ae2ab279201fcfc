"""Pascal VOC: one xml per image with ``<size>`` and ``<object><name><bndbox>`` elements.

Corners are written as integer pixels, as the format's tools expect; reading accepts
decimals too. Coordinates are taken as pixel positions as they are (no 1-based shift),
which is what the common exporters (Roboflow, CVAT, labelImg) produce and read.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from kit.data.core import DatasetFormatError, DetectionDataset, LabelledImage
from kit.data.formats._parse import as_int, as_number
from kit.data.images import copy_images, list_images, read_image_size

_BNDBOX_EXPECTED = "<bndbox> with numeric <xmin>, <ymin>, <xmax>, <ymax>"


def load_voc(
    *,
    annotations_dir: str | Path,
    images_dir: str | Path | None = None,
    classes: Sequence[str] | None = None,
) -> DetectionDataset:
    """Read Pascal VOC xml files; see `DetectionDataset.from_voc`."""
    folder = Path(annotations_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"annotations folder {folder} does not exist or is not a folder")
    images_folder = Path(images_dir) if images_dir is not None else None
    records = [
        _read_xml(xml_path, images_folder)
        for xml_path in sorted(folder.glob("*.xml"), key=lambda p: p.name)
    ]
    names_found = sorted({name for record in records for name, _, _ in record["objects"]})
    class_names = list(classes) if classes is not None else names_found
    index_of = {name: index for index, name in enumerate(class_names)}

    items = []
    for record in records:
        boxes, class_ids = [], []
        for name, location, box in record["objects"]:
            if name not in index_of:
                raise DatasetFormatError(
                    record["xml"],
                    location,
                    f"class name {name!r} is unknown",
                    f"one of {class_names}",
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
    if images_folder is not None:
        annotated = {item.path.name for item in items}
        for image_path in list_images(images_folder):
            if image_path.name not in annotated:
                width, height = read_image_size(image_path)
                items.append(LabelledImage(image_path, width, height))
        items.sort(key=lambda item: item.path.name)
    return DetectionDataset(classes=class_names, items=items)


def save_voc(
    dataset: DetectionDataset,
    *,
    annotations_dir: str | Path,
    images_dir: str | Path | None = None,
) -> Path:
    """Write one xml per image; see `DetectionDataset.as_voc`."""
    folder = Path(annotations_dir)
    folder.mkdir(parents=True, exist_ok=True)
    stems: dict[str, Path] = {}
    for item in dataset:
        if item.path.stem in stems:
            raise ValueError(
                f"images {stems[item.path.stem]} and {item.path} share the stem "
                f"{item.path.stem!r}; VOC needs one xml per stem"
            )
        stems[item.path.stem] = item.path
    if images_dir is not None:
        copied = copy_images([item.path for item in dataset], images_dir)
    else:
        copied = {item.path: item.path for item in dataset}
    for item in dataset:
        image_path = copied[item.path].resolve()
        root = ElementTree.Element("annotation")
        ElementTree.SubElement(root, "folder").text = image_path.parent.name
        ElementTree.SubElement(root, "filename").text = image_path.name
        ElementTree.SubElement(root, "path").text = str(image_path)
        size = ElementTree.SubElement(root, "size")
        ElementTree.SubElement(size, "width").text = str(item.width)
        ElementTree.SubElement(size, "height").text = str(item.height)
        ElementTree.SubElement(size, "depth").text = "3"
        ElementTree.SubElement(root, "segmented").text = "0"
        for box, class_id in zip(item.boxes, item.class_ids, strict=True):
            element = ElementTree.SubElement(root, "object")
            ElementTree.SubElement(element, "name").text = dataset.classes[class_id]
            ElementTree.SubElement(element, "pose").text = "Unspecified"
            ElementTree.SubElement(element, "truncated").text = "0"
            ElementTree.SubElement(element, "difficult").text = "0"
            bndbox = ElementTree.SubElement(element, "bndbox")
            for tag, value in zip(("xmin", "ymin", "xmax", "ymax"), box, strict=True):
                ElementTree.SubElement(bndbox, tag).text = str(round(float(value)))
        tree = ElementTree.ElementTree(root)
        ElementTree.indent(tree)
        tree.write(folder / f"{item.path.stem}.xml", encoding="utf-8", xml_declaration=False)
    return folder


def _read_xml(xml_path: Path, images_dir: Path | None) -> dict:
    try:
        root = ElementTree.parse(xml_path).getroot()
    except ElementTree.ParseError as error:
        line, column = error.position
        raise DatasetFormatError(
            xml_path,
            f"line {line} column {column}",
            f"not well-formed XML ({error})",
            "a Pascal VOC <annotation> document",
        ) from None
    if root.tag != "annotation":
        raise DatasetFormatError(
            xml_path, "root element", f"found <{root.tag}>", "an <annotation> root element"
        )
    filename = _text(root, "filename")
    path_text = _text(root, "path")
    if images_dir is not None:
        if not filename:
            raise DatasetFormatError(
                xml_path, "<filename>", "missing or empty", "the image's file name"
            )
        image_path = images_dir / filename
    elif path_text:
        image_path = Path(path_text)
    else:
        raise DatasetFormatError(
            xml_path,
            "<path>",
            "missing or empty and no images_dir was given",
            "the image's path, or pass images_dir to find <filename> in",
        )
    width_text, height_text = _text(root, "size/width"), _text(root, "size/height")
    width = as_int(width_text, file=xml_path, location="<size><width>", name="width", minimum=0)
    height = as_int(height_text, file=xml_path, location="<size><height>", name="height", minimum=0)
    if width == 0 or height == 0:
        # Some exporters write a zero size; the image header has the truth.
        width, height = read_image_size(image_path)
    objects = []
    for number, element in enumerate(root.findall("object"), start=1):
        location = f"<object> {number}"
        name = _text(element, "name")
        if not name:
            raise DatasetFormatError(
                xml_path, location, "<name> is missing or empty", "a class name"
            )
        if element.find("bndbox") is None:
            raise DatasetFormatError(xml_path, location, "<bndbox> is missing", _BNDBOX_EXPECTED)
        corners = []
        for tag in ("xmin", "ymin", "xmax", "ymax"):
            text = _text(element, f"bndbox/{tag}")
            if text is None:
                raise DatasetFormatError(
                    xml_path, location, f"<{tag}> is missing", _BNDBOX_EXPECTED
                )
            corners.append(as_number(text, file=xml_path, location=location, name=f"<{tag}>"))
        objects.append((name, location, corners))
    return {
        "xml": xml_path,
        "path": image_path,
        "width": width,
        "height": height,
        "objects": objects,
    }


def _text(element: ElementTree.Element, path: str) -> str | None:
    found = element.find(path)
    if found is None or found.text is None:
        return None
    return found.text.strip()
