"""Train a YOLO detector with ultralytics: the SageMaker training job's entry script.

SageMaker's PyTorch container unpacks this folder (``sourcedir.tar.gz``), installs
``requirements.txt`` and runs ``python train_entry.py --epochs 50 --imgsz 320 ...`` with:

- ``SM_CHANNEL_TRAINING``: the dataset (``datasets/<name>/<version>/``: ``data.yaml`` with paths
  relative to itself, ``images/``, ``labels/``);
- ``SM_CHANNEL_BASE`` (optional): a folder with ``model.pt`` to fine-tune from; without it the
  job fine-tunes ``--model``: by default the COCO-pretrained ``yolo11n.pt``, which the job
  (it runs with internet) downloads through ultralytics;
- ``SM_MODEL_DIR``: where ``model.pt``, ``metrics.json``, ``results.csv`` and the plots go
  (SageMaker packs it into ``model.tar.gz``);
- ``SM_CHECKPOINT_DIR`` or ``/opt/ml/checkpoints``: the run folder, synced to S3, so a
  restarted (spot) job resumes from ``last.pt``.

Each epoch prints ``kit-metric epoch=<n> mAP50=<x> mAP50-95=<y> box_loss=<z>`` for the job's
metric definitions. Only the standard library and ultralytics are imported (the container has
no ``kit``); ``kit.train.train_local`` runs the same :func:`run_training`, so local and
SageMaker runs train and report alike.

Run it locally::

    SM_CHANNEL_TRAINING=data/ SM_MODEL_DIR=out/ python kit/sagemaker/train_entry.py --epochs 1
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

METRICS_FILE = "metrics.json"
WEIGHTS_FILE = "model.pt"
RESULTS_FILE = "results.csv"
DONE_MARKER = "training-complete.json"
PLOT_SUFFIXES = (".png", ".jpg")
FONT_NAMES = ("Arial.ttf", "Arial.Unicode.ttf")


def configure_offline(config_dir: str | Path) -> Path:
    """Set ultralytics' offline environment (no weight/font/package downloads); call before importing it."""
    config_dir = Path(config_dir).resolve()
    os.environ["YOLO_OFFLINE"] = "1"
    os.environ["YOLO_AUTOINSTALL"] = "False"
    os.environ.setdefault("YOLO_CONFIG_DIR", str(config_dir))
    fonts = Path(os.environ["YOLO_CONFIG_DIR"]) / "Ultralytics"
    fonts.mkdir(parents=True, exist_ok=True)
    try:
        import matplotlib

        source = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    except ImportError:
        return config_dir
    for name in FONT_NAMES:
        if source.is_file() and not (fonts / name).exists():
            shutil.copyfile(source, fonts / name)
    return config_dir


def fetch_pretrained(name: str, folder: str | Path) -> Path:
    """Download an ultralytics hub checkpoint (``yolo11n.pt``) into ``folder``; return its path.

    Only the weights are fetched (ultralytics' release assets); everything else stays offline.
    """
    from ultralytics.utils.downloads import attempt_download_asset

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return Path(attempt_download_asset(folder / name)).resolve()


def find_data_yaml(dataset: str | Path) -> Path:
    """``data.yaml`` itself, or the one at the root (or one level down) of a dataset folder.

    Raises:
        FileNotFoundError: no data.yaml there.
    """
    dataset = Path(dataset)
    if dataset.is_file():
        return dataset
    candidates = [dataset / "data.yaml", *sorted(dataset.glob("*/data.yaml"))]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"no data.yaml in {dataset} (looked at its root and one folder down); "
        "expected a YOLO dataset as kit.data writes it"
    )


def absolute_data_yaml(data_yaml: str | Path, out_dir: str | Path) -> Path:
    """A copy of ``data_yaml`` whose ``path`` is absolute (ultralytics otherwise resolves
    relative paths against its own datasets folder, not the file's)."""
    import yaml

    data_yaml = Path(data_yaml).resolve()
    data = yaml.safe_load(data_yaml.read_text()) or {}
    if not isinstance(data, dict) or "names" not in data:
        raise ValueError(f"{data_yaml} is not a YOLO data.yaml: it needs 'names' and 'train'/'val'")
    if data.get("path") and Path(str(data["path"])).is_absolute():
        return data_yaml
    data["path"] = str((data_yaml.parent / str(data.get("path") or ".")).resolve())
    out = Path(out_dir) / "data.yaml"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return out


def collect_metrics(trainer: Any) -> dict[str, float]:
    """Overall and per-class box metrics of the final evaluation (best weights on the val split).

    Keys: ``precision``, ``recall``, ``mAP50``, ``mAP50-95`` and, per class with validation
    labels, ``mAP50/<class>`` and ``mAP50-95/<class>``.
    """
    raw = dict(trainer.metrics or {})
    names = {
        "metrics/precision(B)": "precision",
        "metrics/recall(B)": "recall",
        "metrics/mAP50(B)": "mAP50",
        "metrics/mAP50-95(B)": "mAP50-95",
    }
    metrics = {short: round(float(raw[key]), 6) for key, short in names.items() if key in raw}
    validator = getattr(trainer, "validator", None)
    box = getattr(getattr(validator, "metrics", None), "box", None)
    class_names = trainer.data["names"]
    if box is not None and class_names and len(getattr(box, "ap_class_index", [])):
        ap50, ap = box.ap50, box.ap
        for row, class_index in enumerate(box.ap_class_index):
            label = class_names[int(class_index)]
            metrics[f"mAP50/{label}"] = round(float(ap50[row]), 6)
            metrics[f"mAP50-95/{label}"] = round(float(ap[row]), 6)
    return metrics


def run_training(
    data_yaml: str | Path,
    *,
    model: str | Path = "yolov8n.yaml",
    epochs: int = 50,
    imgsz: int = 320,
    batch: int = 16,
    seed: int = 0,
    device: str = "cpu",
    workers: int = 0,
    patience: int = 50,
    project: str | Path = "runs",
    name: str = "train",
    exist_ok: bool = False,
    resume: bool = False,
    plots: bool = True,
    callbacks: Mapping[str, Callable[[Any], None]] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Train with ultralytics and write ``metrics.json`` into the run folder; return its content.

    Args:
        data_yaml: the dataset's data.yaml (paths are made absolute first).
        model: a model config (``yolo11n.yaml``, from scratch) or a local ``.pt`` to fine-tune.
        epochs: training epochs.
        imgsz: square input size (a multiple of 32).
        batch: batch size.
        seed: random seed (training is deterministic for a seed on the CPU).
        device: ``cpu``, ``0`` (first GPU), ...
        workers: data loader worker processes.
        patience: epochs without improvement before stopping early.
        project: folder holding run folders.
        name: the run folder's name (``exist_ok`` False: ultralytics adds a number when taken).
        exist_ok: reuse an existing run folder of that name.
        resume: ``model`` is a ``last.pt`` of an interrupted run: continue it.
        plots: write ultralytics' plots (results.png, confusion matrix, PR curves...).
        callbacks: ultralytics callbacks by event (``on_fit_epoch_end`` ...).
        overrides: more ultralytics training arguments.

    Returns:
        ``{"save_dir", "weights", "metrics", "classes", "imgsz", "epochs", "base", "seconds",
        "framework"}``; also written to ``<save_dir>/metrics.json``.
    """
    import ultralytics
    from ultralytics import YOLO

    started = time.monotonic()
    project = Path(project).resolve()
    yolo = YOLO(str(model))
    for event, callback in (callbacks or {}).items():
        yolo.add_callback(event, callback)
    if resume:
        yolo.train(resume=True)
    else:
        data_copy = absolute_data_yaml(data_yaml, project / ".data" / name)
        arguments = dict(
            data=str(data_copy),
            epochs=epochs,
            imgsz=imgsz,
            batch=batch,
            seed=seed,
            deterministic=True,
            device=device,
            workers=workers,
            patience=patience,
            project=str(project),
            name=name,
            exist_ok=exist_ok,
            plots=plots,
            amp=False,
            verbose=False,
        )
        arguments.update(overrides or {})
        yolo.train(**arguments)
    trainer = yolo.trainer
    save_dir = Path(trainer.save_dir)
    weights = trainer.best if Path(trainer.best).exists() else trainer.last
    summary = {
        "save_dir": str(save_dir),
        "weights": str(weights),
        "metrics": collect_metrics(trainer),
        "classes": [trainer.data["names"][i] for i in sorted(trainer.data["names"])],
        "imgsz": int(trainer.args.imgsz),
        "epochs": int(trainer.epoch) + 1,
        "base": str(model),
        "seconds": round(time.monotonic() - started, 1),
        "framework": f"ultralytics {ultralytics.__version__}",
    }
    (save_dir / METRICS_FILE).write_text(json.dumps(summary, indent=1))
    return summary


def copy_outputs(summary: Mapping[str, Any], model_dir: str | Path) -> Path:
    """Put ``model.pt``, ``metrics.json``, ``results.csv`` and the plots of a run into ``model_dir``."""
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    save_dir = Path(summary["save_dir"])
    shutil.copyfile(summary["weights"], model_dir / WEIGHTS_FILE)
    portable = {**summary, "save_dir": ".", "weights": WEIGHTS_FILE}
    (model_dir / METRICS_FILE).write_text(json.dumps(portable, indent=1))
    for path in sorted(save_dir.iterdir()):
        if path.name in {RESULTS_FILE, "args.yaml"} or path.suffix in PLOT_SUFFIXES:
            shutil.copyfile(path, model_dir / path.name)
    return model_dir


def _print_epoch_metrics(trainer: Any) -> None:
    metrics = trainer.metrics or {}
    losses = (
        trainer.label_loss_items(trainer.tloss, prefix="train") if trainer.tloss is not None else {}
    )
    if trainer.epoch >= trainer.epochs:
        return  # the final evaluation of best.pt reports once more
    fields = {
        "mAP50": metrics.get("metrics/mAP50(B)", 0.0),
        "mAP50-95": metrics.get("metrics/mAP50-95(B)", 0.0),
        "box_loss": losses.get("train/box_loss", 0.0),
    }
    values = " ".join(f"{k}={float(v):.5f}" for k, v in fields.items())
    print(f"kit-metric epoch={trainer.epoch + 1} {values}", flush=True)


def _boolean(text: str) -> bool:
    lowered = str(text).strip().lower()
    if lowered in {"1", "true", "yes"}:
        return True
    if lowered in {"0", "false", "no"}:
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    """The job's hyperparameters (``--epochs 50 ...``) and SageMaker's folders (from ``SM_*``)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--model",
        default="yolo11n.pt",
        help="a hub checkpoint to fine-tune (downloaded), a model config (from scratch), or 'base'",
    )
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--imgsz", type=int, default=320)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--patience", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--device", default=None, help="default: 0 with a GPU, else cpu")
    parser.add_argument("--plots", type=_boolean, default=True, help="write ultralytics' plots")
    parser.add_argument(
        "--data", default=os.environ.get("SM_CHANNEL_TRAINING", "/opt/ml/input/data/training")
    )
    parser.add_argument("--base", default=os.environ.get("SM_CHANNEL_BASE"))
    parser.add_argument("--model-dir", default=os.environ.get("SM_MODEL_DIR", "/opt/ml/model"))
    parser.add_argument(
        "--checkpoint-dir",
        default=os.environ.get("SM_CHECKPOINT_DIR", "/opt/ml/checkpoints"),
    )
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        print(f"ignoring unknown arguments: {unknown}", file=sys.stderr)
    return args


def _default_device() -> str:
    import torch

    return "0" if torch.cuda.is_available() else "cpu"


def main(argv: list[str] | None = None) -> int:
    """Train from SageMaker's channels into ``SM_MODEL_DIR``; resume from checkpoints if any."""
    args = parse_arguments(argv)
    checkpoint_dir = Path(args.checkpoint_dir)
    configure_offline(Path(tempfile.gettempdir()) / "kit-ultralytics")  # not synced to S3
    model: str | Path = args.model
    if args.base:
        model = Path(args.base) / WEIGHTS_FILE if Path(args.base).is_dir() else Path(args.base)
        if not Path(model).is_file():
            raise FileNotFoundError(f"base model channel {args.base} has no {WEIGHTS_FILE}")
    elif args.model == "base":
        raise ValueError("--model base needs a 'base' input channel with model.pt")
    elif args.model.endswith(".pt") and not Path(args.model).is_file():
        model = fetch_pretrained(args.model, Path(tempfile.gettempdir()) / "kit-weights")
    run_dir = checkpoint_dir / "run"
    last = run_dir / "weights" / "last.pt"
    finished = run_dir / DONE_MARKER
    common = dict(
        project=checkpoint_dir,
        name="run",
        exist_ok=True,
        callbacks={"on_fit_epoch_end": _print_epoch_metrics},
    )
    if finished.is_file():
        summary = json.loads(finished.read_text())
        print("the checkpoint folder holds a finished run; copying its outputs", flush=True)
    elif last.is_file():
        print(f"resuming from {last}", flush=True)
        summary = run_training(None, model=last, resume=True, **common)
    else:
        summary = run_training(
            find_data_yaml(args.data),
            model=model,
            epochs=args.epochs,
            imgsz=args.imgsz,
            batch=args.batch,
            seed=args.seed,
            device=args.device or _default_device(),
            workers=args.workers,
            patience=args.patience,
            plots=args.plots,
            **common,
        )
    finished.write_text(json.dumps(summary, indent=1))
    copy_outputs(summary, args.model_dir)
    print("kit-final " + " ".join(f"{k}={v}" for k, v in summary["metrics"].items()), flush=True)
    results = Path(args.model_dir) / RESULTS_FILE
    if results.is_file():
        with open(results, newline="") as stream:
            epochs = sum(1 for _ in csv.DictReader(stream))
        print(f"trained {epochs} epochs; outputs in {args.model_dir}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
