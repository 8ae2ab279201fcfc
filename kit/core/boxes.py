"""Box arithmetic on numpy arrays: anchors of many boxes, IoU matrices, clipping to a frame.

For the device (tracker, counting lines, annotation, post-processing) and the kit (export parity
checks). The Lambda handlers never import this module: their runtime has no numpy, and zone
membership, the one geometric question both sides ask, is :mod:`kit.core.geometry`'s.

Examples:
    >>> import numpy as np
    >>> box_iou(np.array([[0, 0, 10, 10]]), np.array([[5, 0, 15, 10]])).round(3).tolist()
    [[0.333]]
"""

from __future__ import annotations

import numpy as np

from kit.core.geometry import Position


def anchor_points(xyxy: np.ndarray, position: Position | str) -> np.ndarray:
    """``(N, 2)`` points at ``position`` of ``(N, 4)`` ``x1, y1, x2, y2`` boxes (float32 at least).

    The arithmetic of :func:`kit.core.geometry.anchor_of`, for many boxes at once.

    Examples:
        >>> import numpy as np
        >>> anchor_points(np.array([[0, 0, 10, 20]], np.float32), "center").tolist()
        [[5.0, 10.0]]
    """
    if type(position) is not Position:
        position = Position(position)
    points = np.empty((len(xyxy), 2), dtype=np.result_type(xyxy, np.float32))
    x, y = points[:, 0], points[:, 1]
    if position is Position.CENTER_LEFT:
        x[:] = xyxy[:, 0]
    elif position is Position.CENTER_RIGHT:
        x[:] = xyxy[:, 2]
    else:
        np.add(xyxy[:, 0], xyxy[:, 2], out=x)
        x /= 2
    if position is Position.BOTTOM_CENTER:
        y[:] = xyxy[:, 3]
    elif position is Position.TOP_CENTER:
        y[:] = xyxy[:, 1]
    else:
        np.add(xyxy[:, 1], xyxy[:, 3], out=y)
        y /= 2
    return points


def clip_boxes(xyxy: np.ndarray, frame_wh: tuple[float, float], *, out: np.ndarray | None = None):
    """Boxes clipped to a ``(width, height)`` frame: x in ``[0, width]``, y in ``[0, height]``.

    Args:
        xyxy: ``(N, 4)`` boxes.
        frame_wh: the frame's width and height.
        out: where to write (``xyxy`` itself clips in place); default: a new array.

    Examples:
        >>> import numpy as np
        >>> clip_boxes(np.array([[-5.0, 10.0, 700.0, 500.0]]), (640, 480)).tolist()
        [[0.0, 10.0, 640.0, 480.0]]
    """
    if out is None:
        out = np.array(xyxy, copy=True)
    elif out is not xyxy:
        out[...] = xyxy
    width, height = frame_wh
    np.clip(out[:, 0::2], 0, width, out=out[:, 0::2])
    np.clip(out[:, 1::2], 0, height, out=out[:, 1::2])
    return out


def box_iou(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """``(N, M)`` intersection over union of two sets of ``x1, y1, x2, y2`` boxes.

    Computed in float32 when both sets are float32 (the tracker's case), else in float64. A box
    without area has an IoU of 0 with everything.

    Examples:
        >>> import numpy as np
        >>> box_iou(np.array([[0, 0, 10, 10]]), np.array([[5, 0, 15, 10]])).round(3).tolist()
        [[0.333]]
    """
    a = np.asarray(boxes_a)
    b = np.asarray(boxes_b)
    dtype = np.float32 if a.dtype == np.float32 and b.dtype == np.float32 else np.float64
    a = a.astype(dtype, copy=False).reshape(-1, 4)[:, None, :]
    b = b.astype(dtype, copy=False).reshape(-1, 4)
    ax1, ay1, ax2, ay2 = a[..., 0], a[..., 1], a[..., 2], a[..., 3]  # (N, 1)
    bx1, by1, bx2, by2 = b[:, 0], b[:, 1], b[:, 2], b[:, 3]  # (M,)
    width = np.minimum(ax2, bx2) - np.maximum(ax1, bx1)
    height = np.minimum(ay2, by2) - np.maximum(ay1, by1)
    inter = np.maximum(width, 0, out=width)
    inter *= np.maximum(height, 0, out=height)
    area_a = np.maximum(ax2 - ax1, 0) * np.maximum(ay2 - ay1, 0)
    area_b = np.maximum(bx2 - bx1, 0) * np.maximum(by2 - by1, 0)
    union = area_a + area_b - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
