"""Promote a model only when it is better: candidate and production measured on the same images.

A newly trained or exported model (the *candidate*) and the model an alias points to (by default
``production``, what the devices run) are evaluated on the same held-out split of the same
dataset, in the same format: mAP50, mAP50-95, the edge runtime's speed on one of those images and
the file's size. The alias moves to the candidate only when it scores better (by at least
``min_gain`` on ``metric``), or when the consultant forces it; otherwise nothing changes.

:func:`compare_with_parent` is the same idea one step earlier: before a fine-tuned model is
registered, it and the model it was fine-tuned from are measured on the dataset's validation
split, so that a training run that made the model worse is caught before it is registered.

Examples:
    >>> decision = compare_and_promote("shelf:7", "datasets/shelf/data.yaml")   # doctest: +SKIP
    >>> decision.promoted, decision.reason                                      # doctest: +SKIP
    (False, 'shelf:7 scores mAP50-95 0.712, production (shelf:3) 0.731: not better, not promoted')
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kit.core.contracts.model import ModelMetadata

if TYPE_CHECKING:
    from kit.core.settings import Settings
    from kit.registry import ModelRegistry

METRICS = ("mAP50", "mAP50-95")
"""The metrics a decision can be based on."""

PRODUCTION = "production"
EDGE_FORMATS = ("onnx", "onnx_fp16", "onnx_int8", "openvino")
"""Formats the edge runtime runs, so their speed can be measured here."""


def evaluate_model(model_path: str | Path, data_yaml: str | Path, imgsz: int) -> dict[str, float]:
    """mAP50 and mAP50-95, overall and per class, of a model on the ``val`` split of ``data_yaml``.

    Args:
        model_path: ``.pt`` weights, an ``.onnx`` file or an OpenVINO export folder.
        data_yaml: a YOLO ``data.yaml`` (relative paths are resolved against the file).
        imgsz: the input size to evaluate at.

    Returns:
        ``{"mAP50": ..., "mAP50-95": ..., "mAP50/<class>": ...}``, rounded to 4 digits.
    """
    from kit.offline import configure_ultralytics

    configure_ultralytics()
    from ultralytics import YOLO

    from kit.sagemaker.train_entry import absolute_data_yaml
    from kit.train.local import quiet_ultralytics

    with quiet_ultralytics(), tempfile.TemporaryDirectory() as scratch:
        data = absolute_data_yaml(data_yaml, scratch)
        metrics = YOLO(str(model_path), task="detect").val(
            data=str(data),
            imgsz=imgsz,
            batch=1,
            device="cpu",
            plots=False,
            project=scratch,
            verbose=False,
        )
    result = {
        "mAP50": round(float(metrics.box.map50), 4),
        "mAP50-95": round(float(metrics.box.map), 4),
    }
    for index, class_map in zip(metrics.box.ap_class_index, metrics.box.ap50, strict=True):
        result[f"mAP50/{metrics.names[int(index)]}"] = round(float(class_map), 4)
    return result


@dataclass(frozen=True)
class ModelScore:
    """One model measured on the comparison's images.

    Attributes:
        ref: ``name:version``.
        format: the format measured (``onnx``, ``openvino``, ``pytorch`` ...).
        metrics: ``mAP50``, ``mAP50-95`` and per class, from :func:`evaluate_model`.
        median_ms: the edge runtime's median ``detect`` time on one held-out image (None for a
            format the edge runtime does not run, e.g. ``pytorch``).
        size_bytes: the registered file's size.
    """

    ref: str
    format: str
    metrics: dict[str, float]
    median_ms: float | None
    size_bytes: int

    def as_row(self, role: str) -> dict[str, Any]:
        """A table row: role, model, format, both mAPs, speed and size."""
        return {
            "role": role,
            "model": self.ref,
            "format": self.format,
            "mAP50": self.metrics.get("mAP50"),
            "mAP50-95": self.metrics.get("mAP50-95"),
            "median ms": None if self.median_ms is None else round(self.median_ms, 1),
            "size MB": round(self.size_bytes / 1e6, 2),
        }


@dataclass(frozen=True)
class PromotionDecision:
    """What :func:`compare_and_promote` measured and did.

    Attributes:
        candidate: the candidate's score.
        current: the score of the version the alias pointed to (None: no such alias yet, or a
            model with other classes, which these images cannot judge).
        alias: the alias considered, e.g. ``production``.
        promoted: whether the alias now points to the candidate (because of this call).
        reason: one sentence saying why.
        previous_version: the version the alias pointed to before (None: it did not exist).
    """

    candidate: ModelScore
    current: ModelScore | None
    alias: str
    promoted: bool
    reason: str
    previous_version: int | None

    def rows(self) -> list[dict[str, Any]]:
        """Table rows: the candidate and, when measured, the current model."""
        rows = [self.candidate.as_row("candidate")]
        if self.current is not None:
            rows.append(self.current.as_row(f"{self.alias} (before)"))
        return rows

    def __str__(self) -> str:
        return self.reason


def compare_and_promote(
    candidate: str,
    data_yaml: str | Path,
    *,
    alias: str = PRODUCTION,
    fmt: str = "onnx",
    metric: str = "mAP50-95",
    min_gain: float = 0.0,
    min_images: int = 20,
    force: bool = False,
    promote: bool = True,
    speed_runs: int = 10,
    registry: ModelRegistry | None = None,
    settings: Settings | None = None,
    cache_dir: str | Path | None = None,
) -> PromotionDecision:
    """Measure ``candidate`` and ``<name>:<alias>`` on the same held-out images; move the alias
    to the candidate only when it is better, or when ``force`` says so.

    Both are evaluated in the same format on the ``val`` split of ``data_yaml`` (the held-out
    images of the dataset the candidate was trained on). The candidate is better when its
    ``metric`` exceeds the current model's by more than ``min_gain`` on at least ``min_images``
    held-out images (fewer prove nothing: a quick run's few images are shown, not trusted). A
    model with no such alias yet gets it (there is nothing to be worse than); a current model
    with other classes is not measured on these images and is replaced only with ``force``.

    Args:
        candidate: a registered model, ``name:version`` or ``name:<alias>``.
        data_yaml: the dataset whose ``val`` split both are measured on.
        alias: the alias to move.
        fmt: the format to measure (both must have it; ``pytorch`` when either lacks it).
        metric: ``mAP50`` or ``mAP50-95``.
        min_gain: how much better the candidate must score.
        min_images: the fewest held-out images a "better" is trusted on.
        force: move the alias whatever the scores.
        promote: False: measure and decide, but change nothing (a dry run).
        speed_runs: timed runs of the edge runtime per model.
        registry: the registry (default: from ``settings``).
        settings: for the registry (default: :func:`kit.core.settings.load_settings`).
        cache_dir: where downloaded model files go (default: the registry's cache).

    Returns:
        A :class:`PromotionDecision`; ``promoted`` says whether the alias moved.

    Raises:
        ValueError: an unknown ``metric``, or a negative ``min_gain``.
        RegistryError: the candidate does not exist.
    """
    from kit.registry import ModelRegistry

    if metric not in METRICS:
        raise ValueError(f"metric {metric!r} is not one of {', '.join(METRICS)}")
    if min_gain < 0:
        raise ValueError(f"min_gain must be 0 or more, got {min_gain}")
    registry = registry or ModelRegistry.from_settings(settings)
    new = registry.get(candidate)
    current_version = registry.aliases(new.name).get(alias)
    current = registry.get(new.name, current_version) if current_version is not None else None
    if current is not None and fmt not in current.formats:
        fmt = "pytorch"
    if fmt not in new.formats:
        fmt = "pytorch"
    new_score = _score(registry, new, fmt, data_yaml, speed_runs, cache_dir)
    label = f"{new.name}:{new.version}"

    def decide(promoted: bool, reason: str, current_score: ModelScore | None) -> PromotionDecision:
        if promoted and promote:
            registry.alias(new.name, alias, new.version)
        elif promoted:
            reason += " (dry run: alias not moved)"
        return PromotionDecision(
            candidate=new_score,
            current=current_score,
            alias=alias,
            promoted=promoted and promote,
            reason=reason,
            previous_version=current_version,
        )

    if current is None:
        return decide(True, f"{new.name} has no {alias} model yet: {label} becomes {alias}", None)
    current_label = f"{alias} ({current.name}:{current.version})"
    if current.version == new.version:
        return decide(False, f"{label} is {alias} already: nothing to promote", None)
    if list(current.classes) != list(new.classes):
        return decide(
            force,
            f"{current_label} detects {current.classes}, {label} detects {new.classes}: "
            + ("promoted because forced" if force else "not comparable, promote with force"),
            None,
        )
    current_score = _score(registry, current, fmt, data_yaml, speed_runs, cache_dir)
    ours, theirs = new_score.metrics[metric], current_score.metrics[metric]
    scores = f"{label} scores {metric} {ours:.3f}, {current_label} {theirs:.3f}"
    held_out = len(val_images(data_yaml))
    scores += f" on {held_out} held-out images"
    if ours <= theirs + min_gain:
        outcome = "not better"
    elif held_out < min_images:
        outcome = f"better, but {held_out} images are fewer than the {min_images} a decision needs"
    else:
        return decide(True, f"{scores}: better, promoted", current_score)
    if force:
        return decide(True, f"{scores}: {outcome}, promoted because forced", current_score)
    return decide(False, f"{scores}: {outcome}, not promoted", current_score)


def _score(
    registry: ModelRegistry,
    metadata: ModelMetadata,
    fmt: str,
    data_yaml: str | Path,
    speed_runs: int,
    cache_dir: str | Path | None,
) -> ModelScore:
    path = registry.download(f"{metadata.name}:{metadata.version}", fmt, cache_dir=cache_dir)
    metrics = evaluate_model(path, data_yaml, metadata.input_size)
    median_ms = None
    if fmt in EDGE_FORMATS:
        from kit.compile import measure_export_speed

        frame = first_val_image(data_yaml)
        median_ms = measure_export_speed({fmt: path}, frame, runs=speed_runs)[0].median_ms
    return ModelScore(
        ref=f"{metadata.name}:{metadata.version}",
        format=fmt,
        metrics=metrics,
        median_ms=median_ms,
        size_bytes=metadata.formats[fmt].size_bytes,
    )


def val_images(data_yaml: str | Path) -> list[Path]:
    """The image files of the ``val`` split (the held-out images) of ``data_yaml``, sorted."""
    import yaml

    data_yaml = Path(data_yaml).resolve()
    data = yaml.safe_load(data_yaml.read_text())
    root = data_yaml.parent / str(data.get("path") or ".")
    folder = root / str(data.get("val") or data["train"])
    return sorted(
        p for p in folder.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png", ".bmp"}
    )


def first_val_image(data_yaml: str | Path) -> Any:
    """The first image (BGR array) of the ``val`` split of ``data_yaml``.

    Raises:
        FileNotFoundError: the split has no image.
    """
    import cv2

    images = val_images(data_yaml)
    if not images:
        raise FileNotFoundError(f"no image in the val split of {data_yaml}")
    return cv2.imread(str(images[0]))


@dataclass(frozen=True)
class ParentComparison:
    """A fine-tuned model and the model it was fine-tuned from, on the same validation images.

    Attributes:
        parent: the parent, ``name:version`` (None: trained from scratch or from a file).
        parent_metrics: the parent's metrics on these images (None when not measured).
        new_metrics: the new weights' metrics on these images.
        allowed: whether registering the new model is allowed.
        reason: one sentence saying why.
    """

    parent: str | None
    parent_metrics: dict[str, float] | None
    new_metrics: dict[str, float]
    allowed: bool
    reason: str

    def rows(self) -> list[dict[str, Any]]:
        """Table rows: the parent (when measured) and the new model."""
        rows = []
        if self.parent_metrics is not None:
            rows.append({"model": f"parent {self.parent}", **_headline(self.parent_metrics)})
        rows.append({"model": "new (fine-tuned)", **_headline(self.new_metrics)})
        return rows

    def __str__(self) -> str:
        return self.reason


def _headline(metrics: dict[str, float]) -> dict[str, float]:
    return {name: metrics[name] for name in METRICS if name in metrics}


def compare_with_parent(
    new_weights: str | Path,
    parent: str | None,
    data_yaml: str | Path,
    *,
    imgsz: int,
    metric: str = "mAP50",
    tolerance: float = 0.0,
    force: bool = False,
    registry: ModelRegistry | None = None,
    settings: Settings | None = None,
) -> ParentComparison:
    """Whether fine-tuned weights may be registered: not worse than their parent on the same images.

    Both are evaluated on the ``val`` split of ``data_yaml``. A parent with other classes (a new
    use case fine-tuned from another model's weights) or no parent at all cannot be compared on
    these images: registration is allowed. A new model that scores more than ``tolerance`` below
    its parent on ``metric`` is refused, unless ``force``.

    Args:
        new_weights: the fine-tuned ``.pt``.
        parent: the registered parent, ``name:version`` (e.g. ``TrainResult.parent``), or None.
        data_yaml: the dataset the new model was trained on.
        imgsz: the input size both are evaluated at.
        metric: ``mAP50`` or ``mAP50-95``.
        tolerance: how much worse than the parent still counts as not worse.
        force: allow a regression.

    Returns:
        A :class:`ParentComparison`; ``allowed`` says whether to register.

    Raises:
        ValueError: an unknown ``metric``.
    """
    from kit.registry import ModelRegistry

    if metric not in METRICS:
        raise ValueError(f"metric {metric!r} is not one of {', '.join(METRICS)}")
    new_metrics = evaluate_model(new_weights, data_yaml, imgsz)
    if parent is None:
        return ParentComparison(None, None, new_metrics, True, "no registered parent to compare")
    registry = registry or ModelRegistry.from_settings(settings)
    parent_metadata = registry.get(parent)
    label = f"{parent_metadata.name}:{parent_metadata.version}"
    new_classes = _data_classes(data_yaml)
    if list(parent_metadata.classes) != new_classes:
        return ParentComparison(
            label,
            None,
            new_metrics,
            True,
            f"parent {label} detects {parent_metadata.classes}, this dataset {new_classes}: "
            "a new model, nothing to regress from",
        )
    parent_metrics = evaluate_model(registry.download(label, "pytorch"), data_yaml, imgsz)
    ours, theirs = new_metrics[metric], parent_metrics[metric]
    scores = f"{metric} {ours:.3f} (new) vs {theirs:.3f} (parent {label}) on the same images"
    if ours >= theirs - tolerance:
        return ParentComparison(label, parent_metrics, new_metrics, True, f"{scores}: not worse")
    if force:
        return ParentComparison(
            label, parent_metrics, new_metrics, True, f"{scores}: worse, registered because forced"
        )
    return ParentComparison(
        label,
        parent_metrics,
        new_metrics,
        False,
        f"{scores}: worse, not registered (train longer, or force to register anyway)",
    )


def _data_classes(data_yaml: str | Path) -> list[str]:
    import yaml

    names = yaml.safe_load(Path(data_yaml).read_text())["names"]
    if isinstance(names, dict):
        return [str(names[key]) for key in sorted(names)]
    return [str(name) for name in names]
