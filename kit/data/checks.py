"""Dataset checks before training: what is missing, broken, duplicated or lopsided."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from kit.data.core import DetectionDataset
from kit.data.images import file_sha256

if TYPE_CHECKING:
    from matplotlib.figure import Figure

_BOUNDS_TOLERANCE_PX = 0.5
"""Half a pixel: YOLO text labels (6 decimals) and rounding put a box touching the edge a hair beyond it."""


@dataclass(frozen=True)
class BoxProblem:
    """One box that training would choke on or learn nonsense from.

    Attributes:
        path: The image the box belongs to.
        box_index: Index of the box in the image's ``boxes``.
        class_name: The box's class.
        box: ``(x1, y1, x2, y2)`` in pixels.
        reason: ``"out of bounds"`` or ``"degenerate"``.
        detail: Human-readable specifics (which side, what size).
    """

    path: Path
    box_index: int
    class_name: str
    box: tuple[float, float, float, float]
    reason: str
    detail: str


@dataclass(frozen=True)
class DatasetReport:
    """What `check_dataset` found. ``report.ok`` is True when nothing was found.

    Attributes:
        image_count: Number of images.
        box_count: Number of boxes.
        class_counts: Boxes per class name.
        images_without_labels: Images with no boxes (unlabelled, or background on purpose).
        missing_images: Images whose file does not exist.
        box_problems: Boxes outside their image or too small / inverted.
        classes_without_instances: Classes no box uses.
        imbalance_ratio: Boxes of the most common class over the least common (classes
            with at least one box); None with fewer than two such classes.
        imbalance_threshold: The ratio above which the dataset counts as imbalanced.
        duplicate_images: Groups of images with identical bytes.
    """

    image_count: int
    box_count: int
    class_counts: dict[str, int]
    images_without_labels: list[Path] = field(default_factory=list)
    missing_images: list[Path] = field(default_factory=list)
    box_problems: list[BoxProblem] = field(default_factory=list)
    classes_without_instances: list[str] = field(default_factory=list)
    imbalance_ratio: float | None = None
    imbalance_threshold: float = 10.0
    duplicate_images: list[list[Path]] = field(default_factory=list)

    @property
    def is_imbalanced(self) -> bool:
        """Whether ``imbalance_ratio`` is above ``imbalance_threshold``."""
        return self.imbalance_ratio is not None and self.imbalance_ratio > self.imbalance_threshold

    @property
    def ok(self) -> bool:
        """True when no check found anything."""
        return not (
            self.images_without_labels
            or self.missing_images
            or self.box_problems
            or self.classes_without_instances
            or self.is_imbalanced
            or self.duplicate_images
        )

    def __str__(self) -> str:
        lines = [
            f"Dataset: {self.image_count} images, {self.box_count} boxes, "
            f"{len(self.class_counts)} classes — {'OK' if self.ok else 'problems found'}",
            "Boxes per class: "
            + (", ".join(f"{name}={count}" for name, count in self.class_counts.items()) or "-"),
        ]
        if self.missing_images:
            lines.append(f"Missing image files ({len(self.missing_images)}):")
            lines += [f"  {path}" for path in self.missing_images]
        if self.images_without_labels:
            lines.append(f"Images without labels ({len(self.images_without_labels)}):")
            lines += [f"  {path}" for path in self.images_without_labels]
        if self.box_problems:
            lines.append(f"Box problems ({len(self.box_problems)}):")
            lines += [
                f"  {problem.path} box {problem.box_index} ({problem.class_name}): "
                f"{problem.reason}, {problem.detail}"
                for problem in self.box_problems
            ]
        if self.classes_without_instances:
            lines.append(f"Classes without instances: {', '.join(self.classes_without_instances)}")
        if self.is_imbalanced:
            lines.append(
                f"Class imbalance: most/least common = {self.imbalance_ratio:.1f} "
                f"(threshold {self.imbalance_threshold:g})"
            )
        if self.duplicate_images:
            lines.append(f"Duplicate images ({len(self.duplicate_images)} groups):")
            lines += [f"  {' = '.join(map(str, group))}" for group in self.duplicate_images]
        return "\n".join(lines)


def check_dataset(
    dataset: DetectionDataset,
    *,
    imbalance_threshold: float = 10.0,
    min_box_side: float = 1.0,
) -> DatasetReport:
    """Check a dataset for the problems that spoil a training run.

    Args:
        dataset: The dataset to check.
        imbalance_threshold: Ratio of the most to the least common class (by boxes) above
            which the dataset is reported imbalanced.
        min_box_side: Boxes narrower or lower than this many pixels are degenerate.

    Returns:
        A `DatasetReport`; ``print(report)`` lists every finding.

    Raises:
        ValueError: ``imbalance_threshold`` is below 1 or ``min_box_side`` is negative.

    Examples:
        >>> report = check_dataset(dataset)
        >>> report.ok
        True
    """
    if imbalance_threshold < 1:
        raise ValueError(f"imbalance_threshold={imbalance_threshold}; expected a ratio >= 1")
    if min_box_side < 0:
        raise ValueError(f"min_box_side={min_box_side}; expected a size >= 0 pixels")
    class_counts = dataset.class_counts()
    used = [count for count in class_counts.values() if count > 0]
    imbalance_ratio = max(used) / min(used) if len(used) >= 2 else None

    missing_images = [item.path for item in dataset if not item.path.is_file()]
    by_hash: dict[str, list[Path]] = defaultdict(list)
    for item in dataset:
        if item.path.is_file():
            by_hash[file_sha256(item.path)].append(item.path)

    return DatasetReport(
        image_count=len(dataset),
        box_count=sum(class_counts.values()),
        class_counts=class_counts,
        images_without_labels=[item.path for item in dataset if len(item) == 0],
        missing_images=missing_images,
        box_problems=_find_box_problems(dataset, min_box_side),
        classes_without_instances=[name for name, count in class_counts.items() if count == 0],
        imbalance_ratio=imbalance_ratio,
        imbalance_threshold=imbalance_threshold,
        duplicate_images=[sorted(paths) for paths in by_hash.values() if len(paths) > 1],
    )


def plot_stats(dataset: DetectionDataset) -> Figure:
    """Figure with boxes per class, box sizes and box shapes.

    The figure is built without pyplot, so it needs no GUI backend and leaves no global
    state behind; a notebook shows it when it is a cell's value.

    Examples:
        >>> figure = plot_stats(dataset)
        >>> figure.savefig("dataset-stats.png")
    """
    from matplotlib.figure import Figure  # matplotlib is slow to import: only when plotting

    figure = Figure(figsize=(13, 4), layout="constrained")
    per_class, sizes, shapes = figure.subplots(1, 3)

    counts = dataset.class_counts()
    per_class.barh(list(counts)[::-1], list(counts.values())[::-1], color="#1f77b4")
    per_class.set_title("Boxes per class")
    per_class.set_xlabel("boxes")

    widths, heights, relative_widths, relative_heights = [], [], [], []
    for item in dataset:
        box_widths = item.boxes[:, 2] - item.boxes[:, 0]
        box_heights = item.boxes[:, 3] - item.boxes[:, 1]
        widths.append(box_widths)
        heights.append(box_heights)
        relative_widths.append(box_widths / item.width)
        relative_heights.append(box_heights / item.height)
    widths_px = np.concatenate(widths) if widths else np.zeros(0)
    heights_px = np.concatenate(heights) if heights else np.zeros(0)
    side = np.sqrt(np.clip(widths_px * heights_px, 0, None))
    sizes.hist(side, bins=30, color="#ff7f0e")
    sizes.set_title("Box size")
    sizes.set_xlabel("sqrt(width × height) [px]")
    sizes.set_ylabel("boxes")

    shapes.scatter(
        np.concatenate(relative_widths) if relative_widths else [],
        np.concatenate(relative_heights) if relative_heights else [],
        s=6,
        alpha=0.5,
        color="#2ca02c",
    )
    shapes.set_xlim(0, 1)
    shapes.set_ylim(0, 1)
    shapes.set_title("Box shape (fraction of image)")
    shapes.set_xlabel("width / image width")
    shapes.set_ylabel("height / image height")
    return figure


def _find_box_problems(dataset: DetectionDataset, min_box_side: float) -> list[BoxProblem]:
    problems = []
    for item in dataset:
        for index, (box, class_id) in enumerate(zip(item.boxes, item.class_ids, strict=True)):
            x1, y1, x2, y2 = (float(v) for v in box)
            common = {
                "path": item.path,
                "box_index": index,
                "class_name": dataset.classes[class_id],
                "box": (x1, y1, x2, y2),
            }
            if not np.all(np.isfinite(box)):
                problems.append(BoxProblem(**common, reason="degenerate", detail="non-finite"))
                continue
            outside = [
                side
                for side, beyond in (
                    (f"x1={x1:g} < 0", x1 < -_BOUNDS_TOLERANCE_PX),
                    (f"y1={y1:g} < 0", y1 < -_BOUNDS_TOLERANCE_PX),
                    (f"x2={x2:g} > width {item.width}", x2 > item.width + _BOUNDS_TOLERANCE_PX),
                    (f"y2={y2:g} > height {item.height}", y2 > item.height + _BOUNDS_TOLERANCE_PX),
                )
                if beyond
            ]
            if outside:
                problems.append(
                    BoxProblem(**common, reason="out of bounds", detail=", ".join(outside))
                )
            width, height = x2 - x1, y2 - y1
            if width < min_box_side or height < min_box_side:
                problems.append(
                    BoxProblem(
                        **common,
                        reason="degenerate",
                        detail=f"{width:g} × {height:g} px (minimum side {min_box_side:g} px)",
                    )
                )
    return problems
