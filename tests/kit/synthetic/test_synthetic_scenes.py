"""Scenes of the three use cases: determinism, exact labels, parameter checks."""

import cv2
import numpy as np
import pytest

from kit.synthetic import USE_CASES, render_scene
from kit.synthetic.core import Polygon, Polyline, SceneLayout, compose

SIZE = (320, 240)
SEEDS = (0, 1, 2, 3)


def _independent_label_masks(layout: SceneLayout) -> list[np.ndarray]:
    """Visible mask of every label, painted here shape by shape on one padded canvas."""
    width, height = layout.size
    points = np.concatenate([np.asarray(p.points) for d in layout.drawables for p in d.parts])
    pad_x = int(max(0, -np.floor(points[:, 0].min()))) + 16
    pad_y = int(max(0, -np.floor(points[:, 1].min()))) + 16
    canvas_w = max(width, int(np.ceil(points[:, 0].max()))) + 2 * pad_x + 16
    canvas_h = max(height, int(np.ceil(points[:, 1].max()))) + 2 * pad_y + 16
    drawable_masks = []
    for drawable in layout.drawables:
        canvas = np.zeros((canvas_h, canvas_w), dtype=np.uint8)
        for part in drawable.parts:
            fixed = np.round((np.asarray(part.points) + (pad_x, pad_y)) * 16).astype(np.int32)
            if isinstance(part, Polygon):
                cv2.fillPoly(canvas, [fixed], 255, lineType=cv2.LINE_8, shift=4)
            else:
                assert isinstance(part, Polyline)
                cv2.polylines(canvas, [fixed], part.closed, 255, part.thickness, cv2.LINE_8, 4)
        drawable_masks.append(canvas[pad_y : pad_y + height, pad_x : pad_x + width] > 0)
    covered_later = np.zeros((height, width), dtype=bool)
    visible = [None] * len(drawable_masks)
    for index in range(len(drawable_masks) - 1, -1, -1):
        visible[index] = drawable_masks[index] & ~covered_later
        covered_later |= drawable_masks[index]
    label_masks = [np.zeros((height, width), dtype=bool) for _ in layout.labels]
    for drawable, mask in zip(layout.drawables, visible, strict=True):
        for owner in drawable.owners:
            label_masks[owner] |= mask
    return label_masks


def _bounds(mask: np.ndarray) -> list[float]:
    rows, cols = np.nonzero(mask)
    return [cols.min(), rows.min(), cols.max() + 1, rows.max() + 1]


@pytest.mark.parametrize("use_case", sorted(USE_CASES))
def test_same_seed_gives_same_scene(use_case):
    first = render_scene(use_case, seed=5, size=SIZE)
    second = render_scene(use_case, seed=5, size=SIZE)

    assert np.array_equal(first.image, second.image)
    assert np.array_equal(first.boxes, second.boxes)
    assert first.yolo_lines() == second.yolo_lines()


@pytest.mark.parametrize("use_case", sorted(USE_CASES))
def test_different_seeds_give_different_scenes(use_case):
    first = render_scene(use_case, seed=1, size=SIZE)
    second = render_scene(use_case, seed=2, size=SIZE)

    assert not np.array_equal(first.image, second.image)
    assert first.yolo_lines() != second.yolo_lines()


@pytest.mark.parametrize("use_case", sorted(USE_CASES))
@pytest.mark.parametrize("seed", SEEDS)
def test_boxes_are_tight_bounds_of_visible_pixels(use_case, seed):
    scene = render_scene(use_case, seed=seed, size=SIZE)
    masks = _independent_label_masks(scene.layout)

    expected = [_bounds(masks[i]) for i in scene.label_indices]
    assert scene.boxes.tolist() == expected
    # labelled objects are mostly visible; the others mostly hidden, outside or tiny
    for index, label in enumerate(scene.layout.labels):
        visible = int(masks[index].sum())
        share = visible / _full_area(scene.layout, index)
        if index in scene.label_indices:
            assert share >= label.min_visible
        elif visible:
            x1, y1, x2, y2 = _bounds(masks[index])
            assert share < label.min_visible or min(x2 - x1, y2 - y1) < 3


def _full_area(layout: SceneLayout, label_index: int) -> int:
    """Pixels of a label drawn alone on a canvas big enough for the whole object."""
    owned = [d for d in layout.drawables if label_index in d.owners]
    points = np.concatenate([np.asarray(p.points) for d in owned for p in d.parts])
    x0, y0 = np.floor(points.min(axis=0)).astype(int) - 16
    x1, y1 = np.ceil(points.max(axis=0)).astype(int) + 16
    canvas = np.zeros((y1 - y0, x1 - x0), dtype=np.uint8)
    for drawable in owned:
        for part in drawable.parts:
            part.draw(canvas, (x0, y0), 255)
    return int(np.count_nonzero(canvas))


@pytest.mark.parametrize("use_case", sorted(USE_CASES))
def test_scene_contents(use_case):
    scene = render_scene(use_case, seed=11, size=SIZE)
    width, height = SIZE

    assert scene.image.shape == (height, width, 3) and scene.image.dtype == np.uint8
    assert scene.classes == USE_CASES[use_case].classes
    assert len(scene) > 0
    assert np.all(scene.boxes[:, :2] >= 0)
    assert np.all(scene.boxes[:, 2] <= width) and np.all(scene.boxes[:, 3] <= height)
    assert np.all(scene.boxes[:, 2:] > scene.boxes[:, :2])
    assert set(scene.class_ids.tolist()) <= set(range(len(scene.classes)))


def test_yolo_lines_are_normalised_boxes():
    scene = render_scene("fish", seed=4, size=SIZE, n_fish=6)
    width, height = SIZE

    parsed = np.array([[float(v) for v in line.split()] for line in scene.yolo_lines()])
    assert parsed[:, 0].tolist() == scene.class_ids.tolist()
    cx, cy, bw, bh = parsed[:, 1:].T
    rebuilt = np.stack(
        [
            (cx - bw / 2) * width,
            (cy - bh / 2) * height,
            (cx + bw / 2) * width,
            (cy + bh / 2) * height,
        ],
        axis=1,
    )
    assert np.allclose(rebuilt, scene.boxes, atol=1e-3)
    assert np.all((parsed[:, 1:] >= 0) & (parsed[:, 1:] <= 1))


def test_ppe_helmet_sits_inside_its_wearers_box():
    scene = render_scene("ppe", seed=8, size=(640, 480), n_persons=3, helmet_ratio=1.0)
    persons = scene.boxes[scene.class_ids == 0]
    helmets = scene.boxes[scene.class_ids == 1]

    assert len(helmets) == len(persons) == 3
    for helmet in helmets:
        inside = (
            (persons[:, 0] <= helmet[0])
            & (persons[:, 1] <= helmet[1])
            & (persons[:, 2] >= helmet[2])
            & (persons[:, 3] >= helmet[3])
        )
        assert inside.any()
        wearer = persons[inside][0]
        assert helmet[1] == wearer[1]  # the helmet is the top of its wearer


def test_ppe_without_helmets_has_only_persons():
    scene = render_scene("ppe", seed=3, size=SIZE, n_persons=2, helmet_ratio=0.0)
    assert scene.counts() == {"person": 2, "helmet": 0}


def test_scene_parameters_change_the_scene():
    shelf = render_scene("shelf", seed=1, size=SIZE, n_boards=3)
    fish = render_scene("fish", seed=1, size=SIZE, n_fish=0)

    assert shelf.extras["boards"] == 3
    assert len(fish) == 0
    assert fish.extras["region"][0] == [0.5, 0.3]


def test_unknown_use_case_is_rejected():
    with pytest.raises(ValueError, match="unknown use case 'cars'.*fish.*ppe.*shelf"):
        render_scene("cars")


def test_unknown_scene_parameter_is_rejected():
    with pytest.raises(ValueError, match=r"unknown scene parameter\(s\) \['n_bottles'\].*allowed"):
        render_scene("shelf", n_bottles=3)


@pytest.mark.parametrize(
    ("use_case", "params", "message"),
    [
        ("shelf", {"n_boards": 9}, "n_boards must be 1..4"),
        ("fish", {"n_fish": -1}, "n_fish must be 0..30"),
        ("fish", {"region": [(0, 0), (1, 1)]}, "at least 3 corners"),
        ("fish", {"region": [(0, 0), (1, 1), (1, 0), (0, 1)]}, "convex"),
        ("ppe", {"helmet_ratio": 2}, "helmet_ratio must be within 0..1"),
    ],
)
def test_bad_scene_parameters_are_explained(use_case, params, message):
    with pytest.raises(ValueError, match=message):
        render_scene(use_case, size=SIZE, **params)


def test_too_small_size_is_rejected():
    with pytest.raises(ValueError, match="at least 64x64.*got 32x240"):
        render_scene("shelf", size=(32, 240))


def test_render_accepts_a_generator():
    first = USE_CASES["fish"].render(np.random.default_rng(9), SIZE)
    second = USE_CASES["fish"].render(9, SIZE)
    assert np.array_equal(first.image, second.image)


@pytest.mark.parametrize("use_case", sorted(USE_CASES))
def test_painted_pixels_match_the_shapes_behind_the_labels(use_case):
    layout = USE_CASES[use_case].layout(21, SIZE)
    layout.lighting, layout.noise_sigma, layout.blur_sigma = None, 0.0, 0.0
    width, height = SIZE
    pad = 200
    expected = np.zeros((height + 2 * pad, width + 2 * pad, 3), dtype=np.uint8)
    expected[pad : pad + height, pad : pad + width] = layout.background
    for drawable in layout.drawables:
        for part in drawable.parts:
            part.draw(expected, (-pad, -pad), part.color)

    scene = compose(layout, np.random.default_rng(0))

    assert np.array_equal(scene.image, expected[pad : pad + height, pad : pad + width])
