"""`kit models register best.pt --export onnx --check DATA` keeps what `kit train --register`
records: the run's validation metrics, its parent and dataset, plus the mAP50s the parity check
measured."""

from __future__ import annotations

import shutil

import pytest

from kit.cli import build_parser, run_command
from kit.registry import ModelRegistry, register_model_file, training_run_of


@pytest.fixture
def registry(backend_settings, tmp_path) -> ModelRegistry:
    return ModelRegistry.from_settings(backend_settings, cache_dir=tmp_path / "cache")


def test_a_run_s_best_pt_keeps_its_metrics_and_the_parity_check_adds_its_map50s(
    trained, shapes_dataset, registry
):
    meta = register_model_file(
        "shapes", trained.weights, export=["onnx"], check=shapes_dataset, registry=registry
    )

    history = {k: v for k, v in meta.metrics.items() if k not in ("pytorch/mAP50", "onnx/mAP50")}
    assert history == pytest.approx(trained.metrics)
    assert {"mAP50", "mAP50-95", "precision", "recall"} <= set(history)
    assert abs(meta.metrics["onnx/mAP50"] - meta.metrics["pytorch/mAP50"]) <= 0.02
    assert meta.framework == trained.framework and meta.parent is None and meta.dataset is None


def test_weights_the_run_does_not_name_have_no_history(trained, tmp_path):
    copied = shutil.copyfile(trained.weights, tmp_path / "best.pt")

    assert training_run_of(trained.weights) == trained
    assert training_run_of(copied) is None
    assert training_run_of(trained.weights.with_name("last.pt")) is None  # not the run's best


def test_cli_records_parent_and_dataset_and_refuses_unknown_ones_in_one_line(
    trained, shapes_dataset, backend_settings, registry, tmp_path, capsys
):
    from kit.data.upload import upload_dataset

    base = tmp_path / "base.onnx"
    base.write_bytes(b"a parent model's bytes")
    registry.register("base", {"onnx": base}, classes=["square", "disc"], input_size=64)
    registry.alias("base", "production", 1)
    upload_dataset(
        shapes_dataset.parent,
        s3_client=backend_settings.client("s3"),
        bucket=backend_settings.resources.bucket,
        name="shapes",
    )

    def kit(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = run_command(build_parser().parse_args(list(argv)), backend_settings)
        return (code, *capsys.readouterr())

    code, out, err = kit(
        "models", "register", str(trained.weights), "--name", "shapes", "--export", "onnx",
        "--check", "shapes:v1", "--parent", "base:production", "--dataset", "shapes",
    )  # fmt: skip

    assert code == 0, err
    assert "parent: base:1" in out and "dataset: datasets/shapes/v1/" in out
    assert f"mAP50 {trained.metrics['mAP50']:.3f}" in out
    meta = registry.get("shapes:1")
    assert (str(meta.parent), meta.dataset) == ("base:1", "datasets/shapes/v1/")
    assert "onnx/mAP50" in meta.metrics
    for option, value, expected in (
        ("--dataset", "shapes:v7", "dataset shapes:v7 is not in s3://"),
        ("--parent", "nosuch:1", "no model named 'nosuch'"),
    ):
        code, out, err = kit(
            "models", "register", str(trained.weights), "--name", "shapes", option, value
        )
        assert code == 2 and err.startswith("kit: error:") and expected in err, err
        assert len(err.strip().splitlines()) == 1
    assert registry.versions("shapes") == [1]
