"""`kit train --data name:v<n>` trains on an uploaded dataset version (``name``: the newest) and
records it on the registered model; a version that is not there is one error line."""

from __future__ import annotations

import pytest

from kit.cli import build_parser, run_command
from kit.data.fetch import local_dataset
from kit.data.upload import upload_dataset
from kit.registry import ModelRegistry
from tests.kit.ml.conftest import IMGSZ, SHAPE_CLASSES, make_shapes_dataset


@pytest.fixture
def uploaded(backend_settings, tmp_path):
    """Two versions of dataset ``shapes`` (the second one other images)."""
    s3, bucket = backend_settings.client("s3"), backend_settings.resources.bucket
    for seed in (0, 1):
        folder = tmp_path / f"shapes-{seed}"
        upload_dataset(
            make_shapes_dataset(folder, n_train=8, n_val=4, seed=seed, relative=True).parent,
            s3_client=s3,
            bucket=bucket,
            name="shapes",
        )
    return backend_settings


def test_the_data_argument_is_a_local_path_or_an_uploaded_version(uploaded, tmp_path):
    local = make_shapes_dataset(tmp_path / "local", n_train=2, n_val=1)

    assert local_dataset(local, settings=uploaded) == (local, None)
    newest = local_dataset("shapes", settings=uploaded, out_dir=tmp_path / "down")
    first = local_dataset("shapes:v1", settings=uploaded, out_dir=tmp_path / "down")
    assert newest.dataset == "datasets/shapes/v2/" and first.dataset == "datasets/shapes/v1/"
    assert newest.data_yaml == tmp_path / "down" / "shapes" / "v2" / "data.yaml"
    assert len(list((tmp_path / "down" / "shapes" / "v1" / "images" / "train").iterdir())) == 8
    with pytest.raises(LookupError, match=r"shapes:v3 .*its versions: v1, v2"):
        local_dataset("shapes:v3", settings=uploaded)
    with pytest.raises(FileNotFoundError, match="no data.yaml or dataset folder at nope/data"):
        local_dataset("nope/data.yaml", settings=uploaded)


def test_kit_train_on_an_uploaded_version_registers_the_dataset_with_the_model(uploaded, capsys):
    def kit(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = run_command(build_parser().parse_args(list(argv)), uploaded)
        return (code, *capsys.readouterr())

    code, out, err = kit(
        "train", "--data", "shapes:v1", "--base", "yolov8n.yaml", "--epochs", "1",
        "--imgsz", str(IMGSZ), "--batch", "8", "--register", "shapes",
    )  # fmt: skip

    assert code == 0, err
    assert "dataset datasets/shapes/v1/ -> " in out and "registered shapes:1" in out
    meta = ModelRegistry.from_settings(uploaded).get("shapes:1")
    assert meta.dataset == "datasets/shapes/v1/" and meta.classes == SHAPE_CLASSES
    code, out, err = kit("train", "--data", "shapes:v9", "--epochs", "1")
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert err.startswith("kit: error: dataset shapes:v9 is not in s3://") and "v1, v2" in err
