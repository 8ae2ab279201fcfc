"""Local training: a one-epoch run at 64 px, its result, and how the base model is chosen."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
import yaml

from kit.registry import ModelRegistry
from kit.sagemaker.train_entry import absolute_data_yaml
from kit.train import TrainResult, resolve_base, train_local

from .conftest import IMGSZ, SHAPE_CLASSES


def test_one_epoch_run_reports_weights_metrics_history_and_plots(trained):
    assert trained.weights.name == "best.pt" and trained.weights.is_file()
    assert trained.classes == SHAPE_CLASSES
    assert (trained.imgsz, trained.epochs) == (IMGSZ, 1)
    for key in ("precision", "recall", "mAP50", "mAP50-95"):
        assert 0.0 <= trained.metrics[key] <= 1.0
    per_class = {k for k in trained.metrics if "/" in k}
    assert per_class <= {f"{m}/{c}" for m in ("mAP50", "mAP50-95") for c in SHAPE_CLASSES}
    assert trained.framework.startswith("ultralytics ")
    assert trained.base == "yolov8n.yaml" and trained.parent is None

    history = trained.history()
    assert len(history) == 1 and history[0]["epoch"] == 1
    assert "metrics/mAP50(B)" in history[0] and "train/box_loss" in history[0]
    assert "results" in trained.plots and trained.plots["results"].suffix == ".png"

    checkpoint = torch.load(trained.weights, map_location="cpu", weights_only=False)
    assert checkpoint["train_args"]["amp"] is False
    assert checkpoint["train_args"]["deterministic"] is True


def test_result_round_trips_through_metrics_json(trained):
    again = TrainResult.from_dir(trained.save_dir)
    assert again == trained
    with pytest.raises(FileNotFoundError, match="no metrics.json"):
        TrainResult.from_dir(trained.save_dir / "weights")


def test_base_choices(trained, tmp_path):
    assert resolve_base("yolov8n.yaml") == ("yolov8n.yaml", None)
    assert resolve_base(trained.weights) == (str(trained.weights.resolve()), None)
    with pytest.raises(FileNotFoundError, match="would download it"):
        resolve_base("yolov8n.pt")
    with pytest.raises(ValueError, match="not a model config"):
        resolve_base(str(tmp_path / "weights.bin"))


def test_registered_base_is_downloaded_and_becomes_the_parent(trained, backend_settings):
    """Transfer learning starts from a registered model's verified model.pt."""
    registry = ModelRegistry.from_settings(backend_settings)
    meta = trained.register("shapes", settings=backend_settings)
    registry.alias("shapes", "production", meta.version)

    path, parent = resolve_base("shapes:production", settings=backend_settings)
    assert parent == "shapes:1"
    assert Path(path).read_bytes() == trained.weights.read_bytes()
    assert meta.formats["pytorch"].file == "model.pt"
    assert meta.classes == SHAPE_CLASSES and meta.input_size == IMGSZ
    assert meta.metrics == trained.metrics


def test_bad_arguments_are_refused_before_training(shapes_dataset, tmp_path):
    with pytest.raises(ValueError, match="multiple of 32"):
        train_local(shapes_dataset, imgsz=100)
    with pytest.raises(ValueError, match="epochs must be 1 or more"):
        train_local(shapes_dataset, epochs=0)
    with pytest.raises(FileNotFoundError, match="no data.yaml"):
        train_local(tmp_path, epochs=1)


def test_relative_data_yaml_is_resolved_against_its_folder(shapes_dataset, tmp_path):
    """An uploaded dataset's data.yaml has no 'path'; training must still find its images."""
    copy = tmp_path / "dataset"
    shutil.copytree(shapes_dataset.parent, copy)
    (copy / "data.yaml").write_text(
        "train: images/train\nval: images/val\nnames:\n  0: square\n  1: disc\n"
    )
    resolved = absolute_data_yaml(copy / "data.yaml", tmp_path / "resolved")
    assert yaml.safe_load(resolved.read_text())["path"] == str(copy.resolve())
    assert absolute_data_yaml(shapes_dataset, tmp_path / "unused") == shapes_dataset.resolve()
    with pytest.raises(ValueError, match="not a YOLO data.yaml"):
        (tmp_path / "bad.yaml").write_text("train: images\n")
        absolute_data_yaml(tmp_path / "bad.yaml", tmp_path / "unused")
