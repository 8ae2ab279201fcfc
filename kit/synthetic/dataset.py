"""Synthetic YOLO datasets: images, label files and a `data.yaml` ultralytics can train on."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml

from kit.synthetic.core import check_size, get_use_case

SPLIT_NAMES = ("train", "val", "test")


def split_counts(n_images: int, splits: Sequence[float]) -> tuple[int, int, int]:
    """Number of images per split (train, val, test), summing to `n_images`.

    Each split gets the floor of its share; the images left over go to the splits with the
    largest remainders, never to a split whose fraction is 0.

    Raises:
        ValueError: If `splits` is not three non-negative fractions summing to 1 with a
            positive train fraction.

    Examples:
        >>> split_counts(10, (0.8, 0.2, 0.0))
        (8, 2, 0)
        >>> split_counts(7, (0.7, 0.15, 0.15))
        (5, 1, 1)
    """
    fractions = np.asarray(tuple(splits), dtype=np.float64)
    if fractions.shape != (3,) or np.any(fractions < 0) or not np.isclose(fractions.sum(), 1.0):
        raise ValueError(
            f"splits must be three fractions (train, val, test) >= 0 summing to 1, got {tuple(splits)!r}"
        )
    if fractions[0] <= 0:
        raise ValueError(f"the train fraction must be positive, got splits={tuple(splits)!r}")
    shares = fractions * n_images
    counts = np.floor(shares).astype(int)
    remainders = np.where(fractions > 0, shares - counts, -1.0)
    for index in np.argsort(-remainders, kind="stable")[: n_images - counts.sum()]:
        counts[index] += 1
    return int(counts[0]), int(counts[1]), int(counts[2])


def merged_classes(use_cases: Sequence[str]) -> list[str]:
    """Class names of several use cases, in order of first appearance.

    Examples:
        >>> merged_classes(["shelf", "ppe"])
        ['bottle', 'person', 'helmet']
    """
    names: list[str] = []
    for name in use_cases:
        for class_name in get_use_case(name).classes:
            if class_name not in names:
                names.append(class_name)
    return names


def make_dataset(
    use_case: str | Sequence[str],
    out_dir: str | Path,
    n_images: int = 100,
    seed: int = 0,
    size: Sequence[int] = (640, 480),
    splits: Sequence[float] = (0.8, 0.2, 0.0),
    overwrite: bool = False,
    jpeg_quality: int = 92,
    **scene_params: Any,
) -> Path:
    """Write a synthetic dataset in YOLO layout.

    Creates ``images/{train,val,test}/*.jpg``, ``labels/{train,val,test}/*.txt`` and
    ``data.yaml`` (absolute ``path``; ``train``, ``val``, and ``test`` when it holds images;
    ``names``). Image *i* is rendered from seed ``(seed, i)`` and the split assignment is a
    permutation drawn from ``seed``, so the same arguments give the same files.

    Args:
        use_case: `shelf`, `fish` or `ppe`, or a list of them for a combined dataset whose
            images cycle through the use cases and whose classes are merged in order.
        out_dir: Dataset folder (created).
        n_images: Number of images, at least 1.
        seed: Random seed.
        size: Image (width, height).
        splits: Fractions (train, val, test), summing to 1.
        overwrite: Replace the `images/`, `labels/` and `data.yaml` of an earlier dataset in
            `out_dir`; otherwise such a folder is an error.
        jpeg_quality: JPEG quality, 1..100.
        **scene_params: Scene parameters passed to every scene (single use case only).

    Returns:
        Path of the written ``data.yaml``.

    Raises:
        ValueError: On an unknown use case, bad splits, size or count, or scene parameters
            for a combined dataset.
        FileExistsError: If `out_dir` already holds a dataset and `overwrite` is False.

    Examples:
        >>> import tempfile
        >>> data_yaml = make_dataset("fish", tempfile.mkdtemp(), n_images=5, size=(160, 120))
        >>> data_yaml.name
        'data.yaml'
    """
    names = [use_case] if isinstance(use_case, str) else list(use_case)
    if not names:
        raise ValueError("use_case must name at least one use case")
    use_cases = [get_use_case(name) for name in names]
    if len(use_cases) > 1 and scene_params:
        raise ValueError(
            f"scene parameters {sorted(scene_params)} apply to one use case; "
            "pass a single use case to use them"
        )
    if int(n_images) < 1:
        raise ValueError(f"n_images must be at least 1, got {n_images!r}")
    if not 1 <= int(jpeg_quality) <= 100:
        raise ValueError(f"jpeg_quality must be 1..100, got {jpeg_quality!r}")
    size = check_size(size)
    counts = split_counts(int(n_images), splits)

    root = Path(out_dir).expanduser().resolve()
    existing = [root / "images", root / "labels", root / "data.yaml"]
    if any(path.exists() for path in existing):
        if not overwrite:
            raise FileExistsError(
                f"{root} already holds a dataset; pass overwrite=True to replace it"
            )
        for path in existing:
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()

    classes = merged_classes(names)
    order = np.random.default_rng(seed).permutation(int(n_images))
    split_of = np.empty(int(n_images), dtype=object)
    split_of[order[: counts[0]]] = "train"
    split_of[order[counts[0] : counts[0] + counts[1]]] = "val"
    split_of[order[counts[0] + counts[1] :]] = "test"
    for split, count in zip(SPLIT_NAMES, counts, strict=True):
        if count or split != "test":
            (root / "images" / split).mkdir(parents=True, exist_ok=True)
            (root / "labels" / split).mkdir(parents=True, exist_ok=True)

    for index in range(int(n_images)):
        use = use_cases[index % len(use_cases)]
        scene = use.render(np.random.default_rng([seed, index]), size, **scene_params)
        remap = np.array([classes.index(name) for name in use.classes], dtype=np.int64)
        scene.class_ids = remap[scene.class_ids]
        stem = f"{use.name}_{index:05d}"
        split = split_of[index]
        cv2.imwrite(
            str(root / "images" / split / f"{stem}.jpg"),
            scene.image,
            [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)],
        )
        lines = scene.yolo_lines()
        (root / "labels" / split / f"{stem}.txt").write_text(
            "".join(line + "\n" for line in lines), encoding="utf-8"
        )

    data: dict[str, Any] = {"path": str(root), "train": "images/train", "val": "images/val"}
    if counts[2]:
        data["test"] = "images/test"
    data["nc"] = len(classes)
    data["names"] = dict(enumerate(classes))
    data_yaml = root / "data.yaml"
    data_yaml.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return data_yaml
