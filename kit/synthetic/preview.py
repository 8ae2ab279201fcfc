"""Quick looks at synthetic scenes: boxes drawn on a scene, a grid of scenes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from kit.synthetic.core import Scene, get_use_case

_BOX_COLORS = [(60, 220, 60), (230, 60, 230), (40, 200, 250), (250, 160, 40)]


def draw_labels(scene: Scene) -> np.ndarray:
    """A copy of the scene's image with its boxes and class names drawn.

    Examples:
        >>> from kit.synthetic import render_scene
        >>> draw_labels(render_scene("fish", seed=0, size=(320, 240))).shape
        (240, 320, 3)
    """
    image = scene.image.copy()
    for (x1, y1, x2, y2), class_id in zip(scene.boxes.astype(int), scene.class_ids, strict=True):
        color = _BOX_COLORS[int(class_id) % len(_BOX_COLORS)]
        cv2.rectangle(image, (x1, y1), (x2 - 1, y2 - 1), color, 1)
        cv2.putText(
            image,
            scene.classes[int(class_id)],
            (x1, max(y1 - 3, 9)),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.35,
            color,
            1,
        )
    return image


def preview_grid(
    use_case: str,
    seeds: Sequence[int] = range(6),
    size: Sequence[int] = (640, 480),
    columns: int = 3,
    boxes: bool = True,
    **scene_params: Any,
) -> np.ndarray:
    """Render several scenes of a use case into one picture.

    Args:
        use_case: `shelf`, `fish` or `ppe`.
        seeds: One scene per seed.
        size: Size (width, height) of each scene.
        columns: Scenes per row.
        boxes: Whether to draw the labels.
        **scene_params: Scene parameters of the use case.

    Returns:
        The grid as a BGR image; empty cells are black.

    Examples:
        >>> preview_grid("ppe", seeds=[0, 1], size=(160, 120), columns=2).shape
        (120, 320, 3)
    """
    use = get_use_case(use_case)
    tiles = []
    for seed in seeds:
        scene = use.render(seed, size, **scene_params)
        tiles.append(draw_labels(scene) if boxes else scene.image)
    if not tiles:
        raise ValueError("seeds must name at least one scene")
    columns = max(1, min(int(columns), len(tiles)))
    blank = np.zeros_like(tiles[0])
    tiles += [blank] * (-len(tiles) % columns)
    rows = [np.hstack(tiles[i : i + columns]) for i in range(0, len(tiles), columns)]
    return np.vstack(rows)
