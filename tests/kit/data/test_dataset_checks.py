import shutil

import numpy as np
import pytest
from matplotlib.figure import Figure

from kit.data import DetectionDataset, LabelledImage, check_dataset, plot_stats


@pytest.fixture
def clean_dataset(make_image, tmp_path):
    items = [
        LabelledImage(
            make_image(tmp_path / f"{i}.png", 40, 30, i),
            40,
            30,
            [[1, 1, 20, 20], [5, 5, 39, 29]],
            [0, 1],
        )
        for i in range(3)
    ]
    return DetectionDataset(classes=["bottle", "can"], items=items)


def test_clean_dataset_is_ok(clean_dataset):
    report = check_dataset(clean_dataset)

    assert report.ok
    assert report.class_counts == {"bottle": 3, "can": 3}
    assert report.imbalance_ratio == 1.0
    assert (report.image_count, report.box_count) == (3, 6)
    assert str(report).splitlines()[0] == "Dataset: 3 images, 6 boxes, 2 classes — OK"


def test_each_problem_is_found_and_reported(make_image, tmp_path):
    good = make_image(tmp_path / "good.png", 40, 30, 1)
    duplicate = tmp_path / "copy_of_good.png"
    shutil.copy(good, duplicate)
    unlabelled = make_image(tmp_path / "unlabelled.png", 40, 30, 2)
    items = [
        LabelledImage(good, 40, 30, [[1, 1, 10, 10]] * 24, [0] * 24),
        LabelledImage(
            duplicate,
            40,
            30,
            [[-3, 1, 10, 10], [5, 5, 5, 20], [2, 2, 45, 31], [1, 1, 1.5, 9]],
            [0, 0, 1, 0],
        ),
        LabelledImage(unlabelled, 40, 30),
        LabelledImage(tmp_path / "gone.png", 40, 30, [[1, 1, 5, 5]], [0]),
    ]
    dataset = DetectionDataset(classes=["bottle", "can", "cup"], items=items)

    report = check_dataset(dataset, imbalance_threshold=10)

    assert not report.ok
    assert report.images_without_labels == [unlabelled]
    assert report.missing_images == [tmp_path / "gone.png"]
    assert report.classes_without_instances == ["cup"]
    assert report.imbalance_ratio == 28.0 and report.is_imbalanced
    assert report.duplicate_images == [sorted([good, duplicate])]
    found = {(p.path.name, p.box_index, p.reason) for p in report.box_problems}
    assert found == {
        ("copy_of_good.png", 0, "out of bounds"),
        ("copy_of_good.png", 1, "degenerate"),
        ("copy_of_good.png", 2, "out of bounds"),
        ("copy_of_good.png", 3, "degenerate"),
    }
    beyond = next(p for p in report.box_problems if p.box_index == 2)
    assert beyond.detail == "x2=45 > width 40, y2=31 > height 30"
    assert beyond.class_name == "can"
    text = str(report)
    for fragment in [
        "problems found",
        "Missing image files (1):",
        "Images without labels (1):",
        "Box problems (4):",
        "box 0 (bottle): out of bounds, x1=-3 < 0",
        "box 1 (bottle): degenerate, 0 × 15 px (minimum side 1 px)",
        "Classes without instances: cup",
        "Class imbalance: most/least common = 28.0 (threshold 10)",
        "Duplicate images (1 groups):",
        f"{duplicate} = {good}",
    ]:
        assert fragment in text


def test_thresholds_change_the_verdict(clean_dataset):
    lopsided = clean_dataset.subset(
        clean_dataset.items
        + [
            LabelledImage(
                clean_dataset[0].path.with_name("x.png"), 40, 30, [[1, 1, 9, 9]] * 4, [0] * 4
            )
        ]
    )

    assert check_dataset(lopsided, imbalance_threshold=3).is_imbalanced is False  # 7 / 3
    assert check_dataset(lopsided, imbalance_threshold=2).is_imbalanced is True
    assert not check_dataset(clean_dataset, min_box_side=25).ok
    with pytest.raises(ValueError, match="imbalance_threshold=0.5; expected a ratio >= 1"):
        check_dataset(clean_dataset, imbalance_threshold=0.5)
    with pytest.raises(ValueError, match="min_box_side=-1"):
        check_dataset(clean_dataset, min_box_side=-1)


def test_plot_stats_returns_a_figure(sample_dataset, tmp_path):
    figure = plot_stats(sample_dataset)

    assert isinstance(figure, Figure)
    per_class, sizes, shapes = figure.axes
    heights = {
        tick.get_text(): bar.get_width()
        for tick, bar in zip(per_class.get_yticklabels(), per_class.patches, strict=True)
    }
    assert heights == {"bottle": 4, "can": 3, "cup": 2}
    assert sum(patch.get_height() for patch in sizes.patches) == 9
    assert len(shapes.collections[0].get_offsets()) == 9
    figure.savefig(tmp_path / "stats.png")
    assert (tmp_path / "stats.png").stat().st_size > 1000


def test_plot_stats_of_an_empty_dataset():
    figure = plot_stats(DetectionDataset(classes=["a"], items=[]))

    assert len(figure.axes) == 3
    assert np.asarray(figure.axes[2].collections[0].get_offsets()).size == 0
