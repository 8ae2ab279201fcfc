"""Scenario videos with per-frame ground truth, for tests, demos and benchmarks.

Three scenarios, one per use case:

- ``bottles_removed``: bottles are taken off a shelf one by one (each slides out at the end
  of its board) until `remaining` are left; the bottle count never rises.
- ``fish_arriving``: fish swim in from the edges, one after another, to spots inside a
  region and hover there; the number in the region grows. The region (normalised polygon)
  is in the info.
- ``helmet_off``: a worker walks in wearing a helmet, lifts it off, holds it at the hip,
  drops it into a bin and walks away bareheaded; the helmet count goes from 1 to 0 while
  the person stays.

Motion is smooth (eased, sub-pixel) so a tracker can follow every object; each object keeps
its track id in the ground truth.
"""

from __future__ import annotations

import abc
import json
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from kit.synthetic.core import (
    Color,
    Drawable,
    ObjectLabel,
    Polygon,
    Scene,
    SceneLayout,
    check_size,
    compose,
    ellipse_points,
    jitter,
    rect_points,
    shade,
)
from kit.synthetic.fish import (
    DEFAULT_REGION,
    bubble_drawables,
    fish_parts,
    random_fish_look,
    validate_region,
    water_plan,
)
from kit.synthetic.ppe import (
    CLASSES as PPE_CLASSES,
)
from kit.synthetic.ppe import (
    HEAD_RADIUS,
    HELMET,
    HELMET_COLORS,
    PERSON,
    PersonPose,
    helmet_parts,
    person_figure,
    random_person_look,
    shadow_drawable,
    site_plan,
)
from kit.synthetic.shelf import CLASSES as SHELF_CLASSES
from kit.synthetic.shelf import bottle_width, plan_shelf

FOURCC_BY_SUFFIX = {".mp4": "mp4v", ".avi": "MJPG"}
"""Video codec used for each file suffix."""


@dataclass
class FrameTruth:
    """Ground truth of one video frame.

    Attributes:
        index: Frame number from 0.
        time_s: Time of the frame in seconds.
        boxes: Boxes as [x1, y1, x2, y2] in pixels.
        class_ids: Class index of each box.
        track_ids: Identity of each box, stable across frames.
        counts: Number of labelled objects per class name.
        extras: Scenario facts (`in_region`, `helmets_worn`, `persons_without_helmet`).
    """

    index: int
    time_s: float
    boxes: list[list[float]]
    class_ids: list[int]
    track_ids: list[int]
    counts: dict[str, int]
    extras: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_scene(cls, index: int, fps: float, scene: Scene, extras: dict[str, Any]) -> FrameTruth:
        """Ground truth of a rendered frame."""
        return cls(
            index=index,
            time_s=round(index / fps, 6),
            boxes=[[round(float(v), 2) for v in box] for box in scene.boxes],
            class_ids=[int(c) for c in scene.class_ids],
            track_ids=[int(t) for t in scene.track_ids],
            counts=scene.counts(),
            extras=extras,
        )


@dataclass
class ScenarioInfo:
    """What a scenario video shows, frame by frame (written as a JSON sidecar).

    Attributes:
        scenario: Scenario name.
        use_case: Use case whose classes label the frames.
        classes: Class names.
        fps: Frames per second.
        frame_count: Number of frames.
        size: Frame (width, height).
        seed: Random seed.
        params: Scenario parameters used.
        region: Region of interest as normalised (x, y) corners, or None.
        video_path: Path of the video file, or None when no file was written.
        frames: Per-frame ground truth.

    Examples:
        >>> info = ScenarioInfo.load("bottles.json")  # doctest: +SKIP
        >>> info.count_series("bottle")[:3]  # doctest: +SKIP
        [11, 11, 11]
    """

    scenario: str
    use_case: str
    classes: list[str]
    fps: float
    frame_count: int
    size: tuple[int, int]
    seed: int
    params: dict[str, Any]
    region: list[list[float]] | None
    video_path: str | None
    frames: list[FrameTruth]

    @property
    def counts(self) -> list[dict[str, int]]:
        """Per-frame counts per class name."""
        return [frame.counts for frame in self.frames]

    def count_series(self, class_name: str) -> list[int]:
        """Number of objects of one class in each frame.

        Raises:
            ValueError: If `class_name` is not one of :attr:`classes`.
        """
        if class_name not in self.classes:
            raise ValueError(f"unknown class {class_name!r}; classes are {self.classes}")
        return [frame.counts[class_name] for frame in self.frames]

    def extra_series(self, key: str) -> list[Any]:
        """One scenario fact (e.g. `in_region`) for each frame.

        Raises:
            ValueError: If the frames do not carry `key`.
        """
        if not self.frames or key not in self.frames[0].extras:
            available = sorted(self.frames[0].extras) if self.frames else []
            raise ValueError(f"frames carry no {key!r}; available: {available}")
        return [frame.extras[key] for frame in self.frames]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        data = asdict(self)
        data["size"] = list(self.size)
        return data

    def save(self, path: str | Path) -> Path:
        """Write the info as JSON and return the path."""
        target = Path(path)
        target.write_text(json.dumps(self.to_dict(), separators=(",", ":")), encoding="utf-8")
        return target

    @classmethod
    def load(cls, path: str | Path) -> ScenarioInfo:
        """Read an info from its JSON sidecar (or from the video path next to it)."""
        source = Path(path)
        if source.suffix.lower() != ".json":
            source = source.with_suffix(".json")
        data = json.loads(source.read_text(encoding="utf-8"))
        data["size"] = tuple(data["size"])
        data["frames"] = [FrameTruth(**frame) for frame in data["frames"]]
        return cls(**data)


def _smoothstep(t: np.ndarray | float) -> np.ndarray | float:
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _progress(frame: int, start: float, end: float) -> float:
    """Linear progress 0..1 of `frame` through the frame interval [start, end]."""
    if end <= start:
        return 1.0 if frame >= end else 0.0
    return float(np.clip((frame - start) / (end - start), 0.0, 1.0))


class _Scenario(abc.ABC):
    """A scenario's world: lays out frame `i` and reports its scenario facts."""

    name = ""
    use_case = ""
    classes: list[str] = []

    def __init__(
        self, rng: np.random.Generator, size: tuple[int, int], n_frames: int, fps: float
    ) -> None:
        self.size = size
        self.n_frames = n_frames
        self.fps = fps
        self.region: list[list[float]] | None = None

    @abc.abstractmethod
    def layout(self, index: int) -> SceneLayout:
        """Where everything is in frame ``index``."""

    def facts(self, index: int, scene: Scene) -> dict[str, Any]:
        return {}


class _BottlesRemoved(_Scenario):
    name = "bottles_removed"
    use_case = "shelf"
    classes = list(SHELF_CLASSES)

    def __init__(
        self,
        rng: np.random.Generator,
        size: tuple[int, int],
        n_frames: int,
        fps: float,
        *,
        n_boards: int = 2,
        n_bottles: int = 8,
        remaining: int = 1,
    ) -> None:
        super().__init__(rng, size, n_frames, fps)
        if not 0 <= int(remaining) <= int(n_bottles):
            raise ValueError(f"remaining must be 0..n_bottles ({n_bottles}), got {remaining!r}")
        self.plan = plan_shelf(
            rng, size, n_boards=n_boards, fill=1.0, boxes=False, cut_at_sides=False
        )
        if len(self.plan.bottles) > int(n_bottles):
            keep = np.sort(rng.choice(len(self.plan.bottles), int(n_bottles), replace=False))
            self.plan.bottles = [self.plan.bottles[i] for i in keep]
        width = size[0]
        ends = {board: deque() for board in range(len(self.plan.board_rows))}
        for index in sorted(range(len(self.plan.bottles)), key=lambda i: self.plan.bottles[i].cx):
            ends[self.plan.bottles[index].board].append(index)
        n_remove = max(0, len(self.plan.bottles) - int(remaining))
        # (bottle, direction, lift, slide distance), taking each time the end bottle nearest
        # to the picture's edge so that its way out is clear and short
        picks: list[tuple[int, int, float, float]] = []
        for _ in range(n_remove):
            options = []
            for board, queue in ends.items():
                if queue:
                    left, right = self.plan.bottles[queue[0]], self.plan.bottles[queue[-1]]
                    options.append((left.cx, board, -1))
                    options.append((width - right.cx, board, 1))
            options.sort()
            _, board, direction = options[int(rng.integers(min(2, len(options))))]
            index = ends[board].pop() if direction > 0 else ends[board].popleft()
            bottle = self.plan.bottles[index]
            half = bottle_width(bottle.look, bottle.height) / 2
            distance = (width - bottle.cx if direction > 0 else bottle.cx) + half + 4
            ceiling = self.plan.board_rows[board - 1][1] if board else 0.0
            room_above = bottle.base_y - bottle.height - ceiling
            lift = float(np.clip(min(0.04 * bottle.height, room_above - 2), 0.0, None))
            picks.append((index, direction, lift, distance))
        speed = 0.45 * width / fps
        moves = [0.25 * fps + distance / speed for _, _, _, distance in picks]
        window = 0.75 * n_frames
        if sum(moves) > 0.8 * window:
            moves = [m * 0.8 * window / sum(moves) for m in moves]
        pause = (window - sum(moves)) / max(n_remove, 1)
        # (bottle, first frame, last frame, direction, lift, slide distance)
        self.removals: list[tuple[int, float, float, int, float, float]] = []
        start = 0.1 * n_frames
        for (index, direction, lift, distance), move in zip(picks, moves, strict=True):
            self.removals.append((index, start, start + max(move, 2.0), direction, lift, distance))
            start += move + pause

    def layout(self, index: int) -> SceneLayout:
        offsets = np.zeros((len(self.plan.bottles), 2))
        gone = []
        for bottle, start, end, direction, lift, distance in self.removals:
            p = _progress(index, start, end)
            if p >= 1.0:
                gone.append(bottle)
                continue
            offsets[bottle, 1] = -lift * _smoothstep(p / 0.25)
            offsets[bottle, 0] = direction * distance * _smoothstep((p - 0.2) / 0.8)
        layout = self.plan.layout(offsets, track_ids=True)
        keep = [
            i
            for i in range(len(layout.drawables))
            if not (set(layout.drawables[i].owners) & set(gone))
        ]
        layout.drawables = [layout.drawables[i] for i in keep]
        return layout


def _signed_distance(point: np.ndarray, polygon: np.ndarray) -> float:
    """Distance from a point to a convex polygon's boundary, positive inside."""
    distance = cv2.pointPolygonTest(
        polygon.astype(np.float32), (float(point[0]), float(point[1])), True
    )
    return float(distance)


def _capsule_gap(
    a: np.ndarray,
    b: np.ndarray,
    length_a: float,
    length_b: float,
    heading_a: float,
    heading_b: float,
) -> float:
    """Clearance between two fish, each bounded by a capsule around its body axis."""

    def axis(center: np.ndarray, length: float, heading: float) -> np.ndarray:
        direction = np.array([np.cos(np.deg2rad(heading)), np.sin(np.deg2rad(heading))])
        return center + np.linspace(-0.55, 0.1, 8)[:, None] * length * direction

    points_a = axis(a, length_a, heading_a)
    points_b = axis(b, length_b, heading_b)
    closest = np.min(np.linalg.norm(points_a[:, None, :] - points_b[None, :, :], axis=2))
    return float(closest - 0.34 * (length_a + length_b))


class _FishArriving(_Scenario):
    name = "fish_arriving"
    use_case = "fish"
    classes = ["fish"]

    def __init__(
        self,
        rng: np.random.Generator,
        size: tuple[int, int],
        n_frames: int,
        fps: float,
        *,
        max_fish: int = 10,
        start_fish: int = 1,
        region: Sequence[Sequence[float]] | None = None,
        floor: bool | None = None,
        bubbles: bool = True,
    ) -> None:
        super().__init__(rng, size, n_frames, fps)
        if not 1 <= int(max_fish) <= 30:
            raise ValueError(f"max_fish must be 1..30, got {max_fish!r}")
        if not 0 <= int(start_fish) <= int(max_fish):
            raise ValueError(f"start_fish must be 0..max_fish ({max_fish}), got {start_fish!r}")
        width, height = size
        self.region = [
            list(p) for p in validate_region(DEFAULT_REGION if region is None else region)
        ]
        self.polygon = np.array(self.region) * np.array([width, height])
        self.water = water_plan(rng, size, floor)
        self.bubble_seed = int(rng.integers(2**31))
        self.bubble_count = int(rng.integers(8, 20)) if bubbles else 0
        frames = np.arange(n_frames)
        self.looks = []
        self.lengths: list[float] = []
        self.positions: list[np.ndarray] = []  # per fish: (n_frames, 2), NaN before it appears
        self.headings: list[np.ndarray] = []
        self.phases: list[float] = []
        arrivals = int(max_fish) - int(start_fish)
        for k in range(int(max_fish)):
            length = float(rng.uniform(0.065, 0.09) * width)
            if k < int(start_fish):
                start = -1.0
            else:
                start = n_frames * (0.05 + 0.6 * (k - int(start_fish)) / max(arrivals, 1))
            placed = self._place(rng, length, start, frames)
            if placed is None:
                continue
            positions, headings = placed
            self.looks.append(random_fish_look(rng))
            self.lengths.append(length)
            self.positions.append(positions)
            self.headings.append(headings)
            self.phases.append(float(rng.uniform(0, 2 * np.pi)))

    def _place(
        self, rng: np.random.Generator, length: float, start: float, frames: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """Choose a home and an entry path that stay clear of every fish already placed."""
        width, height = self.size
        margin = 0.42 * length
        bob = 0.05 * length
        for delay in range(6):
            begin = start + delay * 0.3 * self.fps if start >= 0 else start
            candidates = []
            for _ in range(150):
                home = np.array([rng.uniform(0, width), rng.uniform(0, height)])
                if _signed_distance(home, self.polygon) >= margin:
                    candidates.append(home)
            candidates.sort(key=lambda home: -home[0])
            for home in candidates[:40]:
                path = self._path(rng, home, length, begin, frames, bob)
                if path is not None and self._clear(path, length):
                    return path
        return None

    def _path(
        self,
        rng: np.random.Generator,
        home: np.ndarray,
        length: float,
        begin: float,
        frames: np.ndarray,
        bob: float,
    ) -> tuple[np.ndarray, np.ndarray] | None:
        width, height = self.size
        wobble_period = rng.uniform(1.5, 3.0) * self.fps
        wobble_phase = rng.uniform(0, 2 * np.pi)
        hover = np.stack(
            [
                home[0]
                + 0.5 * bob * np.sin(2 * np.pi * frames / (1.7 * wobble_period) + wobble_phase),
                home[1] + bob * np.sin(2 * np.pi * frames / wobble_period + wobble_phase),
            ],
            axis=1,
        )
        hover_heading = 5.0 * np.sin(2 * np.pi * frames / (2.3 * wobble_period) + wobble_phase)
        if begin < 0:
            return hover, hover_heading
        side = int(rng.integers(3)) if home[0] > 0.35 * width else 0
        if side == 0:
            entry = np.array([-0.8 * length, rng.uniform(0.1, 0.9) * height])
        else:
            entry_x = rng.uniform(0.0, max(home[0] - 0.25 * width, 1.0))
            entry = np.array([entry_x, -0.8 * length if side == 1 else height + 0.8 * length])
        control = np.array([home[0] - rng.uniform(0.3, 0.6) * (home[0] - entry[0]), home[1]])
        if not entry[0] <= control[0] <= home[0]:
            return None
        curve = np.linspace(0, 1, 64)[:, None]
        points = (1 - curve) ** 2 * entry + 2 * (1 - curve) * curve * control + curve**2 * home
        distance = float(np.sum(np.linalg.norm(np.diff(points, axis=0), axis=1)))
        speed = rng.uniform(0.18, 0.26) * width / self.fps
        duration = max(distance / speed, 2.0)
        # the fish brakes as it arrives: u is eased so the speed falls to zero at home
        u = np.clip((frames - begin) / duration, 0.0, 1.0)
        s = (1 - (1 - u) ** 2)[:, None]
        travel = (1 - s) ** 2 * entry + 2 * (1 - s) * s * control + s**2 * home
        tangent = 2 * (1 - s) * (control - entry) + 2 * s * (home - control)
        travel_heading = np.degrees(np.arctan2(tangent[:, 1], tangent[:, 0]))
        settle = _smoothstep((frames - begin - duration) / (0.5 * self.fps))[:, None]
        positions = travel * (1 - settle) + hover * settle
        headings = travel_heading * (1 - settle[:, 0]) + hover_heading * settle[:, 0]
        positions[frames < begin] = np.nan
        # once the fish is near the region's edge it must cross it once and stay inside
        signed = np.array(
            [_signed_distance(p, self.polygon) if np.isfinite(p[0]) else -np.inf for p in positions]
        )
        band = 0.3 * length
        near = np.nonzero(signed > -band)[0]
        if near.size and np.min(signed[near[0] :]) <= -band:
            return None
        inside = np.nonzero(signed > band)[0]
        if inside.size and np.min(signed[inside[0] :]) <= band:
            return None
        if not inside.size:
            return None
        return positions, headings

    def _clear(self, path: tuple[np.ndarray, np.ndarray], length: float) -> bool:
        positions, headings = path
        for other, other_headings, other_length in zip(
            self.positions, self.headings, self.lengths, strict=True
        ):
            both = np.isfinite(positions[:, 0]) & np.isfinite(other[:, 0])
            for frame in np.nonzero(both)[0][::2]:
                gap = _capsule_gap(
                    positions[frame],
                    other[frame],
                    length,
                    other_length,
                    headings[frame],
                    other_headings[frame],
                )
                if gap < 0.05 * length:
                    return False
        return True

    def layout(self, index: int) -> SceneLayout:
        drawables: list[Drawable] = []
        labels: list[ObjectLabel] = []
        for track, (look, length, positions, headings, phase) in enumerate(
            zip(self.looks, self.lengths, self.positions, self.headings, self.phases, strict=True)
        ):
            center = positions[index]
            if not np.isfinite(center[0]):
                continue
            moving = (
                index + 1 < self.n_frames
                and np.isfinite(positions[index + 1][0])
                and np.linalg.norm(positions[index + 1] - center) > 0.01 * length
            )
            beat = (1.5 if moving else 0.6) * 2 * np.pi * index / self.fps + phase
            swing = (18.0 if moving else 8.0) * np.sin(beat)
            labels.append(ObjectLabel(class_id=0, track_id=track))
            parts = fish_parts(look, center, length, float(headings[index]), tail_swing_deg=swing)
            drawables.append(Drawable(parts, owners=(len(labels) - 1,)))
        rise = index * 0.02 * self.size[1] / self.fps * 3
        bubbles = bubble_drawables(
            np.random.default_rng(self.bubble_seed), self.size, self.bubble_count, rise
        )
        return SceneLayout(
            background=self.water["background"],
            drawables=drawables + bubbles,
            labels=labels,
            classes=list(self.classes),
            lighting=self.water["lighting"],
            noise_sigma=self.water["noise_sigma"],
            blur_sigma=self.water["blur_sigma"],
            extras={"region": self.region},
        )

    def facts(self, index: int, scene: Scene) -> dict[str, Any]:
        centers = (scene.boxes[:, :2] + scene.boxes[:, 2:]) / 2
        inside = sum(_signed_distance(center, self.polygon) >= 0 for center in centers)
        return {"in_region": int(inside)}


_BIN_COLORS: list[Color] = [(140, 90, 40), (70, 70, 70), (50, 110, 50), (40, 90, 160)]


class _HelmetOff(_Scenario):
    name = "helmet_off"
    use_case = "ppe"
    classes = list(PPE_CLASSES)

    def __init__(
        self,
        rng: np.random.Generator,
        size: tuple[int, int],
        n_frames: int,
        fps: float,
        *,
        helmet_color: str | None = None,
        props: bool = True,
    ) -> None:
        super().__init__(rng, size, n_frames, fps)
        if helmet_color is not None and helmet_color not in HELMET_COLORS:
            raise ValueError(
                f"helmet_color must be one of {sorted(HELMET_COLORS)}, got {helmet_color!r}"
            )
        width, height = size
        self.site = site_plan(rng, size, props)
        look = random_person_look(rng, helmet=True)
        if helmet_color is not None:
            look = replace(look, helmet=HELMET_COLORS[helmet_color])
        self.look = look
        self.feet_y = float(rng.uniform(0.88, 0.96) * height)
        self.person_h = float(min(rng.uniform(0.72, 0.85) * height, self.feet_y - 0.03 * height))
        h = self.person_h
        self.x_start = float(rng.uniform(0.12, 0.22) * width)
        self.x_stop = float(min(self.x_start + rng.uniform(0.12, 0.22) * width, width - 0.5 * h))
        self.x_end = float(max(self.x_stop - rng.uniform(0.15, 0.25) * width, 0.12 * width))
        self.radius = HEAD_RADIUS * h
        self.bin_cx = self.x_stop + 0.32 * h
        self.bin_top = self.feet_y - 0.5 * h
        self.bin_color = jitter(rng, _BIN_COLORS[int(rng.integers(len(_BIN_COLORS)))], 10)
        n = n_frames
        # phase boundaries as frame numbers
        self.walk_in = (0.0, 0.22 * n)
        self.reach = (0.25 * n, 0.33 * n)
        self.lift = (0.33 * n, 0.42 * n)
        self.lower = (0.42 * n, 0.52 * n)
        self.to_bin = (0.6 * n, 0.68 * n)
        self.drop = (0.68 * n, 0.74 * n)
        self.hand_back = (0.68 * n, 0.78 * n)
        self.walk_out = (0.8 * n, 1.0 * n)

    def _feet_x(self, index: float) -> float:
        if index <= self.walk_in[1]:
            p = _smoothstep(_progress(index, *self.walk_in))
            return self.x_start + (self.x_stop - self.x_start) * p
        p = _smoothstep(_progress(index, *self.walk_out))
        return self.x_stop + (self.x_end - self.x_stop) * p

    def _pose(self, index: int, feet_x: float) -> PersonPose:
        """Walking pose: legs and the free arm swing with the distance walked."""
        h = self.person_h
        speed = abs(self._feet_x(index + 0.5) - self._feet_x(index - 0.5))
        walked = (
            abs(feet_x - self.x_start)
            if index <= self.walk_in[1]
            else (abs(self.x_stop - self.x_start) + abs(feet_x - self.x_stop))
        )
        stride = float(np.clip(speed / (0.012 * h), 0.0, 1.0))
        swing = 22.0 * stride * np.sin(walked / (0.3 * h) * np.pi)
        pose = PersonPose(
            left_arm=(-10.0 - 12.0 * stride * np.sin(walked / (0.3 * h) * np.pi), -8.0),
            right_arm=(10.0, 8.0),
            left_leg=-3.0 + swing,
            right_leg=3.0 - swing,
        )
        return pose

    def _helmet_and_hand(
        self, index: int, head: np.ndarray, rest_hand: np.ndarray
    ) -> tuple[np.ndarray | None, np.ndarray, bool]:
        """Helmet centre (None when inside the bin), right-hand target, helmet worn."""
        r = self.radius
        h = self.person_h
        grip = np.array([1.2 * r, -0.3 * r])  # hand relative to the helmet's head centre
        feet_x = self._feet_x(index)
        on_head = head
        lifted = head + np.array([0.6 * r, -1.2 * r])
        at_hip = np.array([feet_x + 0.3 * h, self.feet_y - 0.5 * h]) - grip
        over_bin = np.array([self.bin_cx, self.bin_top - 0.12 * h - 0.3 * r])
        in_bin = np.array([self.bin_cx, self.bin_top + 2.8 * r])
        if index < self.reach[0]:
            return on_head, rest_hand, True
        if index < self.lift[0]:
            p = _smoothstep(_progress(index, *self.reach))
            return on_head, rest_hand + (on_head + grip - rest_hand) * p, True
        if index < self.lower[0]:
            p = _smoothstep(_progress(index, *self.lift))
            helmet = on_head + (lifted - on_head) * p
            return helmet, helmet + grip, p <= 0.0
        if index < self.to_bin[0]:
            p = _smoothstep(_progress(index, *self.lower))
            helmet = lifted + (at_hip - lifted) * p
            return helmet, helmet + grip, False
        if index < self.drop[0]:
            p = _smoothstep(_progress(index, *self.to_bin))
            helmet = at_hip + (over_bin - at_hip) * p
            return helmet, helmet + grip, False
        release = over_bin + grip
        hand = release + (rest_hand - release) * _smoothstep(_progress(index, *self.hand_back))
        if index < self.drop[1]:
            fall = _progress(index, *self.drop) ** 2
            return over_bin + (in_bin - over_bin) * fall, hand, False
        return None, hand, False

    def layout(self, index: int) -> SceneLayout:
        feet_x = self._feet_x(index)
        pose = self._pose(index, feet_x)
        rest = person_figure(self.look, feet_x, self.feet_y, self.person_h, pose)
        helmet_center, hand_target, worn = self._helmet_and_hand(
            index, rest.head_center, rest.right_hand_point
        )
        if np.linalg.norm(hand_target - rest.right_hand_point) > 1e-6:
            pose = PersonPose(
                pose.left_arm, pose.right_arm, pose.left_leg, pose.right_leg, tuple(hand_target)
            )
        figure = person_figure(self.look, feet_x, self.feet_y, self.person_h, pose)
        labels = [ObjectLabel(class_id=PERSON, track_id=0)]
        drawables = [
            shadow_drawable(self.site, feet_x, self.feet_y, self.person_h),
            Drawable(figure.body, owners=(0,)),
        ]
        if helmet_center is not None:
            labels.append(ObjectLabel(class_id=HELMET, track_id=1))
            owners = (1, 0) if worn else (1,)
            drawables.append(
                Drawable(helmet_parts(self.look.helmet, helmet_center, self.radius), owners=owners)
            )
        drawables.append(Drawable(figure.right_hand, owners=(0,)))
        drawables.append(self._bin())
        return SceneLayout(
            background=self.site.background,
            drawables=drawables,
            labels=labels,
            classes=list(self.classes),
            lighting=self.site.lighting,
            noise_sigma=self.site.noise_sigma,
            blur_sigma=self.site.blur_sigma,
            extras={"helmet_worn": worn and helmet_center is not None},
        )

    def _bin(self) -> Drawable:
        h = self.person_h
        half = 0.13 * h
        x1, x2 = self.bin_cx - half, self.bin_cx + half
        body = Polygon(rect_points(x1, self.bin_top, x2, self.feet_y), self.bin_color)
        rim = Polygon(
            rect_points(
                x1 - 0.01 * h, self.bin_top - 0.015 * h, x2 + 0.01 * h, self.bin_top + 0.02 * h
            ),
            shade(self.bin_color, 0.7),
        )
        ribs = [
            Polygon(rect_points(x1, y, x2, y + 0.012 * h), shade(self.bin_color, 0.8))
            for y in np.linspace(self.bin_top + 0.12 * h, self.feet_y - 0.08 * h, 3)
        ]
        foot = Polygon(
            ellipse_points((self.bin_cx, self.feet_y), (half, 0.02 * h), count=20),
            shade(self.bin_color, 0.6),
        )
        return Drawable([foot, body, rim, *ribs])

    def facts(self, index: int, scene: Scene) -> dict[str, Any]:
        worn = int(bool(scene.layout.extras.get("helmet_worn")) and HELMET in scene.class_ids)
        persons = int(np.count_nonzero(scene.class_ids == PERSON))
        return {"helmets_worn": worn, "persons_without_helmet": max(persons - worn, 0)}


SCENARIOS: dict[str, type[_Scenario]] = {
    scenario.name: scenario for scenario in (_BottlesRemoved, _FishArriving, _HelmetOff)
}
"""Scenario names and their worlds."""


@dataclass
class ScenarioClip:
    """A scenario ready to render, frame by frame, without writing a file.

    Attributes:
        scenario: Scenario name.
        use_case: Use case whose classes label the frames.
        classes: Class names.
        fps: Frames per second.
        frame_count: Number of frames.
        size: Frame (width, height).
        seed: Random seed.
        params: Scenario parameters.
        region: Region of interest as normalised (x, y) corners, or None.

    Examples:
        >>> clip = open_scenario("fish_arriving", seconds=1, fps=5, size=(320, 240))
        >>> [truth.index for _, truth in clip.frames()]
        [0, 1, 2, 3, 4]
    """

    scenario: str
    use_case: str
    classes: list[str]
    fps: float
    frame_count: int
    size: tuple[int, int]
    seed: int
    params: dict[str, Any]
    region: list[list[float]] | None
    _world: _Scenario = field(repr=False)
    _rng: np.random.Generator = field(repr=False)

    def frames(self, every: int = 1) -> Iterator[tuple[np.ndarray, FrameTruth]]:
        """Yield (frame BGR uint8, ground truth) for every frame, or every ``every``-th one from
        the first (their ground truth is the full clip's; only the sensor noise differs); call
        once per clip."""
        if every < 1:
            raise ValueError(f"every must be a positive number of frames, got {every!r}")
        for index in range(0, self.frame_count, every):
            scene = compose(self._world.layout(index), self._rng)
            facts = self._world.facts(index, scene)
            yield scene.image, FrameTruth.from_scene(index, self.fps, scene, facts)


def open_scenario(
    scenario: str,
    seconds: float = 10.0,
    fps: float = 15.0,
    size: Sequence[int] = (640, 480),
    seed: int = 0,
    **params: Any,
) -> ScenarioClip:
    """Prepare a scenario clip.

    Args:
        scenario: `bottles_removed`, `fish_arriving` or `helmet_off`.
        seconds: Duration, more than 0.
        fps: Frames per second, more than 0.
        size: Frame (width, height).
        seed: Random seed; the same arguments give the same frames.
        **params: Scenario parameters: `bottles_removed` takes n_boards, n_bottles (at most,
            as many as fit), remaining;
            `fish_arriving` takes max_fish, start_fish, region, floor, bubbles;
            `helmet_off` takes helmet_color, props.

    Raises:
        ValueError: On an unknown scenario or parameter, or a bad duration, rate or size.
    """
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; choose one of {sorted(SCENARIOS)}")
    if not float(seconds) > 0 or not float(fps) > 0:
        raise ValueError(f"seconds and fps must be positive, got seconds={seconds!r}, fps={fps!r}")
    size = check_size(size)
    world_type = SCENARIOS[scenario]
    allowed = sorted(world_type.__init__.__kwdefaults__)
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ValueError(
            f"unknown parameter(s) {unknown} for scenario {scenario!r}; allowed: {allowed}"
        )
    frame_count = max(1, round(float(seconds) * float(fps)))
    rng = np.random.default_rng(seed)
    world = world_type(rng, size, frame_count, float(fps), **params)
    return ScenarioClip(
        scenario=scenario,
        use_case=world.use_case,
        classes=list(world.classes),
        fps=float(fps),
        frame_count=frame_count,
        size=size,
        seed=int(seed),
        params=dict(params),
        region=world.region,
        _world=world,
        _rng=rng,
    )


def scenario_frames(
    scenario: str,
    seconds: float = 10.0,
    fps: float = 15.0,
    size: Sequence[int] = (640, 480),
    seed: int = 0,
    **params: Any,
) -> Iterator[tuple[np.ndarray, FrameTruth]]:
    """Yield (frame, ground truth) for each frame of a scenario, writing nothing.

    See :func:`open_scenario` for the arguments.

    Examples:
        >>> frame, truth = next(scenario_frames("helmet_off", seconds=1, fps=5, size=(320, 240)))
        >>> truth.counts
        {'person': 1, 'helmet': 1}
    """
    return open_scenario(scenario, seconds, fps, size, seed, **params).frames()


def write_scenario_video(
    scenario: str,
    path: str | Path,
    seconds: float = 10.0,
    fps: float = 15.0,
    size: Sequence[int] = (640, 480),
    seed: int = 0,
    **params: Any,
) -> ScenarioInfo:
    """Write a scenario video and its ground truth as a JSON sidecar next to it.

    Args:
        scenario: `bottles_removed`, `fish_arriving` or `helmet_off`.
        path: Video file: `.mp4` (mp4v codec) or `.avi` (MJPG). The sidecar gets the same
            name with `.json`.
        seconds: Duration.
        fps: Frames per second.
        size: Frame (width, height).
        seed: Random seed.
        **params: Scenario parameters (see :func:`open_scenario`).

    Returns:
        The scenario info, also saved as the sidecar.

    Raises:
        ValueError: On an unsupported suffix or bad arguments.
        RuntimeError: If OpenCV cannot open a writer for the file.

    Examples:
        >>> import tempfile, pathlib
        >>> target = pathlib.Path(tempfile.mkdtemp()) / "fish.mp4"
        >>> info = write_scenario_video("fish_arriving", target, seconds=1, fps=5, size=(320, 240))
        >>> info.frame_count, target.with_suffix(".json").exists()
        (5, True)
    """
    target = Path(path)
    fourcc = FOURCC_BY_SUFFIX.get(target.suffix.lower())
    if fourcc is None:
        raise ValueError(
            f"video path must end with one of {sorted(FOURCC_BY_SUFFIX)}, got {target.name!r}"
        )
    clip = open_scenario(scenario, seconds, fps, size, seed, **params)
    target.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(target), cv2.VideoWriter_fourcc(*fourcc), clip.fps, clip.size)
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV could not open a {fourcc} video writer for {target}")
    truths = []
    try:
        for frame, truth in clip.frames():
            writer.write(frame)
            truths.append(truth)
    finally:
        writer.release()
    info = ScenarioInfo(
        scenario=clip.scenario,
        use_case=clip.use_case,
        classes=clip.classes,
        fps=clip.fps,
        frame_count=clip.frame_count,
        size=clip.size,
        seed=clip.seed,
        params=_jsonable(clip.params),
        region=clip.region,
        video_path=str(target.resolve()),
        frames=truths,
    )
    info.save(target.with_suffix(".json"))
    return info


def _jsonable(value: Any) -> Any:
    """Parameters as plain JSON values (tuples become lists, numpy scalars numbers)."""
    return json.loads(
        json.dumps(value, default=lambda v: v.tolist() if hasattr(v, "tolist") else str(v))
    )
