"""The demo models shipped in ``models/demo/``: one per use case, trained here on synthetic scenes.

``python -m kit.demo_models`` (``make demo-models``) rebuilds them: for each use case it renders a
synthetic training set and a held-out set (other seeds), trains yolov8n from its yaml on the CPU,
exports ONNX, measures mAP50 of the exported model on the held-out set and writes
``models/demo/<name>/`` with ``model.pt``, ``model.onnx`` and ``metadata.json``
(:class:`~kit.core.contracts.ModelMetadata`: classes, input size, metrics, the command that made it).

The demo registers these files in the local registry, so it never trains for long; the training
notebook fine-tunes from them (transfer learning).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from kit.core.contracts import ModelArtifact, ModelMetadata
from kit.registry import sha256_of

DEMO_DIR = Path(__file__).resolve().parents[1] / "models" / "demo"
IMGSZ = 320
PRODUCTION = "production"
"""The alias the demo models get on a model that has none (never moved once it exists)."""


@dataclass(frozen=True)
class DemoRecipe:
    """How one demo model is made."""

    name: str
    use_case: str
    train_images: int = 300
    heldout_images: int = 60
    epochs: int = 20
    seed: int = 7
    description: str = ""


RECIPES = {
    "shelf": DemoRecipe("shelf", "shelf", description="bottles on a shelf (count_below)"),
    "fish": DemoRecipe("fish", "fish", description="fish in a region (rising_trend)"),
    "ppe": DemoRecipe("ppe", "ppe", description="people with and without helmets (ppe_violation)"),
}


def demo_model_files(name: str, directory: Path = DEMO_DIR) -> dict[str, Path]:
    """The shipped files of demo model ``name`` by format (``pytorch``, ``onnx``)."""
    folder = directory / name
    files = {"pytorch": folder / "model.pt", "onnx": folder / "model.onnx"}
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise FileNotFoundError(
            f"demo model {name!r} is incomplete, missing {missing}: run `make demo-models`"
        )
    return files


def demo_metadata(name: str, directory: Path = DEMO_DIR) -> ModelMetadata:
    """The shipped metadata of demo model ``name``."""
    return ModelMetadata.model_validate_json((directory / name / "metadata.json").read_text())


def build_demo_model(
    recipe: DemoRecipe, out_dir: Path = DEMO_DIR, work_dir: Path | None = None
) -> ModelMetadata:
    """Train, export, evaluate and write one demo model; return its metadata."""
    from kit.compile import export_onnx
    from kit.promote import evaluate_model
    from kit.synthetic import make_dataset
    from kit.train import train_local

    started = time.monotonic()
    work = Path(work_dir or tempfile.mkdtemp(prefix=f"demo-{recipe.name}-"))
    train_yaml = make_dataset(
        recipe.use_case,
        work / "train",
        n_images=recipe.train_images,
        seed=recipe.seed,
        size=(640, 480),
        overwrite=True,
    )
    heldout_yaml = make_dataset(
        recipe.use_case,
        work / "heldout",
        n_images=2 * recipe.heldout_images,  # only its val half is used
        seed=recipe.seed + 1000,
        size=(640, 480),
        splits=(0.5, 0.5, 0.0),
        overwrite=True,
    )
    result = train_local(
        train_yaml,
        base="yolov8n.yaml",  # what the shipped demo models were trained from: reproducible offline
        epochs=recipe.epochs,
        imgsz=IMGSZ,
        batch=16,
        seed=recipe.seed,
        project_dir=work / "runs",
        plots=False,
    )
    onnx = export_onnx(result.weights, IMGSZ)
    metrics = evaluate_model(onnx, heldout_yaml, IMGSZ)
    target = out_dir / recipe.name
    target.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(result.weights, target / "model.pt")
    shutil.copyfile(onnx, target / "model.onnx")
    formats = {
        fmt: ModelArtifact(file=path.name, sha256=sha256_of(path), size_bytes=path.stat().st_size)
        for fmt, path in (("pytorch", target / "model.pt"), ("onnx", target / "model.onnx"))
    }
    metadata = ModelMetadata(
        name=recipe.name,
        version=1,
        classes=list(result.classes),
        input_size=IMGSZ,
        formats=formats,
        metrics={**metrics, "train_seconds": round(time.monotonic() - started, 1)},
        dataset=(
            f"synthetic:{recipe.use_case} seed={recipe.seed} n={recipe.train_images}; "
            f"held-out seed={recipe.seed + 1000} n={recipe.heldout_images}"
        ),
        framework=result.framework,
        description=(
            f"{recipe.description}; yolov8n from yolov8n.yaml, {recipe.epochs} epochs at {IMGSZ} px on the CPU; "
            f"mAP50 measured on the held-out set with the ONNX export. "
            f"Reproduce: python -m kit.demo_models --only {recipe.name}"
        ),
    )
    (target / "metadata.json").write_text(
        json.dumps(metadata.model_dump(mode="json"), indent=2) + "\n"
    )
    shutil.rmtree(work, ignore_errors=True)
    return metadata


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m kit.demo_models", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--only", choices=sorted(RECIPES), action="append", help="build only these")
    parser.add_argument("--out", type=Path, default=DEMO_DIR)
    args = parser.parse_args(argv)
    for name in args.only or sorted(RECIPES):
        metadata = build_demo_model(RECIPES[name], args.out)
        print(
            f"{name}: mAP50 {metadata.metrics['mAP50']:.3f} on held-out scenes -> {args.out / name}",
            flush=True,
        )
    return 0


def register_demo_models(
    settings=None, *, names: list[str] | None = None, directory: Path = DEMO_DIR
) -> dict[str, ModelMetadata]:
    """Make the shipped demo models available in the registry without changing what is there.

    For each model, a registered version with the shipped ONNX checksum is reused; only when there
    is none are the shipped files registered, as a new version. The alias ``production`` is set
    only on a model that has no ``production`` alias yet: an alias that exists (the customer's
    own production model, or a model promoted since) is never moved, and no version is deleted or
    overwritten. Running it again changes nothing.

    Returns:
        The registered demo version's metadata by model name (which ``production`` may or may
        not point to).
    """
    from kit.registry import ModelRegistry

    registry = ModelRegistry.from_settings(settings)
    registered = {}
    for name in names or sorted(RECIPES):
        shipped = demo_metadata(name, directory)
        metadata = _registered_copy(registry, name, shipped)
        if metadata is None:
            metadata = registry.register(
                name,
                demo_model_files(name, directory),
                classes=shipped.classes,
                input_size=shipped.input_size,
                metrics=shipped.metrics,
                dataset=shipped.dataset,
                framework=shipped.framework,
                description=shipped.description,
            )
        if PRODUCTION not in registry.aliases(name):
            registry.alias(name, PRODUCTION, metadata.version)
        registered[name] = metadata
    return registered


def _registered_copy(registry, name: str, shipped: ModelMetadata) -> ModelMetadata | None:
    """The newest registered version of ``name`` whose ONNX file is the shipped one, if any."""
    wanted = shipped.formats["onnx"].sha256
    for metadata in reversed(registry.list_models(name)):
        onnx = metadata.formats.get("onnx")
        if onnx is not None and onnx.sha256 == wanted:
            return metadata
    return None


if __name__ == "__main__":
    sys.exit(main())
