"""Readers and writers for the annotation formats a `DetectionDataset` converts from and to.

Each module has a ``load_<format>`` and a ``save_<format>`` function; the same are
reachable as ``DetectionDataset.from_<format>`` / ``DetectionDataset.as_<format>``.
"""

from kit.data.formats.coco import load_coco, save_coco
from kit.data.formats.ground_truth import load_ground_truth_manifest, save_ground_truth_manifest
from kit.data.formats.label_studio import load_label_studio, save_label_studio
from kit.data.formats.voc import load_voc, save_voc
from kit.data.formats.yolo import load_yolo, read_yolo_classes, save_yolo

__all__ = [
    "load_coco",
    "load_ground_truth_manifest",
    "load_label_studio",
    "load_voc",
    "load_yolo",
    "read_yolo_classes",
    "save_coco",
    "save_ground_truth_manifest",
    "save_label_studio",
    "save_voc",
    "save_yolo",
]
