from pathlib import Path

import numpy as np
import pytest

from kit.data import DatasetFormatError, DetectionDataset, LabelledImage


def test_labelled_image_normalises_arrays():
    image = LabelledImage("a.jpg", 64.0, 48, [[1, 2, 3, 4]], [1.0])

    assert image.path == Path("a.jpg")
    assert (image.width, image.height) == (64, 48)
    assert image.boxes.dtype == np.float64 and image.boxes.shape == (1, 4)
    assert image.class_ids.dtype == np.int64 and image.class_ids.tolist() == [1]
    assert len(LabelledImage("b.jpg", 5, 5)) == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"width": 0}, "width=0; expected a positive integer"),
        ({"height": 2.5}, "height=2.5; expected a positive integer"),
        ({"boxes": [[1, 2, 3]]}, "boxes have shape (1, 3); expected (N, 4)"),
        ({"class_ids": [0, 1]}, "1 boxes but 2 class ids"),
        ({"class_ids": [0.5]}, "class_ids [0.5] are not integers"),
    ],
)
def test_labelled_image_rejects_bad_values(kwargs, message):
    arguments = {
        "path": "a.jpg",
        "width": 10,
        "height": 10,
        "boxes": [[0, 0, 5, 5]],
        "class_ids": [0],
    } | kwargs

    with pytest.raises(ValueError) as error:
        LabelledImage(**arguments)

    assert message in str(error.value)


def test_dataset_rejects_out_of_range_class_ids_and_duplicate_names():
    image = LabelledImage("a.jpg", 10, 10, [[0, 0, 5, 5]], [2])

    with pytest.raises(ValueError, match=r"class id 2 is out of range; expected 0\.\.1"):
        DetectionDataset(classes=["a", "b"], items=[image])
    with pytest.raises(ValueError, match=r"\['a'\] appear more than once"):
        DetectionDataset(classes=["a", "a"], items=[])


def test_class_counts_and_subset(sample_dataset):
    assert sample_dataset.class_counts() == {"bottle": 4, "can": 3, "cup": 2}
    assert len(sample_dataset) == 6
    subset = sample_dataset.subset(sample_dataset.items[:1])
    assert subset.classes == sample_dataset.classes
    assert subset.class_counts() == {"bottle": 1, "can": 1, "cup": 0}
    assert "images=6, boxes=9" in repr(sample_dataset)


def test_format_error_message_names_everything():
    error = DatasetFormatError("labels/a.txt", "line 3", "found 'x'", "a number")

    assert str(error) == "labels/a.txt: line 3: found 'x'; expected a number"
    assert error.file == Path("labels/a.txt")
    assert isinstance(error, ValueError)
