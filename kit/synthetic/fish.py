"""Fish scenes: fish of many colours and sizes swimming in blue-green water.

Class list: ``["fish"]``. The water has a depth gradient, moving-light caustics, an
optional sand floor with rocks and weed, and bubbles (never labelled). A fish is a body
ellipse with a forked tail, a dorsal fin, an eye and, for some looks, stripes; fish heading
left are mirrored so their backs stay up. Every scene carries a region of interest (a
normalised convex polygon) in ``extras["region"]``; the `fish_arriving` video scenario fills it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from kit.synthetic.core import (
    Color,
    Drawable,
    ObjectLabel,
    Polygon,
    Polyline,
    SceneLayout,
    UseCase,
    ellipse_points,
    jitter,
    lighting_field,
    register,
    rotate,
    shade,
    smooth_noise,
    vertical_gradient,
)

CLASSES = ["fish"]

DEFAULT_REGION: list[tuple[float, float]] = [(0.5, 0.3), (0.93, 0.26), (0.95, 0.86), (0.46, 0.9)]
"""The default region of interest, normalised (x, y) corners of a convex polygon."""

# (body, belly, fins, stripes or None)
_PALETTES: list[tuple[Color, Color, Color, Color | None]] = [
    ((0, 120, 245), (80, 190, 255), (0, 90, 220), None),  # goldfish
    ((0, 110, 240), (60, 170, 255), (20, 20, 20), (245, 245, 245)),  # clownfish
    ((20, 200, 245), (150, 235, 255), (0, 150, 220), None),  # yellow
    ((40, 40, 200), (110, 120, 235), (30, 30, 150), None),  # red
    ((200, 110, 20), (230, 180, 120), (20, 200, 240), None),  # blue tang
    ((150, 150, 140), (215, 215, 210), (110, 110, 100), None),  # silver
    ((70, 80, 75), (150, 160, 150), (40, 50, 45), (30, 40, 35)),  # perch
    ((20, 170, 250), (130, 220, 255), (20, 20, 30), (25, 25, 35)),  # striped yellow
]
_WATER_TOPS: list[Color] = [(215, 185, 110), (200, 190, 120), (190, 200, 130), (220, 170, 90)]
_WATER_BOTTOMS: list[Color] = [(110, 60, 10), (90, 80, 20), (80, 90, 30), (120, 50, 20)]


@dataclass(frozen=True)
class FishLook:
    """How one fish looks.

    Attributes:
        body: Body colour.
        belly: Belly colour.
        fins: Fin and tail colour.
        stripes: Stripe colour, or None for no stripes.
        n_stripes: Number of vertical stripes.
        depth: Body height as a fraction of the length (0.3..0.45).
        tail: Tail size as a fraction of the length.
    """

    body: Color
    belly: Color
    fins: Color
    stripes: Color | None
    n_stripes: int
    depth: float
    tail: float


def random_fish_look(rng: np.random.Generator) -> FishLook:
    """Draw a random fish appearance."""
    body, belly, fins, stripes = _PALETTES[int(rng.integers(len(_PALETTES)))]
    return FishLook(
        body=jitter(rng, body, 15),
        belly=jitter(rng, belly, 10),
        fins=jitter(rng, fins, 10),
        stripes=stripes,
        n_stripes=int(rng.integers(2, 4)) if stripes is not None else 0,
        depth=float(rng.uniform(0.3, 0.44)),
        tail=float(rng.uniform(0.2, 0.28)),
    )


def fish_parts(
    look: FishLook,
    center: Sequence[float],
    length: float,
    heading_deg: float,
    tail_swing_deg: float = 0.0,
) -> list[Polygon | Polyline]:
    """Primitives of one fish.

    Args:
        look: Appearance.
        center: Centre (x, y) of the body ellipse, in pixels.
        length: Nose to tail tip, in pixels.
        heading_deg: Swimming direction, degrees clockwise from +x (screen y points down);
            fish heading left are mirrored so that their backs stay up.
        tail_swing_deg: Tail angle for swimming animation.

    Returns:
        Polygons in painting order.

    Examples:
        >>> look = random_fish_look(np.random.default_rng(0))
        >>> len(fish_parts(look, (100, 100), 60, heading_deg=20)) >= 5
        True
    """
    a = 0.38 * length
    b = 0.5 * look.depth * length
    rear = -a
    tail_len = look.tail * length * 1.35
    tail = np.array(
        [
            [rear + 0.05 * length, 0.0],
            [rear - tail_len, -look.tail * length * 0.75],
            [rear - tail_len * 0.7, 0.0],
            [rear - tail_len, look.tail * length * 0.75],
        ]
    )
    tail = rotate(tail, tail_swing_deg, origin=(rear + 0.05 * length, 0.0))
    dorsal = np.array([[-0.22 * a, -0.85 * b], [0.25 * a, -0.92 * b], [-0.45 * a, -1.45 * b]])
    pectoral = np.array([[0.2 * a, 0.25 * b], [-0.15 * a, 0.45 * b], [0.0, 0.75 * b]])
    body = ellipse_points((0, 0), (a, b), count=36)
    belly = ellipse_points((0.05 * a, 0.38 * b), (0.78 * a, 0.5 * b), count=28)
    eye_center = np.array([0.62 * a, -0.22 * b])
    eye_r = max(0.06 * length, 1.2)

    local: list[tuple[np.ndarray, Color]] = [
        (tail, look.fins),
        (dorsal, look.fins),
        (body, look.body),
        (belly, look.belly),
    ]
    if look.stripes is not None:
        for k in range(look.n_stripes):
            x = a * (0.3 - 0.45 * k)
            half_height = 0.92 * b * np.sqrt(max(0.0, 1 - (x / a) ** 2))
            local.append((ellipse_points((x, 0), (0.07 * a, half_height), count=20), look.stripes))
    local.append((pectoral, shade(look.fins, 0.9)))
    local.append((ellipse_points(eye_center, (eye_r, eye_r), count=16), (240, 240, 240)))
    local.append(
        (
            ellipse_points(eye_center + (0.2 * eye_r, 0), (0.55 * eye_r, 0.55 * eye_r), count=12),
            (15, 15, 15),
        )
    )

    facing_left = np.cos(np.deg2rad(heading_deg)) < 0
    parts: list[Polygon | Polyline] = []
    for points, color in local:
        pts = points.copy()
        if facing_left:
            pts[:, 1] = -pts[:, 1]
        parts.append(
            Polygon(rotate(pts, heading_deg) + np.asarray(center, dtype=np.float64), color)
        )
    return parts


def _water(rng: np.random.Generator, size: tuple[int, int], floor: bool) -> np.ndarray:
    width, height = size
    pick = int(rng.integers(len(_WATER_TOPS)))
    water = vertical_gradient(
        size, jitter(rng, _WATER_TOPS[pick], 15), jitter(rng, _WATER_BOTTOMS[pick], 15)
    )
    field = smooth_noise(rng, size, cells=int(rng.integers(10, 22)))
    caustics = np.abs(np.sin(field * rng.uniform(14, 22)))
    web = np.clip(1 - caustics / 0.16, 0, 1) ** 2
    depth_fade = np.linspace(1.0, 0.25, height, dtype=np.float32)[:, None]
    water += (web * depth_fade * rng.uniform(35, 60))[..., None]
    water *= (0.9 + 0.2 * smooth_noise(rng, size, cells=4))[..., None]
    if floor:
        sand_top = rng.uniform(0.8, 0.92) * height
        ys = np.arange(height)[:, None]
        wave = sand_top + 0.02 * height * np.sin(
            np.arange(width) / width * rng.uniform(3, 9) + rng.uniform(0, 6)
        )
        sand = ys >= wave[None, :]
        sand_color = np.asarray(jitter(rng, (110, 165, 185), 15), dtype=np.float32)
        grain = 0.85 + 0.3 * smooth_noise(rng, size, cells=60)
        water[sand] = (sand_color[None, :] * grain[sand][:, None]) * 0.8
        for _ in range(int(rng.integers(1, 5))):
            cx, cy = rng.uniform(0, width), rng.uniform(sand_top, height)
            axes = (int(rng.uniform(0.03, 0.08) * width), int(rng.uniform(0.02, 0.04) * height))
            cv2.ellipse(
                water,
                (int(cx), int(cy)),
                axes,
                0,
                0,
                360,
                shade((90, 100, 100), rng.uniform(0.5, 1.0)),
                -1,
            )
        for _ in range(int(rng.integers(0, 4))):
            x = rng.uniform(0, width)
            ys_weed = np.linspace(sand_top + 5, sand_top - rng.uniform(0.15, 0.35) * height, 12)
            xs_weed = x + 0.02 * width * np.sin(np.linspace(0, rng.uniform(2, 5), 12))
            pts = np.stack([xs_weed, ys_weed], axis=1).astype(np.int32)
            cv2.polylines(
                water, [pts], False, jitter(rng, (40, 110, 40), 15), int(rng.integers(3, 7))
            )
    return np.clip(water, 0, 255).astype(np.uint8)


def bubble_drawables(
    rng: np.random.Generator, size: tuple[int, int], count: int, rise: float = 0.0
) -> list[Drawable]:
    """Small rising bubbles in a few columns (scenery, never labelled).

    Args:
        rng: Random generator (drawn from a fixed number of times, whatever `rise`).
        size: (width, height).
        count: Number of bubbles.
        rise: How far the bubbles have risen, in pixels (for videos).
    """
    width, height = size
    drawables = []
    color = (245, 235, 220)
    for _ in range(count):
        x = rng.uniform(0, width)
        y0 = rng.uniform(0, height)
        radius = rng.uniform(0.004, 0.011) * width
        y = (y0 - rise * rng.uniform(0.7, 1.3)) % height
        x = x + 3 * np.sin(y / 20)
        rim = ellipse_points((x, y), (radius, radius), count=16)
        drawables.append(Drawable([Polyline(rim, color, thickness=1, closed=True)]))
    return drawables


def validate_region(region: Sequence[Sequence[float]]) -> list[tuple[float, float]]:
    """Check a normalised convex region and return it as a list of (x, y) tuples.

    Raises:
        ValueError: If the region has fewer than 3 corners, corners outside 0..1, or is
            not convex.
    """
    try:
        points = [(float(x), float(y)) for x, y in region]
    except (TypeError, ValueError):
        raise ValueError(f"region must be a list of (x, y) pairs in 0..1, got {region!r}") from None
    if len(points) < 3:
        raise ValueError(f"region needs at least 3 corners, got {len(points)}")
    array = np.array(points)
    if array.min() < 0 or array.max() > 1:
        raise ValueError(f"region corners must be normalised to 0..1, got {points}")
    edges = np.roll(array, -1, axis=0) - array
    turns = (
        edges[:, 0] * np.roll(edges, -1, axis=0)[:, 1]
        - edges[:, 1] * np.roll(edges, -1, axis=0)[:, 0]
    )
    if not (np.all(turns >= 0) or np.all(turns <= 0)):
        raise ValueError(f"region must be a convex polygon, got {points}")
    return points


def water_plan(rng: np.random.Generator, size: tuple[int, int], floor: bool | None = None) -> dict:
    """Scenery shared by still scenes and videos: water picture, lighting, noise."""
    if floor is None:
        floor = bool(rng.random() < 0.6)
    return {
        "background": _water(rng, size, floor),
        "lighting": lighting_field(
            rng, size, strength=rng.uniform(0.05, 0.3), vignette=rng.uniform(0.0, 0.3)
        ),
        "noise_sigma": float(rng.uniform(1.5, 5.0)),
        "blur_sigma": float(rng.uniform(0.4, 0.9)),
    }


def fish_layout(
    rng: np.random.Generator,
    size: tuple[int, int],
    *,
    n_fish: int | None = None,
    min_length: float = 0.06,
    max_length: float = 0.18,
    max_tilt: float = 35.0,
    floor: bool | None = None,
    region: Sequence[Sequence[float]] | None = None,
) -> SceneLayout:
    """Lay out a fish scene.

    Args:
        rng: Random generator.
        size: (width, height).
        n_fish: Number of fish to place, 0..30 (random 1..12 when None); fewer are placed
            when they do not fit without heavy overlap.
        min_length: Shortest fish, as a fraction of the image width.
        max_length: Longest fish, as a fraction of the image width.
        max_tilt: Largest tilt from horizontal, degrees (0..90).
        floor: Whether a sand floor with rocks and weed is drawn (random when None).
        region: Region of interest as normalised convex polygon (default: `DEFAULT_REGION`).

    Returns:
        The layout; its extras hold `region`.
    """
    width, height = size
    if n_fish is None:
        n_fish = int(rng.integers(1, 13))
    if not 0 <= int(n_fish) <= 30:
        raise ValueError(f"n_fish must be 0..30, got {n_fish!r}")
    if not 0 < min_length <= max_length <= 0.5:
        raise ValueError(
            f"need 0 < min_length <= max_length <= 0.5, got min_length={min_length!r}, max_length={max_length!r}"
        )
    if not 0 <= max_tilt <= 90:
        raise ValueError(f"max_tilt must be 0..90 degrees, got {max_tilt!r}")
    region_points = validate_region(DEFAULT_REGION if region is None else region)
    plan = water_plan(rng, size, floor)

    placed: list[tuple[float, float, float]] = []
    drawables: list[Drawable] = []
    labels: list[ObjectLabel] = []
    for _ in range(int(n_fish)):
        for _attempt in range(30):
            length = rng.uniform(min_length, max_length) * width
            cx = rng.uniform(-0.1 * length, width + 0.1 * length)
            cy = rng.uniform(0.05 * height, 0.95 * height)
            if all(
                np.hypot(cx - x, cy - y) > 0.55 * (length + other) / 2 for x, y, other in placed
            ):
                break
        else:
            continue
        placed.append((cx, cy, length))
        heading = rng.uniform(-max_tilt, max_tilt) + (180.0 if rng.random() < 0.5 else 0.0)
        look = random_fish_look(rng)
        labels.append(ObjectLabel(class_id=0))
        parts = fish_parts(look, (cx, cy), length, heading, tail_swing_deg=rng.uniform(-15, 15))
        drawables.append(Drawable(parts, owners=(len(labels) - 1,)))
    bubbles = bubble_drawables(rng, size, int(rng.integers(0, 25)))
    return SceneLayout(
        background=plan["background"],
        drawables=drawables + bubbles,
        labels=labels,
        classes=list(CLASSES),
        lighting=plan["lighting"],
        noise_sigma=plan["noise_sigma"],
        blur_sigma=plan["blur_sigma"],
        extras={"region": [list(p) for p in region_points]},
    )


FISH = register(
    UseCase(
        name="fish",
        classes=list(CLASSES),
        description="Fish in water; count those inside a region to alert when the count keeps rising.",
        build_layout=fish_layout,
    )
)
