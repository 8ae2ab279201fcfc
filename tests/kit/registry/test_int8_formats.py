"""INT8 models are added to a registered version as its ``onnx_int8`` / ``openvino_int8`` format,
only when they pass the accuracy gate (issue 19); ``kit models quantize`` does it from the CLI."""

from __future__ import annotations

import pytest

from kit.cli import build_parser, run_command
from kit.compile import Int8Refused
from kit.compile.quantize import quantize_registered
from kit.registry import ModelRegistry, RegistryConflictError
from tests.kit.ml.conftest import IMGSZ


@pytest.fixture
def registry(backend_settings) -> ModelRegistry:
    return ModelRegistry.from_settings(backend_settings)


@pytest.fixture
def shapes(registry, customer_model):
    """``shapes:1`` with its weights and ONNX export, as training registers it."""
    return registry.register(
        "shapes",
        {"pytorch": customer_model["pytorch"], "onnx": customer_model["onnx"]},
        classes=customer_model["classes"],
        input_size=IMGSZ,
    )


def kit(settings, *argv: str) -> int:
    return run_command(build_parser().parse_args(list(argv)), settings)


@pytest.mark.parametrize(
    ("backend", "fmt", "file"),
    [
        ("onnxruntime", "onnx_int8", "model_int8.onnx"),
        ("openvino", "openvino_int8", "model_int8_openvino_model.tar"),
    ],
)
def test_an_accepted_int8_model_is_added_to_its_version_and_downloads_verified(
    registry, shapes, shapes_data, backend, fmt, file, tmp_path
):
    accepted, metadata = quantize_registered(
        "shapes:1", backend=backend, data=shapes_data, max_drop=1.0, registry=registry
    )

    stored = registry.get("shapes:1")
    assert stored == metadata and stored.version == 1 and registry.versions("shapes") == [1]
    assert set(stored.formats) == {"pytorch", "onnx", fmt}
    assert stored.formats[fmt].file == file and stored.formats[fmt].precision == "int8"
    assert stored.formats["onnx"] == shapes.formats["onnx"], "the version's files stay"
    assert stored.metrics[f"{fmt}/mAP50_drop"] == pytest.approx(accepted.map50_drop)
    local = registry.download("shapes:1", fmt, cache_dir=tmp_path)
    if backend == "openvino":
        assert local.is_dir() and len(list(local.glob("*.xml"))) == 1
    else:
        assert local.name == "model_int8.onnx" and local.stat().st_size > 0

    with pytest.raises(RegistryConflictError, match=f"has a '{fmt}' file already"):
        registry.add_format("shapes:1", fmt, accepted.report.candidate)


def test_a_refused_int8_model_adds_nothing(registry, shapes, shapes_data):
    with pytest.raises(Int8Refused, match=r"refused: mAP50 .* a drop of"):
        quantize_registered(
            "shapes:1", backend="onnxruntime", data=shapes_data, max_drop=-1.0, registry=registry
        )

    assert set(registry.get("shapes:1").formats) == {"pytorch", "onnx"}


def test_kit_models_quantize_adds_the_format_or_says_in_one_line_why_not(
    backend_settings, registry, shapes, shapes_data, capsys
):
    """The real gate (mAP50 drop at most 0.01) on a one-epoch model: either outcome is the
    CLI's to report, with the measured numbers."""
    code = kit(
        backend_settings,
        "models",
        "quantize",
        "shapes:1",
        "--backend",
        "onnxruntime",
        "--data",
        str(shapes_data),
    )

    out, err = capsys.readouterr()
    formats = set(registry.get("shapes:1").formats)
    if code == 0:
        assert out.startswith("shapes:1: added onnx_int8 (mAP50 ") and "a drop of" in out
        assert formats == {"pytorch", "onnx", "onnx_int8"}
    else:
        assert code == 2 and err.count("\n") == 1
        assert err.startswith("kit: error: INT8 model_int8.onnx refused: mAP50 ")
        assert "a drop of" in err and formats == {"pytorch", "onnx"}


def test_kit_models_quantize_refuses_what_it_cannot_do_in_one_line(
    backend_settings, registry, customer_model, capsys
):
    registry.register(
        "onnx-only", {"onnx": customer_model["onnx"]}, classes=customer_model["classes"],
        input_size=IMGSZ,
    )  # fmt: skip

    assert kit(backend_settings, "models", "quantize", "onnx-only:1", "--backend", "openvino") == 2
    assert "onnx-only:1 has no pytorch weights to quantize" in capsys.readouterr().err

    assert kit(backend_settings, "models", "quantize", "onnx-only:1") == 2
    assert "needs a model version (name:version) and --backend" in capsys.readouterr().err
