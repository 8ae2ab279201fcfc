"""Zones and counting lines: which objects are in a region, which tracks crossed a line.

Coordinates are either normalised to the frame (0..1, as the control config's ``ZoneSpec`` and
``LineSpec`` hold them) or pixels. Both classes work on whole arrays of anchor points; nothing
loops over pixels or, for zones, over detections.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from edge_app.detections import (
    ClassNames,
    Detections,
    Position,
    class_ids_of,
    class_name_of,
)

Point = tuple[float, float]


def _points_array(points: Sequence[Point], what: str, minimum: int) -> np.ndarray:
    array = np.asarray(points, dtype=np.float64)
    if array.ndim != 2 or array.shape[1] != 2 or len(array) < minimum:
        raise ValueError(f"{what} needs at least {minimum} (x, y) points, got {points!r}")
    if not np.isfinite(array).all():
        raise ValueError(f"{what} has non-finite coordinates: {points!r}")
    return array


def _is_normalized(points: np.ndarray, normalized: bool | None) -> bool:
    if normalized is None:
        return bool(((points >= 0) & (points <= 1)).all())
    return normalized


def _to_pixels(
    points: np.ndarray, normalized: bool, frame_wh: tuple[int, int] | None, what: str
) -> np.ndarray:
    if not normalized:
        return points
    if frame_wh is None:
        raise ValueError(f"{what} has normalised coordinates; pass frame_wh=(width, height)")
    return points * np.asarray(frame_wh, dtype=np.float64)


def _class_filter(
    detections: Detections, classes: tuple[int | str, ...] | None
) -> np.ndarray | None:
    if classes is None:
        return None
    return np.isin(detections.class_id, class_ids_of(classes, detections.class_names))


def _counts_by_name(
    counts: dict[int, int], class_names: ClassNames | None, classes: Sequence[int | str] | None
) -> dict[str, int]:
    result: dict[str, int] = {}
    if classes is not None:
        for item in classes:
            result[item if isinstance(item, str) else class_name_of(class_names, item)] = 0
    for class_id, number in sorted(counts.items()):
        name = class_name_of(class_names, class_id)
        result[name] = result.get(name, 0) + number
    return result


def points_in_polygon(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Whether each ``(N, 2)`` point lies inside ``polygon`` (even-odd rule, vectorised).

    Examples:
        >>> import numpy as np
        >>> square = np.array([[0, 0], [10, 0], [10, 10], [0, 10]])
        >>> points_in_polygon(np.array([[5, 5], [15, 5]]), square).tolist()
        [True, False]
    """
    if len(points) == 0:
        return np.zeros(0, dtype=bool)
    x, y = points[:, 0:1], points[:, 1:2]  # (N, 1) against the (V,) edges
    x1, y1 = polygon[:, 0], polygon[:, 1]
    x2, y2 = np.roll(x1, -1), np.roll(y1, -1)
    straddles = (y1 > y) != (y2 > y)
    with np.errstate(divide="ignore", invalid="ignore"):
        crossing_x = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
    return ((straddles & (x < crossing_x)).sum(axis=1) % 2).astype(bool)


class PolygonZone:
    """A region of the frame; `trigger` tells which detections have their anchor inside.

    Args:
        name: Zone name (as in the control config's ``ZoneSpec``).
        polygon: At least 3 ``(x, y)`` points, normalised 0..1 or pixels.
        classes: Count only these classes (ids or names); all when None.
        anchor: Point of each box that must be inside (bottom centre: where an object stands).
        normalized: Whether ``polygon`` is normalised; guessed (all values in 0..1) when None.

    Attributes:
        current_count: Detections inside at the last `trigger`.
        class_counts: Per class id, detections inside at the last `trigger`.

    Examples:
        >>> import numpy as np
        >>> zone = PolygonZone("tank", [(0, 0), (0.5, 0), (0.5, 1), (0, 1)], classes=["fish"])
        >>> d = Detections(np.array([[10, 10, 50, 50], [300, 10, 350, 50]]), np.ones(2),
        ...                np.array([0, 0]), class_names=["fish"])
        >>> zone.trigger(d, frame_wh=(640, 480)).tolist(), zone.counts()
        ([True, False], {'fish': 1})
    """

    def __init__(
        self,
        name: str,
        polygon: Sequence[Point],
        classes: Iterable[int | str] | None = None,
        anchor: Position | str = Position.BOTTOM_CENTER,
        normalized: bool | None = None,
    ) -> None:
        self.name = name
        self.polygon = _points_array(polygon, f"zone {name!r} polygon", 3)
        self.normalized = _is_normalized(self.polygon, normalized)
        self.classes = None if classes is None else tuple(classes)
        self.anchor = Position(anchor)
        self.current_count = 0
        self.class_counts: dict[int, int] = {}
        self._class_names: ClassNames | None = None

    def polygon_pixels(self, frame_wh: tuple[int, int] | None) -> np.ndarray:
        """The polygon in pixels of a ``(width, height)`` frame."""
        return _to_pixels(self.polygon, self.normalized, frame_wh, f"zone {self.name!r}")

    def trigger(
        self, detections: Detections, frame_wh: tuple[int, int] | None = None
    ) -> np.ndarray:
        """Boolean mask of the detections inside the zone (and of its classes); updates counts.

        Args:
            detections: This frame's detections.
            frame_wh: ``(width, height)`` of the frame; needed for normalised polygons.
        """
        inside = points_in_polygon(detections.anchors(self.anchor), self.polygon_pixels(frame_wh))
        wanted = _class_filter(detections, self.classes)
        if wanted is not None:
            inside &= wanted
        ids, numbers = np.unique(detections.class_id[inside], return_counts=True)
        self.class_counts = dict(zip(ids.tolist(), numbers.tolist(), strict=True))
        self.current_count = int(inside.sum())
        self._class_names = detections.class_names
        return inside

    def counts(self, class_names: ClassNames | None = None) -> dict[str, int]:
        """Per class name, detections inside at the last `trigger` (zone classes listed at 0)."""
        names = class_names if class_names is not None else self._class_names
        return _counts_by_name(self.class_counts, names, self.classes)


class LineCounter:
    """A counting line: tracks whose anchor crosses it are counted in or out, once per direction.

    Crossing from the left of ``start -> end`` (as seen on screen) to its right counts as *in*,
    the other way as *out*; for a line drawn left to right, *in* is downwards. A track counts at
    most once in each direction, so an object that wobbles on the line is not counted again and
    again. Anchors closer to the line than ``min_distance`` pixels (or beyond the ends of the
    segment) keep their last side, which absorbs jitter of the boxes.

    Args:
        name: Line name (as in the control config's ``LineSpec``).
        start: First point, normalised 0..1 or pixels.
        end: Second point.
        classes: Count only these classes (ids or names); all when None.
        anchor: Point of each box whose side is watched.
        min_distance: Dead band around the line, in pixels.
        normalized: Whether the points are normalised; guessed (all in 0..1) when None.
        forget_after: Triggers after which a track not seen again is forgotten.

    Attributes:
        in_count: Crossings *in* since creation (or `reset`).
        out_count: Crossings *out*.
        in_class_counts: Crossings *in* per class id.
        out_class_counts: Crossings *out* per class id.

    Examples:
        >>> import numpy as np
        >>> line = LineCounter("door", start=(0, 100), end=(200, 100))
        >>> for y in (60, 90, 130, 150):
        ...     d = Detections(np.array([[40, y - 20, 60, y]]), np.ones(1), np.zeros(1),
        ...                    tracker_id=np.array([7]))
        ...     _ = line.trigger(d)
        >>> line.in_count, line.out_count
        (1, 0)
    """

    def __init__(
        self,
        name: str,
        start: Point,
        end: Point,
        classes: Iterable[int | str] | None = None,
        anchor: Position | str = Position.BOTTOM_CENTER,
        min_distance: float = 2.0,
        normalized: bool | None = None,
        forget_after: int = 300,
    ) -> None:
        self.name = name
        points = _points_array([start, end], f"line {name!r}", 2)
        if np.allclose(points[0], points[1]):
            raise ValueError(f"line {name!r} needs two different points, got {start} and {end}")
        if min_distance < 0:
            raise ValueError(f"min_distance must be >= 0 pixels, got {min_distance}")
        self.points = points
        self.normalized = _is_normalized(points, normalized)
        self.classes = None if classes is None else tuple(classes)
        self.anchor = Position(anchor)
        self.min_distance = float(min_distance)
        self.forget_after = forget_after
        self._class_names: ClassNames | None = None
        self.reset()

    def reset(self) -> None:
        """Zero the counts and forget all tracks."""
        self.in_count = 0
        self.out_count = 0
        self.in_class_counts: dict[int, int] = {}
        self.out_class_counts: dict[int, int] = {}
        self._frame = 0
        # Per known track, sorted by id: last side (+1 right, -1 left), counted flags, last seen.
        self._ids = np.empty(0, np.int64)
        self._side = np.empty(0, np.int8)
        self._counted_in = np.empty(0, bool)
        self._counted_out = np.empty(0, bool)
        self._last_seen = np.empty(0, np.int64)

    def points_pixels(self, frame_wh: tuple[int, int] | None) -> np.ndarray:
        """``[start, end]`` in pixels of a ``(width, height)`` frame."""
        return _to_pixels(self.points, self.normalized, frame_wh, f"line {self.name!r}")

    def sides(self, detections: Detections, frame_wh: tuple[int, int] | None = None) -> np.ndarray:
        """Side of each anchor: +1 right of ``start -> end``, -1 left, 0 on the line or off its ends."""
        start, end = self.points_pixels(frame_wh)
        direction = end - start
        offsets = detections.anchors(self.anchor).astype(np.float64) - start
        cross = direction[0] * offsets[:, 1] - direction[1] * offsets[:, 0]
        length = float(np.hypot(*direction))
        along = (offsets @ direction) / length**2
        side = np.sign(cross).astype(np.int8)
        side[(np.abs(cross) / length <= self.min_distance) | (along < 0) | (along > 1)] = 0
        return side

    def trigger(
        self, detections: Detections, frame_wh: tuple[int, int] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Update the counts with this frame's tracked detections.

        Detections without a ``tracker_id`` are ignored.

        Args:
            detections: This frame's detections, after the tracker.
            frame_wh: ``(width, height)`` of the frame; needed for normalised points.

        Returns:
            Two boolean masks over ``detections``: counted *in* now, counted *out* now.
        """
        self._frame += 1
        self._class_names = detections.class_names
        crossed_in = np.zeros(len(detections), dtype=bool)
        crossed_out = np.zeros(len(detections), dtype=bool)
        eligible = detections.tracker_id >= 0
        wanted = _class_filter(detections, self.classes)
        if wanted is not None:
            eligible &= wanted
        rows = np.flatnonzero(eligible)
        # One box per track: a tracker gives each id to at most one detection per frame.
        ids, first = np.unique(detections.tracker_id[rows], return_index=True)
        rows = rows[first]
        side = self.sides(detections[rows], frame_wh)
        slots = self._slots_for(ids)
        self._last_seen[slots] = self._frame
        decided = side != 0
        previous = self._side[slots]
        moved = decided & (previous != 0) & (side != previous)
        went_in = moved & (side > 0) & ~self._counted_in[slots]
        went_out = moved & (side < 0) & ~self._counted_out[slots]
        self._counted_in[slots[went_in]] = True
        self._counted_out[slots[went_out]] = True
        self._side[slots[decided]] = side[decided]
        crossed_in[rows[went_in]] = True
        crossed_out[rows[went_out]] = True
        self.in_count += int(went_in.sum())
        self.out_count += int(went_out.sum())
        _add_counts(self.in_class_counts, detections.class_id[rows[went_in]])
        _add_counts(self.out_class_counts, detections.class_id[rows[went_out]])
        self._forget_stale()
        return crossed_in, crossed_out

    def _slots_for(self, ids: np.ndarray) -> np.ndarray:
        """Positions of ``ids`` (sorted, unique) in the per-track arrays, adding new ones."""
        new = ids[~np.isin(ids, self._ids)]
        if len(new):
            merged = np.concatenate((self._ids, new))
            order = np.argsort(merged, kind="stable")
            count = len(new)
            self._ids = merged[order]
            self._side = np.concatenate((self._side, np.zeros(count, np.int8)))[order]
            self._counted_in = np.concatenate((self._counted_in, np.zeros(count, bool)))[order]
            self._counted_out = np.concatenate((self._counted_out, np.zeros(count, bool)))[order]
            self._last_seen = np.concatenate((self._last_seen, np.zeros(count, np.int64)))[order]
        return np.searchsorted(self._ids, ids)

    def _forget_stale(self) -> None:
        fresh = self._frame - self._last_seen <= self.forget_after
        if not fresh.all():
            self._ids = self._ids[fresh]
            self._side = self._side[fresh]
            self._counted_in = self._counted_in[fresh]
            self._counted_out = self._counted_out[fresh]
            self._last_seen = self._last_seen[fresh]

    def counts(self, class_names: ClassNames | None = None) -> dict[str, dict[str, int]]:
        """``{"in": {class: n}, "out": {class: n}}`` since creation (line classes listed at 0)."""
        names = class_names if class_names is not None else self._class_names
        return {
            "in": _counts_by_name(self.in_class_counts, names, self.classes),
            "out": _counts_by_name(self.out_class_counts, names, self.classes),
        }


def _add_counts(counts: dict[int, int], class_ids: np.ndarray) -> None:
    for class_id in class_ids.tolist():
        counts[class_id] = counts.get(class_id, 0) + 1
