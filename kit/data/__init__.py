"""Datasets for object detection: formats, checks, splits, uploads and labelling.

Everything speaks one value type, `DetectionDataset` (class names + `LabelledImage`s
with pixel ``xyxy`` boxes), converted from and to YOLO, COCO, Pascal VOC, Label Studio
and SageMaker Ground Truth manifests.

Examples:
    >>> from kit.data import DetectionDataset, check_dataset, split_dataset
    >>> dataset = DetectionDataset.from_coco(annotations_path="export/instances.json")
    >>> print(check_dataset(dataset))
    >>> splits = split_dataset(dataset, ratios=(0.8, 0.2, 0.0), seed=0)
    >>> data_yaml = splits.as_yolo("build/shelf-yolo")
"""

from kit.data.checks import BoxProblem, DatasetReport, check_dataset, plot_stats
from kit.data.core import DatasetFormatError, DetectionDataset, LabelledImage
from kit.data.labelling import (
    LabellingSession,
    detections_to_widget_bboxes,
    widget_bboxes_to_yolo_lines,
    yolo_lines_to_widget_bboxes,
)
from kit.data.split import DatasetSplits, split_dataset
from kit.data.upload import upload_dataset

__all__ = [
    "BoxProblem",
    "DatasetFormatError",
    "DatasetReport",
    "DatasetSplits",
    "DetectionDataset",
    "LabelledImage",
    "LabellingSession",
    "check_dataset",
    "detections_to_widget_bboxes",
    "plot_stats",
    "split_dataset",
    "upload_dataset",
    "widget_bboxes_to_yolo_lines",
    "yolo_lines_to_widget_bboxes",
]
