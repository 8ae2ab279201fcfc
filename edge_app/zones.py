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
    anchor_points,
    class_ids_of,
    class_name_of,
    tally,
)
from kit.core.geometry import Polygon, boxes_in_zone

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
    wanted = class_ids_of(classes, detections.class_names)
    # np.isin, without its set machinery (a handful of ids against a handful of classes)
    return (detections.class_id[:, None] == wanted[None, :]).any(axis=1)


def _geometry_key(
    points: np.ndarray, normalized: bool, frame_wh: tuple[int, int] | None
) -> tuple | None:
    """What the pixel geometry of ``points`` depends on, or None when it cannot be cached.

    The points themselves are part of the key, so that a zone or line whose points are
    changed (replaced or edited in place) is never measured with stale pixels.
    """
    if type(points) is not np.ndarray:
        return None
    if normalized:
        if type(frame_wh) is not tuple or not all(
            isinstance(v, (int, float, np.integer, np.floating)) for v in frame_wh
        ):
            return None
    else:
        frame_wh = None  # pixels do not depend on the frame size
    return (points.tobytes(), points.shape, points.dtype.str, normalized, frame_wh)


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
        self._prepared_key = (self.polygon.tobytes(), self.polygon.shape)  # what `_prepared` is of
        self._prepared = Polygon(self.polygon.tolist(), what=f"zone {name!r} polygon")

    def polygon_pixels(self, frame_wh: tuple[int, int] | None) -> np.ndarray:
        """The polygon in pixels of a ``(width, height)`` frame."""
        return _to_pixels(self.polygon, self.normalized, frame_wh, f"zone {self.name!r}")

    def trigger(
        self, detections: Detections, frame_wh: tuple[int, int] | None = None
    ) -> np.ndarray:
        """Boolean mask of the detections inside the zone (and of its classes); updates counts.

        Membership is :func:`kit.core.geometry.boxes_in_zone`'s, the processor's rules use the
        same: the anchor at the payload's precision, normalised by the frame for a normalised
        polygon, inside or on the polygon's boundary.

        Args:
            detections: This frame's detections.
            frame_wh: ``(width, height)`` of the frame; needed for normalised polygons.
        """
        if self.normalized and frame_wh is None:
            raise ValueError(
                f"zone {self.name!r} has normalised coordinates; pass frame_wh=(width, height)"
            )
        inside = np.array(
            boxes_in_zone(
                detections.xyxy.tolist(),
                self._polygon(),
                frame_wh=frame_wh if self.normalized else None,
                anchor=self.anchor,
            ),
            dtype=bool,
        )
        wanted = _class_filter(detections, self.classes)
        if wanted is not None:
            inside &= wanted
        inside_class_id = detections.class_id[inside]
        self.class_counts = tally(inside_class_id)
        self.current_count = len(inside_class_id)
        self._class_names = detections.class_names
        return inside

    def _polygon(self) -> Polygon:
        """`polygon` prepared for point tests, made again when its points were changed."""
        key = (self.polygon.tobytes(), self.polygon.shape)
        if key != self._prepared_key:
            self._prepared = Polygon(self.polygon.tolist(), what=f"zone {self.name!r} polygon")
            self._prepared_key = key
        return self._prepared

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
        # Per known track id: [last side (+1 right, -1 left, 0 none yet), counted in,
        # counted out, last seen trigger], least recently seen first (see `_forget_stale`).
        self._tracks: dict[int, list] = {}
        self._geometry_key: tuple | None = None  # what `_geometry` was computed for
        self._geometry: tuple[np.ndarray, np.ndarray, float, float] | None = None

    def points_pixels(self, frame_wh: tuple[int, int] | None) -> np.ndarray:
        """``[start, end]`` in pixels of a ``(width, height)`` frame."""
        return _to_pixels(self.points, self.normalized, frame_wh, f"line {self.name!r}")

    def sides(self, detections: Detections, frame_wh: tuple[int, int] | None = None) -> np.ndarray:
        """Side of each anchor: +1 right of ``start -> end``, -1 left, 0 on the line or off its ends."""
        return self._sides(detections.xyxy, self._pixel_geometry(frame_wh))

    def _pixel_geometry(
        self, frame_wh: tuple[int, int] | None
    ) -> tuple[np.ndarray, np.ndarray, float, float]:
        """``(start, end - start, length, length**2)`` in pixels, kept while nothing changes."""
        key = _geometry_key(self.points, self.normalized, frame_wh)
        if key is None or key != self._geometry_key:
            start, end = self.points_pixels(frame_wh)
            direction = end - start
            length = float(np.hypot(*direction))
            geometry = (start, direction, length, length**2)
            if key is None:
                return geometry
            self._geometry_key, self._geometry = key, geometry
        return self._geometry

    def _sides(
        self, xyxy: np.ndarray, geometry: tuple[np.ndarray, np.ndarray, float, float]
    ) -> np.ndarray:
        """`sides` of the anchors of boxes ``xyxy``."""
        start, direction, length, length_squared = geometry
        offsets = anchor_points(xyxy, self.anchor) - start  # float64, like start
        cross = direction[0] * offsets[:, 1] - direction[1] * offsets[:, 0]
        along = (offsets @ direction) / length_squared
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
        rows = eligible.nonzero()[0]
        # One box per track, the first (a tracker gives each id to at most one detection per
        # frame), in increasing order of id.
        row_of: dict[int, int] = {}
        for row, track_id in zip(rows.tolist(), detections.tracker_id[rows].tolist(), strict=True):
            row_of.setdefault(track_id, row)
        ids = sorted(row_of)
        rows = np.array([row_of[track_id] for track_id in ids], dtype=np.intp)
        geometry = self._pixel_geometry(frame_wh)
        sides = self._sides(detections.xyxy[rows], geometry).tolist() if len(rows) else []
        went_in: list[int] = []
        went_out: list[int] = []
        tracks, frame = self._tracks, self._frame
        for track_id, row, side in zip(ids, rows.tolist(), sides, strict=True):
            track = tracks.pop(track_id, None) or [0, False, False, frame]
            track[3] = frame
            tracks[track_id] = track  # now the most recently seen
            if side:
                if track[0] and side != track[0]:
                    if side > 0 and not track[1]:
                        track[1] = True
                        went_in.append(row)
                    elif side < 0 and not track[2]:
                        track[2] = True
                        went_out.append(row)
                track[0] = side
        if went_in:
            crossed_in[went_in] = True
            self.in_count += len(went_in)
            _add_counts(self.in_class_counts, detections.class_id[went_in])
        if went_out:
            crossed_out[went_out] = True
            self.out_count += len(went_out)
            _add_counts(self.out_class_counts, detections.class_id[went_out])
        self._forget_stale()
        return crossed_in, crossed_out

    def _forget_stale(self) -> None:
        """Forget the tracks not seen for more than `forget_after` triggers (the oldest first)."""
        tracks = self._tracks
        while tracks:
            oldest = next(iter(tracks))
            if self._frame - tracks[oldest][3] <= self.forget_after:
                break
            del tracks[oldest]

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
