"""Local training with ultralytics on this machine (CPU or GPU), offline."""

from __future__ import annotations

import contextlib
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kit.core.contracts.model import ModelRef
from kit.offline import configure_ultralytics
from kit.sagemaker.train_entry import METRICS_FILE, find_data_yaml, run_training
from kit.train.result import TrainResult

if TYPE_CHECKING:
    from kit.core.settings import Settings

_REGISTRY_REF = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,62}(:[A-Za-z0-9_\-]+)?$")

log = logging.getLogger(__name__)

PRETRAINED_BASE = "yolo11n.pt"
"""The COCO-pretrained checkpoint fine-tuning starts from by default, as ultralytics names it:
small customer datasets train far better from it than from random weights."""
SCRATCH_BASE = "yolo11n.yaml"
"""The same network from random weights: the default when the checkpoint is not available."""
WEIGHTS_FOLDER = "weights"
"""Where, under the state dir, downloaded (or hand-placed) hub checkpoints are kept."""


class DownloadsDisabledError(FileNotFoundError):
    """A hub checkpoint (``yolo11n.pt``) is asked for, is not on this machine, and downloads are off."""


def hub_checkpoint_path(name: str, settings: Settings) -> Path | None:
    """The local copy of the hub checkpoint ``name``, if this machine has one.

    Looked for in the working directory, in ``<state dir>/weights/`` (where the kit downloads
    to, and where a checkpoint copied from another machine goes) and in ultralytics' own
    weights folder.
    """
    from ultralytics.utils import SETTINGS

    for folder in (Path.cwd(), settings.state_dir / WEIGHTS_FOLDER, Path(SETTINGS["weights_dir"])):
        candidate = folder / name
        if candidate.is_file():
            return candidate.resolve()
    return None


def _is_hub_detection_checkpoint(name: str) -> bool:
    from ultralytics.utils.downloads import GITHUB_ASSETS_NAMES

    return name in GITHUB_ASSETS_NAMES and "-" not in Path(name).stem


def _download_checkpoint(name: str, settings: Settings) -> Path:
    from ultralytics.utils.downloads import attempt_download_asset

    target = settings.state_dir / WEIGHTS_FOLDER / name
    target.parent.mkdir(parents=True, exist_ok=True)
    log.info("downloading %s to %s (allow_downloads is on)", name, target)
    return Path(attempt_download_asset(target)).resolve()


def _hub_checkpoint(name: str, settings: Settings, *, required: bool) -> str | None:
    """A hub checkpoint's local path: found, downloaded (``allow_downloads``), or None when not
    ``required``; else :class:`DownloadsDisabledError`."""
    configure_ultralytics()
    local = hub_checkpoint_path(name, settings)
    if local is not None:
        return str(local)
    if settings.allow_downloads:
        return str(_download_checkpoint(name, settings))
    if not required:
        return None
    raise DownloadsDisabledError(
        f"base {name!r} is an ultralytics hub checkpoint that is not on this machine; "
        "ultralytics would download it, and downloads are off: set allow_downloads: true in "
        "evk.yaml (or EVK_ALLOW_DOWNLOADS=true) on a machine with internet, copy the file to "
        f"{settings.state_dir / WEIGHTS_FOLDER / name}, or use a local .pt path or a registered "
        "model ('shelf:production')"
    )


def resolve_base(
    base: str | Path | ModelRef | None = None, *, settings: Settings | None = None
) -> tuple[str, str | None]:
    """What ultralytics should load for ``base``, and the registry reference when it is one.

    Args:
        base: None (the default): the COCO-pretrained :data:`PRETRAINED_BASE` when this
            machine has it or may download it (setting ``allow_downloads``), else the same
            network from scratch (:data:`SCRATCH_BASE`, logged); a model config
            (``yolo11n.yaml``: from scratch); a local ``.pt``; an ultralytics hub checkpoint
            name (``yolo11s.pt``: found locally, or downloaded with ``allow_downloads``); or a
            registered model (``ModelRef``, ``"shelf:3"``, ``"shelf:production"``, ``"shelf"``),
            whose ``pytorch`` file is downloaded (verified) from the registry.
        settings: for the registry, the state dir and ``allow_downloads`` (default:
            :func:`kit.core.settings.load_settings`).

    Returns:
        ``(model, parent)``: the path or config name, and ``"name:version"`` for a registry model.

    Raises:
        DownloadsDisabledError: a hub checkpoint that is not here, with downloads off (the
            message names the setting).
        FileNotFoundError: another ``.pt`` path that does not exist.
        ValueError: something that is none of the above.
    """
    if settings is None:
        from kit.core.settings import load_settings

        settings = load_settings()
    if base is None:
        pretrained = _hub_checkpoint(PRETRAINED_BASE, settings, required=False)
        if pretrained is not None:
            return pretrained, None
        log.warning(
            "%s is not on this machine and downloads are off (allow_downloads): training %s "
            "from scratch; a registered model or a local .pt as base fine-tunes instead",
            PRETRAINED_BASE,
            SCRATCH_BASE,
        )
        return SCRATCH_BASE, None
    if isinstance(base, ModelRef) or (
        isinstance(base, str) and _REGISTRY_REF.match(base) and not Path(base).exists()
    ):
        from kit.registry import ModelRegistry

        registry = ModelRegistry.from_settings(settings)
        ref = registry.resolve(base)
        return str(registry.download(ref, "pytorch")), f"{ref.name}:{ref.version}"
    path = Path(base)
    if path.suffix in {".yaml", ".yml"}:
        return str(base), None
    if path.suffix == ".pt":
        if path.is_file():
            return str(path.resolve()), None
        configure_ultralytics()
        if path.name == str(base) and _is_hub_detection_checkpoint(path.name):
            return str(_hub_checkpoint(path.name, settings, required=True)), None
        raise FileNotFoundError(
            f"base {str(base)!r} does not exist and is not an ultralytics detection checkpoint "
            "name, which ultralytics would download it by. Use a model config such as "
            f"{SCRATCH_BASE!r} (from scratch), a registered model ('shelf:production'), a hub "
            f"checkpoint such as {PRETRAINED_BASE!r} or the path of a local .pt file"
        )
    raise ValueError(
        f"base {str(base)!r} is not a model config (.yaml), a .pt file or a registered model "
        "('name', 'name:3', 'name:production')"
    )


class _EpochProgress:
    """A compact tqdm bar over epochs (ultralytics' own per-batch output is silenced)."""

    def __init__(self, epochs: int):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=epochs, unit="epoch", desc="training")

    def on_fit_epoch_end(self, trainer: Any) -> None:
        if trainer.epoch >= trainer.epochs or self.bar.n >= self.bar.total:
            return  # the final evaluation of best.pt reports once more
        metrics = trainer.metrics or {}
        losses = (
            trainer.label_loss_items(trainer.tloss, prefix="train")
            if trainer.tloss is not None
            else {}
        )
        self.bar.set_postfix(
            box_loss=f"{float(losses.get('train/box_loss', 0.0)):.3f}",
            mAP50=f"{float(metrics.get('metrics/mAP50(B)', 0.0)):.3f}",
        )
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


@contextlib.contextmanager
def quiet_ultralytics(enabled: bool = True) -> Iterator[None]:
    """Silence ultralytics' logging and progress bars (warnings still show) inside the block."""
    from ultralytics.utils import LOGGER

    previous = LOGGER.level
    if enabled:
        LOGGER.setLevel(logging.WARNING)
    try:
        yield
    finally:
        LOGGER.setLevel(previous)


def train_local(
    data_yaml: str | Path,
    *,
    base: str | Path | ModelRef | None = None,
    epochs: int = 50,
    imgsz: int = 320,
    batch: int = 16,
    project_dir: str | Path | None = None,
    name: str = "train",
    seed: int = 0,
    device: str = "cpu",
    workers: int = 0,
    patience: int = 50,
    plots: bool = True,
    progress: bool = True,
    verbose: bool = False,
    settings: Settings | None = None,
    **train_args: Any,
) -> TrainResult:
    """Train a YOLO detector on a YOLO dataset with ultralytics, offline; return the run's result.

    Training is deterministic for a seed on the CPU (``deterministic=True``) and uses full
    precision (``amp=False``). By default it fine-tunes the COCO-pretrained
    :data:`PRETRAINED_BASE` (transfer learning: what makes a few dozen labelled images enough)
    when this machine has it or the setting ``allow_downloads`` lets ultralytics fetch it;
    otherwise it trains the same network from scratch. Nothing is downloaded unless
    ``allow_downloads`` is on.

    Args:
        data_yaml: the dataset's ``data.yaml`` or its folder (relative paths are resolved
            against the file, not ultralytics' datasets folder).
        base: None: the pretrained default (see :func:`resolve_base`); ``"yolo11n.yaml"``
            (from scratch); a ``.pt`` path; a hub checkpoint name (``"yolo11s.pt"``); or a
            registered model (``"shelf:production"``, ``ModelRef``) to fine-tune from.
        epochs: training epochs.
        imgsz: square input size, a multiple of 32.
        batch: batch size.
        project_dir: where run folders go (default ``<state dir>/runs``).
        name: the run folder's name; ultralytics appends a number when it exists.
        seed: random seed.
        device: ``"cpu"``, ``"0"`` ...
        workers: data loader processes (0 loads in the main process: best on small machines).
        patience: epochs without improvement before stopping early.
        plots: write ultralytics' plots.
        progress: show a compact progress bar (one step per epoch, with loss and mAP50).
        verbose: show ultralytics' own logging instead.
        settings: for the state dir and the registry (default: :func:`kit.core.settings.load_settings`).
        **train_args: more ultralytics training arguments (``lr0``, ``mosaic``, ``freeze`` ...).

    Returns:
        A :class:`TrainResult` (weights, metrics incl. per-class mAP, results.csv, plots).

    Raises:
        FileNotFoundError: no data.yaml, or a missing ``.pt`` base.
        DownloadsDisabledError: a hub checkpoint base that is not here, with downloads off.
        ValueError: a bad ``imgsz`` or ``base``.

    Examples:
        >>> result = train_local("datasets/shelf/data.yaml", epochs=30, imgsz=320)
        >>> result.metrics["mAP50"]
        0.94
        >>> tuned = train_local("datasets/shelf2/data.yaml", base="shelf:production", epochs=10)
    """
    if imgsz <= 0 or imgsz % 32:
        raise ValueError(f"imgsz must be a positive multiple of 32 (got {imgsz})")
    if epochs < 1:
        raise ValueError(f"epochs must be 1 or more (got {epochs})")
    if settings is None:
        from kit.core.settings import load_settings

        settings = load_settings()
    configure_ultralytics()
    data = find_data_yaml(data_yaml)
    model, parent = resolve_base(base, settings=settings)
    project = Path(project_dir) if project_dir is not None else settings.state_dir / "runs"
    bar = _EpochProgress(epochs) if progress else None
    try:
        with quiet_ultralytics(enabled=not verbose):
            summary = run_training(
                data,
                model=model,
                epochs=epochs,
                imgsz=imgsz,
                batch=batch,
                seed=seed,
                device=device,
                workers=workers,
                patience=patience,
                project=project,
                name=name,
                plots=plots,
                callbacks={"on_fit_epoch_end": bar.on_fit_epoch_end} if bar else None,
                overrides=train_args,
            )
    finally:
        if bar is not None:
            bar.close()
    summary["base"] = str(base) if base is not None else model
    summary["parent"] = parent
    Path(summary["save_dir"], METRICS_FILE).write_text(json.dumps(summary, indent=1))
    return TrainResult.from_summary(summary)
