"""Multi-object tracking: ByteTrack with a Kalman filter, class-aware, in vectorised numpy.

Tracks are kept as parallel arrays (one row per track) so that prediction, association and
updates run as array operations; the assignment problem is solved with ``lap.lapjv``.

ByteTrack (Zhang et al., 2022) associates in two stages: high-confidence detections with all
live tracks first, then low-confidence detections with the tracks still unmatched, which keeps
occluded objects on their tracks instead of dropping them.
"""

from __future__ import annotations

import lap
import numpy as np

from edge_app.detections import UNTRACKED, Detections, box_iou

_TRACKED, _LOST = 0, 1
_INFEASIBLE = 1e5  # assignment cost of pairs that must not match (different classes)

_STD_POSITION = 1.0 / 20
_STD_VELOCITY = 1.0 / 160
_MOTION = np.eye(8)
_MOTION[:4, 4:] = np.eye(4)  # constant velocity: position += velocity each frame
_MEASURE = np.eye(4, 8)


def _xyxy_to_xyah(xyxy: np.ndarray) -> np.ndarray:
    width, height = xyxy[:, 2] - xyxy[:, 0], xyxy[:, 3] - xyxy[:, 1]
    return np.stack(
        (xyxy[:, 0] + width / 2, xyxy[:, 1] + height / 2, width / np.maximum(height, 1e-6), height),
        axis=1,
    ).astype(np.float64)


def _xyah_to_xyxy(xyah: np.ndarray) -> np.ndarray:
    width = xyah[:, 2] * xyah[:, 3]
    half = np.stack((width / 2, xyah[:, 3] / 2), axis=1)
    return np.concatenate((xyah[:, :2] - half, xyah[:, :2] + half), axis=1)


def _diag(std: np.ndarray) -> np.ndarray:
    """``(T, k)`` standard deviations -> ``(T, k, k)`` diagonal covariances."""
    out = np.zeros((*std.shape, std.shape[1]))
    index = np.arange(std.shape[1])
    out[:, index, index] = std**2
    return out


class _KalmanBoxFilter:
    """ByteTrack's Kalman filter on (cx, cy, aspect, height) and their velocities, batched."""

    @staticmethod
    def initiate(measurement: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        height = measurement[:, 3]
        mean = np.concatenate((measurement, np.zeros_like(measurement)), axis=1)
        std = np.stack(
            (
                2 * _STD_POSITION * height,
                2 * _STD_POSITION * height,
                np.full_like(height, 1e-2),
                2 * _STD_POSITION * height,
                10 * _STD_VELOCITY * height,
                10 * _STD_VELOCITY * height,
                np.full_like(height, 1e-5),
                10 * _STD_VELOCITY * height,
            ),
            axis=1,
        )
        return mean, _diag(std)

    @staticmethod
    def predict(mean: np.ndarray, covariance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        height = mean[:, 3]
        std = np.stack(
            (
                _STD_POSITION * height,
                _STD_POSITION * height,
                np.full_like(height, 1e-2),
                _STD_POSITION * height,
                _STD_VELOCITY * height,
                _STD_VELOCITY * height,
                np.full_like(height, 1e-5),
                _STD_VELOCITY * height,
            ),
            axis=1,
        )
        mean = mean @ _MOTION.T
        covariance = _MOTION @ covariance @ _MOTION.T + _diag(std)
        return mean, covariance

    @staticmethod
    def update(
        mean: np.ndarray, covariance: np.ndarray, measurement: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        height = mean[:, 3]
        std = np.stack(
            (
                _STD_POSITION * height,
                _STD_POSITION * height,
                np.full_like(height, 1e-1),
                _STD_POSITION * height,
            ),
            axis=1,
        )
        projected_cov = _MEASURE @ covariance @ _MEASURE.T + _diag(std)
        cross = covariance @ _MEASURE.T  # (T, 8, 4)
        # gain = cross @ inv(projected_cov), solved rather than inverted
        gain = np.linalg.solve(projected_cov, cross.transpose(0, 2, 1)).transpose(0, 2, 1)
        innovation = measurement - mean[:, :4]
        mean = mean + np.einsum("tij,tj->ti", gain, innovation)
        covariance = covariance - gain @ projected_cov @ gain.transpose(0, 2, 1)
        return mean, covariance


def _assign(cost: np.ndarray, max_cost: float) -> tuple[np.ndarray, np.ndarray]:
    """Optimal (rows, cols) pairs with cost at most ``max_cost`` (Jonker-Volgenant)."""
    if cost.size == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
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
        if len(self._track_id):
            self._mean[self._state == _LOST, 7] = 0.0  # a lost box keeps its size
            self._mean, self._covariance = _KalmanBoxFilter.predict(self._mean, self._covariance)
        confidence = detections.confidence
        is_high = confidence >= self.high_conf_det_threshold
        is_low = (confidence >= self.low_conf_det_threshold) & ~is_high
        confirmed = self._track_id != UNTRACKED
        det_free = np.ones(len(detections), dtype=bool)
        track_free = np.ones(len(self._track_id), dtype=bool)
        rows: list[np.ndarray] = []
        dets: list[np.ndarray] = []
        stages = (
            # confirmed tracks (tracked or lost) <- high-confidence detections
            (confirmed, is_high, self.minimum_matching_threshold, True),
            # confirmed tracks tracked until now but unmatched <- low-confidence detections
            (confirmed & (self._state == _TRACKED), is_low, 0.5, False),
            # tentative tracks (not yet confirmed) <- high-confidence detections left over
            (~confirmed, is_high, 0.7, True),
        )
        for track_mask, det_mask, max_cost, fuse_score in stages:
            track_rows = np.flatnonzero(track_mask & track_free)
            det_indices = np.flatnonzero(det_mask & det_free)
            matched_rows, matched_dets = self._associate(
                track_rows, det_indices, detections, max_cost, fuse_score
            )
            track_free[matched_rows] = False
            det_free[matched_dets] = False
            rows.append(matched_rows)
            dets.append(matched_dets)
        matched_rows, matched_dets = np.concatenate(rows), np.concatenate(dets)

        self._update_matched(matched_rows, matched_dets, detections)
        self._hits[track_free] = 0
        self._frames_lost[track_free] += 1
        self._state[track_free] = _LOST
        assigned = np.full(len(detections), UNTRACKED, dtype=np.int64)
        assigned[matched_dets] = self._track_id[matched_rows]
        alive = ~track_free | (confirmed & (self._frames_lost <= self.max_frames_lost))
        self._keep(alive)

        starts = np.flatnonzero(
            det_free & is_high & (confidence >= self.track_activation_threshold)
        )
        assigned[starts] = self._start_tracks(starts, detections)
        return Detections(
            xyxy=detections.xyxy,
            confidence=detections.confidence,
            class_id=detections.class_id,
            tracker_id=assigned,
            class_names=detections.class_names,
            data=detections.data,
        )

    def _associate(
        self,
        track_rows: np.ndarray,
        det_indices: np.ndarray,
        detections: Detections,
        max_cost: float,
        fuse_score: bool,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Optimal track/detection pairs (global indices) under ``max_cost``."""
        if not len(track_rows) or not len(det_indices):
            return np.empty(0, np.int64), np.empty(0, np.int64)
        predicted = _xyah_to_xyxy(self._mean[track_rows, :4])
        similarity = box_iou(predicted, detections.xyxy[det_indices]).astype(np.float64)
        if fuse_score:
            similarity *= detections.confidence[det_indices][None, :]
        cost = 1.0 - similarity
        other_class = (
            self._class_id[track_rows][:, None] != detections.class_id[det_indices][None, :]
        )
        cost[other_class] = _INFEASIBLE
        rows, cols = _assign(cost, max_cost)
        return track_rows[rows], det_indices[cols]

    def _update_matched(self, rows: np.ndarray, dets: np.ndarray, detections: Detections) -> None:
        if not len(rows):
            return
        measurement = _xyxy_to_xyah(detections.xyxy[dets])
        self._mean[rows], self._covariance[rows] = _KalmanBoxFilter.update(
            self._mean[rows], self._covariance[rows], measurement
        )
        self._state[rows] = _TRACKED
        self._hits[rows] += 1
        self._frames_lost[rows] = 0
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

    def _start_tracks(self, det_indices: np.ndarray, detections: Detections) -> np.ndarray:
        """Start tentative tracks (confirmed at once when 1 frame suffices); their ids."""
        count = len(det_indices)
        if not count:
            return np.empty(0, np.int64)
        mean, covariance = _KalmanBoxFilter.initiate(_xyxy_to_xyah(detections.xyxy[det_indices]))
        if self.minimum_consecutive_frames <= 1:
            track_id = self._new_ids(count)
        else:
            track_id = np.full(count, UNTRACKED, dtype=np.int64)
        self._mean = np.concatenate((self._mean, mean))
        self._covariance = np.concatenate((self._covariance, covariance))
        self._class_id = np.concatenate((self._class_id, detections.class_id[det_indices]))
        self._track_id = np.concatenate((self._track_id, track_id))
        self._state = np.concatenate((self._state, np.full(count, _TRACKED, np.int8)))
        self._hits = np.concatenate((self._hits, np.ones(count, np.int64)))
        self._frames_lost = np.concatenate((self._frames_lost, np.zeros(count, np.int64)))
        return track_id
