"""Deterministic train / val / test splits that do not depend on file listing order."""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from kit.data.core import DetectionDataset

SPLIT_NAMES = ("train", "val", "test")


class DatasetSplits(NamedTuple):
    """The three splits of a dataset (a split with ratio 0 is empty).

    Examples:
        >>> splits = split_dataset(dataset, ratios=(0.8, 0.2, 0.0))
        >>> data_yaml = splits.as_yolo("build/shelf-yolo")
    """

    train: DetectionDataset
    val: DetectionDataset
    test: DetectionDataset

    def as_yolo(self, out_dir: str | Path) -> Path:
        """Write the splits in the YOLO layout; returns the ``data.yaml`` path.

        An empty val split falls back to the train images; an empty test split is omitted.
        """
        return self.train.as_yolo(
            out_dir,
            val=self.val if len(self.val) else None,
            test=self.test if len(self.test) else None,
        )


def split_score(file_name: str, seed: int) -> float:
    """Stable pseudo-random number in [0, 1) for an image file name and a seed.

    Examples:
        >>> split_score("0001.jpg", 0) == split_score("0001.jpg", 0)
        True
    """
    digest = hashlib.sha256(f"{seed}:{file_name}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_dataset(
    dataset: DetectionDataset,
    *,
    ratios: Sequence[float] = (0.8, 0.2, 0.0),
    seed: int = 0,
    stratify: bool = True,
) -> DatasetSplits:
    """Split a dataset into train, val and test, the same way every time.

    Each image's split comes from a hash of its file name and ``seed``, so it depends
    neither on the order images are listed in nor on which other images are present.
    With ``stratify``, a few images are then moved so that every class appears in every
    split with a non-zero ratio where the class has enough images (train first, then val,
    then test), and no such split is empty; the moves are chosen by the same hash, so the
    result is still fully determined by the set of images and the seed.

    Args:
        dataset: The dataset to split.
        ratios: Fractions ``(train, val, test)`` (or ``(train, val)``) summing to 1.
        seed: Changes the split; the same seed gives the same split.
        stratify: Move images so that classes appear in every split where possible.

    Returns:
        `DatasetSplits` with ``train``, ``val`` and ``test`` datasets.

    Raises:
        ValueError: ``ratios`` is not 2 or 3 non-negative numbers summing to 1 with a
            positive train ratio.

    Examples:
        >>> splits = split_dataset(dataset, ratios=(0.7, 0.2, 0.1), seed=42)
        >>> len(splits.train) + len(splits.val) + len(splits.test) == len(dataset)
        True
    """
    fractions = _validate_ratios(ratios)
    items = dataset.items
    scores = [split_score(item.path.name, seed) for item in items]
    bounds = [fractions[0], fractions[0] + fractions[1]]
    active = [index for index, fraction in enumerate(fractions) if fraction > 0]
    assignment = []
    for score in scores:
        split = 0 if score < bounds[0] else 1 if score < bounds[1] else 2
        if fractions[split] == 0:  # only at a float rounding edge; train is always active
            split = max(index for index in active if index < split)
        assignment.append(split)
    if stratify:
        _cover_classes(dataset, assignment, scores, active)
    return DatasetSplits(
        *(
            dataset.subset(
                [item for item, split in zip(items, assignment, strict=True) if split == s]
            )
            for s in range(3)
        )
    )


def _validate_ratios(ratios: Sequence[float]) -> tuple[float, float, float]:
    values = list(ratios)
    expected = "2 or 3 fractions (train, val[, test]) >= 0 summing to 1, train > 0"
    if len(values) not in (2, 3):
        raise ValueError(f"ratios={tuple(values)}; expected {expected}")
    try:
        numbers = [float(value) for value in values] + [0.0] * (3 - len(values))
    except (TypeError, ValueError):
        raise ValueError(f"ratios={tuple(values)}; expected {expected}") from None
    if (
        not all(math.isfinite(n) and n >= 0 for n in numbers)
        or abs(sum(numbers) - 1) > 1e-6
        or numbers[0] == 0
    ):
        raise ValueError(f"ratios={tuple(values)}; expected {expected}")
    return numbers[0], numbers[1], numbers[2]


def _cover_classes(
    dataset: DetectionDataset, assignment: list[int], scores: list[float], active: list[int]
) -> None:
    """Move images (in place) so each active split holds every class it can.

    A split earlier in ``active`` has priority: a move may take a class away from a later
    split (which then gets its turn to win it back) but never from an earlier one, so
    the loop ends after one pass per split.
    """
    present = [frozenset(item.class_ids.tolist()) for item in dataset.items]
    names = [item.path.name for item in dataset.items]
    counts = {split: Counter() for split in range(3)}
    for classes, split in zip(present, assignment, strict=True):
        counts[split].update(classes)
    sizes = Counter(assignment)

    def move_best(target: int, candidates: list[int]) -> None:
        options = []
        for index in candidates:
            source = assignment[index]
            loses = any(counts[source][c] == 1 for c in present[index]) or sizes[source] == 1
            if loses and source < target:
                continue
            options.append((loses, scores[index], names[index], index))
        if options:
            index = min(options)[3]
            source = assignment[index]
            counts[source].subtract(present[index])
            counts[target].update(present[index])
            sizes[source] -= 1
            sizes[target] += 1
            assignment[index] = target

    all_classes = sorted({c for classes in present for c in classes})
    for target in active:
        for class_id in all_classes:
            if counts[target][class_id] == 0:
                move_best(
                    target,
                    [
                        i
                        for i, classes in enumerate(present)
                        if class_id in classes and assignment[i] != target
                    ],
                )
        if sizes[target] == 0:
            move_best(target, [i for i in range(len(present)) if assignment[i] != target])
