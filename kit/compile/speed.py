"""How fast each export runs here, on the edge runtime's own detector (the code a device runs).

Each export is loaded with :func:`edge_app.detectors.load_detector` and detects on the same frame
``runs`` times after ``warmup`` untimed runs (the first inference of a model sets up its
runtime). A run is one full ``detect`` call: letterbox, inference and box decoding with NMS.

Examples:
    >>> from kit.compile import measure_export_speed
    >>> speeds = measure_export_speed({"onnx": "best.onnx"}, frame, runs=10)   # doctest: +SKIP
    >>> [s.as_row() for s in speeds]                                           # doctest: +SKIP
    [{'format': 'onnx', 'median ms': 21.4, 'fastest ms': 20.8, 'runs': 10, 'objects': 3}]
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class ExportSpeed:
    """How long one export took to detect on a frame.

    Attributes:
        format: the export's format (as the caller named it: ``onnx``, ``openvino`` ...).
        model: the exported model's path.
        runs: timed runs.
        median_ms: the median run, in milliseconds.
        fastest_ms: the fastest run, in milliseconds.
        objects: objects detected in the frame (the last run's).
    """

    format: str
    model: Path
    runs: int
    median_ms: float
    fastest_ms: float
    objects: int

    def as_row(self) -> dict[str, Any]:
        """The measurement as a table row (milliseconds to one decimal)."""
        return {
            "format": self.format,
            "median ms": round(self.median_ms, 1),
            "fastest ms": round(self.fastest_ms, 1),
            "runs": self.runs,
            "objects": self.objects,
        }


def measure_export_speed(
    exports: Mapping[str, str | Path],
    frame: np.ndarray,
    *,
    runs: int = 30,
    warmup: int = 1,
    conf: float = 0.4,
) -> list[ExportSpeed]:
    """Time each export's detector on ``frame``, in the order given.

    Args:
        exports: format -> exported model (``.onnx`` file, OpenVINO ``.xml`` or model folder).
        frame: a BGR image (``H x W x 3``, uint8), e.g. a synthetic scene.
        runs: timed runs per export (at least 1).
        warmup: untimed runs before them (0 or more).
        conf: the detector's confidence threshold.

    Raises:
        ValueError: ``runs``, ``warmup`` or ``frame`` is not as above.
        FileNotFoundError: an export is missing.
    """
    if isinstance(runs, bool) or not isinstance(runs, int) or runs < 1:
        raise ValueError(f"runs must be an integer of at least 1, got {runs!r}")
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise ValueError(f"warmup must be an integer of at least 0, got {warmup!r}")
    if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] != 3:
        shape = getattr(frame, "shape", type(frame).__name__)
        raise ValueError(f"frame must be a BGR image of shape (H, W, 3), got {shape}")
    from edge_app.detectors import load_detector

    speeds = []
    for format_name, model in exports.items():
        detector = load_detector(model)
        for _ in range(warmup):
            detector.detect(frame, conf=conf)
        times_ms = []
        for _ in range(runs):
            started = time.perf_counter()
            detections = detector.detect(frame, conf=conf)
            times_ms.append((time.perf_counter() - started) * 1000)
        speeds.append(
            ExportSpeed(
                format=format_name,
                model=Path(model),
                runs=runs,
                median_ms=statistics.median(times_ms),
                fastest_ms=min(times_ms),
                objects=len(detections),
            )
        )
    return speeds
