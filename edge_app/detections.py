"""`Detections`: the one value type that detectors, trackers, zones and annotators speak.

A `Detections` holds N boxes as parallel numpy arrays (pixels of the original frame), in the
spirit of `supervision.Detections` but without its dependencies, so that it fits the edge image.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kit.core.boxes import anchor_points, box_iou
from kit.core.geometry import Position, round_box

__all__ = [
    "UNTRACKED",
    "ClassNames",
    "Detections",
    "Position",
    "anchor_points",
    "box_iou",
    "class_ids_of",
    "class_items",
    "class_name_of",
    "tally",
]

ClassNames = Mapping[int, str] | Sequence[str]
"""Class names by class id: a ``{id: name}`` mapping or a sequence indexed by id."""

UNTRACKED = -1
"""The `tracker_id` of a detection that no track has claimed."""


def class_name_of(class_names: ClassNames | None, class_id: int) -> str:
    """The name of ``class_id``, or ``"class_<id>"`` when ``class_names`` does not know it.

    Examples:
        >>> class_name_of({0: "fish"}, 0), class_name_of(["fish"], 3)
        ('fish', 'class_3')
    """
    if class_names is not None:
        if isinstance(class_names, Mapping):
            name = class_names.get(class_id)
            if name is not None:
                return name
        elif 0 <= class_id < len(class_names):
            return class_names[class_id]
    return f"class_{class_id}"


def class_items(class_names: ClassNames | None) -> list[tuple[int, str]]:
    """``(class_id, name)`` pairs sorted by id (empty for None).

    Examples:
        >>> class_items(["fish", "bottle"])
        [(0, 'fish'), (1, 'bottle')]
    """
    if class_names is None:
        return []
    if isinstance(class_names, Mapping):
        return sorted((int(k), v) for k, v in class_names.items())
    return list(enumerate(class_names))


def class_ids_of(classes: Iterable[int | str], class_names: ClassNames | None) -> np.ndarray:
    """Class ids for a mix of ids and names (names are looked up in ``class_names``).

    Raises:
        ValueError: when a name is not in ``class_names`` (or no names are known).

    Examples:
        >>> class_ids_of(["bottle", 3], {0: "person", 1: "bottle"}).tolist()
        [1, 3]
    """
    ids = []
    by_name = {name: cid for cid, name in class_items(class_names)}
    for item in classes:
        if isinstance(item, str):
            if item not in by_name:
                raise ValueError(
                    f"unknown class name {item!r}; known classes: {sorted(by_name) or 'none'}"
                )
            ids.append(by_name[item])
        else:
            ids.append(int(item))
    return np.asarray(ids, dtype=np.int64)


@dataclass(eq=False)
class Detections:
    """Boxes found in one frame, as parallel numpy arrays.

    Attributes:
        xyxy: ``(N, 4)`` float32 boxes ``x1, y1, x2, y2`` in pixels of the original frame.
        confidence: ``(N,)`` float32 scores in ``[0, 1]``.
        class_id: ``(N,)`` int64 class ids.
        tracker_id: ``(N,)`` int64 track ids, ``-1`` (`UNTRACKED`) where no track claims the box.
        class_names: Names by class id (shared, not copied), used by `counts` and `to_list`
            when they are not given names explicitly.
        data: Extra per-detection arrays of length N (for example ``"class_name"``).

    Examples:
        >>> import numpy as np
        >>> d = Detections(xyxy=np.array([[0, 0, 10, 10], [5, 5, 20, 20]]),
        ...                confidence=np.array([0.9, 0.3]), class_id=np.array([0, 1]),
        ...                class_names={0: "bottle", 1: "person"})
        >>> len(d), d.filter(min_confidence=0.5).counts()
        (2, {'bottle': 1, 'person': 0})
    """

    xyxy: np.ndarray
    confidence: np.ndarray
    class_id: np.ndarray
    tracker_id: np.ndarray | None = None
    class_names: ClassNames | None = None
    data: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.xyxy = np.asarray(self.xyxy, dtype=np.float32).reshape(-1, 4)
        n = len(self.xyxy)
        self.confidence = np.asarray(self.confidence, dtype=np.float32).reshape(-1)
        self.class_id = np.asarray(self.class_id, dtype=np.int64).reshape(-1)
        if self.tracker_id is None:
            self.tracker_id = np.full(n, UNTRACKED, dtype=np.int64)
        else:
            self.tracker_id = np.asarray(self.tracker_id, dtype=np.int64).reshape(-1)
        self.data = {key: np.asarray(value) for key, value in self.data.items()}
        for name, values in (
            ("confidence", self.confidence),
            ("class_id", self.class_id),
            ("tracker_id", self.tracker_id),
            *self.data.items(),
        ):
            if len(values) != n:
                raise ValueError(f"{name} has {len(values)} entries but xyxy has {n} boxes")

    @classmethod
    def _unchecked(
        cls,
        xyxy: np.ndarray,
        confidence: np.ndarray,
        class_id: np.ndarray,
        tracker_id: np.ndarray,
        class_names: ClassNames | None,
        data: dict[str, np.ndarray],
    ) -> Detections:
        """A `Detections` from arrays that already hold its invariants, without checking them.

        For the hot paths (selection, tracking) whose inputs come from a valid `Detections`:
        ``xyxy`` is ``(N, 4)`` float32, ``confidence`` ``(N,)`` float32, ``class_id`` and
        ``tracker_id`` ``(N,)`` int64 and every ``data`` value an array of length N. ``data``
        is taken as given (pass a new dict). Anything else must go through the constructor.
        """
        detections = object.__new__(cls)
        detections.xyxy = xyxy
        detections.confidence = confidence
        detections.class_id = class_id
        detections.tracker_id = tracker_id
        detections.class_names = class_names
        detections.data = data
        return detections

    @classmethod
    def empty(cls, class_names: ClassNames | None = None) -> Detections:
        """No detections.

        Examples:
            >>> len(Detections.empty())
            0
        """
        return cls(
            xyxy=np.empty((0, 4), np.float32),
            confidence=np.empty(0, np.float32),
            class_id=np.empty(0, np.int64),
            class_names=class_names,
        )

    @classmethod
    def from_ultralytics(cls, result: Any) -> Detections:
        """Detections from one ultralytics ``Results`` (duck-typed: ultralytics is not imported).

        Adds ``data["class_name"]`` and keeps ``result.names`` as `class_names`; ``boxes.id``
        becomes `tracker_id` when the result comes from ``model.track``.

        Examples:
            >>> # results = YOLO("best.onnx").predict(frame)
            >>> # detections = Detections.from_ultralytics(results[0])
        """
        boxes = result.boxes
        names = dict(result.names) if getattr(result, "names", None) is not None else None
        class_id = _as_numpy(boxes.cls).astype(np.int64)
        tracker_id = None if getattr(boxes, "id", None) is None else _as_numpy(boxes.id)
        data = {}
        if names is not None:
            data["class_name"] = np.array(
                [class_name_of(names, int(c)) for c in class_id], dtype=str
            )
        return cls(
            xyxy=_as_numpy(boxes.xyxy),
            confidence=_as_numpy(boxes.conf),
            class_id=class_id,
            tracker_id=tracker_id,
            class_names=names,
            data=data,
        )

    def __len__(self) -> int:
        return len(self.xyxy)

    def __iter__(self):
        """Iterate over single-detection `Detections`."""
        for i in range(len(self)):
            yield self[i]

    def __getitem__(
        self, index: int | slice | np.ndarray | Sequence[int] | Sequence[bool]
    ) -> Detections:
        """Select detections by position, slice, index array or boolean mask.

        Examples:
            >>> import numpy as np
            >>> d = Detections(np.zeros((3, 4)), np.array([0.1, 0.5, 0.9]), np.zeros(3))
            >>> len(d[d.confidence > 0.3]), len(d[[0, 2]]), len(d[1])
            (2, 2, 1)
        """
        if isinstance(index, (int, np.integer)):
            index, fast = [int(index)], True
        elif isinstance(index, np.ndarray):
            if index.dtype == bool and len(index) != len(self):
                raise IndexError(
                    f"boolean mask has {len(index)} entries for {len(self)} detections"
                )
            fast = index.ndim == 1 and index.dtype.kind in "biu"
        else:
            fast = isinstance(index, slice)
        if fast:
            # A position, slice or 1-D mask/index array keeps the shape and dtype of every
            # array, so the selection holds the invariants as it is: skip the checks.
            return Detections._unchecked(
                self.xyxy[index],
                self.confidence[index],
                self.class_id[index],
                self.tracker_id[index],
                self.class_names,
                {key: value[index] for key, value in self.data.items()},
            )
        return Detections(
            xyxy=self.xyxy[index],
            confidence=self.confidence[index],
            class_id=self.class_id[index],
            tracker_id=self.tracker_id[index],
            class_names=self.class_names,
            data={key: value[index] for key, value in self.data.items()},
        )

    def is_empty(self) -> bool:
        """Whether there are no detections."""
        return len(self) == 0

    @property
    def area(self) -> np.ndarray:
        """``(N,)`` box areas in square pixels."""
        return (self.xyxy[:, 2] - self.xyxy[:, 0]) * (self.xyxy[:, 3] - self.xyxy[:, 1])

    def anchors(self, position: Position | str = Position.BOTTOM_CENTER) -> np.ndarray:
        """``(N, 2)`` float32 points of each box at ``position`` (x, y in pixels).

        Examples:
            >>> import numpy as np
            >>> d = Detections(np.array([[0, 0, 10, 20]]), np.array([1.0]), np.array([0]))
            >>> d.anchors("bottom_center").tolist(), d.anchors("center").tolist()
            ([[5.0, 20.0]], [[5.0, 10.0]])
        """
        return anchor_points(self.xyxy, position)

    def filter(
        self,
        min_confidence: float | None = None,
        classes: Iterable[int | str] | None = None,
    ) -> Detections:
        """Detections with at least ``min_confidence`` and of one of ``classes`` (ids or names).

        Raises:
            ValueError: when a class name is unknown to `class_names`.

        Examples:
            >>> import numpy as np
            >>> d = Detections(np.zeros((2, 4)), np.array([0.9, 0.8]), np.array([0, 1]),
            ...                class_names=["fish", "bottle"])
            >>> d.filter(classes=["fish"]).class_id.tolist()
            [0]
        """
        keep = np.ones(len(self), dtype=bool)
        if min_confidence is not None:
            keep &= self.confidence >= min_confidence
        if classes is not None:
            keep &= np.isin(self.class_id, class_ids_of(classes, self.class_names))
        return self[keep]

    def _names(self, class_names: ClassNames | None) -> ClassNames | None:
        return class_names if class_names is not None else self.class_names

    def counts(self, class_names: ClassNames | None = None) -> dict[str, int]:
        """Number of detections per class name; every known class appears, with 0 if absent.

        Args:
            class_names: Names by class id; defaults to `class_names` of these detections.

        Examples:
            >>> import numpy as np
            >>> d = Detections(np.zeros((3, 4)), np.ones(3), np.array([1, 1, 0]))
            >>> d.counts(["fish", "bottle"])
            {'fish': 1, 'bottle': 2}
        """
        names = self._names(class_names)
        result = {name: 0 for _, name in class_items(names)}
        for class_id, number in tally(self.class_id).items():
            name = class_name_of(names, class_id)
            result[name] = result.get(name, 0) + number
        return result

    def to_list(self, class_names: ClassNames | None = None) -> list[dict[str, Any]]:
        """Plain dicts in the shape of the detection payload's ``Detection`` contract.

        Examples:
            >>> import numpy as np
            >>> d = Detections(np.array([[1, 2, 3, 4]]), np.array([0.5]), np.array([0]))
            >>> d.to_list(["fish"])[0]["box"]
            {'x1': 1.0, 'y1': 2.0, 'x2': 3.0, 'y2': 4.0}
        """
        names = self._names(class_names)
        boxes = [round_box(box) for box in self.xyxy.tolist()]  # the precision zones are judged at
        return [
            {
                "class_name": class_name_of(names, class_id),
                "class_id": class_id,
                "confidence": round(confidence, 4),
                "box": {"x1": box[0], "y1": box[1], "x2": box[2], "y2": box[3]},
                "track_id": None if track_id < 0 else track_id,
            }
            for box, confidence, class_id, track_id in zip(
                boxes,
                self.confidence.tolist(),
                self.class_id.tolist(),
                self.tracker_id.tolist(),
                strict=True,
            )
        ]

    @classmethod
    def merge(cls, parts: Sequence[Detections]) -> Detections:
        """One `Detections` from several (for example from several models on one frame).

        ``class_names`` and ``data`` keys are taken from the first part.

        Examples:
            >>> import numpy as np
            >>> a = Detections(np.zeros((1, 4)), np.ones(1), np.zeros(1))
            >>> len(Detections.merge([a, a]))
            2
        """
        if not parts:
            return cls.empty()
        first = parts[0]
        return cls(
            xyxy=np.concatenate([p.xyxy for p in parts]),
            confidence=np.concatenate([p.confidence for p in parts]),
            class_id=np.concatenate([p.class_id for p in parts]),
            tracker_id=np.concatenate([p.tracker_id for p in parts]),
            class_names=first.class_names,
            data={key: np.concatenate([p.data[key] for p in parts]) for key in first.data},
        )


def _as_numpy(values: Any) -> np.ndarray:
    if hasattr(values, "cpu"):
        values = values.cpu()
    if hasattr(values, "numpy"):
        return values.numpy()
    return np.asarray(values)


def tally(values: np.ndarray) -> dict[int, int]:
    """``{value: occurrences}`` of a small integer array, by increasing value.

    What ``np.unique(values, return_counts=True)`` tells, as a dict, without its sorting
    machinery (which dominates for the few detections of a frame).

    Examples:
        >>> import numpy as np
        >>> tally(np.array([3, 1, 3]))
        {1: 1, 3: 2}
    """
    counts: dict[int, int] = {}
    for value in values.tolist():
        counts[value] = counts.get(value, 0) + 1
    return dict(sorted(counts.items()))
