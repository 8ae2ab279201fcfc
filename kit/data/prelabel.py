"""Pre-labelling with a registered model: its detections become the labelling widget's first boxes."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from kit.core.contracts import ModelRef

Prelabeller = Callable[[np.ndarray], list[tuple[str, float, float, float, float]]]


def model_prelabeller(
    ref: ModelRef | str, *, settings=None, confidence: float = 0.4
) -> Prelabeller:
    """A ``prelabel(image_bgr)`` for :class:`kit.data.LabellingSession` from a registered model.

    The model's ONNX export is downloaded from the registry (checksum-verified) and run with the
    edge runtime's detector, so labels are proposed exactly as the edge app would detect.

    Examples:
        >>> prelabel = model_prelabeller("shelf:production")        # doctest: +SKIP
        >>> LabellingSession("photos/", ["bottle"], "labels/", prelabel=prelabel)  # doctest: +SKIP
    """
    from edge_app.detectors import load_detector
    from kit.registry import ModelRegistry

    detector = load_detector(ModelRegistry.from_settings(settings).download(ref, "onnx"))

    def prelabel(image: np.ndarray) -> list[tuple[str, float, float, float, float]]:
        detections = detector.detect(image, conf=confidence)
        names = detector.class_names
        return [
            (names[int(class_id)], *map(float, box))
            for class_id, box in zip(detections.class_id, detections.xyxy, strict=True)
        ]

    return prelabel
