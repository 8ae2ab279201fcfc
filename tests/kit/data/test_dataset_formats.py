"""Round trips between the five annotation formats and clear errors for malformed files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from kit.data import DatasetFormatError, DetectionDataset, LabelledImage

FLOAT_TOLERANCE_PX = 1e-3
INTEGER_TOLERANCE_PX = 1.0


def assert_same_dataset(actual: DetectionDataset, expected: DetectionDataset, tolerance: float):
    assert actual.classes == expected.classes
    by_name = {item.path.name: item for item in actual}
    assert sorted(by_name) == sorted(item.path.name for item in expected)
    for item in expected:
        other = by_name[item.path.name]
        assert (other.width, other.height) == (item.width, item.height), item.path.name
        assert other.class_ids.tolist() == item.class_ids.tolist(), item.path.name
        np.testing.assert_allclose(other.boxes, item.boxes, atol=tolerance, rtol=0)
        assert other.path.is_file(), other.path


def write_and_read_yolo(dataset, folder):
    return DetectionDataset.from_yolo(data_yaml=dataset.as_yolo(folder / "yolo"))


def write_and_read_coco(dataset, folder):
    dataset.as_coco(annotations_path=folder / "coco/instances.json", images_dir=folder / "coco/img")
    return DetectionDataset.from_coco(
        annotations_path=folder / "coco/instances.json", images_dir=folder / "coco/img"
    )


def write_and_read_voc(dataset, folder):
    dataset.as_voc(annotations_dir=folder / "voc/Annotations", images_dir=folder / "voc/JPEGImages")
    return DetectionDataset.from_voc(
        annotations_dir=folder / "voc/Annotations",
        images_dir=folder / "voc/JPEGImages",
        classes=dataset.classes,
    )


def write_and_read_label_studio(dataset, folder):
    dataset.as_label_studio(
        json_path=folder / "ls/export.json",
        images_dir=folder / "ls/media",
        image_url_prefix="/data/local-files/?d=media/",
    )
    return DetectionDataset.from_label_studio(
        json_path=folder / "ls/export.json",
        images_dir=folder / "ls/media",
        classes=dataset.classes,
    )


def write_and_read_ground_truth(dataset, folder):
    dataset.as_ground_truth_manifest(
        manifest_path=folder / "gt/output.manifest",
        images_dir=folder / "gt/images",
        source_ref_prefix="s3://labelling-bucket/shelf/",
    )
    return DetectionDataset.from_ground_truth_manifest(
        manifest_path=folder / "gt/output.manifest", images_dir=folder / "gt/images"
    )


FORMATS = {
    "yolo": (write_and_read_yolo, FLOAT_TOLERANCE_PX),
    "coco": (write_and_read_coco, FLOAT_TOLERANCE_PX),
    "voc": (write_and_read_voc, INTEGER_TOLERANCE_PX),
    "label_studio": (write_and_read_label_studio, FLOAT_TOLERANCE_PX),
    "ground_truth": (write_and_read_ground_truth, INTEGER_TOLERANCE_PX),
}


@pytest.mark.parametrize("format_name", FORMATS)
def test_round_trip_preserves_boxes_and_classes(format_name, sample_dataset, tmp_path):
    write_and_read, tolerance = FORMATS[format_name]

    result = write_and_read(sample_dataset, tmp_path)

    assert_same_dataset(result, sample_dataset, tolerance)


def test_round_trip_through_all_formats_in_a_chain(sample_dataset, tmp_path):
    dataset = sample_dataset
    for format_name in ["yolo", "coco", "voc", "label_studio", "ground_truth", "yolo", "coco"]:
        write_and_read, _ = FORMATS[format_name]
        dataset = write_and_read(dataset, tmp_path / f"step-{format_name}-{id(dataset)}")

    # One integer format on the way: every corner is within 1 px of the original.
    assert_same_dataset(dataset, sample_dataset, INTEGER_TOLERANCE_PX)


def test_as_yolo_writes_absolute_paths_and_splits(sample_dataset, tmp_path):
    train = sample_dataset.subset(sample_dataset.items[:4])
    val = sample_dataset.subset(sample_dataset.items[4:])

    data_yaml = train.as_yolo(tmp_path / "out", val=val)

    data = yaml.safe_load(data_yaml.read_text())
    assert Path(data["path"]).is_absolute() and Path(data["train"]).is_absolute()
    assert data["val"] == str((tmp_path / "out/images/val").resolve())
    assert data["names"] == {0: "bottle", 1: "can", 2: "cup"} and data["nc"] == 3
    assert (tmp_path / "out/labels/val/empty_005.txt").read_text() == ""
    assert len(DetectionDataset.from_yolo(data_yaml=data_yaml, split="val")) == 2
    mismatched = DetectionDataset(classes=["other"], items=[])
    with pytest.raises(ValueError, match=r"val split has classes \['other'\]"):
        train.as_yolo(tmp_path / "bad", val=mismatched)


def test_yolo_reads_labels_dir_by_convention_and_polygons(make_image, tmp_path):
    make_image(tmp_path / "set/images/a.jpg", 100, 50, 1)
    make_image(tmp_path / "set/images/unlabelled.jpg", 10, 10, 2)
    (tmp_path / "set/labels").mkdir(parents=True)
    (tmp_path / "set/labels/a.txt").write_text("1 0.5 0.5 0.2 0.4\n\n0 0.1 0.2 0.3 0.2 0.2 0.6\n")

    dataset = DetectionDataset.from_yolo(images_dir=tmp_path / "set/images", classes=["x", "y"])

    np.testing.assert_allclose(dataset[0].boxes, [[40, 15, 60, 35], [10, 10, 30, 30]])
    assert dataset[0].class_ids.tolist() == [1, 0]
    assert len(dataset[1]) == 0


def test_coco_maps_sparse_category_ids_in_id_order(make_image, tmp_path):
    make_image(tmp_path / "a.jpg", 30, 20, 1)
    coco = {
        "images": [{"id": 7, "file_name": "a.jpg", "width": 30, "height": 20}],
        "annotations": [
            {"id": 1, "image_id": 7, "category_id": 3, "bbox": [1, 2, 10, 5]},
            {"id": 2, "image_id": 7, "category_id": 1, "bbox": [0.5, 0, 4, 4]},
        ],
        "categories": [{"id": 3, "name": "can"}, {"id": 1, "name": "bottle"}],
    }
    (tmp_path / "coco.json").write_text(json.dumps(coco))

    dataset = DetectionDataset.from_coco(annotations_path=tmp_path / "coco.json")

    assert dataset.classes == ["bottle", "can"]
    assert dataset[0].class_ids.tolist() == [1, 0]
    np.testing.assert_allclose(dataset[0].boxes, [[1, 2, 11, 7], [0.5, 0, 4.5, 4]])


def test_voc_without_classes_sorts_names_and_keeps_unannotated_images(make_image, tmp_path):
    make_image(tmp_path / "img/a.jpg", 40, 30, 1)
    make_image(tmp_path / "img/b.jpg", 40, 30, 2)
    (tmp_path / "ann").mkdir()
    (tmp_path / "ann/a.xml").write_text(
        "<annotation><filename>a.jpg</filename><size><width>0</width><height>0</height></size>"
        "<object><name>zebra</name><bndbox><xmin>1</xmin><ymin>2.5</ymin><xmax>10</xmax>"
        "<ymax>20</ymax></bndbox></object>"
        "<object><name>ant</name><bndbox><xmin>3</xmin><ymin>4</ymin><xmax>5</xmax>"
        "<ymax>6</ymax></bndbox></object></annotation>"
    )

    dataset = DetectionDataset.from_voc(
        annotations_dir=tmp_path / "ann", images_dir=tmp_path / "img"
    )

    assert dataset.classes == ["ant", "zebra"]
    assert [item.path.name for item in dataset] == ["a.jpg", "b.jpg"]
    assert (dataset[0].width, dataset[0].height) == (40, 30)  # size 0 in xml: read the image
    assert dataset[0].class_ids.tolist() == [1, 0]
    assert len(dataset[1]) == 0


def test_label_studio_reads_uploads_cancellations_and_rotation(make_image, tmp_path):
    make_image(tmp_path / "img/shelf.jpg", 200, 100, 1)
    rectangle = {
        "type": "rectanglelabels",
        "original_width": 200,
        "original_height": 100,
        "value": {
            "x": 10,
            "y": 20,
            "width": 20,
            "height": 10,
            "rotation": 90,
            "rectanglelabels": ["bottle"],
        },
    }
    tasks = [
        {
            "id": 5,
            "data": {"image": "/data/upload/3/1a2b3c4d-shelf.jpg"},
            "annotations": [
                {"was_cancelled": True, "result": [{**rectangle, "value": {}}]},
                {"result": [rectangle, {"type": "choices", "value": {"choices": ["ok"]}}]},
            ],
        }
    ]
    (tmp_path / "export.json").write_text(json.dumps(tasks))

    dataset = DetectionDataset.from_label_studio(
        json_path=tmp_path / "export.json", images_dir=tmp_path / "img"
    )

    assert dataset[0].path == tmp_path / "img/shelf.jpg"
    # 40 x 10 px at (20, 20) rotated 90 degrees clockwise about its top-left corner.
    np.testing.assert_allclose(dataset[0].boxes, [[10, 20, 20, 60]], atol=1e-9)


def test_ground_truth_maps_job_class_ids(make_image, tmp_path):
    make_image(tmp_path / "img/dog.jpg", 50, 40, 1)
    line = {
        "source-ref": "s3://bucket/dogs/dog.jpg",
        "dogs": {
            "image_size": [{"width": 50, "height": 40, "depth": 3}],
            "annotations": [{"class_id": 5, "left": 1, "top": 2, "width": 10, "height": 20}],
        },
        "dogs-metadata": {
            "class-map": {"0": "dog", "5": "toy"},
            "type": "groundtruth/object-detection",
        },
    }
    (tmp_path / "output.manifest").write_text(json.dumps(line) + "\n\n")

    dataset = DetectionDataset.from_ground_truth_manifest(
        manifest_path=tmp_path / "output.manifest", images_dir=tmp_path / "img"
    )

    assert dataset.classes == ["dog", "toy"]
    assert dataset[0].class_ids.tolist() == [1]
    np.testing.assert_allclose(dataset[0].boxes, [[1, 2, 11, 22]])
    assert dataset[0].path == tmp_path / "img/dog.jpg"


# --- malformed files -------------------------------------------------------------------


@pytest.fixture
def yolo_folder(make_image, tmp_path):
    make_image(tmp_path / "images/a.jpg", 20, 20, 1)
    (tmp_path / "labels").mkdir()
    (tmp_path / "data.yaml").write_text("names: [bottle, can]\n")
    return tmp_path


@pytest.mark.parametrize(
    ("label_text", "fragments"),
    [
        (
            "0 0.5 0.5 0.2 0.2\n0 0.5 0.5 0.2\n",
            ["a.txt: line 2", "found 4 values '0 0.5 0.5 0.2'", "expected 5 values"],
        ),
        ("0 0.5 abc 0.2 0.2\n", ["line 1", "value 3 is 'abc'", "expected a finite number"]),
        (
            "7 0.5 0.5 0.2 0.2\n",
            [
                "class id 7 is out of range",
                "expected a class id 0..1 for classes ['bottle', 'can']",
            ],
        ),
        ("1.5 0.5 0.5 0.2 0.2\n", ["class id is '1.5'", "expected an integer >= 0"]),
        ("0 0.5 0.5 -0.2 0.2\n", ["negative width or height", "expected width and height >= 0"]),
        ("0 0.5 0.5 nan 0.2\n", ["value 4 is 'nan'", "finite number"]),
    ],
)
def test_yolo_malformed_label_line(yolo_folder, label_text, fragments):
    (yolo_folder / "labels/a.txt").write_text(label_text)

    with pytest.raises(DatasetFormatError) as error:
        DetectionDataset.from_yolo(
            images_dir=yolo_folder / "images", data_yaml=yolo_folder / "data.yaml"
        )

    assert error.value.file == yolo_folder / "labels/a.txt"
    for fragment in fragments:
        assert fragment in str(error.value)


@pytest.mark.parametrize(
    ("yaml_text", "fragments"),
    [
        (
            "train: images\n",
            ["data.yaml: names: missing key 'names'", "expected 'names' as a list"],
        ),
        ("names: [a, b\n", ["not valid YAML", "expected a YAML mapping"]),
        ("names: {0: a, 2: b}\n", ["class ids are [0, 2]", "expected ids 0..1"]),
        ("names: [a, b]\nnc: 3\n", ["nc is 3 but there are 2 names"]),
        ("- a\n- b\n", ["found list", "expected a YAML mapping with 'names'"]),
        ("names: [a]\nval: [x, y]\n", ["val: split 'val' is ['x', 'y']", "expected a folder path"]),
    ],
)
def test_yolo_malformed_data_yaml(yolo_folder, yaml_text, fragments):
    (yolo_folder / "data.yaml").write_text(yaml_text)

    with pytest.raises(DatasetFormatError) as error:
        DetectionDataset.from_yolo(data_yaml=yolo_folder / "data.yaml", split="val")

    for fragment in fragments:
        assert fragment in str(error.value)


def test_yolo_argument_errors(yolo_folder, tmp_path):
    with pytest.raises(ValueError, match="exactly one of data_yaml"):
        DetectionDataset.from_yolo(images_dir=yolo_folder / "images")
    with pytest.raises(ValueError, match="no 'images' part; pass labels_dir"):
        DetectionDataset.from_yolo(images_dir=yolo_folder, classes=["a"])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        DetectionDataset.from_yolo(images_dir=tmp_path / "nope/images", classes=["a"])


COCO_OK = {
    "images": [{"id": 1, "file_name": "a.jpg", "width": 20, "height": 10}],
    "annotations": [{"id": 1, "image_id": 1, "category_id": 0, "bbox": [1, 1, 5, 5]}],
    "categories": [{"id": 0, "name": "bottle"}],
}


@pytest.mark.parametrize(
    ("mutate", "fragments"),
    [
        (
            lambda d: d["annotations"].append({"image_id": 1, "category_id": 0}),
            ["annotations[1]: missing key 'bbox'", "expected an annotation object with"],
        ),
        (
            lambda d: d["annotations"][0].update(bbox=[1, 2, 3]),
            ["annotations[0]: bbox is [1, 2, 3]", "expected bbox [x, y, width, height]"],
        ),
        (
            lambda d: d["annotations"][0].update(bbox=[1, 2, -3, 4]),
            ["bbox width/height is -3", "expected a finite number >= 0"],
        ),
        (
            lambda d: d["annotations"][0].update(category_id=9),
            ["category_id 9 is not in 'categories'", "expected one of the category ids [0]"],
        ),
        (lambda d: d["annotations"][0].update(image_id=4), ["image_id 4 is not in 'images'"]),
        (
            lambda d: d["images"][0].update(width="wide"),
            ["images[0]: width is 'wide'", "expected an integer >= 1"],
        ),
        (lambda d: d["images"].append(dict(d["images"][0])), ["images[1]: image id 1 repeats"]),
        (lambda d: d.pop("categories"), ["top level: missing key 'categories'"]),
        (
            lambda d: d["categories"].append({"id": 1, "name": "bottle"}),
            ["categories[1]: category name 'bottle' repeats"],
        ),
    ],
)
def test_coco_malformed(tmp_path, mutate, fragments):
    data = json.loads(json.dumps(COCO_OK))
    mutate(data)
    (tmp_path / "coco.json").write_text(json.dumps(data))

    with pytest.raises(DatasetFormatError) as error:
        DetectionDataset.from_coco(annotations_path=tmp_path / "coco.json")

    assert str(error.value).startswith(str(tmp_path / "coco.json"))
    for fragment in fragments:
        assert fragment in str(error.value)


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ('{"images": [}', ["line 1 column 13: not valid JSON", "expected a COCO object"]),
        ("[1, 2]", ["top level: found list [1, 2]", "expected a COCO object"]),
    ],
)
def test_coco_not_an_object(tmp_path, text, fragments):
    (tmp_path / "coco.json").write_text(text)

    with pytest.raises(DatasetFormatError) as error:
        DetectionDataset.from_coco(annotations_path=tmp_path / "coco.json")

    for fragment in fragments:
        assert fragment in str(error.value)


def _voc_xml(objects: str, root: str = "annotation") -> str:
    return (
        f"<{root}><filename>a.jpg</filename><size><width>20</width><height>10</height></size>"
        f"{objects}</{root}>"
    )


_BOX = "<bndbox><xmin>1</xmin><ymin>1</ymin><xmax>5</xmax><ymax>5</ymax></bndbox>"


@pytest.mark.parametrize(
    ("xml", "fragments"),
    [
        (
            "<annotation><object></annotation>",
            ["line 1 column", "not well-formed XML", "expected a Pascal VOC <annotation> document"],
        ),
        (_voc_xml("", root="doc"), ["root element: found <doc>", "expected an <annotation>"]),
        (
            _voc_xml(
                f"<object><name>bottle</name>{_BOX}</object>"
                "<object><name>bottle</name><bndbox><xmin>1</xmin></bndbox></object>"
            ),
            ["<object> 2: <ymin> is missing", "expected <bndbox> with numeric"],
        ),
        (
            _voc_xml(f"<object><name>bottle</name>{_BOX.replace('<xmin>1', '<xmin>ten')}</object>"),
            ["<object> 1: <xmin> is 'ten'", "expected a finite number"],
        ),
        (
            _voc_xml(f"<object><name>horse</name>{_BOX}</object>"),
            ["<object> 1: class name 'horse' is unknown", "expected one of ['bottle']"],
        ),
        (_voc_xml("<object><name>bottle</name></object>"), ["<bndbox> is missing"]),
        (_voc_xml("").replace("<width>20</width>", ""), ["<size><width>: width is None"]),
    ],
)
def test_voc_malformed(make_image, tmp_path, xml, fragments):
    make_image(tmp_path / "img/a.jpg", 20, 10, 1)
    (tmp_path / "ann").mkdir()
    (tmp_path / "ann/a.xml").write_text(xml)

    with pytest.raises(DatasetFormatError) as error:
        DetectionDataset.from_voc(
            annotations_dir=tmp_path / "ann", images_dir=tmp_path / "img", classes=["bottle"]
        )

    assert str(error.value).startswith(str(tmp_path / "ann/a.xml"))
    for fragment in fragments:
        assert fragment in str(error.value)


def _ls_task(**value_changes):
    value = {"x": 10, "y": 10, "width": 20, "height": 20, "rectanglelabels": ["bottle"]}
    value.update(value_changes)
    result = {
        "type": "rectanglelabels",
        "original_width": 20,
        "original_height": 10,
        "value": value,
    }
    return {"id": 11, "data": {"image": "a.jpg"}, "annotations": [{"result": [result]}]}


@pytest.mark.parametrize(
    ("tasks", "fragments"),
    [
        ({"data": {}}, ["top level: found dict", "expected a Label Studio JSON export"]),
        (
            [_ls_task(x="left")],
            [
                "task 0 (id 11) annotations[0].result[0].value: x is 'left'",
                "expected a finite number",
            ],
        ),
        (
            [_ls_task(rectanglelabels=["bottle", "can"])],
            ["rectanglelabels: found ['bottle', 'can']", "expected a list with exactly one label"],
        ),
        (
            [_ls_task(rectanglelabels=["horse"])],
            ["label 'horse' is unknown", "expected one of ['bottle']"],
        ),
        ([_ls_task(width=-5)], ["width -5.0", "expected width and height >= 0"]),
        (
            [{"id": 3, "data": {"img": "a.jpg"}}],
            ["task 0 (id 3) data: missing key 'image' (keys present: img)"],
        ),
        (
            [{"data": {"image": "missing.jpg"}}],
            ["task 0: image 'missing.jpg' is not in", "has no original_width"],
        ),
        (
            [
                {
                    "data": {"image": "a.jpg"},
                    "annotations": [{"result": [{"type": "rectanglelabels", "value": {}}]}],
                }
            ],
            ["result[0]: missing key 'original_width'"],
        ),
    ],
)
def test_label_studio_malformed(make_image, tmp_path, tasks, fragments):
    make_image(tmp_path / "img/a.jpg", 20, 10, 1)
    (tmp_path / "export.json").write_text(json.dumps(tasks))

    with pytest.raises(DatasetFormatError) as error:
        DetectionDataset.from_label_studio(
            json_path=tmp_path / "export.json", images_dir=tmp_path / "img", classes=["bottle"]
        )

    assert str(error.value).startswith(str(tmp_path / "export.json"))
    for fragment in fragments:
        assert fragment in str(error.value)


def _gt_line(annotations=None, class_map=None, **extra):
    entry = {
        "source-ref": "s3://bucket/a.jpg",
        "bb": {
            "image_size": [{"width": 20, "height": 10, "depth": 3}],
            "annotations": annotations
            if annotations is not None
            else [{"class_id": 0, "left": 1, "top": 1, "width": 4, "height": 4}],
        },
        "bb-metadata": {"class-map": class_map if class_map is not None else {"0": "bottle"}},
    }
    entry.update(extra)
    return json.dumps(entry)


@pytest.mark.parametrize(
    ("lines", "fragments"),
    [
        ([_gt_line(), "{not json"], ["line 2: not valid JSON", "expected a JSON object"]),
        (
            [_gt_line(annotations=[{"class_id": 0, "top": 1, "width": 4, "height": 4}])],
            ["line 1 bb.annotations[0]: missing key 'left'", "expected an annotation {'class_id'"],
        ),
        (
            [_gt_line(annotations=[{"class_id": 3, "left": 1, "top": 1, "width": 4, "height": 4}])],
            ["line 1 bb.annotations[0]: class_id 3 is not in any class-map"],
        ),
        (
            [_gt_line(), _gt_line(class_map={"0": "can"})],
            ["line 2 class-map: class id 0 is 'can' here but 'bottle' before"],
        ),
        (
            [_gt_line(class_map={"0": "bottle", "1": "bottle"})],
            ["line 1 class-map: class name 'bottle' has the ids [0, 1]"],
        ),
        (
            [_gt_line(**{"other": {}, "other-metadata": {}})],
            ["line 1: found label attributes ['bb', 'other']", "or pass label_attribute"],
        ),
        (
            [json.dumps({"source-ref": "s3://bucket/a.jpg"})],
            ["line 1: found no '<key>' with '<key>-metadata'"],
        ),
        (
            [_gt_line().replace('"height": 10', '"height": "tall"')],
            ["line 1 image_size: height is 'tall'", "expected an integer >= 1"],
        ),
        (
            [
                _gt_line(
                    annotations=[{"class_id": 0, "left": 1, "top": 1, "width": -4, "height": 4}]
                )
            ],
            ["width is -4", "expected a finite number >= 0"],
        ),
    ],
)
def test_ground_truth_malformed(tmp_path, lines, fragments):
    (tmp_path / "output.manifest").write_text("\n".join(lines) + "\n")

    with pytest.raises(DatasetFormatError) as error:
        DetectionDataset.from_ground_truth_manifest(
            manifest_path=tmp_path / "output.manifest", images_dir=tmp_path
        )

    assert str(error.value).startswith(str(tmp_path / "output.manifest"))
    for fragment in fragments:
        assert fragment in str(error.value)


def test_writers_refuse_clashing_file_names(make_image, tmp_path):
    first = make_image(tmp_path / "a/img.jpg", 10, 10, 1)
    second = make_image(tmp_path / "b/img.jpg", 10, 10, 2)
    dataset = DetectionDataset(
        classes=["x"], items=[LabelledImage(first, 10, 10), LabelledImage(second, 10, 10)]
    )

    with pytest.raises(ValueError, match="share the stem 'img'"):
        dataset.as_yolo(tmp_path / "out")
    with pytest.raises(ValueError, match="share the file name 'img.jpg'"):
        dataset.as_coco(annotations_path=tmp_path / "c.json", images_dir=tmp_path / "c")
