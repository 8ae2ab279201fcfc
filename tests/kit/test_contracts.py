"""The message contracts: round trips, JSON Schemas, and clear errors for bad input."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kit.core.contracts import (
    CONTRACTS,
    Alert,
    ContractError,
    ControlConfig,
    DetectionPayload,
    Heartbeat,
    ModelMetadata,
    json_schemas,
    parse,
    parse_edge_message,
)


def a_payload(**overrides) -> dict:
    payload = {
        "device_id": "demo-1",
        "camera_id": "shelf-1",
        "model": {"name": "shelf", "version": 3},
        "captured_at": "2026-11-26T10:00:00Z",
        "frame": {"width": 640, "height": 480},
        "detections": [
            {
                "class_name": "bottle",
                "class_id": 0,
                "confidence": 0.91,
                "box": {"x1": 10, "y1": 20, "x2": 60, "y2": 200},
                "track_id": 7,
            }
        ],
        "counts": {"bottle": 1},
        "zone_counts": {"shelf-top": {"bottle": 1}},
        "line_counts": {"door": {"in": 2, "out": 1}},
        "frame_key": "frames/demo-1/shelf-1/2026/11/26/20261126T100000000Z.jpg",
        "inference_ms": 7.5,
    }
    payload.update(overrides)
    return payload


def a_config() -> dict:
    return {
        "defaults": {"confidence": 0.3, "refresh_s": 5},
        "cameras": {
            "shelf-1": {
                "model": {"name": "shelf", "version": "production"},
                "zones": [{"name": "shelf-top", "polygon": [[0, 0], [1, 0], [1, 0.5]]}],
                "rules": [
                    {
                        "type": "count_below",
                        "class_name": "bottle",
                        "threshold": 3,
                        "zone": "shelf-top",
                    },
                    {"type": "camera_silent", "factor": 4},
                ],
            },
            "pond-1": {
                "lines": [{"name": "gate", "start": [0.5, 0], "end": [0.5, 1]}],
                "rules": [
                    {"type": "rising_trend", "class_name": "fish", "window": 10, "min_points": 5}
                ],
            },
        },
    }


def an_alert(**overrides) -> dict:
    alert = {
        "alert_id": "a-1",
        "camera_id": "shelf-1",
        "rule": "count_below",
        "rule_type": "count_below",
        "value": 0,
        "threshold": 1,
        "opened_at": "2026-11-26T10:00:00Z",
        "updated_at": "2026-11-26T10:00:00Z",
    }
    alert.update(overrides)
    return alert


def a_heartbeat() -> dict:
    return {
        "device_id": "demo-1",
        "app_version": "0.1.0",
        "uptime_s": 12.5,
        "cameras": {
            "shelf-1": {"state": "running", "fps": 14.8, "last_frame_at": "2026-11-26T10:00:00Z"}
        },
        "spool_depth": 3,
        "dropped": {"frames": 1, "payloads": 0},
    }


def a_model() -> dict:
    return {
        "name": "shelf",
        "version": 2,
        "classes": ["bottle"],
        "input_size": 320,
        "formats": {"onnx": {"file": "model.onnx", "sha256": "a" * 64, "size_bytes": 12345}},
        "metrics": {"mAP50": 0.95},
        "parent": {"name": "shelf", "version": 1},
        "dataset": "datasets/shelf/1/",
    }


def a_sample() -> dict:
    stem = "samples/demo-1/shelf-1/2026-11-26/20261126T100000000Z"
    return {
        "sample_id": "20261126T100000000Z",
        "device_id": "demo-1",
        "camera_id": "shelf-1",
        "captured_at": "2026-11-26T10:00:00Z",
        "model": {"name": "shelf", "version": 3},
        "reasons": ["uncertain"],
        "frame": {"width": 640, "height": 480},
        "classes": ["bottle"],
        "detections": [a_payload()["detections"][0]],
        "image_key": f"{stem}.jpg",
        "labels_key": f"{stem}.txt",
    }


@pytest.mark.parametrize(
    "key",
    [
        "samples/demo-2/shelf-1/2026-11-26/x.jpg",  # another device's
        "models/shelf/3/model.onnx",
        "samples/demo-1/shelf-1/../../demo-2/x.jpg",
    ],
)
def test_a_sample_points_only_at_its_own_cameras_samples(key):
    with pytest.raises(ContractError, match="must lie under samples/demo-1/shelf-1/"):
        parse(CONTRACTS["SampleRecord"], {**a_sample(), "image_key": key})


EXAMPLES = {
    "SampleRecord": a_sample,
    "DetectionPayload": a_payload,
    "Heartbeat": a_heartbeat,
    "ControlConfig": a_config,
    "Alert": an_alert,
    "ModelMetadata": a_model,
}


@pytest.mark.parametrize("name", sorted(CONTRACTS))
def test_round_trip_through_json_gives_the_same_message(name):
    message = parse(CONTRACTS[name], EXAMPLES[name]())
    again = parse(CONTRACTS[name], message.model_dump_json(by_alias=True))
    assert again == message


@pytest.mark.parametrize("name", sorted(CONTRACTS))
def test_json_schema_accepts_what_the_contract_writes(name):
    schema = json_schemas()[name]
    message = parse(CONTRACTS[name], EXAMPLES[name]())
    jsonschema.validate(json.loads(message.model_dump_json(by_alias=True)), schema)


def test_schemas_in_docs_match_the_contracts(repo_root):
    for name, schema in json_schemas().items():
        path = repo_root / "docs" / "schemas" / f"{name}.schema.json"
        assert path.is_file(), f"{path} is missing: run `kit schemas`"
        committed = json.loads(path.read_text())
        committed.pop("$schema"), committed.pop("$comment")
        assert committed == json.loads(json.dumps(schema)), f"{path} is stale: run `kit schemas`"


def test_timestamps_are_normalised_to_utc():
    payload = parse(DetectionPayload, a_payload(captured_at="2026-11-26T12:00:00+02:00"))
    assert payload.captured_at == datetime(2026, 11, 26, 10, tzinfo=UTC)


def test_naive_timestamp_is_rejected_with_a_clear_message():
    with pytest.raises(ContractError) as raised:
        parse(DetectionPayload, a_payload(captured_at="2026-11-26T10:00:00"))
    assert "DetectionPayload.captured_at" in str(raised.value)
    assert "timezone" in str(raised.value)


def test_error_names_field_value_and_what_is_allowed():
    bad = a_payload()
    bad["detections"][0]["confidence"] = 1.7
    bad["camera_id"] = "shelf 1"
    with pytest.raises(ContractError) as raised:
        parse(DetectionPayload, bad)
    text = str(raised.value)
    assert (
        "DetectionPayload.detections[0].confidence: Input should be less than or equal to 1 (got 1.7)"
        in text
    )
    assert "DetectionPayload.camera_id: must be 1-64 characters" in text and "'shelf 1'" in text
    fields = [p["field"] for p in raised.value.problems]
    assert fields == ["camera_id", "detections[0].confidence"]


def test_unknown_field_and_missing_field_are_reported():
    bad = a_payload(colour="red")
    del bad["device_id"]
    with pytest.raises(ContractError) as raised:
        parse(DetectionPayload, bad)
    problems = {p["field"]: p for p in raised.value.problems}
    assert problems["device_id"]["allowed"] == "required"
    assert "unknown field" in problems["colour"]["allowed"]


def test_box_outside_the_frame_is_rejected():
    bad = a_payload()
    bad["detections"][0]["box"]["x2"] = 700
    with pytest.raises(ContractError, match="outside the 640x480 frame"):
        parse(DetectionPayload, bad)


def test_newer_minor_schema_version_is_accepted_and_new_major_rejected():
    assert parse(DetectionPayload, a_payload(schema_version="1.7")).schema_version == "1.7"
    with pytest.raises(ContractError, match="accepts 1.x"):
        parse(DetectionPayload, a_payload(schema_version="2.0"))


def test_edge_message_dispatches_on_kind():
    assert isinstance(
        parse_edge_message(json.dumps({"kind": "detection", **a_payload()})), DetectionPayload
    )
    with pytest.raises(ContractError, match="needs the field 'kind'"):
        parse_edge_message(a_payload())
    assert isinstance(parse_edge_message({"kind": "heartbeat", **a_heartbeat()}), Heartbeat)
    with pytest.raises(ContractError, match="EdgeMessage"):
        parse_edge_message({"kind": "selfie"})
    with pytest.raises(ContractError):
        parse_edge_message(b"{not json")


def test_control_config_resolves_camera_overrides_on_defaults():
    config = parse(ControlConfig, a_config())
    shelf = config.for_camera("shelf-1")
    assert shelf.confidence == 0.3 and shelf.refresh_s == 5
    assert str(shelf.model) == "shelf:production"
    assert [r.type for r in shelf.rules] == ["count_below", "camera_silent"]
    assert config.for_camera("unknown-camera") == config.defaults


@pytest.mark.parametrize("refresh", [0, 3601, -5])
def test_refresh_rate_is_bounded(refresh):
    bad = a_config()
    bad["cameras"]["shelf-1"]["refresh_s"] = refresh
    with pytest.raises(ContractError, match=r"cameras\.shelf-1\.refresh_s"):
        parse(ControlConfig, bad)


def test_rule_referring_to_an_unknown_zone_is_rejected():
    bad = a_config()
    bad["cameras"]["shelf-1"]["rules"][0]["zone"] = "nowhere"
    with pytest.raises(ContractError, match="refers to zone 'nowhere'"):
        parse(ControlConfig, bad)


def test_unknown_rule_type_lists_the_allowed_ones():
    bad = a_config()
    bad["cameras"]["shelf-1"]["rules"][0]["type"] = "count_between"
    with pytest.raises(ContractError) as raised:
        parse(ControlConfig, bad)
    assert "count_below" in str(raised.value) and "ppe_violation" in str(raised.value)


def test_duplicate_rule_names_are_rejected():
    bad = a_config()
    bad["cameras"]["pond-1"]["rules"].append(bad["cameras"]["pond-1"]["rules"][0])
    with pytest.raises(ContractError, match="rules names must be unique"):
        parse(ControlConfig, bad)


def test_alert_state_needs_its_timestamps():
    with pytest.raises(ContractError, match="RESOLVED alert needs resolved_at"):
        parse(Alert, an_alert(state="RESOLVED"))
    resolved = parse(Alert, an_alert(state="RESOLVED", resolved_at="2026-11-26T10:05:00Z"))
    assert resolved.state == "RESOLVED"


def test_model_metadata_checks_classes_and_input_size():
    with pytest.raises(ContractError, match="repeated"):
        parse(ModelMetadata, {**a_model(), "classes": ["bottle", "bottle"]})
    with pytest.raises(ContractError, match="multiple of the stride"):
        parse(ModelMetadata, {**a_model(), "input_size": 300})
    with pytest.raises(ContractError, match="sha256"):
        parse(
            ModelMetadata,
            {**a_model(), "formats": {"onnx": {"file": "m", "sha256": "xyz", "size_bytes": 1}}},
        )


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(sorted(CONTRACTS)),
    field=st.data(),
    value=json_values,
)
def test_any_corrupted_field_is_rejected_or_accepted_but_never_crashes(name, field, value):
    """GIVEN a valid message with one field replaced by arbitrary JSON, the contract either accepts
    it (a valid value) or raises ContractError naming that field: nothing else escapes."""
    message = EXAMPLES[name]()
    key = field.draw(st.sampled_from(sorted(message)))
    message[key] = value
    try:
        parse(CONTRACTS[name], message)
    except ContractError as error:
        assert error.problems and all(p["field"] and p["allowed"] for p in error.problems)
        assert any(
            p["field"].split(".")[0].split("[")[0] in (key, "<root>") for p in error.problems
        ), error


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200) | st.text(max_size=200))
def test_garbage_bodies_raise_contract_error(body):
    with pytest.raises(ContractError):
        parse_edge_message(body)
