"""A box at the top of the frame keeps its label in sight: the label starts below the header band
(drawn over the frame's top rows), not under it."""

from __future__ import annotations

import numpy as np

from edge_app.annotate import HeaderAnnotator, annotate, color_for
from edge_app.detections import Detections


def test_the_label_of_a_box_at_the_top_is_not_hidden_under_the_header():
    frame = np.zeros((240, 320, 3), np.uint8)
    box = Detections(
        xyxy=np.array([[40, 2, 200, 200]], np.float32),
        confidence=np.array([0.9]),
        class_id=np.array([1]),
        class_names={0: "person", 1: "helmet"},
    )
    out = annotate(frame, box, camera="site-1", model="ppe:1")
    band = HeaderAnnotator.band_height(frame)
    # the label's filled background, in the label's colour, inside the box below the band (the
    # box's own outline is at x=40 and y=2, outside this region)
    below = out[band : band + 10, 45:100]
    label_pixels = np.all(below == np.array(color_for(1), np.uint8), axis=-1).sum()
    assert label_pixels > 100, f"no label below the {band}-pixel header band"
