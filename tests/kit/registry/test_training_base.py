"""Which weights training starts from: the pretrained checkpoint when available, never a silent
download."""

from __future__ import annotations

import json
import shutil

import pytest

from kit.core.settings import load_settings
from kit.train import (
    PRETRAINED_BASE,
    SCRATCH_BASE,
    DownloadsDisabledError,
    build_training_job_request,
    resolve_base,
)


@pytest.fixture
def offline(tmp_path):
    """Settings with their own state dir and downloads off (the default)."""
    return load_settings(state_dir=tmp_path / "state")


def test_downloads_are_off_by_default_and_an_env_variable_turns_them_on(tmp_path):
    assert load_settings().allow_downloads is False
    on = load_settings(environ={"EVK_ALLOW_DOWNLOADS": "true", "EVK_STATE_DIR": str(tmp_path)})
    assert on.allow_downloads is True


def test_default_base_is_scratch_offline_and_the_checkpoint_once_it_is_here(
    offline, customer_model
):
    assert PRETRAINED_BASE == "yolo11n.pt"
    assert resolve_base(settings=offline) == (SCRATCH_BASE, None)

    placed = offline.state_dir / "weights" / PRETRAINED_BASE
    placed.parent.mkdir(parents=True)
    shutil.copyfile(customer_model["pytorch"], placed)

    assert resolve_base(settings=offline) == (str(placed.resolve()), None)
    assert resolve_base(PRETRAINED_BASE, settings=offline) == (str(placed.resolve()), None)


def test_a_hub_name_while_downloads_are_off_is_one_line_naming_the_setting(offline):
    with pytest.raises(DownloadsDisabledError) as raised:
        resolve_base("yolo11s.pt", settings=offline)

    message = str(raised.value)
    assert "\n" not in message
    assert "allow_downloads: true" in message and "EVK_ALLOW_DOWNLOADS=true" in message
    assert str(offline.state_dir / "weights" / "yolo11s.pt") in message
    assert not (offline.state_dir / "weights" / "yolo11s.pt").exists()


def test_a_missing_pt_that_is_no_detection_checkpoint_name_is_not_found(offline, tmp_path):
    for base in ("yolo11n-seg.pt", str(tmp_path / "yolo11n.pt")):
        with pytest.raises(FileNotFoundError, match="not an ultralytics detection checkpoint"):
            resolve_base(base, settings=offline)


def test_cli_train_with_a_hub_name_offline_is_a_one_line_error(offline, shapes_data):
    from tests.kit.registry.test_register_model_file import kit

    env = {"EVK_STATE_DIR": str(offline.state_dir)}
    result = kit("train", "--data", str(shapes_data), "--base", "yolo11n.pt", env=env)

    assert result.returncode == 2 and "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()[-1:]
    assert line.startswith("kit: error: base 'yolo11n.pt'") and "EVK_ALLOW_DOWNLOADS" in line


def test_sagemaker_jobs_fine_tune_the_pretrained_checkpoint_by_default():
    request = build_training_job_request(
        job_name="kit-train-shapes",
        role_arn="arn:aws:iam::123456789012:role/r",
        bucket="b",
        region="eu-west-1",
        dataset="shapes/v1",
        source_uri="s3://b/src.tar.gz",
    )

    assert json.loads(request["HyperParameters"]["model"]) == PRETRAINED_BASE
