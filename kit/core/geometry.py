"""Geometry with one meaning on the device and in the cloud: anchors and zones.

The edge app counts objects in a zone (:class:`edge_app.zones.PolygonZone`) and the processor's
PPE rule keeps the persons standing in a zone (:mod:`kit.core.rules`); both ask
:func:`boxes_in_zone`, so an object counts the same in both places:

- a box's **anchor** is a point of the box, bottom centre by default (where an object stands);
- boxes are taken at the **precision a payload carries** (:func:`round_box`, :data:`BOX_DECIMALS`
  decimals of a pixel): the device decides on the very numbers it publishes, and a box read
  back from a payload rounds to itself;
- a point **on a zone's boundary is inside** (within :data:`EDGE_TOLERANCE`): a person whose feet
  touch the bottom of the frame is in a zone that reaches the bottom of the frame;
- a normalised zone (0..1, as the control config holds it) is compared with the anchor divided by
  the frame's width and height, never with a polygon scaled to pixels.

Plain Python, no numpy: the Lambda runtime has none, and for the few boxes of a frame a loop is
faster than numpy's per-call overhead. Array versions of box arithmetic (IoU, clipping, anchors
of many boxes) are in :mod:`kit.core.boxes`, for the device and the kit.

Examples:
    >>> boxes = [(10, 20, 30, 480), (400, 20, 440, 100)]
    >>> boxes_in_zone(boxes, [(0, 0), (0.5, 0), (0.5, 1), (0, 1)], frame_wh=(640, 480))
    [True, False]
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from enum import StrEnum

BOX_DECIMALS = 2
"""Decimals of a pixel kept in a payload's boxes (and used for zone membership)."""
EDGE_TOLERANCE = 1e-9
"""A point at most this far from a polygon's edge (in the polygon's units) lies on it."""

Point = tuple[float, float]
Box = tuple[float, float, float, float]


class Position(StrEnum):
    """A point of a box used as the position of an object (anchor of zones and lines).

    Examples:
        >>> Position("bottom_center") is Position.BOTTOM_CENTER
        True
    """

    CENTER = "center"
    BOTTOM_CENTER = "bottom_center"
    TOP_CENTER = "top_center"
    CENTER_LEFT = "center_left"
    CENTER_RIGHT = "center_right"


def round_box(box: Sequence[float]) -> Box:
    """``(x1, y1, x2, y2)`` at the payload's precision (correctly rounded decimals).

    Examples:
        >>> round_box([1.004, 2.0, 3.456, 4.0])
        (1.0, 2.0, 3.46, 4.0)
    """
    x1, y1, x2, y2 = box
    return (
        round(float(x1), BOX_DECIMALS),
        round(float(y1), BOX_DECIMALS),
        round(float(x2), BOX_DECIMALS),
        round(float(y2), BOX_DECIMALS),
    )


def anchor_of(box: Sequence[float], position: Position | str = Position.BOTTOM_CENTER) -> Point:
    """The point at ``position`` of one ``(x1, y1, x2, y2)`` box.

    Examples:
        >>> anchor_of((0, 0, 10, 20)), anchor_of((0, 0, 10, 20), "center")
        ((5.0, 20.0), (5.0, 10.0))
    """
    if type(position) is not Position:
        position = Position(position)
    x1, y1, x2, y2 = box
    if position is Position.CENTER_LEFT:
        x = float(x1)
    elif position is Position.CENTER_RIGHT:
        x = float(x2)
    else:
        x = (x1 + x2) / 2
    if position is Position.BOTTOM_CENTER:
        y = float(y2)
    elif position is Position.TOP_CENTER:
        y = float(y1)
    else:
        y = (y1 + y2) / 2
    return x, y


class Polygon:
    """A polygon prepared for many point tests: inside, or on the boundary, counts as in.

    Args:
        points: at least 3 ``(x, y)`` vertices, finite, in any units (the points tested must be
            in the same units).
        what: how error messages name the polygon.

    Raises:
        ValueError: fewer than 3 points, a malformed point, or non-finite coordinates.

    Examples:
        >>> square = Polygon([(0, 0), (10, 0), (10, 10), (0, 10)])
        >>> square.contains(5, 5), square.contains(10, 5), square.contains(15, 5)
        (True, True, False)
    """

    def __init__(self, points: Iterable[Sequence[float]], *, what: str = "polygon"):
        try:
            vertices = [(float(x), float(y)) for x, y in points]
        except (TypeError, ValueError):
            raise ValueError(f"{what} needs (x, y) points, got {_short(points)}") from None
        if len(vertices) < 3:
            raise ValueError(f"{what} needs at least 3 (x, y) points, got {_short(vertices)}")
        if not all(math.isfinite(v) for vertex in vertices for v in vertex):
            raise ValueError(f"{what} has non-finite coordinates: {_short(vertices)}")
        self.vertices: list[Point] = vertices
        self._edges = []
        for (x1, y1), (x2, y2) in zip(vertices, vertices[1:] + vertices[:1], strict=True):
            dx, dy = x2 - x1, y2 - y1
            slack = EDGE_TOLERANCE * math.hypot(dx, dy)
            box = (
                min(x1, x2) - EDGE_TOLERANCE,
                max(x1, x2) + EDGE_TOLERANCE,
                min(y1, y2) - EDGE_TOLERANCE,
                max(y1, y2) + EDGE_TOLERANCE,
            )
            self._edges.append((x1, y1, y2, dx, dy, slack, *box))

    def contains(self, x: float, y: float) -> bool:
        """Whether ``(x, y)`` lies inside the polygon or on its boundary."""
        inside = False
        for x1, y1, y2, dx, dy, slack, xmin, xmax, ymin, ymax in self._edges:
            if (
                xmin <= x <= xmax
                and ymin <= y <= ymax
                and abs(dx * (y - y1) - dy * (x - x1)) <= slack
            ):
                return True  # on this edge
            # even-odd rule: count the edges crossing the ray from the point to the right
            if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * dx / dy:
                inside = not inside
        return inside


def point_in_polygon(x: float, y: float, polygon: Polygon | Iterable[Sequence[float]]) -> bool:
    """Whether ``(x, y)`` lies inside ``polygon`` or on its boundary.

    Examples:
        >>> point_in_polygon(1.0, 0.5, [(0, 0), (1, 0), (1, 1), (0, 1)])
        True
    """
    prepared = polygon if isinstance(polygon, Polygon) else Polygon(polygon)
    return prepared.contains(x, y)


def zone_point(
    box: Sequence[float],
    *,
    frame_wh: tuple[float, float] | None = None,
    anchor: Position | str = Position.BOTTOM_CENTER,
) -> Point:
    """The point of a pixel box that zone tests use: its anchor at the payload's precision,
    divided by ``frame_wh`` (for normalised zones) when it is given."""
    x, y = anchor_of(round_box(box), anchor)
    if frame_wh is not None:
        return x / frame_wh[0], y / frame_wh[1]
    return x, y


def boxes_in_zone(
    boxes: Iterable[Sequence[float]],
    zone: Polygon | Iterable[Sequence[float]],
    *,
    frame_wh: tuple[float, float] | None = None,
    anchor: Position | str = Position.BOTTOM_CENTER,
) -> list[bool]:
    """Which pixel boxes ``(x1, y1, x2, y2)`` stand in ``zone``: the one zone test of the kit.

    Args:
        boxes: boxes in pixels (a list of tuples, or ``array.tolist()``).
        zone: a :class:`Polygon`, or its vertices.
        frame_wh: ``(width, height)`` of the frame when ``zone`` is normalised (0..1); None when
            the zone is in pixels.
        anchor: the point of each box that must be in the zone.
    """
    polygon = zone if isinstance(zone, Polygon) else Polygon(zone, what="zone")
    if type(anchor) is not Position:
        anchor = Position(anchor)
    return [polygon.contains(*zone_point(box, frame_wh=frame_wh, anchor=anchor)) for box in boxes]


def _short(value: object, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
