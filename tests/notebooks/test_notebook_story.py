"""Notebooks 01 to 05 in sequence, as a consultant runs them with a customer's own data.

The customer's data is a folder of images with COCO labels of a class no demo model has
(``crate``; the pictures are synthetic shelves whose objects the customer calls crates). Each
notebook gets the previous one's result through its parameters' defaults only: 01 imports and
uploads the dataset, 02 fine-tunes a new model on it, 03 exports, compares and promotes it (the
model has no production version yet), 04 deploys the promoted model to a demo camera and 05
raises an alert on its class. Headless, quick, on one local stack of the test session's own."""

from __future__ import annotations

import json
from pathlib import Path

import papermill
import pytest

from kit.core.settings import load_settings
from kit.data import DetectionDataset
from kit.local import LocalStack
from kit.registry import ModelRegistry
from kit.synthetic import make_dataset

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
CLASS = "crate"


@pytest.fixture(scope="module")
def story_stack():
    stack = LocalStack(load_settings())
    stack.up()
    yield stack
    stack.down(snapshot=False)


def customer_folder(folder: Path) -> tuple[Path, Path]:
    """Images and a COCO json of class ``crate``, as a labelling tool exports them."""
    data_yaml = make_dataset(
        "shelf", folder / "render", n_images=30, seed=77, splits=(1.0, 0.0, 0.0)
    )
    rendered = DetectionDataset.from_yolo(data_yaml=data_yaml, split="train")
    relabelled = DetectionDataset(classes=[CLASS], items=rendered.items)
    labels = relabelled.as_coco(
        annotations_path=folder / "export" / "instances.json",
        images_dir=folder / "export" / "images",
    )
    return folder / "export" / "images", labels


def run(notebook: str, out_dir: Path, **parameters) -> str:
    """Execute one notebook with papermill; return its text outputs, joined."""
    out = out_dir / f"{notebook}.ipynb"
    papermill.execute_notebook(
        str(NOTEBOOKS / f"{notebook}.ipynb"), str(out),
        parameters={"target": "local", "quick": True, **parameters},
        cwd=str(out_dir), kernel_name="python3", progress_bar=False,
    )  # fmt: skip
    cells = json.loads(out.read_text())["cells"]
    return "\n".join(
        "".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/markdown", ""))
        for c in cells if c["cell_type"] == "code" for o in c.get("outputs", [])
    )  # fmt: skip


def test_customer_data_goes_from_labels_to_a_deployed_model_and_its_alert(story_stack, tmp_path):
    images_dir, labels = customer_folder(tmp_path / "customer")
    work = {"work_dir": str(tmp_path / "work"), "use_case": CLASS}

    imported = run("01_label_data", tmp_path, interactive=False, images_dir=str(images_dir),
                   labels=str(labels), labels_format="coco", **work)  # fmt: skip
    assert f"dataset {CLASS}:v1" in imported

    trained = run("02_train", tmp_path, **work)
    registry = ModelRegistry.from_settings(load_settings())
    trained_version = registry.resolve(f"{CLASS}:latest").version
    assert registry.get(CLASS, trained_version).dataset == f"datasets/{CLASS}/v1/"
    assert "fine-tuning the shipped shelf demo model's weights" in trained

    compared = run("03_compile", tmp_path, **work)
    promoted = registry.aliases(CLASS)["production"]
    assert promoted > trained_version
    assert f"{CLASS} has no production model yet: {CLASS}:{promoted} becomes production" in compared
    assert "held-out images of dataset crate:v1" in compared

    deployed = run("04_package_edge_app", tmp_path, cameras=["nb-demo-crate-cam"], **work)
    assert f"nb-demo-crate-cam runs {CLASS}:{promoted}" in deployed

    alerted = run("05_provision_backend", tmp_path, camera="nb-demo-crate", use_case=CLASS)
    assert "OPEN alert" in alerted and f"({CLASS}:{promoted})" in alerted
    assert "count_below" in alerted and "removed:" in alerted
