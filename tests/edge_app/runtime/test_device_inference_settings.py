"""A device's `inference:` settings (device.yaml) reach the detectors its cameras load."""

from __future__ import annotations

import pytest

from edge_app.runtime import DeviceServices
from kit.core.contracts import ModelRef


@pytest.mark.parametrize(
    ("inference", "expected"),
    [
        (
            {"backend": "openvino", "precision": "f32", "performance_hint": "latency"},
            {"name": "openvino", "precision": "f32", "max_in_flight": 1},
        ),
        (
            {"backend": "onnxruntime", "threads": 1, "performance_hint": "latency"},
            {"name": "onnxruntime", "max_in_flight": 1},
        ),
    ],
    ids=["openvino", "onnxruntime"],
)
def test_the_device_config_s_inference_settings_reach_the_loaded_detector(
    make_device_config, backend, inference, expected
):
    config = make_device_config(inference=inference)
    services = DeviceServices.from_config(config, settings=backend)
    try:
        resolved, detector = services.models.load(ModelRef(name="shapes", version=1))
    finally:
        services.close()

    assert resolved == ModelRef(name="shapes", version=1)
    assert detector.backend.name == expected["name"]
    assert detector.max_in_flight == expected["max_in_flight"]
    if "precision" in expected:
        assert detector.backend.precision == expected["precision"]
    assert detector.backend.config.performance_hint == "latency"
