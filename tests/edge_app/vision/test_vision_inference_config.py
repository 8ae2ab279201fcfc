"""Typed inference settings: validated in device.yaml, handed to each backend, refused when the
machine lacks what they ask for."""

from __future__ import annotations

import logging
import re
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
import yaml
from onnx import TensorProto, helper, numpy_helper

from edge_app.config import DeviceConfig, DeviceConfigError, load_device_config
from edge_app.detectors import (
    AutoInferenceConfig,
    BackendUnavailableError,
    OnnxRuntimeConfig,
    OpenVinoConfig,
    inference_config,
    load_detector,
)
from edge_app.detectors.config import ONNXRUNTIME_PROVIDERS, OPENVINO_PRECISIONS
from edge_app.detectors.openvino_backend import check_device_available
from kit.package import device_config_writer
from kit.package.device import device_config

CLASSES = 3
IMGSZ = 32


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    """A 1x1-convolution "detector" with ultralytics metadata: (1, 4 + 3, 32 * 32) outputs."""
    weights = numpy_helper.from_array(
        np.random.default_rng(0).random((4 + CLASSES, 3, 1, 1), dtype=np.float32), "weights"
    )
    shape = numpy_helper.from_array(np.array([1, 4 + CLASSES, -1], np.int64), "shape")
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["images", "weights"], ["features"]),
            helper.make_node("Reshape", ["features", "shape"], ["output0"]),
        ],
        "tiny",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, IMGSZ, IMGSZ])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 4 + CLASSES, None])],
        [weights, shape],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    helper.set_model_props(
        model,
        {"names": "{0: 'a', 1: 'b', 2: 'c'}", "imgsz": f"[{IMGSZ}, {IMGSZ}]", "task": "detect"},
    )
    path = tmp_path_factory.mktemp("tiny-model") / "tiny.onnx"
    onnx.save(model, path)
    return path


@pytest.fixture(scope="module")
def openvino_core():
    ov = pytest.importorskip("openvino", reason="openvino is not installed")
    return ov.Core()


def a_device(**inference) -> dict:
    return {
        "device_id": "line-7",
        "cameras": [{"id": "dock", "source": "rtsp://cam/1"}],
        **inference,
    }


# -- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("inference", "message"),
    [
        ({"backend": "tensorrt"}, r"inference: backend must be one of \['auto', 'onnxruntime', 'openvino'\]"),
        ({"performance_hint": "fastest"}, r"inference\.auto\.performance_hint: Input should be 'throughput' or 'latency' \(got 'fastest'\)"),
        ({"threads": 0}, r"inference\.auto\.threads: Input should be greater than or equal to 1"),
        ({"backend": "openvino", "device": "TPU"}, r"inference\.openvino\.device: device must be CPU, GPU, NPU .*AUTO:GPU,CPU\) \(got 'TPU'\)"),
        ({"backend": "openvino", "device": "MULTI"}, r"inference\.openvino\.device: device must be"),
        ({"backend": "openvino", "device": "HETERO:GPU,-CPU"}, r"inference\.openvino\.device: device must be"),
        ({"backend": "openvino", "precision": "f64"}, r"inference\.openvino\.precision: Input should be 'f32', 'f16' or 'bf16'"),
        ({"backend": "openvino", "device": "GPU", "threads": 2}, r"inference\.openvino: threads sets CPU inference threads; device 'GPU' has its own"),
        ({"backend": "onnxruntime", "execution_providers": ["CUDAExecutionprovider"]}, r"unknown execution provider 'CUDAExecutionprovider'; did you mean 'CUDAExecutionProvider'\? ONNX Runtime knows \['CPUExecutionProvider'"),
        ({"backend": "onnxruntime", "execution_providers": []}, r"inference\.onnxruntime\.execution_providers: .*at least 1 item"),
        ({"backend": "onnxruntime", "execution_providers": ["CPUExecutionProvider"] * 2}, r"listed once; repeated: \['CPUExecutionProvider'\]"),
        ({"backend": "onnxruntime", "device": "GPU"}, r"inference\.onnxruntime\.device: unknown field; remove it"),
        ({"precision": "f16"}, r"inference\.auto\.precision: unknown field"),
    ],
)  # fmt: skip
def test_a_bad_inference_section_is_refused_naming_the_field_and_what_is_allowed(
    tmp_path, inference, message
):
    path = tmp_path / "device.yaml"
    path.write_text(yaml.safe_dump(a_device(inference=inference)))
    with pytest.raises(DeviceConfigError, match=message):
        load_device_config(path)


def test_each_backend_has_its_typed_section_and_auto_is_the_default():
    assert DeviceConfig.model_validate(a_device()).inference == AutoInferenceConfig()
    openvino = DeviceConfig.model_validate(
        a_device(inference={"backend": "openvino", "device": "gpu.1", "precision": "f16"})
    ).inference
    assert openvino == OpenVinoConfig(device="GPU.1", precision="f16")
    onnx_runtime = DeviceConfig.model_validate(
        a_device(
            inference={"backend": "onnxruntime", "execution_providers": ["CPUExecutionProvider"]}
        )
    ).inference
    assert isinstance(onnx_runtime, OnnxRuntimeConfig)
    assert OpenVinoConfig(device="AUTO:GPU,-CPU").device == "AUTO:GPU,-CPU"


def test_old_flat_inference_sections_still_load_as_the_typed_section():
    old = {"backend": "onnxruntime", "threads": 2, "performance_hint": "latency"}
    inference = DeviceConfig.model_validate(a_device(inference=old)).inference
    assert inference == OnnxRuntimeConfig(threads=2, performance_hint="latency")
    inference = DeviceConfig.model_validate(
        a_device(inference={"backend": "auto", "threads": None, "performance_hint": "throughput"})
    ).inference
    assert inference == AutoInferenceConfig()
    assert inference.for_backend("openvino") == OpenVinoConfig()


def test_the_known_execution_providers_are_onnxruntimes_own():
    assert set(ONNXRUNTIME_PROVIDERS) == set(onnxruntime.get_all_providers())


def test_keyword_settings_go_over_a_config_and_are_validated():
    base = OpenVinoConfig(device="CPU", precision="bf16")
    assert inference_config(base, precision="f32", threads=2) == OpenVinoConfig(
        precision="f32", threads=2
    )
    with pytest.raises(
        ValueError, match=r"inference\.backend: must be one of .* \(got 'tensorrt'\)"
    ):
        inference_config(backend="tensorrt")


# -- device.yaml round trip ------------------------------------------------------------------


def test_the_inference_section_survives_a_device_yaml_round_trip(tmp_path):
    written = device_config(
        "line-7",
        [{"id": "dock", "source": "rtsp://cam/1"}],
        inference={"backend": "openvino", "device": "gpu", "precision": "f16", "performance_hint": "latency"},
    )  # fmt: skip
    assert written["inference"] == {
        "backend": "openvino",
        "device": "GPU",
        "precision": "f16",
        "performance_hint": "latency",
    }
    path = tmp_path / "device.yaml"
    path.write_text(yaml.safe_dump(written))
    loaded = load_device_config(path)
    assert loaded.inference == OpenVinoConfig(
        device="GPU", precision="f16", performance_hint="latency"
    )
    again = tmp_path / "again.yaml"
    again.write_text(yaml.safe_dump(loaded.model_dump(mode="json")))
    assert load_device_config(again).inference == loaded.inference
    with pytest.raises(ValueError, match=r"inference\.onnxruntime\.execution_providers"):
        device_config("d", [{"id": "c", "source": "x"}], inference={"backend": "onnxruntime", "execution_providers": ["GPU"]})  # fmt: skip


def test_the_config_writer_keeps_the_bundles_inference_section_and_refuses_a_bad_one(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.setattr(sys, "path", list(sys.path))  # the writer puts the bundle on sys.path
    inference = {"backend": "onnxruntime", "threads": 2, "execution_providers": ["CPUExecutionProvider"]}  # fmt: skip
    (tmp_path / "device.yaml").write_text(yaml.safe_dump(a_device(inference=inference)))
    out = tmp_path / "work" / "device.json"
    argv = ["--out", str(out), "--bundle-root", str(tmp_path)]
    assert device_config_writer.main(argv, environ={"EDGE_THING_NAME": "core-7"}) == 0
    assert load_device_config(out).inference == OnnxRuntimeConfig(threads=2)

    bad = {"backend": "openvino", "device": "TPU"}
    (tmp_path / "device.yaml").write_text(yaml.safe_dump(a_device(inference=bad)))
    assert device_config_writer.main(argv, environ={}) == 2
    assert "inference.openvino.device: device must be CPU, GPU, NPU" in capsys.readouterr().err


# -- ONNX Runtime ----------------------------------------------------------------------------


def test_onnxruntime_runs_on_the_providers_and_threads_of_its_config(tiny_model):
    latency = load_detector(
        tiny_model,
        OnnxRuntimeConfig(
            execution_providers=("CPUExecutionProvider",),
            threads=2,
            performance_hint="latency",
            allow_spinning=True,
        ),
    )
    session = latency.backend.session
    assert session.get_providers() == ["CPUExecutionProvider"]
    assert session.get_session_options().intra_op_num_threads == 2
    assert (
        session.get_session_options().get_session_config_entry("session.intra_op.allow_spinning")
        == "1"
    )
    assert latency.max_in_flight == 1
    throughput = load_detector(tiny_model, backend="onnxruntime", threads=3)
    assert throughput.backend.session.get_session_options().intra_op_num_threads == 1
    assert throughput.max_in_flight == 3
    frame = np.zeros((48, 64, 3), np.uint8)
    np.testing.assert_array_equal(latency.detect(frame).xyxy, throughput.detect(frame).xyxy)
    throughput.backend.close()


def test_an_execution_provider_this_machine_lacks_is_refused_with_what_it_has(tiny_model):
    available = onnxruntime.get_available_providers()
    missing = next(p for p in ONNXRUNTIME_PROVIDERS if p not in available)
    with pytest.raises(BackendUnavailableError) as refused:
        load_detector(
            tiny_model,
            backend="onnxruntime",
            execution_providers=[missing, "CPUExecutionProvider"],
        )
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith(
        f"inference.execution_providers: ['{missing}'] not in this onnxruntime build"
    )
    assert message.endswith(f"available here: {available}")


# -- OpenVINO --------------------------------------------------------------------------------


def test_openvino_compiles_with_the_hint_threads_and_precision_of_its_config(
    tiny_model, openvino_core
):
    detector = load_detector(
        tiny_model, OpenVinoConfig(precision="f32", threads=1, performance_hint="latency")
    )
    compiled = detector.backend.compiled_model
    assert compiled.get_property("INFERENCE_PRECISION_HINT").to_string() == "f32"
    assert str(compiled.get_property("PERFORMANCE_HINT")) == "LATENCY"
    assert compiled.get_property("INFERENCE_NUM_THREADS") == 1
    assert detector.backend.precision == "f32" and detector.max_in_flight == 1
    throughput = load_detector(tiny_model, backend="openvino", threads=2)
    assert str(throughput.backend.compiled_model.get_property("PERFORMANCE_HINT")) == "THROUGHPUT"
    assert throughput.backend.compiled_model.get_property("INFERENCE_NUM_THREADS") == 2


@pytest.mark.parametrize("precision", OPENVINO_PRECISIONS)
def test_openvino_reports_the_precision_the_device_computes_in(
    tiny_model, openvino_core, precision, caplog
):
    with caplog.at_level(logging.WARNING, logger="edge_app.detectors.openvino_backend"):
        detector = load_detector(tiny_model, backend="openvino", precision=precision)
    compiled = detector.backend.compiled_model.get_property("INFERENCE_PRECISION_HINT")
    assert detector.backend.precision == compiled.to_string()
    if detector.backend.precision == precision:
        assert not caplog.records
    else:  # the CPU lacks it (f16 on most x86 CPUs): what it computes in instead is said
        assert f"computes tiny.onnx in {detector.backend.precision}: it has no {precision}" in (
            caplog.text
        )


def test_openvino_threads_reach_the_cpu_under_a_virtual_device(tiny_model, openvino_core):
    detector = load_detector(tiny_model, backend="openvino", device="AUTO:CPU", threads=1)
    assert detector.backend.compiled_model.get_property("EXECUTION_DEVICES") == ["CPU"]
    assert detector.max_in_flight == 1, "one CPU thread makes one throughput stream"


def test_an_openvino_device_this_machine_lacks_is_refused_with_what_it_has(
    tiny_model, openvino_core
):
    available = openvino_core.available_devices
    for device in ("GPU.7", "AUTO:GPU.7,CPU"):
        with pytest.raises(BackendUnavailableError) as refused:
            load_detector(tiny_model, backend="openvino", device=device)
        assert str(refused.value) == (
            "inference.device: OpenVINO device 'GPU.7' is not available on this machine; "
            f"available: {available}"
        )


@pytest.mark.parametrize(
    ("device", "available", "present"),
    [
        ("GPU", ["CPU", "GPU.0", "GPU.1"], True),
        ("GPU.1", ["CPU", "GPU.0", "GPU.1"], True),
        ("GPU.2", ["CPU", "GPU.0", "GPU.1"], False),
        ("GPU.0", ["CPU", "GPU"], True),
        ("GPU.1", ["CPU", "GPU"], False),
        ("NPU", ["CPU", "GPU"], False),
        ("AUTO", ["CPU"], True),
        ("AUTO:-GPU,CPU", ["CPU"], True),
        ("HETERO:GPU,CPU", ["CPU"], False),
    ],
)
def test_device_availability_follows_openvinos_device_names(device, available, present):
    if present:
        check_device_available(device, available)
    else:
        with pytest.raises(BackendUnavailableError, match=re.escape(f"available: {available}")):
            check_device_available(device, available)
