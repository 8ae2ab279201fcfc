"""Fixtures for kit.data: tiny images written into tmp_path and a dataset over them."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from kit.data import DetectionDataset, LabelledImage

CLASSES = ["bottle", "can", "cup"]

# (file name, width, height, boxes xyxy in pixels, class ids); fractional corners on purpose.
SAMPLE_IMAGES = [
    ("shelf_000.jpg", 64, 48, [[2.25, 3.5, 30.75, 40.125], [33.0, 4.0, 60.5, 44.0]], [0, 1]),
    ("shelf_001.png", 80, 60, [[10.5, 12.25, 50.0, 58.75]], [2]),
    ("shelf_002.jpg", 72, 40, [[0.0, 0.0, 20.333, 39.5], [40.0, 5.5, 71.0, 30.0]], [0, 0]),
    ("shelf_003.png", 50, 50, [[5.0, 5.0, 45.0, 45.0]], [1]),
    (
        "shelf_004.jpg",
        96,
        64,
        [[1.5, 2.5, 20.5, 22.5], [30, 30, 60, 63], [70, 2, 95, 40]],
        [0, 1, 2],
    ),
    ("empty_005.png", 40, 30, [], []),
]


def write_image(path: Path, width: int, height: int, seed: int) -> Path:
    """Write a small noise image (distinct bytes per seed) and return its path."""
    pixels = np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), pixels)
    return path


@pytest.fixture
def make_image():
    """Factory: ``make_image(path, width, height, seed=0)`` writes a noise image."""
    return write_image


@pytest.fixture
def sample_dataset(tmp_path: Path) -> DetectionDataset:
    """Six images of different sizes, three classes, one image without boxes."""
    items = []
    for seed, (name, width, height, boxes, class_ids) in enumerate(SAMPLE_IMAGES):
        path = write_image(tmp_path / "source" / name, width, height, seed)
        items.append(LabelledImage(path, width, height, np.array(boxes, float), class_ids))
    return DetectionDataset(classes=CLASSES, items=items)
