"""Core types of the synthetic scene generator: drawing primitives, layouts and scenes.

A use case builds a :class:`SceneLayout` (a background picture, drawables in painting order
and the labels they belong to); :func:`compose` paints it and derives each label's box from
the pixels that stay visible, so boxes are exact by construction: the tight bounds of what is
drawn, after clipping to the image and after occlusion by drawables painted later.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

Color = tuple[int, int, int]
"""A BGR colour, each channel 0..255."""

_SHIFT = 4
_ONE = 1 << _SHIFT

MIN_IMAGE_SIDE = 64
"""Smallest width or height a scene can be rendered at."""


def _fixed_point(points: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(points, dtype=np.float64) * _ONE).astype(np.int32)


@dataclass(frozen=True)
class Polygon:
    """A filled polygon.

    Attributes:
        points: Vertices as a (K, 2) float array of pixel coordinates (x, y); sub-pixel
            positions are kept, so slow motion stays smooth in videos.
        color: Fill colour (BGR).

    Examples:
        >>> square = Polygon(np.array([[0, 0], [9, 0], [9, 9], [0, 9]]), (0, 0, 255))
        >>> square.bounds()
        (-1, -1, 11, 11)
    """

    points: np.ndarray
    color: Color

    def bounds(self) -> tuple[int, int, int, int]:
        """Integer pixel bounds (x1, y1, x2, y2), end exclusive, with a safety margin."""
        pts = np.asarray(self.points, dtype=np.float64)
        x1, y1 = np.floor(pts.min(axis=0)).astype(int) - 1
        x2, y2 = np.ceil(pts.max(axis=0)).astype(int) + 2
        return int(x1), int(y1), int(x2), int(y2)

    def draw(self, canvas: np.ndarray, offset: tuple[int, int], value: Any) -> None:
        """Fill the polygon on `canvas`, whose pixel (0, 0) is image pixel `offset`."""
        pts = _fixed_point(np.asarray(self.points) - np.asarray(offset, dtype=np.float64))
        cv2.fillPoly(canvas, [pts], value, lineType=cv2.LINE_8, shift=_SHIFT)


@dataclass(frozen=True)
class Polyline:
    """A thick open (or closed) line, e.g. a limb, a pole or a bubble's rim.

    Attributes:
        points: Vertices as a (K, 2) float array of pixel coordinates (x, y).
        color: Line colour (BGR).
        thickness: Line thickness in pixels (at least 1).
        closed: Whether the last vertex joins the first.

    Examples:
        >>> arm = Polyline(np.array([[10, 10], [20, 30]]), (40, 40, 40), thickness=5)
        >>> arm.bounds()
        (5, 5, 26, 36)
    """

    points: np.ndarray
    color: Color
    thickness: int = 1
    closed: bool = False

    def bounds(self) -> tuple[int, int, int, int]:
        """Integer pixel bounds (x1, y1, x2, y2), end exclusive, with a safety margin."""
        pts = np.asarray(self.points, dtype=np.float64)
        pad = self.thickness // 2 + 3
        x1, y1 = np.floor(pts.min(axis=0)).astype(int) - pad
        x2, y2 = np.ceil(pts.max(axis=0)).astype(int) + pad + 1
        return int(x1), int(y1), int(x2), int(y2)

    def draw(self, canvas: np.ndarray, offset: tuple[int, int], value: Any) -> None:
        """Draw the line on `canvas`, whose pixel (0, 0) is image pixel `offset`."""
        pts = _fixed_point(np.asarray(self.points) - np.asarray(offset, dtype=np.float64))
        cv2.polylines(
            canvas,
            [pts],
            self.closed,
            value,
            thickness=max(1, int(self.thickness)),
            lineType=cv2.LINE_8,
            shift=_SHIFT,
        )


Primitive = Polygon | Polyline


@dataclass(frozen=True)
class Drawable:
    """Primitives painted together as one layer, and the labels whose pixels they are.

    Attributes:
        parts: Primitives in painting order (later ones cover earlier ones).
        owners: Indices into :attr:`SceneLayout.labels` of the objects these pixels belong to.
            Empty for scenery (walls, shelf boards, bubbles, cranes). A helmet on a head is
            owned by both the helmet and the person, so the person's box includes it.

    Examples:
        >>> dot = Polygon(ellipse_points((5, 5), (3, 3)), (255, 255, 255))
        >>> Drawable([dot], owners=(0,)).bounds()
        (1, 1, 10, 10)
    """

    parts: Sequence[Primitive]
    owners: tuple[int, ...] = ()

    def bounds(self) -> tuple[int, int, int, int]:
        """Integer pixel bounds (x1, y1, x2, y2), end exclusive, of all parts (unclipped)."""
        boxes = np.array([part.bounds() for part in self.parts])
        return (
            int(boxes[:, 0].min()),
            int(boxes[:, 1].min()),
            int(boxes[:, 2].max()),
            int(boxes[:, 3].max()),
        )

    def rasterize(self) -> tuple[tuple[int, int], np.ndarray, np.ndarray]:
        """Paint the drawable on its own, unclipped canvas.

        OpenCV rasterises a shape clipped at a canvas edge slightly differently from the same
        shape drawn whole, so colour and coverage are both taken from one whole drawing.

        Returns:
            The canvas origin (x, y) in image pixels, the BGR canvas and the coverage mask
            (bool) of the same height and width.
        """
        x1, y1, x2, y2 = self.bounds()
        colors = np.zeros((y2 - y1, x2 - x1, 3), dtype=np.uint8)
        coverage = np.zeros((y2 - y1, x2 - x1), dtype=np.uint8)
        for part in self.parts:
            part.draw(colors, (x1, y1), part.color)
            part.draw(coverage, (x1, y1), 255)
        return (x1, y1), colors, coverage > 0


@dataclass(frozen=True)
class ObjectLabel:
    """A labelled object of a layout.

    Attributes:
        class_id: Index into the layout's class list.
        track_id: Identity that stays the same across video frames (-1 when unused).
        min_visible: Fraction of the object's own pixels that must stay visible (inside the
            image and not covered) for it to be labelled; objects mostly outside or hidden are
            dropped rather than given a misleading box.
    """

    class_id: int
    track_id: int = -1
    min_visible: float = 0.5


@dataclass
class SceneLayout:
    """Everything needed to paint one scene, before lighting and sensor noise.

    Attributes:
        background: Scenery painted before any drawable (H x W x 3 BGR uint8).
        drawables: Layers in painting order.
        labels: The labelled objects; drawables refer to them by index.
        classes: Class names; labels refer to them by index.
        lighting: Per-pixel gain (H x W float32) applied after painting, or None.
        noise_sigma: Standard deviation of the Gaussian sensor noise, in grey levels.
        blur_sigma: Gaussian blur applied last (0 for none); softens the aliased edges.
        extras: Use-case facts that travel with the scene (e.g. the fish region).
    """

    background: np.ndarray
    drawables: list[Drawable]
    labels: list[ObjectLabel]
    classes: list[str]
    lighting: np.ndarray | None = None
    noise_sigma: float = 0.0
    blur_sigma: float = 0.0
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def size(self) -> tuple[int, int]:
        """Image size as (width, height)."""
        height, width = self.background.shape[:2]
        return width, height


@dataclass
class Scene:
    """A rendered synthetic image and its exact labels.

    Attributes:
        image: The picture (H x W x 3 BGR uint8).
        boxes: (N, 4) float32 boxes, xyxy in pixels; a box spans the pixel edges of its
            object's visible pixels (a one-pixel object at column 3 spans x 3..4).
        class_ids: (N,) int64 indices into `classes`.
        classes: Class names.
        track_ids: (N,) int64 identities (-1 for still images).
        extras: Use-case facts (e.g. `region`, a normalised polygon, for fish).
        layout: The layout the image was painted from (for masks and checks).
        label_indices: (N,) index of each box's label in `layout.labels`.

    Examples:
        >>> scene = render_scene("fish", seed=1, size=(320, 240))
        >>> scene.image.shape
        (240, 320, 3)
        >>> len(scene.yolo_lines()) == len(scene.boxes)
        True
    """

    image: np.ndarray
    boxes: np.ndarray
    class_ids: np.ndarray
    classes: list[str]
    track_ids: np.ndarray
    extras: dict[str, Any] = field(default_factory=dict)
    layout: SceneLayout | None = field(default=None, repr=False)
    label_indices: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.boxes)

    @property
    def size(self) -> tuple[int, int]:
        """Image size as (width, height)."""
        height, width = self.image.shape[:2]
        return width, height

    def counts(self) -> dict[str, int]:
        """Number of labelled objects per class name (every class listed, zeros included)."""
        return {
            name: int(np.count_nonzero(self.class_ids == index))
            for index, name in enumerate(self.classes)
        }

    def yolo_lines(self) -> list[str]:
        """Labels in YOLO format: `class cx cy w h`, normalised to 0..1, six decimals."""
        width, height = self.size
        lines = []
        for (x1, y1, x2, y2), class_id in zip(self.boxes, self.class_ids, strict=True):
            cx = (x1 + x2) / 2 / width
            cy = (y1 + y2) / 2 / height
            bw = (x2 - x1) / width
            bh = (y2 - y1) / height
            lines.append(f"{int(class_id)} {cx:.6f} {cy:.6f} {bw:.6f} {bh:.6f}")
        return lines


def compose(layout: SceneLayout, rng: np.random.Generator, min_box_side: int = 3) -> Scene:
    """Paint a layout and derive exact boxes from the pixels each object keeps.

    Args:
        layout: What to paint.
        rng: Random generator for the sensor noise.
        min_box_side: Visible objects whose box is thinner than this (pixels) are dropped.

    Returns:
        The scene: image, boxes of the labels that stay visible enough, class and track ids.

    Examples:
        >>> layout = USE_CASES["shelf"].layout(np.random.default_rng(0), (320, 240))
        >>> scene = compose(layout, np.random.default_rng(0))
        >>> scene.boxes.dtype
        dtype('float32')
    """
    width, height = layout.size
    image = layout.background.copy()
    painted_by = np.full((height, width), -1, dtype=np.int32)
    owned: list[list[tuple[int, int, np.ndarray]]] = [[] for _ in layout.labels]
    placed: list[tuple[int, int, int, int] | None] = []
    for index, drawable in enumerate(layout.drawables):
        (ox, oy), colors, coverage = drawable.rasterize()
        for owner in drawable.owners:
            owned[owner].append((ox, oy, coverage))
        x1, y1 = max(ox, 0), max(oy, 0)
        x2, y2 = min(ox + coverage.shape[1], width), min(oy + coverage.shape[0], height)
        if x1 >= x2 or y1 >= y2:
            placed.append(None)
            continue
        local = coverage[y1 - oy : y2 - oy, x1 - ox : x2 - ox]
        image[y1:y2, x1:x2][local] = colors[y1 - oy : y2 - oy, x1 - ox : x2 - ox][local]
        painted_by[y1:y2, x1:x2][local] = index
        placed.append((x1, y1, x2, y2))

    visible_area = np.zeros(len(layout.labels), dtype=np.int64)
    bounds = np.full((len(layout.labels), 4), -1, dtype=np.int64)
    for index, (drawable, window) in enumerate(zip(layout.drawables, placed, strict=True)):
        if window is None or not drawable.owners:
            continue
        x1, y1, x2, y2 = window
        rows, cols = np.nonzero(painted_by[y1:y2, x1:x2] == index)
        if rows.size == 0:
            continue
        box = (x1 + cols.min(), y1 + rows.min(), x1 + cols.max() + 1, y1 + rows.max() + 1)
        for owner in drawable.owners:
            visible_area[owner] += rows.size
            if bounds[owner, 0] < 0:
                bounds[owner] = box
            else:
                bounds[owner, :2] = np.minimum(bounds[owner, :2], box[:2])
                bounds[owner, 2:] = np.maximum(bounds[owner, 2:], box[2:])

    kept = []
    for index, label in enumerate(layout.labels):
        if visible_area[index] == 0:
            continue
        if visible_area[index] / _union_area(owned[index]) < label.min_visible:
            continue
        x1, y1, x2, y2 = bounds[index]
        if min(x2 - x1, y2 - y1) < min_box_side:
            continue
        kept.append(index)

    image = _finish(image, layout, rng)
    kept_array = np.array(kept, dtype=np.int64)
    return Scene(
        image=image,
        boxes=bounds[kept_array].astype(np.float32).reshape(-1, 4),
        class_ids=np.array([layout.labels[i].class_id for i in kept], dtype=np.int64),
        classes=list(layout.classes),
        track_ids=np.array([layout.labels[i].track_id for i in kept], dtype=np.int64),
        extras=dict(layout.extras),
        layout=layout,
        label_indices=kept_array,
    )


def _union_area(pieces: list[tuple[int, int, np.ndarray]]) -> int:
    """Pixel count of the union of coverage masks placed at their origins (unclipped)."""
    if len(pieces) == 1:
        return int(np.count_nonzero(pieces[0][2]))
    x1 = min(ox for ox, _, _ in pieces)
    y1 = min(oy for _, oy, _ in pieces)
    x2 = max(ox + mask.shape[1] for ox, _, mask in pieces)
    y2 = max(oy + mask.shape[0] for _, oy, mask in pieces)
    union = np.zeros((y2 - y1, x2 - x1), dtype=bool)
    for ox, oy, mask in pieces:
        union[oy - y1 : oy - y1 + mask.shape[0], ox - x1 : ox - x1 + mask.shape[1]] |= mask
    return int(np.count_nonzero(union))


def _finish(image: np.ndarray, layout: SceneLayout, rng: np.random.Generator) -> np.ndarray:
    """Apply lighting, sensor noise and a slight blur."""
    pixels = image.astype(np.float32)
    if layout.lighting is not None:
        pixels *= layout.lighting[..., None]
    if layout.noise_sigma > 0:
        pixels += rng.standard_normal(pixels.shape, dtype=np.float32) * layout.noise_sigma
    result = np.clip(pixels, 0, 255).astype(np.uint8)
    if layout.blur_sigma > 0:
        result = cv2.GaussianBlur(result, (0, 0), layout.blur_sigma)
    return result


# --- geometry and colour helpers shared by the use cases -----------------------------------


def ellipse_points(
    center: Sequence[float],
    axes: Sequence[float],
    angle_deg: float = 0.0,
    start_deg: float = 0.0,
    end_deg: float = 360.0,
    count: int = 40,
) -> np.ndarray:
    """Points on an ellipse (or an arc of it), as a (count, 2) float array.

    Args:
        center: Centre (x, y) in pixels.
        axes: Semi-axes (a, b) in pixels, before rotation.
        angle_deg: Rotation of the ellipse, degrees, clockwise on screen (y points down).
        start_deg: Start of the arc, degrees.
        end_deg: End of the arc, degrees; 180..360 is the upper half.
        count: Number of points.

    Examples:
        >>> ellipse_points((0, 0), (2, 1), count=4).round(3).tolist()[0]
        [2.0, 0.0]
    """
    closed = abs((end_deg - start_deg) % 360) < 1e-9
    angles = np.deg2rad(np.linspace(start_deg, end_deg, count, endpoint=not closed))
    local = np.stack([axes[0] * np.cos(angles), axes[1] * np.sin(angles)], axis=1)
    return rotate(local, angle_deg) + np.asarray(center, dtype=np.float64)


def rotate(
    points: np.ndarray, angle_deg: float, origin: Sequence[float] = (0.0, 0.0)
) -> np.ndarray:
    """Rotate points about `origin` by `angle_deg` (clockwise on screen)."""
    theta = np.deg2rad(angle_deg)
    matrix = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    origin_array = np.asarray(origin, dtype=np.float64)
    return (np.asarray(points, dtype=np.float64) - origin_array) @ matrix.T + origin_array


def rect_points(x1: float, y1: float, x2: float, y2: float) -> np.ndarray:
    """Corners of an axis-aligned rectangle as a (4, 2) float array."""
    return np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]], dtype=np.float64)


def shade(color: Sequence[float], factor: float) -> Color:
    """Scale a colour's brightness by `factor` (clipped to 0..255)."""
    b, g, r = (int(np.clip(round(c * factor), 0, 255)) for c in color)
    return b, g, r


def mix(color_a: Sequence[float], color_b: Sequence[float], amount: float) -> Color:
    """Blend two colours: 0 gives `color_a`, 1 gives `color_b`."""
    b, g, r = (
        int(np.clip(round(a + (bb - a) * amount), 0, 255))
        for a, bb in zip(color_a, color_b, strict=True)
    )
    return b, g, r


def jitter(rng: np.random.Generator, color: Sequence[float], amount: float = 12) -> Color:
    """Shift each channel of a colour by a random amount up to +-`amount`."""
    b, g, r = (int(np.clip(c + rng.uniform(-amount, amount), 0, 255)) for c in color)
    return b, g, r


def smooth_noise(rng: np.random.Generator, size: tuple[int, int], cells: int) -> np.ndarray:
    """Smooth value noise in 0..1 (H x W float32): a coarse random grid, upsampled.

    Args:
        rng: Random generator.
        size: Output (width, height).
        cells: Number of grid cells along the longer side (more gives finer detail).
    """
    width, height = size
    scale = cells / max(width, height)
    grid = rng.random((max(2, round(height * scale) + 2), max(2, round(width * scale) + 2)))
    noise = cv2.resize(grid.astype(np.float32), (width, height), interpolation=cv2.INTER_CUBIC)
    low, high = float(noise.min()), float(noise.max())
    return (noise - low) / max(high - low, 1e-6)


def vertical_gradient(size: tuple[int, int], top: Color, bottom: Color) -> np.ndarray:
    """An image fading from `top` to `bottom` colour (H x W x 3 float32)."""
    width, height = size
    t = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    top_array = np.asarray(top, dtype=np.float32)
    bottom_array = np.asarray(bottom, dtype=np.float32)
    column = top_array * (1 - t) + bottom_array * t
    return np.repeat(column, width, axis=1)


def lighting_field(
    rng: np.random.Generator, size: tuple[int, int], strength: float, vignette: float
) -> np.ndarray:
    """A per-pixel gain: a linear light gradient in a random direction plus a vignette.

    Args:
        rng: Random generator.
        size: (width, height).
        strength: Gain difference across the image (0.3 means 0.85..1.15).
        vignette: Darkening at the corners (0.2 means corners at 80 %).
    """
    width, height = size
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    u = xs / max(width - 1, 1) - 0.5
    v = ys / max(height - 1, 1) - 0.5
    theta = rng.uniform(0, 2 * np.pi)
    gradient = (np.cos(theta) * u + np.sin(theta) * v) * strength
    corner = (u**2 + v**2) / 0.5
    gain = (1.0 + gradient) * (1.0 - vignette * corner) * rng.uniform(0.9, 1.1)
    return gain.astype(np.float32)


def as_rng(rng_or_seed: int | np.random.Generator | None) -> np.random.Generator:
    """A generator from a seed, or the generator itself."""
    if isinstance(rng_or_seed, np.random.Generator):
        return rng_or_seed
    if rng_or_seed is None or isinstance(rng_or_seed, (int, np.integer)):
        return np.random.default_rng(rng_or_seed)
    raise TypeError(
        f"rng_or_seed must be an int seed or a numpy Generator, got {type(rng_or_seed).__name__}"
    )


def check_size(size: Sequence[int]) -> tuple[int, int]:
    """Validate an image size (width, height) and return it as a tuple of ints."""
    try:
        width, height = (int(v) for v in size)
    except (TypeError, ValueError):
        raise ValueError(f"size must be (width, height), got {size!r}") from None
    if width < MIN_IMAGE_SIDE or height < MIN_IMAGE_SIDE:
        raise ValueError(
            f"size must be at least {MIN_IMAGE_SIDE}x{MIN_IMAGE_SIDE} pixels, got {width}x{height}"
        )
    return width, height


# --- use cases --------------------------------------------------------------------------------

LayoutBuilder = Callable[..., SceneLayout]


@dataclass(frozen=True)
class UseCase:
    """A synthetic use case: its classes and how to lay out one of its scenes.

    Attributes:
        name: Short name (`shelf`, `fish`, `ppe`).
        classes: Class names, in label-id order.
        description: One sentence for people choosing a use case.
        build_layout: Function `(rng, size, **scene_params) -> SceneLayout`.

    Examples:
        >>> scene = USE_CASES["ppe"].render(7, size=(320, 240), n_persons=2)
        >>> scene.classes
        ['person', 'helmet']
    """

    name: str
    classes: list[str]
    description: str
    build_layout: LayoutBuilder

    @property
    def scene_params(self) -> list[str]:
        """Names of the keyword parameters this use case's scenes accept."""
        signature = inspect.signature(self.build_layout)
        return [
            name
            for name, param in signature.parameters.items()
            if param.kind is inspect.Parameter.KEYWORD_ONLY
        ]

    def layout(
        self,
        rng_or_seed: int | np.random.Generator | None,
        size: Sequence[int] = (640, 480),
        **scene_params: Any,
    ) -> SceneLayout:
        """Lay out a scene without painting it (see :meth:`render`)."""
        unknown = sorted(set(scene_params) - set(self.scene_params))
        if unknown:
            raise ValueError(
                f"unknown scene parameter(s) {unknown} for use case {self.name!r}; "
                f"allowed: {self.scene_params}"
            )
        return self.build_layout(as_rng(rng_or_seed), check_size(size), **scene_params)

    def render(
        self,
        rng_or_seed: int | np.random.Generator | None,
        size: Sequence[int] = (640, 480),
        **scene_params: Any,
    ) -> Scene:
        """Render one scene with exact labels.

        Args:
            rng_or_seed: A seed (same seed, same scene) or a numpy Generator.
            size: Image (width, height) in pixels.
            **scene_params: Use-case options; see :attr:`scene_params`.

        Returns:
            The rendered scene.

        Raises:
            ValueError: On an unknown scene parameter or a size below 64x64.
        """
        rng = as_rng(rng_or_seed)
        return compose(self.layout(rng, size, **scene_params), rng)


USE_CASES: dict[str, UseCase] = {}
"""Registered use cases by name; filled in by the use-case modules."""


def register(use_case: UseCase) -> UseCase:
    """Add a use case to :data:`USE_CASES`."""
    USE_CASES[use_case.name] = use_case
    return use_case


def get_use_case(name: str) -> UseCase:
    """Look up a use case by name.

    Raises:
        ValueError: If `name` is not a registered use case.
    """
    try:
        return USE_CASES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown use case {name!r}; choose one of {sorted(USE_CASES)}") from None


def render_scene(
    use_case: str, seed: int = 0, size: Sequence[int] = (640, 480), **params: Any
) -> Scene:
    """Render one scene of a use case.

    Args:
        use_case: `shelf`, `fish` or `ppe`.
        seed: Random seed; the same seed gives the same pixels and labels.
        size: Image (width, height).
        **params: Scene parameters of the use case (`USE_CASES[name].scene_params`).

    Returns:
        The scene with its exact labels.

    Examples:
        >>> scene = render_scene("shelf", seed=3, size=(320, 240))
        >>> scene.classes
        ['bottle']
    """
    return get_use_case(use_case).render(seed, size, **params)
