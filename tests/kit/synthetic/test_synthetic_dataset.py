"""Synthetic YOLO datasets: layout, data.yaml, deterministic and disjoint splits."""

from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from kit.synthetic.dataset import make_dataset, merged_classes, split_counts

SIZE = (160, 120)


def _files(root: Path, kind: str, split: str) -> list[str]:
    return sorted(p.stem for p in (root / kind / split).iterdir())


def test_dataset_layout_and_data_yaml(tmp_path):
    data_yaml = make_dataset(
        "ppe", tmp_path / "ppe", n_images=10, seed=3, size=SIZE, splits=(0.6, 0.2, 0.2)
    )
    root = data_yaml.parent
    data = yaml.safe_load(data_yaml.read_text())

    assert Path(data["path"]).is_absolute() and Path(data["path"]) == root.resolve()
    assert (data["train"], data["val"], data["test"]) == (
        "images/train",
        "images/val",
        "images/test",
    )
    assert data["names"] == {0: "person", 1: "helmet"} and data["nc"] == 2
    for split, count in zip(("train", "val", "test"), (6, 2, 2), strict=True):
        images, labels = _files(root, "images", split), _files(root, "labels", split)
        assert images == labels and len(images) == count
    image = cv2.imread(str(next((root / "images" / "train").glob("*.jpg"))))
    assert image.shape == (SIZE[1], SIZE[0], 3)
    for label_file in (root / "labels").rglob("*.txt"):
        for line in label_file.read_text().splitlines():
            class_id, *box = line.split()
            assert class_id in {"0", "1"} and all(0 <= float(v) <= 1 for v in box)


def test_no_test_split_when_its_fraction_is_zero(tmp_path):
    data_yaml = make_dataset("fish", tmp_path / "fish", n_images=5, size=SIZE)
    data = yaml.safe_load(data_yaml.read_text())

    assert "test" not in data
    assert not (tmp_path / "fish" / "images" / "test").exists()
    assert len(_files(tmp_path / "fish", "images", "train")) == 4


def test_same_seed_gives_identical_files(tmp_path):
    first = make_dataset("shelf", tmp_path / "a", n_images=6, seed=7, size=SIZE).parent
    second = make_dataset("shelf", tmp_path / "b", n_images=6, seed=7, size=SIZE).parent

    for split in ("train", "val"):
        assert _files(first, "labels", split) == _files(second, "labels", split)
        for stem in _files(first, "labels", split):
            label_a = (first / "labels" / split / f"{stem}.txt").read_bytes()
            label_b = (second / "labels" / split / f"{stem}.txt").read_bytes()
            assert label_a == label_b
            image_a = cv2.imread(str(first / "images" / split / f"{stem}.jpg"))
            image_b = cv2.imread(str(second / "images" / split / f"{stem}.jpg"))
            assert np.array_equal(image_a, image_b)


def test_splits_are_disjoint_and_depend_on_the_seed(tmp_path):
    root = make_dataset(
        "fish", tmp_path / "s1", n_images=20, seed=1, size=SIZE, splits=(0.5, 0.3, 0.2)
    ).parent
    other = make_dataset(
        "fish", tmp_path / "s2", n_images=20, seed=2, size=SIZE, splits=(0.5, 0.3, 0.2)
    ).parent

    splits = {split: set(_files(root, "images", split)) for split in ("train", "val", "test")}
    assert [len(s) for s in splits.values()] == [10, 6, 4]
    assert not (
        splits["train"] & splits["val"]
        or splits["train"] & splits["test"]
        or splits["val"] & splits["test"]
    )
    assert set().union(*splits.values()) == {f"fish_{i:05d}" for i in range(20)}
    assert splits["train"] != set(_files(other, "images", "train"))


def test_combined_dataset_merges_classes(tmp_path):
    data_yaml = make_dataset(
        ["shelf", "fish", "ppe"], tmp_path / "all", n_images=6, size=SIZE, splits=(0.5, 0.5, 0.0)
    )
    data = yaml.safe_load(data_yaml.read_text())
    root = data_yaml.parent

    assert data["names"] == {0: "bottle", 1: "fish", 2: "person", 3: "helmet"}
    ids_by_use_case: dict[str, set[str]] = {"shelf": set(), "fish": set(), "ppe": set()}
    for label_file in (root / "labels").rglob("*.txt"):
        use_case = label_file.stem.split("_")[0]
        ids_by_use_case[use_case] |= {
            line.split()[0] for line in label_file.read_text().splitlines()
        }
    assert ids_by_use_case["shelf"] == {"0"}
    assert ids_by_use_case["fish"] == {"1"}
    assert ids_by_use_case["ppe"] <= {"2", "3"} and "2" in ids_by_use_case["ppe"]


def test_existing_dataset_needs_overwrite(tmp_path):
    make_dataset("fish", tmp_path / "d", n_images=4, size=SIZE)
    with pytest.raises(FileExistsError, match="already holds a dataset; pass overwrite=True"):
        make_dataset("fish", tmp_path / "d", n_images=4, size=SIZE)

    make_dataset(
        "fish", tmp_path / "d", n_images=2, size=SIZE, overwrite=True, splits=(0.5, 0.5, 0.0)
    )
    assert len(list((tmp_path / "d" / "images").rglob("*.jpg"))) == 2


def test_scene_parameters_reach_every_image(tmp_path):
    root = make_dataset("fish", tmp_path / "empty", n_images=3, size=SIZE, n_fish=0).parent
    assert all(p.read_text() == "" for p in (root / "labels").rglob("*.txt"))


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"use_case": "cars"}, ValueError, "unknown use case 'cars'"),
        ({"use_case": "fish", "splits": (0.5, 0.2, 0.2)}, ValueError, "summing to 1"),
        (
            {"use_case": "fish", "splits": (0.0, 1.0, 0.0)},
            ValueError,
            "train fraction must be positive",
        ),
        ({"use_case": "fish", "n_images": 0}, ValueError, "n_images must be at least 1"),
        ({"use_case": ["fish", "ppe"], "n_fish": 2}, ValueError, "apply to one use case"),
    ],
)
def test_bad_arguments_are_explained(tmp_path, kwargs, error, message):
    with pytest.raises(error, match=message):
        make_dataset(out_dir=tmp_path / "bad", size=SIZE, **kwargs)


def test_split_counts_sum_to_the_total():
    assert split_counts(10, (0.8, 0.2, 0.0)) == (8, 2, 0)
    assert split_counts(3, (0.8, 0.2, 0.0)) == (2, 1, 0)
    assert split_counts(190, (150 / 190, 40 / 190, 0.0)) == (150, 40, 0)
    assert sum(split_counts(17, (0.7, 0.2, 0.1))) == 17


def test_merged_classes_keep_first_appearance():
    assert merged_classes(["ppe", "fish", "ppe"]) == ["person", "helmet", "fish"]
