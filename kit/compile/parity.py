"""Check that an exported model detects what the PyTorch model detects.

Two measures, both through ultralytics (which loads ``.pt``, ``.onnx`` and
``*_openvino_model/`` alike, with the same pre- and post-processing):

- **box agreement**: each box one model reports at ``conf`` or above counts as found when the
  other model has a box of the same class with IoU ≥ ``iou_threshold`` at ``conf × conf_margin``
  or above (one-to-one, greedy, highest IoU first). The margin keeps borderline detections,
  whose score rounding pushes them just under the threshold in one model, from counting as
  disagreements. Agreement = boxes found / boxes reported, over both models and all images
  (images where neither model finds anything agree).
- **mAP50 difference**: both models validated on the dataset's ``val`` split (when a data.yaml
  is given); ``|mAP50(exported) - mAP50(PyTorch)|``.

The check passes when agreement ≥ ``min_box_agreement`` and the mAP50 difference ≤ ``tolerance``.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kit.core.boxes import box_iou
from kit.offline import configure_ultralytics


class ParityError(AssertionError):
    """The exported model does not match the PyTorch model within the tolerances.

    Attributes:
        report: the :class:`ParityReport` that failed.
    """

    def __init__(self, report: ParityReport):
        self.report = report
        super().__init__("parity check failed:\n" + str(report))


@dataclass(frozen=True)
class ImageAgreement:
    """How the two models' boxes compare on one image."""

    image: str
    reference_boxes: int
    candidate_boxes: int
    reference_found: int
    """Reference boxes the candidate also has."""
    candidate_found: int
    """Candidate boxes the reference also has."""

    @property
    def agreement(self) -> float:
        """Boxes found by the other model / boxes reported (1.0 when neither finds anything)."""
        reported = self.reference_boxes + self.candidate_boxes
        return (self.reference_found + self.candidate_found) / reported if reported else 1.0


@dataclass(frozen=True)
class ParityReport:
    """The outcome of :func:`parity_check`."""

    reference: str
    candidate: str
    imgsz: int
    conf: float
    iou_threshold: float
    min_box_agreement: float
    tolerance: float
    images: tuple[ImageAgreement, ...]
    reference_map50: float | None = None
    candidate_map50: float | None = None

    @property
    def box_agreement(self) -> float:
        """Boxes found by the other model / boxes reported, over both models and all images."""
        reported = sum(i.reference_boxes + i.candidate_boxes for i in self.images)
        found = sum(i.reference_found + i.candidate_found for i in self.images)
        return found / reported if reported else 1.0

    @property
    def map50_difference(self) -> float | None:
        """``|candidate mAP50 - reference mAP50|`` (None without a validation set)."""
        if self.reference_map50 is None or self.candidate_map50 is None:
            return None
        return abs(self.candidate_map50 - self.reference_map50)

    @property
    def problems(self) -> list[str]:
        """Why the check fails (empty when it passes)."""
        found = []
        if self.box_agreement < self.min_box_agreement:
            found.append(
                f"box agreement {self.box_agreement:.1%} is below {self.min_box_agreement:.1%}"
            )
        difference = self.map50_difference
        if difference is not None and difference > self.tolerance:
            found.append(f"mAP50 differs by {difference:.4f}, more than {self.tolerance:.4f}")
        return found

    @property
    def passed(self) -> bool:
        return not self.problems

    def worst_images(self, count: int = 5) -> list[ImageAgreement]:
        """The images where the models disagree most."""
        return sorted(self.images, key=lambda i: i.agreement)[:count]

    def __str__(self) -> str:
        lines = [
            f"{Path(self.candidate).name} vs {Path(self.reference).name} "
            f"({len(self.images)} images, imgsz {self.imgsz}, conf {self.conf}, "
            f"{sum(i.reference_boxes for i in self.images)} reference boxes):",
            f"  box agreement {self.box_agreement:.1%} (min {self.min_box_agreement:.1%})",
        ]
        if self.map50_difference is not None:
            lines.append(
                f"  mAP50 {self.candidate_map50:.4f} vs {self.reference_map50:.4f} "
                f"(difference {self.map50_difference:.4f}, tolerance {self.tolerance:.4f})"
            )
        lines.append("  PASSED" if self.passed else "  FAILED: " + "; ".join(self.problems))
        return "\n".join(lines)


def match_boxes(
    reference_xyxy: np.ndarray,
    reference_class: np.ndarray,
    candidate_xyxy: np.ndarray,
    candidate_class: np.ndarray,
    iou_threshold: float = 0.5,
) -> int:
    """How many boxes match one-to-one by class and IoU ≥ ``iou_threshold`` (greedy, best IoU first).

    Examples:
        >>> match_boxes(np.array([[0, 0, 10, 10]]), np.array([0]),
        ...             np.array([[1, 1, 10, 10]]), np.array([0]))
        1
    """
    iou = box_iou(np.asarray(reference_xyxy, np.float64), np.asarray(candidate_xyxy, np.float64))
    if iou.size == 0:
        return 0
    same_class = np.asarray(reference_class)[:, None] == np.asarray(candidate_class)[None, :]
    iou = np.where(same_class, iou, 0.0)
    rows, cols = np.nonzero(iou >= iou_threshold)
    order = np.argsort(-iou[rows, cols], kind="stable")
    used_rows, used_cols, matched = set(), set(), 0
    for index in order:
        row, col = int(rows[index]), int(cols[index])
        if row not in used_rows and col not in used_cols:
            used_rows.add(row)
            used_cols.add(col)
            matched += 1
    return matched


def _boxes(result) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    boxes = result.boxes
    return boxes.xyxy.cpu().numpy(), boxes.cls.cpu().numpy(), boxes.conf.cpu().numpy()


def compare_boxes(
    image: str,
    reference: tuple[np.ndarray, np.ndarray, np.ndarray],
    candidate: tuple[np.ndarray, np.ndarray, np.ndarray],
    conf: float,
    iou_threshold: float = 0.5,
) -> ImageAgreement:
    """Compare two models' ``(xyxy, class, confidence)`` boxes on one image.

    Boxes at ``conf`` or above are the ones each model reports; the other model's boxes at any
    confidence given here may find them (pass boxes down to ``conf × conf_margin``).
    """
    ref_xyxy, ref_class, ref_conf = (np.asarray(a) for a in reference)
    cand_xyxy, cand_class, cand_conf = (np.asarray(a) for a in candidate)
    ref_reported, cand_reported = ref_conf >= conf, cand_conf >= conf
    reference_found = match_boxes(
        ref_xyxy[ref_reported], ref_class[ref_reported], cand_xyxy, cand_class, iou_threshold
    )
    candidate_found = match_boxes(
        cand_xyxy[cand_reported], cand_class[cand_reported], ref_xyxy, ref_class, iou_threshold
    )
    return ImageAgreement(
        image,
        int(ref_reported.sum()),
        int(cand_reported.sum()),
        reference_found,
        candidate_found,
    )


def validation_images(data: str | Path | Sequence[str | Path]) -> tuple[list[Path], Path | None]:
    """The images to compare on, and the data.yaml (for mAP) when ``data`` is one.

    ``data`` is a data.yaml (its ``val`` split), a dataset folder holding one, a folder of
    images, or a list of image paths.

    Raises:
        FileNotFoundError: no images found.
    """
    from kit.sagemaker.train_entry import find_data_yaml

    if isinstance(data, (str, Path)):
        path = Path(data)
        if path.is_dir() and not any(path.glob("data.yaml")) and not any(path.glob("*/data.yaml")):
            images = _images_in(path)
            if not images:
                raise FileNotFoundError(f"no images in {path}")
            return images, None
        data_yaml = find_data_yaml(path)
        return _split_images(data_yaml), data_yaml
    images = [Path(p) for p in data]
    missing = [str(p) for p in images if not p.is_file()]
    if not images or missing:
        raise FileNotFoundError(f"images missing: {missing[:5] or 'none given'}")
    return images, None


def _images_in(folder: Path) -> list[Path]:
    from ultralytics.data.utils import IMG_FORMATS

    return sorted(p for p in folder.rglob("*") if p.suffix.lower().lstrip(".") in IMG_FORMATS)


def _split_images(data_yaml: Path) -> list[Path]:
    import yaml

    data = yaml.safe_load(data_yaml.read_text())
    base = Path(str(data.get("path") or "."))
    if not base.is_absolute():
        base = data_yaml.parent / base
    entries = data.get("val") or data.get("test")
    if not entries:
        raise FileNotFoundError(f"{data_yaml} has no 'val' split to compare on")
    images: list[Path] = []
    for entry in [entries] if isinstance(entries, str) else entries:
        path = base / entry
        if path.is_dir():
            images += _images_in(path)
        elif path.suffix == ".txt":
            images += [
                base / line.strip() for line in path.read_text().splitlines() if line.strip()
            ]
    if not images:
        raise FileNotFoundError(f"no validation images found for {data_yaml} (val: {entries})")
    return images


def parity_check(
    pytorch_weights: str | Path,
    exported_model: str | Path,
    data: str | Path | Sequence[str | Path],
    *,
    imgsz: int | None = None,
    conf: float = 0.25,
    iou_threshold: float = 0.5,
    conf_margin: float = 0.5,
    min_box_agreement: float = 0.95,
    tolerance: float = 0.02,
    max_images: int | None = None,
    device: str = "cpu",
    strict: bool = False,
    verbose: bool = False,
) -> ParityReport:
    """Compare an exported model (.onnx, ``*_openvino_model/``) with the PyTorch weights.

    Args:
        pytorch_weights: the ``.pt`` the export was made from (the reference).
        exported_model: the exported file or folder (the candidate).
        data: a data.yaml (or dataset folder): its val images, and mAP50 of both models; or a
            folder / list of images (box agreement only).
        imgsz: inference size (default: the size the weights were trained at).
        conf: confidence threshold for the box comparison.
        iou_threshold: IoU for two boxes to count as the same detection.
        conf_margin: a box is found by the other model when it has it at ``conf × conf_margin``
            or above (1.0: strictly at ``conf``).
        min_box_agreement: the lowest box agreement that passes.
        tolerance: the largest mAP50 difference that passes.
        max_images: compare boxes on at most this many images (mAP uses the whole val split).
        device: ``cpu`` or a GPU index.
        strict: raise :class:`ParityError` when the check fails.
        verbose: show ultralytics' log.

    Returns:
        A :class:`ParityReport`; ``report.passed`` tells the outcome.

    Raises:
        ParityError: with ``strict``, when the check fails.
        FileNotFoundError: missing weights, model or images.

    Examples:
        >>> onnx = export_onnx("best.pt")
        >>> report = parity_check("best.pt", onnx, "datasets/shelf/data.yaml", strict=True)
        >>> print(report)
        best.onnx vs best.pt (20 images, imgsz 320, conf 0.25):
          box agreement 100.0% (min 95.0%)
          mAP50 0.9512 vs 0.9513 (difference 0.0001, tolerance 0.0200)
          PASSED
    """
    for path in (Path(pytorch_weights), Path(exported_model)):
        if not path.exists():
            raise FileNotFoundError(f"{path} does not exist")
    configure_ultralytics()
    from ultralytics import YOLO

    from kit.train.local import quiet_ultralytics

    images, data_yaml = validation_images(data)
    if max_images is not None:
        images = images[:max_images]
    with quiet_ultralytics(enabled=not verbose):
        reference = YOLO(str(pytorch_weights))
        imgsz = int(imgsz or _trained_imgsz(reference))
        candidate = YOLO(str(exported_model), task="detect")
        options = dict(
            imgsz=imgsz, conf=conf * conf_margin, rect=False, device=device, verbose=False
        )
        agreements = []
        for image in images:
            ref = _boxes(reference.predict(str(image), **options)[0])
            cand = _boxes(candidate.predict(str(image), **options)[0])
            agreements.append(compare_boxes(str(image), ref, cand, conf, iou_threshold))
        reference_map50 = candidate_map50 = None
        if data_yaml is not None:
            from kit.sagemaker.train_entry import absolute_data_yaml

            with tempfile.TemporaryDirectory(prefix="kit-parity-") as scratch:
                data_copy = str(absolute_data_yaml(data_yaml, scratch))
                validation = dict(
                    data=data_copy,
                    imgsz=imgsz,
                    batch=1,
                    rect=False,
                    plots=False,
                    device=device,
                    verbose=False,
                    project=scratch,
                    save_json=False,
                )
                reference_map50 = float(reference.val(name="reference", **validation).box.map50)
                candidate_map50 = float(candidate.val(name="candidate", **validation).box.map50)
    report = ParityReport(
        reference=str(pytorch_weights),
        candidate=str(exported_model),
        imgsz=imgsz,
        conf=conf,
        iou_threshold=iou_threshold,
        min_box_agreement=min_box_agreement,
        tolerance=tolerance,
        images=tuple(agreements),
        reference_map50=reference_map50,
        candidate_map50=candidate_map50,
    )
    if strict and not report.passed:
        raise ParityError(report)
    return report


def _trained_imgsz(model) -> int:
    size = model.model.args.get("imgsz", 640) if hasattr(model.model, "args") else 640
    return int(size[0] if isinstance(size, (list, tuple)) else size)
