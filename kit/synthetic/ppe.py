"""PPE scenes: people on a construction site, with or without a hard hat.

Class list: ``["person", "helmet"]``. The site has a sky, distant buildings, a crane, the
ground, and props such as containers, blocks, fences and traffic cones (never labelled).
People stand or walk at different distances (farther is smaller and higher in the picture),
in varied clothes, skin tones and hair; hats that are not helmets (beanies) appear too. A
helmet is a glossy dome with a brim in yellow, white, orange or red; it has its own box,
and a worn helmet also counts as part of its wearer's box.
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
    mix,
    rect_points,
    register,
    rotate,
    shade,
    smooth_noise,
    vertical_gradient,
)

CLASSES = ["person", "helmet"]
PERSON, HELMET = 0, 1

HEAD_RADIUS = 0.09
"""Head radius as a fraction of a worker's height (a little large, so helmets stay legible)."""

HELMET_COLORS: dict[str, Color] = {
    "yellow": (0, 215, 255),
    "white": (235, 240, 240),
    "orange": (0, 130, 255),
    "red": (30, 30, 210),
}
_SKIN: list[Color] = [(170, 190, 225), (125, 155, 205), (90, 125, 175), (60, 90, 135), (40, 60, 90)]
_SHIRTS: list[Color] = [
    (150, 80, 30),
    (128, 128, 128),
    (225, 225, 225),
    (40, 40, 170),
    (50, 120, 50),
    (80, 40, 20),
    (35, 35, 35),
    (60, 110, 150),
]
_PANTS: list[Color] = [(110, 70, 40), (60, 60, 60), (110, 150, 170), (30, 30, 30), (70, 40, 30)]
_HAIR: list[Color] = [(20, 20, 25), (30, 45, 70), (40, 70, 110), (110, 150, 180), (140, 140, 140)]
_BEANIES: list[Color] = [(40, 40, 40), (80, 40, 20), (40, 30, 110), (40, 80, 40)]
_VESTS: list[Color] = [(40, 230, 210), (0, 140, 255)]
_GROUND: list[Color] = [(60, 100, 140), (115, 120, 125), (110, 160, 190), (80, 110, 120)]


@dataclass(frozen=True)
class PersonLook:
    """How one worker looks.

    Attributes:
        skin: Skin colour.
        shirt: Shirt colour.
        pants: Trousers colour.
        shoes: Shoe colour.
        hair: Hair colour, or None for a shaved head.
        long_hair: Whether the hair reaches the shoulders.
        beanie: Knitted-hat colour, or None; a beanie is not a helmet.
        vest: High-visibility vest colour, or None.
        short_sleeves: Whether the forearms show skin.
        helmet: Helmet colour, or None for no helmet.
    """

    skin: Color
    shirt: Color
    pants: Color
    shoes: Color
    hair: Color | None
    long_hair: bool
    beanie: Color | None
    vest: Color | None
    short_sleeves: bool
    helmet: Color | None


def _pick(rng: np.random.Generator, colors: Sequence[Color], amount: float = 10) -> Color:
    return jitter(rng, colors[int(rng.integers(len(colors)))], amount)


def random_person_look(rng: np.random.Generator, helmet: bool) -> PersonLook:
    """Draw a random worker appearance, wearing a helmet or not."""
    helmet_color = _pick(rng, list(HELMET_COLORS.values()), 8) if helmet else None
    beanie = _pick(rng, _BEANIES) if not helmet and rng.random() < 0.15 else None
    return PersonLook(
        skin=_pick(rng, _SKIN),
        shirt=_pick(rng, _SHIRTS, 15),
        pants=_pick(rng, _PANTS, 12),
        shoes=_pick(rng, [(30, 30, 30), (30, 50, 80), (60, 60, 60)]),
        hair=None if rng.random() < 0.12 else _pick(rng, _HAIR),
        long_hair=bool(rng.random() < 0.25),
        beanie=beanie,
        vest=_pick(rng, _VESTS, 8) if rng.random() < 0.5 else None,
        short_sleeves=bool(rng.random() < 0.35),
        helmet=helmet_color,
    )


@dataclass(frozen=True)
class PersonPose:
    """Limb angles of a worker facing the camera.

    Angles are degrees from straight down; positive turns the limb's far end toward the
    image's right. "left" and "right" are sides of the image, not of the person.

    Attributes:
        left_arm: (upper arm, forearm relative to the upper arm) of the arm on the image's left.
        right_arm: The same for the arm on the image's right.
        left_leg: Leg on the image's left.
        right_leg: Leg on the image's right.
        right_hand: If set, the right hand reaches this image point (x, y) instead of
            following `right_arm`; used to lift a helmet off.
    """

    left_arm: tuple[float, float] = (-12.0, -8.0)
    right_arm: tuple[float, float] = (12.0, 8.0)
    left_leg: float = -4.0
    right_leg: float = 4.0
    right_hand: tuple[float, float] | None = None


def random_pose(rng: np.random.Generator) -> PersonPose:
    """Draw a standing, walking or gesturing pose."""
    left = (-rng.uniform(4, 25), -rng.uniform(0, 35))
    right = (rng.uniform(4, 25), rng.uniform(0, 35))
    if rng.random() < 0.2:
        right = (rng.uniform(60, 130), rng.uniform(-40, 20))
    if rng.random() < 0.4:
        swing = rng.uniform(10, 22)
        legs = (-swing, swing) if rng.random() < 0.5 else (swing, -swing)
    else:
        legs = (-rng.uniform(2, 9), rng.uniform(2, 9))
    return PersonPose(left_arm=left, right_arm=right, left_leg=legs[0], right_leg=legs[1])


def _direction(angle_deg: float) -> np.ndarray:
    theta = np.deg2rad(angle_deg)
    return np.array([np.sin(theta), np.cos(theta)])


def _reach(
    shoulder: np.ndarray, target: np.ndarray, upper: float, fore: float, bend: float
) -> tuple[np.ndarray, np.ndarray]:
    """Elbow and hand of a two-segment arm reaching for `target` (as far as it can)."""
    offset = target - shoulder
    distance = float(np.hypot(*offset))
    direction = offset / max(distance, 1e-6)
    distance = float(np.clip(distance, abs(upper - fore) + 1e-3, upper + fore - 1e-3))
    along = (upper**2 - fore**2 + distance**2) / (2 * distance)
    across = np.sqrt(max(upper**2 - along**2, 0.0))
    normal = np.array([-direction[1], direction[0]]) * bend
    elbow = shoulder + direction * along + normal * across
    return elbow, shoulder + direction * distance


@dataclass(frozen=True)
class Figure:
    """A drawn worker: primitives and the points a scenario needs.

    Attributes:
        body: Primitives of everything but the right hand, in painting order.
        right_hand: Primitives of the right hand (painted after a held helmet).
        head_center: Centre of the head (x, y).
        head_radius: Radius of the head.
        right_hand_point: Where the right hand is (x, y).
    """

    body: list[Polygon | Polyline]
    right_hand: list[Polygon | Polyline]
    head_center: np.ndarray
    head_radius: float
    right_hand_point: np.ndarray


def person_figure(
    look: PersonLook, feet_x: float, feet_y: float, height: float, pose: PersonPose
) -> Figure:
    """Primitives of a worker standing with feet centred at (feet_x, feet_y).

    Args:
        look: Appearance (the helmet is drawn separately with :func:`helmet_parts`).
        feet_x: Horizontal centre in pixels.
        feet_y: Row of the soles in pixels.
        height: Height from soles to the top of the head, in pixels.
        pose: Limb angles.

    Examples:
        >>> look = random_person_look(np.random.default_rng(0), helmet=True)
        >>> figure = person_figure(look, 100, 300, 200, PersonPose())
        >>> round(figure.head_radius)
        18
    """
    h = height
    top = feet_y - h
    cx = feet_x
    radius = HEAD_RADIUS * h
    head = np.array([cx, top + 0.015 * h + radius])
    shoulder_y = top + 0.215 * h
    hip_y = top + 0.53 * h
    limb_leg = max(2, round(0.085 * h))
    limb_arm = max(2, round(0.06 * h))
    parts: list[Polygon | Polyline] = []

    for side, angle in ((-1, pose.left_leg), (1, pose.right_leg)):
        hip = np.array([cx + side * 0.055 * h, hip_y])
        knee = hip + _direction(angle) * 0.24 * h
        foot = knee + _direction(angle * 0.6) * 0.235 * h
        parts.append(Polyline(np.array([hip, knee, foot]), look.pants, thickness=limb_leg))
        toe = foot + np.array([side * 0.025 * h, 0.0])
        parts.append(Polygon(ellipse_points(toe, (0.05 * h, 0.022 * h), count=16), look.shoes))

    torso = np.array(
        [
            [cx - 0.1 * h, shoulder_y - 0.005 * h],
            [cx + 0.1 * h, shoulder_y - 0.005 * h],
            [cx + 0.13 * h, shoulder_y + 0.03 * h],
            [cx + 0.11 * h, hip_y],
            [cx - 0.11 * h, hip_y],
            [cx - 0.13 * h, shoulder_y + 0.03 * h],
        ]
    )
    parts.append(Polygon(torso, look.shirt))
    if look.vest is not None:
        vest = np.array(
            [
                [cx - 0.1 * h, shoulder_y],
                [cx - 0.03 * h, shoulder_y],
                [cx, shoulder_y + 0.09 * h],
                [cx + 0.03 * h, shoulder_y],
                [cx + 0.1 * h, shoulder_y],
                [cx + 0.115 * h, shoulder_y + 0.04 * h],
                [cx + 0.105 * h, hip_y - 0.03 * h],
                [cx - 0.105 * h, hip_y - 0.03 * h],
                [cx - 0.115 * h, shoulder_y + 0.04 * h],
            ]
        )
        parts.append(Polygon(vest, look.vest))
        for row in (0.33, 0.42):
            y = top + row * h
            parts.append(
                Polygon(
                    rect_points(cx - 0.105 * h, y, cx + 0.105 * h, y + 0.018 * h), (205, 205, 200)
                )
            )
    parts.append(
        Polygon(
            rect_points(cx - 0.11 * h, hip_y - 0.02 * h, cx + 0.11 * h, hip_y),
            shade(look.pants, 0.6),
        )
    )
    parts.append(
        Polygon(
            rect_points(cx - 0.035 * h, top + 0.17 * h, cx + 0.035 * h, shoulder_y + 0.01 * h),
            shade(look.skin, 0.85),
        )
    )
    if look.hair is not None and look.long_hair:
        parts.append(
            Polygon(
                rect_points(
                    head[0] - 1.05 * radius,
                    head[1] - 0.3 * radius,
                    head[0] + 1.05 * radius,
                    head[1] + 1.5 * radius,
                ),
                look.hair,
            )
        )
    parts.append(Polygon(ellipse_points(head, (radius * 0.92, radius), count=28), look.skin))
    if look.hair is not None:
        parts.append(
            Polygon(
                ellipse_points(
                    head - (0, 0.08 * radius), (0.98 * radius, 1.0 * radius), 0, 185, 355, count=20
                ),
                look.hair,
            )
        )
    if look.beanie is not None:
        parts.append(
            Polygon(
                ellipse_points(
                    head - (0, 0.2 * radius), (1.0 * radius, 1.05 * radius), 0, 180, 360, count=20
                ),
                look.beanie,
            )
        )
        parts.append(
            Polygon(
                rect_points(
                    head[0] - 1.0 * radius,
                    head[1] - 0.35 * radius,
                    head[0] + 1.0 * radius,
                    head[1] - 0.05 * radius,
                ),
                shade(look.beanie, 0.75),
            )
        )
    for dx in (-0.35, 0.35):
        eye = head + np.array([dx * radius, 0.15 * radius])
        parts.append(
            Polygon(ellipse_points(eye, (0.1 * radius, 0.1 * radius), count=8), (30, 30, 30))
        )

    hand_parts: list[Polygon | Polyline] = []
    right_hand_point = np.zeros(2)
    sleeve = look.skin if look.short_sleeves else look.shirt
    for side, (upper_angle, fore_angle) in ((-1, pose.left_arm), (1, pose.right_arm)):
        shoulder = np.array([cx + side * 0.115 * h, shoulder_y + 0.025 * h])
        if side == 1 and pose.right_hand is not None:
            elbow, hand = _reach(
                shoulder,
                np.asarray(pose.right_hand, dtype=np.float64),
                0.17 * h,
                0.18 * h,
                bend=-1.0,
            )
        else:
            elbow = shoulder + _direction(upper_angle) * 0.17 * h
            hand = elbow + _direction(upper_angle + fore_angle) * 0.18 * h
        parts.append(Polyline(np.array([shoulder, elbow]), look.shirt, thickness=limb_arm))
        parts.append(
            Polyline(np.array([elbow, hand]), sleeve, thickness=max(2, round(limb_arm * 0.9)))
        )
        hand_shape = Polygon(ellipse_points(hand, (0.032 * h, 0.032 * h), count=14), look.skin)
        if side == 1:
            hand_parts.append(hand_shape)
            right_hand_point = hand
        else:
            parts.append(hand_shape)
    return Figure(parts, hand_parts, head, radius, right_hand_point)


def helmet_parts(
    color: Color, head_center: Sequence[float], head_radius: float, tilt_deg: float = 0.0
) -> list[Polygon]:
    """Primitives of a hard hat sitting on a head of the given centre and radius.

    The same call draws a helmet held in a hand: pass the point the helmet would have as
    its wearer's head centre.

    Args:
        color: Shell colour.
        head_center: Head centre (x, y) the helmet sits on.
        head_radius: Head radius in pixels.
        tilt_deg: Rotation of the helmet around the head centre.

    Examples:
        >>> parts = helmet_parts(HELMET_COLORS["yellow"], (50, 50), 10)
        >>> len(parts)
        4
    """
    r = head_radius
    cx, cy = float(head_center[0]), float(head_center[1])
    base_y = cy - 0.3 * r
    shapes = [
        (ellipse_points((cx, base_y), (1.55 * r, 0.22 * r), count=28), shade(color, 0.82)),
        (ellipse_points((cx, base_y), (1.2 * r, 1.15 * r), 0, 180, 360, count=28), color),
        (
            ellipse_points((cx, base_y), (0.2 * r, 1.17 * r), 0, 180, 360, count=14),
            mix(color, (255, 255, 255), 0.35),
        ),
        (
            ellipse_points((cx - 0.5 * r, base_y - 0.72 * r), (0.22 * r, 0.11 * r), -35, count=12),
            mix(color, (255, 255, 255), 0.6),
        ),
    ]
    if tilt_deg:
        shapes = [(rotate(points, tilt_deg, origin=(cx, cy)), c) for points, c in shapes]
    return [Polygon(points, c) for points, c in shapes]


@dataclass
class SitePlan:
    """Scenery of a construction site shared by still scenes and videos."""

    background: np.ndarray
    horizon: float
    lighting: np.ndarray
    noise_sigma: float
    blur_sigma: float

    def ground_color(self, x: float, y: float) -> Color:
        """Colour of the ground at a pixel (for shadows)."""
        height, width = self.background.shape[:2]
        b, g, r = self.background[int(np.clip(y, 0, height - 1)), int(np.clip(x, 0, width - 1))]
        return int(b), int(g), int(r)

    def height_at(self, feet_y: float, scale: float) -> float:
        """Height of a person whose feet are at row `feet_y` (perspective)."""
        height = self.background.shape[0]
        return float(np.clip(scale * (feet_y - self.horizon), 0.5 * height, 0.92 * height))


def site_plan(rng: np.random.Generator, size: tuple[int, int], props: bool = True) -> SitePlan:
    """Plan the scenery of a construction site: sky, buildings, crane, ground, props."""
    width, height = size
    horizon = rng.uniform(0.3, 0.45) * height
    picture = vertical_gradient(
        size, jitter(rng, (205, 150, 90), 15), jitter(rng, (235, 220, 205), 10)
    )
    clouds = np.clip((smooth_noise(rng, size, cells=8) - 0.55) * 3, 0, 1)
    picture += (clouds * rng.uniform(30, 70))[..., None]

    for _ in range(int(rng.integers(2, 6))):
        bw = rng.uniform(0.08, 0.25) * width
        bh = rng.uniform(0.08, 0.3) * height
        x = rng.uniform(-0.05, 1.0) * width
        color = jitter(
            rng,
            [(150, 150, 150), (160, 180, 200), (80, 90, 140), (190, 190, 185)][
                int(rng.integers(4))
            ],
            12,
        )
        cv2.rectangle(picture, (int(x), int(horizon - bh)), (int(x + bw), int(horizon)), color, -1)
        step_x, step_y = max(6, bw / rng.uniform(4, 8)), max(6, bh / rng.uniform(3, 7))
        for wy in np.arange(horizon - bh + step_y * 0.4, horizon - step_y * 0.5, step_y):
            for wx in np.arange(x + step_x * 0.3, x + bw - step_x * 0.5, step_x):
                cv2.rectangle(
                    picture,
                    (int(wx), int(wy)),
                    (int(wx + step_x * 0.45), int(wy + step_y * 0.45)),
                    shade(color, 0.6),
                    -1,
                )
    if rng.random() < 0.7:
        mast_x = rng.uniform(0.1, 0.9) * width
        crane_top = horizon - rng.uniform(0.2, 0.28) * height
        crane_color = [(0, 190, 240), (40, 40, 190), (220, 220, 220)][int(rng.integers(3))]
        span = 0.012 * width
        for dx in (-span, span):
            cv2.line(
                picture,
                (int(mast_x + dx), int(horizon)),
                (int(mast_x + dx), int(crane_top)),
                crane_color,
                2,
            )
        for y in np.arange(crane_top, horizon, 2 * span):
            cv2.line(
                picture,
                (int(mast_x - span), int(y)),
                (int(mast_x + span), int(y + 2 * span)),
                crane_color,
                1,
            )
        jib_left = mast_x - rng.uniform(0.1, 0.4) * width
        jib_right = mast_x + rng.uniform(0.1, 0.4) * width
        cv2.line(
            picture,
            (int(jib_left), int(crane_top)),
            (int(jib_right), int(crane_top)),
            crane_color,
            3,
        )
        hook_x = rng.uniform(jib_left, jib_right)
        cv2.line(
            picture,
            (int(hook_x), int(crane_top)),
            (int(hook_x), int(crane_top + rng.uniform(0.05, 0.15) * height)),
            (40, 40, 40),
            1,
        )

    ground_color = np.asarray(_pick(rng, _GROUND, 12), dtype=np.float32)
    texture = 0.8 + 0.35 * smooth_noise(rng, size, cells=int(rng.integers(20, 60)))
    ground_rows = slice(int(horizon), height)
    picture[ground_rows] = ground_color[None, None, :] * texture[ground_rows][..., None]
    speck_count = int(width * height / 400)
    xs = rng.integers(0, width, speck_count)
    ys = rng.integers(int(horizon), height, speck_count)
    picture[ys, xs] = picture[ys, xs] * rng.uniform(0.5, 1.3, (speck_count, 1))
    if rng.random() < 0.5:
        vanish = np.array([rng.uniform(0.3, 0.7) * width, horizon])
        for end in (rng.uniform(-0.2, 0.5) * width, rng.uniform(0.5, 1.2) * width):
            cv2.line(
                picture,
                (int(vanish[0]), int(vanish[1])),
                (int(end), height),
                shade(ground_color, 0.75),
                max(2, int(0.01 * width)),
            )

    if props:
        for _ in range(int(rng.integers(1, 5))):
            kind = int(rng.integers(4))
            x = rng.uniform(0, width)
            y = rng.uniform(horizon + 0.02 * height, horizon + 0.2 * height)
            scale = (y - horizon) / height + 0.08
            if kind == 0:  # shipping container
                cw, ch = scale * width * 1.4, scale * height * 0.7
                color = _pick(rng, [(140, 90, 30), (40, 100, 40), (40, 40, 150), (120, 120, 120)])
                cv2.rectangle(picture, (int(x), int(y - ch)), (int(x + cw), int(y)), color, -1)
                for rib in np.arange(x + 4, x + cw, max(4, cw / 14)):
                    cv2.line(
                        picture, (int(rib), int(y - ch)), (int(rib), int(y)), shade(color, 0.75), 1
                    )
            elif kind == 1:  # concrete blocks
                bw, bh = scale * width * 0.4, scale * height * 0.25
                for k in range(int(rng.integers(1, 4))):
                    cv2.rectangle(
                        picture,
                        (int(x + k * bw * 1.05), int(y - bh)),
                        (int(x + (k + 1) * bw), int(y)),
                        (170, 175, 175),
                        -1,
                    )
            elif kind == 2:  # fence
                fw, fh = scale * width * 1.5, scale * height * 0.5
                for post in np.arange(x, x + fw, max(6, fw / 8)):
                    cv2.line(
                        picture, (int(post), int(y - fh)), (int(post), int(y)), (90, 90, 90), 2
                    )
                cv2.line(
                    picture, (int(x), int(y - fh)), (int(x + fw), int(y - fh)), (90, 90, 90), 2
                )
                for k in np.linspace(0.2, 0.9, 4):
                    cv2.line(
                        picture,
                        (int(x), int(y - fh * k)),
                        (int(x + fw), int(y - fh * k)),
                        (150, 150, 150),
                        1,
                    )
            else:  # traffic cones
                for k in range(int(rng.integers(1, 4))):
                    cone_x = x + k * scale * width * 0.3
                    ch = scale * height * 0.35
                    pts = np.array(
                        [[cone_x, y - ch], [cone_x - ch * 0.35, y], [cone_x + ch * 0.35, y]],
                        dtype=np.int32,
                    )
                    cv2.fillPoly(picture, [pts], (0, 100, 240))
                    band = int(y - ch * 0.55)
                    cv2.line(
                        picture,
                        (int(cone_x - ch * 0.15), band),
                        (int(cone_x + ch * 0.15), band),
                        (240, 240, 240),
                        max(1, int(ch * 0.12)),
                    )
    return SitePlan(
        background=np.clip(picture, 0, 255).astype(np.uint8),
        horizon=float(horizon),
        lighting=lighting_field(
            rng, size, strength=rng.uniform(0.1, 0.35), vignette=rng.uniform(0.0, 0.25)
        ),
        noise_sigma=float(rng.uniform(1.5, 5.0)),
        blur_sigma=float(rng.uniform(0.4, 0.8)),
    )


def shadow_drawable(site: SitePlan, feet_x: float, feet_y: float, height: float) -> Drawable:
    """The shadow under a worker's feet (scenery)."""
    color = shade(site.ground_color(feet_x, feet_y + 3), 0.6)
    return Drawable(
        [
            Polygon(
                ellipse_points((feet_x, feet_y), (0.16 * height, 0.025 * height), count=24), color
            )
        ]
    )


def ppe_layout(
    rng: np.random.Generator,
    size: tuple[int, int],
    *,
    n_persons: int | None = None,
    helmet_ratio: float = 0.6,
    props: bool = True,
) -> SceneLayout:
    """Lay out a construction-site scene.

    Args:
        rng: Random generator.
        size: (width, height).
        n_persons: Number of workers, 0..8 (random 1..3 when None); fewer are placed when
            they do not fit side by side.
        helmet_ratio: Chance that each worker wears a helmet, 0..1.
        props: Whether containers, blocks, fences and cones stand in the background.

    Returns:
        The layout.
    """
    width, height = size
    if n_persons is None:
        n_persons = int(rng.integers(1, 4))
    if not 0 <= int(n_persons) <= 8:
        raise ValueError(f"n_persons must be 0..8, got {n_persons!r}")
    if not 0.0 <= float(helmet_ratio) <= 1.0:
        raise ValueError(f"helmet_ratio must be within 0..1, got {helmet_ratio!r}")
    site = site_plan(rng, size, props)
    scale = rng.uniform(1.3, 1.6)

    workers: list[tuple[float, float, float]] = []
    for _ in range(int(n_persons)):
        for _attempt in range(30):
            feet_y = rng.uniform(site.horizon + 0.4 * (height - site.horizon), 0.99 * height)
            person_h = min(site.height_at(feet_y, scale), feet_y - 0.02 * height)
            feet_x = rng.uniform(0.06, 0.94) * width
            if all(abs(feet_x - x) > 0.17 * (person_h + other_h) for x, _, other_h in workers):
                break
        else:
            continue
        workers.append((feet_x, feet_y, person_h))
    workers.sort(key=lambda worker: worker[1])

    drawables: list[Drawable] = []
    labels: list[ObjectLabel] = []
    for feet_x, feet_y, person_h in workers:
        look = random_person_look(rng, helmet=bool(rng.random() < helmet_ratio))
        figure = person_figure(look, feet_x, feet_y, person_h, random_pose(rng))
        drawables.append(shadow_drawable(site, feet_x, feet_y, person_h))
        labels.append(ObjectLabel(class_id=PERSON))
        person_index = len(labels) - 1
        drawables.append(Drawable(figure.body + figure.right_hand, owners=(person_index,)))
        if look.helmet is not None:
            labels.append(ObjectLabel(class_id=HELMET))
            parts = helmet_parts(
                look.helmet, figure.head_center, figure.head_radius, tilt_deg=rng.uniform(-8, 8)
            )
            drawables.append(Drawable(parts, owners=(len(labels) - 1, person_index)))
    return SceneLayout(
        background=site.background,
        drawables=drawables,
        labels=labels,
        classes=list(CLASSES),
        lighting=site.lighting,
        noise_sigma=site.noise_sigma,
        blur_sigma=site.blur_sigma,
    )


PPE = register(
    UseCase(
        name="ppe",
        classes=list(CLASSES),
        description="Workers on a construction site with or without a hard hat; alert on a person without a helmet.",
        build_layout=ppe_layout,
    )
)
