"""Fixtures for training, export and the registry: a tiny shapes dataset and a one-epoch model."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

SHAPE_CLASSES = ["square", "disc"]
IMGSZ = 64


def make_shapes_dataset(
    out_dir: Path,
    *,
    n_train: int = 16,
    n_val: int = 8,
    size: int = IMGSZ,
    seed: int = 0,
    relative: bool = False,
) -> Path:
    """Red squares and blue discs on grey, with exact YOLO labels; returns data.yaml.

    ``relative`` writes data.yaml without ``path`` (as kit.data's upload does), otherwise with
    the folder's absolute path.
    """
    rng = np.random.default_rng(seed)
    for split, count in (("train", n_train), ("val", n_val)):
        (out_dir / "images" / split).mkdir(parents=True, exist_ok=True)
        (out_dir / "labels" / split).mkdir(parents=True, exist_ok=True)
        for index in range(count):
            image = np.full((size, size, 3), int(rng.integers(150, 230)), np.uint8)
            lines = []
            for _ in range(int(rng.integers(1, 3))):
                class_id = int(rng.integers(0, 2))
                side = int(rng.integers(size // 4, size // 2))
                x, y = (int(v) for v in rng.integers(0, size - side, 2))
                if class_id == 0:
                    cv2.rectangle(image, (x, y), (x + side - 1, y + side - 1), (30, 30, 220), -1)
                else:
                    cv2.circle(image, (x + side // 2, y + side // 2), side // 2, (220, 60, 30), -1)
                cx, cy = (x + side / 2) / size, (y + side / 2) / size
                lines.append(f"{class_id} {cx:.6f} {cy:.6f} {side / size:.6f} {side / size:.6f}")
            cv2.imwrite(str(out_dir / "images" / split / f"{split}_{index:03d}.jpg"), image)
            (out_dir / "labels" / split / f"{split}_{index:03d}.txt").write_text(
                "\n".join(lines) + "\n"
            )
    names = "".join(f"  {i}: {name}\n" for i, name in enumerate(SHAPE_CLASSES))
    path_line = "" if relative else f"path: {out_dir.resolve()}\n"
    data_yaml = out_dir / "data.yaml"
    data_yaml.write_text(f"{path_line}train: images/train\nval: images/val\nnames:\n{names}")
    return data_yaml


@pytest.fixture(scope="session")
def shapes_dataset(tmp_path_factory) -> Path:
    return make_shapes_dataset(tmp_path_factory.mktemp("shapes"))


@pytest.fixture(scope="session")
def trained(shapes_dataset, tmp_path_factory):
    """One epoch of yolov8n from scratch at 64 px on 16 images (a few seconds on a CPU)."""
    from kit.train import train_local

    return train_local(
        shapes_dataset,
        base="yolov8n.yaml",
        epochs=1,
        imgsz=IMGSZ,
        batch=8,
        project_dir=tmp_path_factory.mktemp("runs"),
        progress=False,
    )
