"""Shelf scenes: bottles of wine, beer and soda standing on shelf boards.

Class list: ``["bottle"]``. A scene has one to four shelf boards in front of a wall (plain,
planks or tiles), a light gradient and sensor noise; bottles of three silhouettes in many
colours, with labels, caps and glare; now and then a product box between them (not a bottle,
so never labelled). Neighbouring bottles overlap a little at most.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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
    mix,
    rect_points,
    register,
    shade,
    smooth_noise,
)

CLASSES = ["bottle"]
BOTTLE_KINDS = ("wine", "beer", "soda")

# Silhouettes as (height fraction from the base, half-width as a fraction of the height).
_PROFILES: dict[str, list[tuple[float, float]]] = {
    "wine": [
        (0.0, 0.122),
        (0.025, 0.13),
        (0.6, 0.13),
        (0.655, 0.118),
        (0.705, 0.085),
        (0.75, 0.055),
        (0.78, 0.046),
        (0.985, 0.046),
        (0.99, 0.052),
        (1.0, 0.052),
    ],
    "beer": [
        (0.0, 0.118),
        (0.03, 0.125),
        (0.47, 0.125),
        (0.55, 0.115),
        (0.65, 0.082),
        (0.73, 0.058),
        (0.79, 0.048),
        (0.96, 0.048),
        (0.965, 0.058),
        (1.0, 0.058),
    ],
    "soda": [
        (0.0, 0.15),
        (0.04, 0.165),
        (0.24, 0.165),
        (0.29, 0.148),
        (0.34, 0.165),
        (0.6, 0.165),
        (0.71, 0.125),
        (0.79, 0.078),
        (0.86, 0.07),
        (0.865, 0.088),
        (0.875, 0.07),
        (0.885, 0.082),
        (1.0, 0.082),
    ],
}
_HEIGHT_RANGE = {"wine": (0.78, 0.93), "beer": (0.6, 0.76), "soda": (0.66, 0.9)}
_GLASS: dict[str, list[Color]] = {
    "wine": [(25, 70, 30), (22, 26, 32), (40, 22, 85), (20, 70, 130), (140, 150, 215)],
    "beer": [(15, 50, 100), (30, 110, 40), (165, 180, 170), (20, 40, 75)],
    "soda": [(25, 35, 70), (0, 120, 240), (60, 200, 150), (200, 170, 120), (40, 40, 200)],
}
_LABEL_COLORS: list[Color] = [
    (200, 230, 240),
    (240, 240, 240),
    (30, 30, 30),
    (40, 40, 190),
    (150, 60, 20),
    (40, 170, 220),
    (60, 140, 60),
]
_CAP_COLORS: dict[str, list[Color]] = {
    "wine": [(40, 40, 150), (30, 30, 30), (60, 170, 200), (40, 40, 40)],
    "beer": [(170, 170, 170), (60, 160, 200), (40, 40, 160), (150, 80, 30)],
    "soda": [(40, 40, 210), (240, 240, 240), (50, 150, 50), (200, 120, 30), (0, 200, 250)],
}
_WALLS: list[Color] = [
    (180, 200, 215),
    (200, 200, 200),
    (210, 190, 170),
    (70, 105, 150),
    (95, 95, 95),
    (160, 180, 160),
]
_BOARDS: list[Color] = [
    (70, 120, 170),
    (50, 90, 130),
    (225, 225, 225),
    (150, 150, 150),
    (45, 45, 45),
]
_BOX_COLORS: list[Color] = [
    (40, 140, 220),
    (180, 120, 40),
    (60, 60, 200),
    (220, 220, 220),
    (60, 160, 90),
]


@dataclass(frozen=True)
class BottleLook:
    """How one bottle looks: silhouette kind, colours and proportions.

    Attributes:
        kind: `wine`, `beer` or `soda`.
        glass: Glass (or liquid) colour.
        label: Main label colour.
        accent: Colour of the band or emblem on the label.
        cap: Cap or foil colour.
        width_scale: Multiplies the silhouette's width.
        label_band: Label span as fractions of the height (bottom, top).
        emblem: Whether the label shows an oval emblem instead of a band.
    """

    kind: str
    glass: Color
    label: Color
    accent: Color
    cap: Color
    width_scale: float
    label_band: tuple[float, float]
    emblem: bool


def random_bottle_look(
    rng: np.random.Generator, kinds: tuple[str, ...] = BOTTLE_KINDS
) -> BottleLook:
    """Draw a random bottle appearance."""
    kind = str(kinds[int(rng.integers(len(kinds)))])
    glass = jitter(rng, _GLASS[kind][int(rng.integers(len(_GLASS[kind])))], 10)
    label = jitter(rng, _LABEL_COLORS[int(rng.integers(len(_LABEL_COLORS)))], 12)
    accent = jitter(rng, _LABEL_COLORS[int(rng.integers(len(_LABEL_COLORS)))], 30)
    cap = jitter(rng, _CAP_COLORS[kind][int(rng.integers(len(_CAP_COLORS[kind])))], 10)
    if kind == "soda":
        low = rng.uniform(0.36, 0.44)
        band = (low, low + rng.uniform(0.14, 0.2))
    else:
        low = rng.uniform(0.1, 0.2)
        band = (low, low + rng.uniform(0.2, 0.32))
    return BottleLook(
        kind=kind,
        glass=glass,
        label=label,
        accent=accent,
        cap=cap,
        width_scale=float(rng.uniform(0.9, 1.15)),
        label_band=(float(band[0]), float(band[1])),
        emblem=bool(rng.random() < 0.5),
    )


def _half_width(look: BottleLook, t: np.ndarray | float, height: float) -> np.ndarray:
    profile = np.array(_PROFILES[look.kind])
    return np.interp(t, profile[:, 0], profile[:, 1]) * height * look.width_scale


def _band(
    look: BottleLook, cx: float, base_y: float, height: float, t0: float, t1: float, inset: float
) -> np.ndarray:
    """Polygon following the silhouette between heights t0 and t1, `inset` of the width."""
    ts = np.linspace(t0, t1, 12)
    half = _half_width(look, ts, height) * inset
    ys = base_y - ts * height
    right = np.stack([cx + half, ys], axis=1)
    left = np.stack([cx - half, ys], axis=1)[::-1]
    return np.concatenate([right, left])


def bottle_parts(look: BottleLook, cx: float, base_y: float, height: float) -> list[Polygon]:
    """Primitives of one bottle standing with its base centre at (cx, base_y).

    Args:
        look: Appearance.
        cx: Horizontal centre in pixels.
        base_y: Row of the base (where it stands) in pixels.
        height: Height in pixels.

    Returns:
        Polygons in painting order; every one lies inside or on the silhouette's edge.

    Examples:
        >>> look = random_bottle_look(np.random.default_rng(0))
        >>> len(bottle_parts(look, 50.0, 200.0, 120.0)) >= 4
        True
    """
    parts = [Polygon(_band(look, cx, base_y, height, 0.0, 1.0, 1.0), look.glass)]
    profile = np.array(_PROFILES[look.kind])
    shoulder_top = float(profile[np.argmax(profile[:, 1] < profile[:, 1].max() * 0.5), 0])
    glare_ts = np.linspace(0.06, shoulder_top - 0.04, 10)
    glare_half = _half_width(look, glare_ts, height)
    glare_ys = base_y - glare_ts * height
    glare = np.concatenate(
        [
            np.stack([cx - 0.45 * glare_half, glare_ys], axis=1),
            np.stack([cx - 0.7 * glare_half, glare_ys], axis=1)[::-1],
        ]
    )
    parts.append(Polygon(glare, mix(look.glass, (255, 255, 255), 0.35)))

    low, high = look.label_band
    parts.append(Polygon(_band(look, cx, base_y, height, low, high, 0.995), look.label))
    half = float(_half_width(look, (low + high) / 2, height))
    if look.emblem:
        center = (cx, base_y - (low + high) / 2 * height)
        axes = (half * 0.45, (high - low) * height * 0.3)
        parts.append(Polygon(ellipse_points(center, axes, count=24), look.accent))
    else:
        mid = (low + high) / 2
        span = (high - low) * 0.18
        parts.append(
            Polygon(_band(look, cx, base_y, height, mid - span, mid + span, 0.995), look.accent)
        )

    if look.kind == "wine":
        parts.append(Polygon(_band(look, cx, base_y, height, 0.86, 1.0, 1.06), look.cap))
    elif look.kind == "beer":
        parts.append(Polygon(_band(look, cx, base_y, height, 0.73, 0.8, 0.99), look.label))
        parts.append(Polygon(_band(look, cx, base_y, height, 0.955, 1.0, 1.05), look.cap))
    else:
        parts.append(Polygon(_band(look, cx, base_y, height, 0.885, 1.0, 1.0), look.cap))
        ridge_y = base_y - 0.94 * height
        ridge_half = float(_half_width(look, 0.94, height))
        parts.append(
            Polygon(
                rect_points(
                    cx - ridge_half,
                    ridge_y - 0.004 * height,
                    cx + ridge_half,
                    ridge_y + 0.004 * height,
                ),
                shade(look.cap, 0.7),
            )
        )
    return parts


def bottle_width(look: BottleLook, height: float) -> float:
    """Widest extent of a bottle of this look and height, in pixels."""
    return 2 * float(np.array(_PROFILES[look.kind])[:, 1].max()) * height * look.width_scale


@dataclass(frozen=True)
class PlacedBottle:
    """A bottle standing on a board: its look and where its base centre is."""

    look: BottleLook
    cx: float
    base_y: float
    height: float
    board: int


@dataclass
class ShelfPlan:
    """A shelf scene before painting: scenery, boards and the bottles on them.

    Video scenarios move the bottles and lay the plan out again every frame.
    """

    background: np.ndarray
    bottles: list[PlacedBottle]
    front_scenery: list[Drawable]
    board_rows: list[tuple[float, float]]
    lighting: np.ndarray
    noise_sigma: float
    blur_sigma: float
    extras: dict = field(default_factory=dict)

    def layout(self, offsets: np.ndarray | None = None, track_ids: bool = False) -> SceneLayout:
        """Lay the plan out, optionally with each bottle shifted by (dx, dy) pixels."""
        drawables: list[Drawable] = []
        labels: list[ObjectLabel] = []
        for index, bottle in enumerate(self.bottles):
            dx, dy = (
                (0.0, 0.0)
                if offsets is None
                else (float(offsets[index, 0]), float(offsets[index, 1]))
            )
            parts = bottle_parts(bottle.look, bottle.cx + dx, bottle.base_y + dy, bottle.height)
            labels.append(ObjectLabel(class_id=0, track_id=index if track_ids else -1))
            drawables.append(Drawable(parts, owners=(len(labels) - 1,)))
        return SceneLayout(
            background=self.background,
            drawables=drawables + self.front_scenery,
            labels=labels,
            classes=list(CLASSES),
            lighting=self.lighting,
            noise_sigma=self.noise_sigma,
            blur_sigma=self.blur_sigma,
            extras=dict(self.extras),
        )


def _wall(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    width, height = size
    base = np.asarray(jitter(rng, _WALLS[int(rng.integers(len(_WALLS)))], 15), dtype=np.float32)
    texture = smooth_noise(rng, size, cells=int(rng.integers(4, 12)))
    wall = base[None, None, :] * (0.88 + 0.24 * texture[..., None])
    style = int(rng.integers(3))
    if style == 1:
        step = rng.uniform(0.06, 0.14) * width
        for x in np.arange(rng.uniform(0, step), width, step):
            wall[:, int(x) : int(x) + 2] *= 0.72
    elif style == 2:
        step = rng.uniform(0.05, 0.1) * width
        for x in np.arange(rng.uniform(0, step), width, step):
            wall[:, int(x)] = wall[:, int(x)] * 0.6 + 90
        for y in np.arange(rng.uniform(0, step), height, step):
            wall[int(y), :] = wall[int(y), :] * 0.6 + 90
    return np.clip(wall, 0, 255)


def plan_shelf(
    rng: np.random.Generator,
    size: tuple[int, int],
    *,
    n_boards: int | None = None,
    fill: float | None = None,
    boxes: bool = True,
    cut_at_sides: bool = True,
) -> ShelfPlan:
    """Plan a shelf scene (see :func:`shelf_layout` for the parameters)."""
    width, height = size
    if n_boards is None:
        n_boards = int(rng.integers(1, 4))
    if not 1 <= int(n_boards) <= 4:
        raise ValueError(f"n_boards must be 1..4, got {n_boards!r}")
    if fill is None:
        fill = float(rng.uniform(0.55, 1.0))
    if not 0.0 <= float(fill) <= 1.0:
        raise ValueError(f"fill must be within 0..1, got {fill!r}")
    n_boards, fill = int(n_boards), float(fill)

    wall = _wall(rng, size)
    thickness = rng.uniform(0.03, 0.045) * height
    top_margin = rng.uniform(0.02, 0.07) * height
    last_top = height - thickness - rng.uniform(0.0, 0.05) * height
    compartment = (last_top - top_margin) / n_boards
    board_color = np.asarray(
        jitter(rng, _BOARDS[int(rng.integers(len(_BOARDS)))], 10), dtype=np.float32
    )
    board_rows: list[tuple[float, float]] = []
    for k in range(n_boards):
        top = top_margin + (k + 1) * compartment
        shadow_top = int(top - compartment + thickness) if k else 0
        # the board above shades the top of each compartment
        ramp = np.linspace(0.7, 1.0, max(int(0.25 * compartment), 1), dtype=np.float32)
        rows = slice(max(shadow_top, 0), max(shadow_top, 0) + ramp.size)
        wall[rows] *= ramp[: wall[rows].shape[0], None, None]
        lip = max(2.0, 0.3 * thickness)
        wall[int(top - lip) : int(top)] = board_color * 1.2
        wall[int(top) : int(top + thickness)] = board_color
        wall[int(top + thickness) : int(top + thickness + 2)] = board_color * 0.5
        board_rows.append((top, top + thickness))
    if rng.random() < 0.5:
        side = int(rng.uniform(0.02, 0.05) * width)
        wall[:, :side] = board_color * 0.85
        wall[:, width - side :] = board_color * 0.85
    background = np.clip(wall, 0, 255).astype(np.uint8)

    front: list[Drawable] = []
    bottles: list[PlacedBottle] = []
    for k, (top, bottom) in enumerate(board_rows):
        ceiling = top_margin if k == 0 else board_rows[k - 1][1]
        room = top - ceiling - 3
        x = rng.uniform(-0.08, 0.0) * width if cut_at_sides else rng.uniform(0.01, 0.04) * width
        limit = width + (0.05 * width if cut_at_sides else -0.01 * width)
        while True:
            if rng.random() > fill:
                x += rng.uniform(0.1, 0.3) * room
                if x >= limit:
                    break
                continue
            if boxes and rng.random() < 0.08:
                box_w, box_h = rng.uniform(0.25, 0.5) * room, rng.uniform(0.3, 0.6) * room
                if x + box_w > limit:
                    break
                color = jitter(rng, _BOX_COLORS[int(rng.integers(len(_BOX_COLORS)))], 15)
                front.append(
                    Drawable(
                        [
                            Polygon(rect_points(x, top - box_h, x + box_w, top), color),
                            Polygon(
                                rect_points(
                                    x + 0.15 * box_w,
                                    top - 0.7 * box_h,
                                    x + 0.85 * box_w,
                                    top - 0.45 * box_h,
                                ),
                                mix(color, (255, 255, 255), 0.6),
                            ),
                        ]
                    )
                )
                x += box_w + rng.uniform(0.05, 0.2) * room
                continue
            look = random_bottle_look(rng)
            low, high = _HEIGHT_RANGE[look.kind]
            bottle_height = rng.uniform(low, high) * room
            bottle_w = bottle_width(look, bottle_height)
            if x + bottle_w > limit:
                break
            bottles.append(PlacedBottle(look, x + bottle_w / 2, top, bottle_height, k))
            x += bottle_w * (1 + rng.uniform(-0.12, 0.35))
        for _ in range(int(rng.integers(0, 4))):
            tag_x = rng.uniform(0.05, 0.9) * width
            tag_w, tag_h = 0.06 * width, 0.6 * (bottom - top)
            tag_y = top + 0.2 * (bottom - top)
            front.append(
                Drawable(
                    [
                        Polygon(
                            rect_points(tag_x, tag_y, tag_x + tag_w, tag_y + tag_h), (235, 240, 240)
                        ),
                        Polyline(
                            np.array(
                                [
                                    [tag_x + 0.15 * tag_w, tag_y + tag_h / 2],
                                    [tag_x + 0.7 * tag_w, tag_y + tag_h / 2],
                                ]
                            ),
                            (40, 40, 40),
                            thickness=1,
                        ),
                    ]
                )
            )
    return ShelfPlan(
        background=background,
        bottles=bottles,
        front_scenery=front,
        board_rows=board_rows,
        lighting=lighting_field(
            rng, size, strength=rng.uniform(0.1, 0.4), vignette=rng.uniform(0.0, 0.25)
        ),
        noise_sigma=float(rng.uniform(1.5, 5.0)),
        blur_sigma=float(rng.uniform(0.4, 0.8)),
        extras={"boards": n_boards},
    )


def shelf_layout(
    rng: np.random.Generator,
    size: tuple[int, int],
    *,
    n_boards: int | None = None,
    fill: float | None = None,
    boxes: bool = True,
    cut_at_sides: bool = True,
) -> SceneLayout:
    """Lay out a shelf scene.

    Args:
        rng: Random generator.
        size: (width, height).
        n_boards: Number of shelf boards, 1..4 (random 1..3 when None).
        fill: Chance that each slot holds something, 0..1 (random 0.55..1 when None).
        boxes: Whether product boxes (never labelled) stand between bottles now and then.
        cut_at_sides: Whether bottles may stand partly outside the picture at its sides.

    Returns:
        The layout; its extras hold `boards`.
    """
    return plan_shelf(
        rng, size, n_boards=n_boards, fill=fill, boxes=boxes, cut_at_sides=cut_at_sides
    ).layout()


SHELF = register(
    UseCase(
        name="shelf",
        classes=list(CLASSES),
        description="Bottles of wine, beer and soda on shelf boards; count them to alert when few remain.",
        build_layout=shelf_layout,
    )
)
