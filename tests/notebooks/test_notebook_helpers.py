"""What the notebooks lean on: paths from the project root, demo models that leave a customer's
aliases alone, promotion only when better, demo artefacts removed without touching others, the
aws target refused without the stack's outputs, a customer's own model registered once, and the
pictures notebook 3 and 5 draw."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from kit.compile import measure_export_speed
from kit.demo_models import demo_model_files, register_demo_models
from kit.notebook import (
    PROJECT_ROOT,
    NotebookStop,
    annotated_frame,
    detections_side_by_side,
    model_size_bytes,
    project_path,
    pytorch_speed,
    register_customer_model,
    remove_demo_artefacts,
    setup,
    speed_and_size_rows,
)
from kit.promote import compare_and_promote, compare_with_parent
from kit.registry import ModelRegistry
from kit.synthetic import make_dataset


@pytest.fixture(scope="module")
def heldout_yaml(tmp_path_factory):
    """Shelf scenes the demo model never saw; their val half is the held-out split."""
    folder = tmp_path_factory.mktemp("heldout")
    return make_dataset("shelf", folder, n_images=12, seed=31, splits=(0.5, 0.5, 0.0))


def test_relative_paths_start_at_the_project_root_whatever_the_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert project_path(".evk/notebooks") == PROJECT_ROOT / ".evk" / "notebooks"
    assert (PROJECT_ROOT / "Pulumi.yaml").is_file()
    assert project_path(tmp_path / "x") == tmp_path / "x"


def test_demo_models_never_move_an_alias_that_exists(backend_settings):
    registry = ModelRegistry.from_settings(backend_settings)
    customer = registry.register(
        "shelf", {"onnx": demo_model_files("fish")["onnx"]}, classes=["bottle"], input_size=320
    )
    registry.alias("shelf", "production", customer.version)

    registered = register_demo_models(backend_settings, names=["shelf", "fish"])
    again = register_demo_models(backend_settings, names=["shelf", "fish"])

    assert registry.aliases("shelf") == {"production": customer.version}
    assert registered["shelf"].version != customer.version
    assert registry.aliases("fish") == {"production": registered["fish"].version}
    assert {n: m.version for n, m in again.items()} == {n: m.version for n, m in registered.items()}
    assert registry.versions("shelf") == [customer.version, registered["shelf"].version]


def test_promotion_only_when_better_or_forced(backend_settings, heldout_yaml):
    registry = ModelRegistry.from_settings(backend_settings)
    production = register_demo_models(backend_settings, names=["shelf"])["shelf"]
    same = registry.register("shelf", demo_model_files("shelf"), classes=["bottle"], input_size=320)

    kept = compare_and_promote(
        f"shelf:{same.version}", heldout_yaml, registry=registry, speed_runs=2
    )
    assert not kept.promoted and "not better, not promoted" in kept.reason
    assert kept.candidate.metrics["mAP50"] == kept.current.metrics["mAP50"] > 0.5
    assert kept.candidate.median_ms > 0 and kept.candidate.size_bytes > 0
    assert registry.aliases("shelf")["production"] == production.version

    forced = compare_and_promote(
        f"shelf:{same.version}", heldout_yaml, registry=registry, force=True, speed_runs=2
    )
    assert forced.promoted and forced.previous_version == production.version
    assert registry.aliases("shelf")["production"] == same.version


def test_a_model_without_production_gets_it_and_other_classes_need_force(
    backend_settings, heldout_yaml
):
    registry = ModelRegistry.from_settings(backend_settings)
    first = registry.register(
        "crate", demo_model_files("shelf"), classes=["bottle"], input_size=320
    )
    decision = compare_and_promote(f"crate:{first.version}", heldout_yaml, registry=registry)
    assert decision.promoted and decision.current is None
    assert registry.aliases("crate") == {"production": first.version}

    other = registry.register("crate", demo_model_files("fish"), classes=["fish"], input_size=320)
    refused = compare_and_promote(f"crate:{other.version}", heldout_yaml, registry=registry)
    assert not refused.promoted and "not comparable" in refused.reason
    assert registry.aliases("crate") == {"production": first.version}


def test_registration_is_refused_when_the_new_weights_are_worse_than_their_parent(
    backend_settings, heldout_yaml
):
    parent = register_demo_models(backend_settings, names=["shelf"])["shelf"]
    ruined = demo_model_files("fish")["pytorch"]  # finds no bottle: a run that wrecked the model

    refused = compare_with_parent(
        ruined, f"shelf:{parent.version}", heldout_yaml, imgsz=320, settings=backend_settings
    )
    assert not refused.allowed and "worse, not registered" in refused.reason
    assert refused.parent_metrics["mAP50"] > 0.5 > refused.new_metrics["mAP50"]

    forced = compare_with_parent(
        ruined,
        f"shelf:{parent.version}",
        heldout_yaml,
        imgsz=320,
        force=True,
        settings=backend_settings,
    )
    assert forced.allowed and "because forced" in forced.reason


def test_only_demo_artefacts_are_removed(backend_settings):
    dynamodb, names = backend_settings.client("dynamodb"), backend_settings.resources
    for device_id in ("nb-demo-device", "customer-gateway"):
        dynamodb.put_item(TableName=names.devices_table, Item={"device_id": {"S": device_id}})
    dynamodb.put_item(TableName=names.cameras_table, Item={"camera_id": {"S": "nb-demo-cam"}})

    with pytest.raises(ValueError, match="customer-gateway"):
        remove_demo_artefacts(backend_settings, devices=["customer-gateway"])
    removed = remove_demo_artefacts(
        backend_settings, devices=["nb-demo-device"], cameras=["nb-demo-cam"]
    )

    assert removed["devices"] == 1 and removed["cameras"] == 1
    left = [i["device_id"]["S"] for i in dynamodb.scan(TableName=names.devices_table)["Items"]]
    assert left == ["customer-gateway"]
    assert not dynamodb.scan(TableName=names.cameras_table)["Items"]


def test_aws_without_the_stacks_outputs_stops_with_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("EVK_CONFIG", str(tmp_path / "evk.yaml"))
    (tmp_path / "evk.yaml").write_text("region: eu-west-1\n")

    with pytest.raises(NotebookStop) as stopped:
        setup("aws")

    message = str(stopped.value)
    assert message.endswith("run 05 / `kit aws outputs` first")
    assert "api_url, cognito_user_pool_id, cognito_client_id" in message
    assert stopped.value._render_traceback_() == [message]


def test_aws_with_the_stacks_outputs_goes_on(tmp_path, monkeypatch):
    monkeypatch.setenv("EVK_CONFIG", str(tmp_path / "evk.yaml"))
    (tmp_path / "evk.yaml").write_text(
        "api_url: https://abc.execute-api.eu-west-1.amazonaws.com/\n"
        "cognito_user_pool_id: eu-west-1_Abc\ncognito_client_id: client\n"
        "resources: {bucket: customer-bucket}\n"
    )
    assert setup("aws").resources.bucket == "customer-bucket"


def test_a_customers_model_file_is_registered_once_and_moves_no_alias(backend_settings):
    registry = ModelRegistry.from_settings(backend_settings)
    production = register_demo_models(backend_settings, names=["shelf"])["shelf"]
    weights = demo_model_files("fish")["pytorch"]

    first = register_customer_model(backend_settings, "shelf", weights)
    again = register_customer_model(backend_settings, "shelf", weights)

    assert first == again == f"shelf:{production.version + 1}"
    assert registry.get(first).classes == ["fish"] and "pytorch" in registry.get(first).formats
    assert registry.aliases("shelf") == {"production": production.version}
    with pytest.raises(ValueError, match="not ultralytics PyTorch weights"):
        register_customer_model(backend_settings, "shelf", demo_model_files("fish")["onnx"])


@pytest.fixture(scope="module")
def shelf_frame(heldout_yaml):
    from kit.promote import first_val_image

    return first_val_image(heldout_yaml)


def test_pytorch_and_the_export_are_drawn_on_the_same_frame(shelf_frame):
    files = demo_model_files("shelf")
    picture = detections_side_by_side(
        files["pytorch"], {"onnx": files["onnx"]}, shelf_frame, imgsz=320, panel_width=300
    )
    assert picture.shape[1] == 2 * 300 + 6
    pytorch, onnx = picture[:, :300], picture[:, 306:]
    plain = cv2.resize(shelf_frame, (300, pytorch.shape[0] - 28))
    assert np.abs(pytorch[28:].astype(int) - plain).max() > 100, "boxes are drawn"
    assert np.abs(pytorch[28:].astype(int) - onnx[28:]).mean() < 2, "the same boxes"


def test_the_speed_table_starts_with_the_pytorch_baseline(shelf_frame):
    files = demo_model_files("shelf")
    speeds = [
        pytorch_speed(files["pytorch"], shelf_frame, imgsz=320, runs=2),
        *measure_export_speed({"onnx": files["onnx"]}, shelf_frame, runs=2),
    ]
    rows = speed_and_size_rows(speeds)
    assert [row["format"] for row in rows] == ["pytorch", "onnx"]
    assert rows[0]["speed-up"] == "1.0x" and rows[0]["size vs PyTorch"] == "100%"
    assert rows[0]["objects"] == rows[1]["objects"] > 0
    assert rows[1]["size MB"] == round(model_size_bytes(files["onnx"]) / 1e6, 1) > 0


def test_the_alert_frame_shows_what_its_count_says(shelf_frame):
    onnx = demo_model_files("shelf")["onnx"]
    scene, bottles = annotated_frame(onnx, shelf_frame, class_name="bottle")
    assert bottles > 0 and scene.shape == shelf_frame.shape
    assert not np.array_equal(scene, shelf_frame)
    # an empty grey wall: nothing to find, nothing drawn (the fish model on a shelf scene may
    # well take a bottle for a fish)
    wall = np.full_like(shelf_frame, 127)
    unchanged, none = annotated_frame(onnx, wall, class_name="bottle")
    assert none == 0 and np.array_equal(unchanged, wall)
