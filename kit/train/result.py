"""What a training run leaves behind: weights, metrics, the per-epoch history and plots."""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from kit.sagemaker.train_entry import METRICS_FILE, PLOT_SUFFIXES, RESULTS_FILE

if TYPE_CHECKING:
    from kit.core.contracts.model import ModelMetadata
    from kit.core.settings import Settings
    from kit.registry import FormatFile


@dataclass(frozen=True)
class TrainResult:
    """A finished training run (local, or a SageMaker job's downloaded artefact).

    Attributes:
        weights: the best weights (``best.pt`` locally, ``model.pt`` from SageMaker).
        save_dir: the run folder with ``results.csv``, ``metrics.json`` and plots.
        classes: class names in class-id order.
        imgsz: the square training input size.
        epochs: epochs trained (fewer than asked when stopped early).
        metrics: ``precision``, ``recall``, ``mAP50``, ``mAP50-95`` of the best weights on the
            validation split, and ``mAP50/<class>``, ``mAP50-95/<class>`` per class.
        base: what training started from (a model config, a .pt path).
        parent: the registered model it was fine-tuned from (``name:version``), if any.
        seconds: wall time of the run.
        framework: e.g. ``ultralytics 8.4.190``.
    """

    weights: Path
    save_dir: Path
    classes: list[str]
    imgsz: int
    epochs: int
    metrics: dict[str, float] = field(default_factory=dict)
    base: str = ""
    parent: str | None = None
    seconds: float | None = None
    framework: str | None = None

    @classmethod
    def from_summary(cls, summary: Mapping, folder: str | Path | None = None) -> TrainResult:
        """Build from the ``metrics.json`` content; relative paths are taken from ``folder``."""
        folder = Path(folder) if folder is not None else Path(summary["save_dir"])
        save_dir = (folder / summary["save_dir"]).resolve()
        return cls(
            weights=(save_dir / summary["weights"]).resolve(),
            save_dir=save_dir,
            classes=list(summary["classes"]),
            imgsz=int(summary["imgsz"]),
            epochs=int(summary["epochs"]),
            metrics={k: float(v) for k, v in summary.get("metrics", {}).items()},
            base=str(summary.get("base", "")),
            parent=summary.get("parent"),
            seconds=summary.get("seconds"),
            framework=summary.get("framework"),
        )

    @classmethod
    def from_dir(cls, folder: str | Path) -> TrainResult:
        """Load a run folder or an extracted SageMaker ``model.tar.gz`` (both hold ``metrics.json``).

        Raises:
            FileNotFoundError: the folder has no ``metrics.json``.
        """
        folder = Path(folder)
        path = folder / METRICS_FILE
        if not path.is_file():
            raise FileNotFoundError(
                f"{folder} has no {METRICS_FILE}; expected a run folder made by kit.train"
            )
        return cls.from_summary(json.loads(path.read_text()), folder)

    @property
    def results_csv(self) -> Path | None:
        """ultralytics' per-epoch ``results.csv``, if written."""
        path = self.save_dir / RESULTS_FILE
        return path if path.is_file() else None

    @property
    def plots(self) -> dict[str, Path]:
        """The run's plots by name: ``results``, ``confusion_matrix``, ``BoxPR_curve``, ..."""
        return {
            path.stem: path
            for path in sorted(self.save_dir.iterdir())
            if path.suffix in PLOT_SUFFIXES
        }

    def history(self) -> list[dict[str, float]]:
        """One dict per epoch from ``results.csv`` (losses, precision, recall, mAP, learning rates)."""
        if self.results_csv is None:
            return []
        with open(self.results_csv, newline="") as stream:
            return [
                {key.strip(): float(value) for key, value in row.items() if value not in ("", None)}
                for row in csv.DictReader(stream)
            ]

    def register(
        self,
        name: str,
        exports: Mapping[str, str | Path | FormatFile] | None = None,
        *,
        dataset: str | None = None,
        description: str = "",
        settings: Settings | None = None,
    ) -> ModelMetadata:
        """Register these weights (format ``pytorch``) and ``exports`` as a new version of ``name``.

        Examples:
            >>> meta = result.register("shelf", {"onnx": export_onnx(result.weights)})
        """
        from kit.registry import register

        return register(
            name,
            {"pytorch": self.weights, **(exports or {})},
            classes=self.classes,
            input_size=self.imgsz,
            metrics=self.metrics,
            parent=self.parent,
            dataset=dataset,
            framework=self.framework,
            description=description,
            settings=settings,
        )

    def __str__(self) -> str:
        shown = {k: round(v, 3) for k, v in self.metrics.items() if "/" not in k}
        return f"TrainResult({self.epochs} epochs, {shown}, weights={self.weights})"
