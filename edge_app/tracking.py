"""Multi-object tracking: ByteTrack with a Kalman filter, class-aware, in vectorised numpy.

Tracks are kept as parallel arrays (one row per track) so that prediction, association and
updates run as array operations; the assignment problem is solved with ``lap.lapjv`` (or read
off directly when its optimum is obvious, as for most frames: see `_assign`).

ByteTrack (Zhang et al., 2022) associates in two stages: high-confidence detections with all
live tracks first, then low-confidence detections with the tracks still unmatched, which keeps
occluded objects on their tracks instead of dropping them.
"""

from __future__ import annotations

import lap
import numpy as np

from edge_app.detections import UNTRACKED, Detections
from kit.core.boxes import box_iou

_TRACKED, _LOST = 0, 1
_INFEASIBLE = 1e5  # assignment cost of pairs that must not match (different classes)
_TIE_MARGIN = 1e-6  # costs this close to the limit go to the solver (see `_assign`)

_STD_POSITION = 1.0 / 20
_STD_VELOCITY = 1.0 / 160
_MOTION = np.eye(8)
_MOTION[:4, 4:] = np.eye(4)  # constant velocity: position += velocity each frame
_MOTION_T = np.ascontiguousarray(_MOTION.T)  # contiguous: faster products, same numbers
# The measurement matrix is np.eye(4, 8): the box is the first 4 entries of the state.

# Standard deviations per unit of box height, of (cx, cy, aspect, height) then their velocities;
# the aspect terms (0 here) are constants, set after scaling (see `_scaled_std`).
_P, _V = _STD_POSITION, _STD_VELOCITY
_INITIATE_STD = np.array([2 * _P, 2 * _P, 0.0, 2 * _P, 10 * _V, 10 * _V, 0.0, 10 * _V])
_PREDICT_STD = np.array([_P, _P, 0.0, _P, _V, _V, 0.0, _V])
_UPDATE_STD = np.array([_P, _P, 0.0, _P])


def _xyxy_to_xyah(xyxy: np.ndarray) -> np.ndarray:
    """``(N, 4)`` float32 ``x1, y1, x2, y2`` -> float64 ``cx, cy, width / height, height``.

    The arithmetic is float32, as on the boxes; only the result is widened.
    """
    xyah = np.empty((len(xyxy), 4), dtype=np.float32)
    size = xyxy[:, 2:] - xyxy[:, :2]  # width, height
    np.add(xyxy[:, :2], size / 2, out=xyah[:, :2])
    np.divide(size[:, 0], np.maximum(size[:, 1], 1e-6), out=xyah[:, 2])
    xyah[:, 3] = size[:, 1]
    return xyah.astype(np.float64)


def _xyah_to_xyxy(xyah: np.ndarray, dtype: type = np.float64) -> np.ndarray:
    """``(T, 4)`` float64 ``cx, cy, width / height, height`` -> ``x1, y1, x2, y2`` as ``dtype``.

    Computed in float64; a narrower ``dtype`` rounds the results (as a conversion after would).
    """
    half = np.empty((len(xyah), 2))
    np.multiply(xyah[:, 2], xyah[:, 3], out=half[:, 0])
    half[:, 1] = xyah[:, 3]
    half /= 2
    xyxy = np.empty((len(xyah), 4), dtype=dtype)
    np.subtract(xyah[:, :2], half, out=xyxy[:, :2])
    np.add(xyah[:, :2], half, out=xyxy[:, 2:])
    return xyxy


def _scaled_std(
    height: np.ndarray, per_height: np.ndarray, constants: tuple[tuple[int, float], ...]
) -> np.ndarray:
    """``(T, k)`` standard deviations ``per_height * height``, with ``(column, value)`` constants."""
    std = height[:, None] * per_height
    for column, value in constants:
        std[:, column] = value
    return std


def _add_to_diagonal(matrices: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Add ``(T, k)`` ``values`` to the diagonals of C-contiguous ``(T, k, k)`` ``matrices``, in place.

    Same numbers as adding diagonal matrices: the off-diagonal entries would get ``+ 0.0``.
    """
    size = matrices.shape[1]
    matrices.reshape(len(matrices), size * size)[:, :: size + 1] += values
    return matrices


class _KalmanBoxFilter:
    """ByteTrack's Kalman filter on (cx, cy, aspect, height) and their velocities, batched."""

    @staticmethod
    def initiate(measurement: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mean = np.concatenate((measurement, np.zeros_like(measurement)), axis=1)
        std = _scaled_std(measurement[:, 3], _INITIATE_STD, ((2, 1e-2), (6, 1e-5)))
        covariance = np.zeros((len(measurement), 8, 8))
        return mean, _add_to_diagonal(covariance, std**2)

    @staticmethod
    def predict(mean: np.ndarray, covariance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        std = _scaled_std(mean[:, 3], _PREDICT_STD, ((2, 1e-2), (6, 1e-5)))
        mean = mean @ _MOTION_T
        covariance = _MOTION @ covariance @ _MOTION_T
        return mean, _add_to_diagonal(covariance, std**2)

    @staticmethod
    def update(
        mean: np.ndarray, covariance: np.ndarray, measurement: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        std = _scaled_std(mean[:, 3], _UPDATE_STD, ((2, 1e-1),))
        # measure @ covariance @ measure.T and covariance @ measure.T only select entries
        projected_cov = _add_to_diagonal(covariance[:, :4, :4].copy(), std**2)
        cross = covariance[:, :, :4]  # (T, 8, 4)
        # gain = cross @ inv(projected_cov), solved rather than inverted
        gain_t = np.linalg.solve(projected_cov, cross.transpose(0, 2, 1))  # (T, 4, 8)
        gain = gain_t.transpose(0, 2, 1)
        innovation = measurement - mean[:, :4]
        mean = mean + np.einsum("tij,tj->ti", gain, innovation)
        covariance = covariance - gain @ projected_cov @ gain_t
        return mean, covariance


_NO_PAIRS = (np.empty(0, np.int64), np.empty(0, np.int64))


def _assign(cost: np.ndarray, max_cost: float) -> tuple[np.ndarray, np.ndarray]:
    """Optimal (rows, cols) pairs with cost at most ``max_cost`` (Jonker-Volgenant).

    Rows come in increasing order. When the pairs under the limit already form a matching (no
    row and no column in two of them) and no cost is within `_TIE_MARGIN` of the limit, that
    matching is the unique optimum, so it is returned without running the solver; the usual
    case for the few, well separated objects of a frame.
    """
    if cost.size == 0:
        return _NO_PAIRS
    cheap = cost < max_cost - _TIE_MARGIN
    clear = cheap | (cost > max_cost + _TIE_MARGIN)  # False for NaN as well
    if clear.all() and cost.min() >= 0.0 and cost.max() <= _INFEASIBLE:
        rows, cols = cheap.nonzero()  # row-major: rows increasing
        count = len(rows)
        if len(set(rows.tolist())) == count and len(set(cols.tolist())) == count:
            return rows, cols
    _, row_to_col, _ = lap.lapjv(cost, extend_cost=True, cost_limit=max_cost)
    rows = np.flatnonzero(row_to_col >= 0)
    return rows, row_to_col[rows].astype(np.int64)


class ByteTracker:
    """ByteTrack: stable ``tracker_id`` for detections across frames.

    Boxes only match tracks of their own class. A track gets its id after
    ``minimum_consecutive_frames`` matched frames; a track without matches is kept for
    ``lost_track_buffer`` frames (at 30 FPS, scaled by ``frame_rate``) so that it can pick up
    its object again after an occlusion.

    Args:
        track_activation_threshold: Minimum confidence for a detection to start a track.
        high_conf_det_threshold: Detections at or above this take part in the first
            association stage; those between ``low_conf_det_threshold`` and this in the second.
        low_conf_det_threshold: Detections below this are ignored.
        minimum_matching_threshold: Highest assignment cost (``1 - IoU x confidence`` in the
            first stage) accepted as a match; 0.8 means an IoU of at least 0.2.
        lost_track_buffer: Frames (at 30 FPS) a lost track is kept.
        frame_rate: Frame rate of the stream.
        minimum_consecutive_frames: Matched frames before a track gets its id.

    Examples:
        >>> import numpy as np
        >>> tracker = ByteTracker(minimum_consecutive_frames=1)
        >>> for x in range(0, 30, 10):
        ...     d = Detections(np.array([[x, 0, x + 50, 50]]), np.array([0.9]), np.array([0]))
        ...     tracked = tracker.update(d)
        >>> tracked.tracker_id.tolist()
        [1]
    """

    def __init__(
        self,
        track_activation_threshold: float = 0.25,
        high_conf_det_threshold: float = 0.25,
        low_conf_det_threshold: float = 0.1,
        minimum_matching_threshold: float = 0.8,
        lost_track_buffer: int = 30,
        frame_rate: float = 30.0,
        minimum_consecutive_frames: int = 2,
    ) -> None:
        for name, value in (
            ("track_activation_threshold", track_activation_threshold),
            ("high_conf_det_threshold", high_conf_det_threshold),
            ("low_conf_det_threshold", low_conf_det_threshold),
            ("minimum_matching_threshold", minimum_matching_threshold),
        ):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {value!r}")
        if low_conf_det_threshold > high_conf_det_threshold:
            raise ValueError(
                f"low_conf_det_threshold ({low_conf_det_threshold}) must not exceed "
                f"high_conf_det_threshold ({high_conf_det_threshold})"
            )
        if minimum_consecutive_frames < 1:
            raise ValueError(
                f"minimum_consecutive_frames must be >= 1, got {minimum_consecutive_frames}"
            )
        if lost_track_buffer < 0 or frame_rate <= 0:
            raise ValueError(
                f"lost_track_buffer must be >= 0 and frame_rate > 0, got {lost_track_buffer}, {frame_rate}"
            )
        self.track_activation_threshold = track_activation_threshold
        self.high_conf_det_threshold = high_conf_det_threshold
        self.low_conf_det_threshold = low_conf_det_threshold
        self.minimum_matching_threshold = minimum_matching_threshold
        self.minimum_consecutive_frames = minimum_consecutive_frames
        self.max_frames_lost = int(frame_rate / 30.0 * lost_track_buffer)
        self.reset()

    def reset(self) -> None:
        """Forget all tracks and restart ids at 1 (for a new video or scene)."""
        self._mean = np.empty((0, 8))
        self._covariance = np.empty((0, 8, 8))
        self._class_id = np.empty(0, np.int64)
        self._track_id = np.empty(0, np.int64)  # UNTRACKED until the track is confirmed
        self._state = np.empty(0, np.int8)
        self._hits = np.empty(0, np.int64)
        self._frames_lost = np.empty(0, np.int64)
        self._next_id = 1

    @property
    def track_count(self) -> int:
        """Tracks currently held (tracked, lost or not yet confirmed)."""
        return len(self._track_id)

    def update(self, detections: Detections) -> Detections:
        """Associate this frame's detections with the tracks and return them with ids.

        Returns:
            The same detections in the same order, with ``tracker_id`` set where a confirmed
            track claims the box and ``-1`` elsewhere. Use
            ``tracked[tracked.tracker_id >= 0]`` to keep only tracked objects.
        """
        track_count, det_count = len(self._track_id), len(detections)
        if track_count:
            self._mean[self._state == _LOST, 7] = 0.0  # a lost box keeps its size
            self._mean, self._covariance = _KalmanBoxFilter.predict(self._mean, self._covariance)
        confidence = detections.confidence
        is_high = confidence >= self.high_conf_det_threshold
        is_low = (confidence >= self.low_conf_det_threshold) & ~is_high
        confirmed = self._track_id != UNTRACKED
        all_confirmed = bool(confirmed.all())
        det_free = np.ones(det_count, dtype=bool)
        track_free = np.ones(track_count, dtype=bool)
        matches: list[tuple[np.ndarray, np.ndarray]] = []  # (track rows, detections) per stage
        if track_count and det_count:
            costs = _PairCosts(self._mean, self._class_id, detections)

            def match(track_rows: np.ndarray, det_indices: np.ndarray, max_cost: float, fuse: bool):
                if len(track_rows) and len(det_indices):
                    cost = costs.matrix(fuse)[track_rows[:, None], det_indices]
                    pair_rows, pair_dets = _assign(cost, max_cost)
                    if len(pair_rows):
                        matched = (track_rows[pair_rows], det_indices[pair_dets])
                        track_free[matched[0]] = False
                        det_free[matched[1]] = False
                        matches.append(matched)

            # The stages take disjoint tracks and detections, so each takes from what the
            # stages before it left: (1) confirmed tracks (tracked or lost) <- high-confidence
            # detections; (2) confirmed tracks tracked until now but unmatched <- low-confidence
            # detections; (3) tentative tracks (not yet confirmed) <- high-confidence detections
            # left over.
            match(
                confirmed.nonzero()[0], is_high.nonzero()[0], self.minimum_matching_threshold, True
            )
            low = is_low.nonzero()[0]
            if len(low):
                tracked = (confirmed & track_free & (self._state == _TRACKED)).nonzero()[0]
                match(tracked, low, 0.5, False)
            if not all_confirmed:
                match((~confirmed).nonzero()[0], (is_high & det_free).nonzero()[0], 0.7, True)
        det_xyah = None
        assigned = np.full(det_count, UNTRACKED, dtype=np.int64)
        if matches:
            if len(matches) == 1:
                matched_rows, matched_dets = matches[0]
            else:
                matched_rows = np.concatenate([rows for rows, _ in matches])
                matched_dets = np.concatenate([dets for _, dets in matches])
            det_xyah = _xyxy_to_xyah(detections.xyxy)
            self._update_matched(matched_rows, det_xyah[matched_dets], all_confirmed)
            assigned[matched_dets] = self._track_id[matched_rows]
        if track_count:
            self._hits[track_free] = 0
            self._frames_lost[track_free] += 1
            self._state[track_free] = _LOST
            alive = ~track_free | (confirmed & (self._frames_lost <= self.max_frames_lost))
            if not alive.all():
                self._keep(alive)

        starts = (det_free & is_high & (confidence >= self.track_activation_threshold)).nonzero()[0]
        if len(starts):
            if det_xyah is None:
                det_xyah = _xyxy_to_xyah(detections.xyxy)
            assigned[starts] = self._start_tracks(det_xyah[starts], detections.class_id[starts])
        return Detections._unchecked(
            detections.xyxy,
            detections.confidence,
            detections.class_id,
            assigned,
            detections.class_names,
            dict(detections.data),
        )

    def _update_matched(
        self, rows: np.ndarray, measurement: np.ndarray, all_confirmed: bool
    ) -> None:
        """Correct the matched tracks with their boxes (``xyah``); confirm those due for an id."""
        self._mean[rows], self._covariance[rows] = _KalmanBoxFilter.update(
            self._mean[rows], self._covariance[rows], measurement
        )
        self._state[rows] = _TRACKED
        self._hits[rows] += 1
        self._frames_lost[rows] = 0
        if all_confirmed:
            return
        confirm = rows[
            (self._track_id[rows] == UNTRACKED)
            & (self._hits[rows] >= self.minimum_consecutive_frames)
        ]
        self._track_id[confirm] = self._new_ids(len(confirm))

    def _new_ids(self, count: int) -> np.ndarray:
        ids = np.arange(self._next_id, self._next_id + count, dtype=np.int64)
        self._next_id += count
        return ids

    def _keep(self, alive: np.ndarray) -> None:
        self._mean = self._mean[alive]
        self._covariance = self._covariance[alive]
        self._class_id = self._class_id[alive]
        self._track_id = self._track_id[alive]
        self._state = self._state[alive]
        self._hits = self._hits[alive]
        self._frames_lost = self._frames_lost[alive]

    def _start_tracks(self, measurement: np.ndarray, class_id: np.ndarray) -> np.ndarray:
        """Start tentative tracks on boxes (``xyah``) (confirmed at once when 1 frame suffices); their ids."""
        count = len(measurement)
        mean, covariance = _KalmanBoxFilter.initiate(measurement)
        if self.minimum_consecutive_frames <= 1:
            track_id = self._new_ids(count)
        else:
            track_id = np.full(count, UNTRACKED, dtype=np.int64)
        self._mean = np.concatenate((self._mean, mean))
        self._covariance = np.concatenate((self._covariance, covariance))
        self._class_id = np.concatenate((self._class_id, class_id))
        self._track_id = np.concatenate((self._track_id, track_id))
        self._state = np.concatenate((self._state, np.full(count, _TRACKED, np.int8)))
        self._hits = np.concatenate((self._hits, np.ones(count, np.int64)))
        self._frames_lost = np.concatenate((self._frames_lost, np.zeros(count, np.int64)))
        return track_id


class _PairCosts:
    """Assignment costs of every (track, detection) pair of a frame, computed once, when needed.

    Every stage of `ByteTracker.update` takes its block from these matrices: the same numbers
    as computing each block on its own, since all of it is element-wise arithmetic.
    """

    def __init__(self, mean: np.ndarray, class_id: np.ndarray, detections: Detections) -> None:
        self._mean = mean
        self._class_id = class_id
        self._detections = detections
        self._matrices: dict[bool, np.ndarray] = {}
        self._iou: np.ndarray | None = None
        self._other_class: np.ndarray | None = None

    def matrix(self, fuse_score: bool) -> np.ndarray:
        """``(T, N)`` costs ``1 - IoU`` (times the confidence with ``fuse_score``), classes apart."""
        cost = self._matrices.get(fuse_score)
        if cost is None:
            detections = self._detections
            if self._iou is None:
                predicted = _xyah_to_xyxy(self._mean[:, :4], np.float32)  # box_iou's dtype
                self._iou = box_iou(predicted, detections.xyxy).astype(np.float64)
                self._other_class = self._class_id[:, None] != detections.class_id[None, :]
            similarity = self._iou * detections.confidence[None, :] if fuse_score else self._iou
            cost = 1.0 - similarity
            cost[self._other_class] = _INFEASIBLE
            self._matrices[fuse_score] = cost
        return cost
