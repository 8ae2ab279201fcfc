"""The contracts refuse what would poison the backend: non-finite and out-of-range numbers,
booleans and text posing as numbers, control characters, object keys outside the sending
camera's prefix, and device timestamps dated in the future (issue 14)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from kit.core.contracts import (
    CONTRACTS,
    INTEGER_MAX,
    MAX_CLOCK_SKEW_S,
    ContractError,
    DetectionPayload,
    Heartbeat,
    camera_object_key_problem,
    parse,
    parse_edge_message,
)

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)


def a_payload(**overrides) -> dict:
    payload = {
        "kind": "detection",
        "device_id": "demo-1",
        "camera_id": "shelf-1",
        "model": {"name": "shelf", "version": 3},
        "captured_at": "2026-11-26T10:00:00Z",
        "frame": {"width": 640, "height": 480},
        "detections": [
            {
                "class_name": "bottle",
                "class_id": 0,
                "confidence": 0.9,
                "box": {"x1": 10, "y1": 20, "x2": 60, "y2": 200},
            }
        ],
        "counts": {"bottle": 1},
        "frame_key": "frames/demo-1/shelf-1/2026/11/26/20261126T100000000Z.jpg",
        "inference_ms": 7.5,
    }
    payload.update(overrides)
    return payload


def a_heartbeat(**overrides) -> dict:
    heartbeat = {
        "kind": "heartbeat",
        "device_id": "demo-1",
        "app_version": "0.1.0",
        "sent_at": "2026-11-26T10:00:00Z",
        "uptime_s": 12.5,
        "cameras": {"shelf-1": {"state": "running", "fps": 14.8}},
    }
    heartbeat.update(overrides)
    return heartbeat


def a_config() -> dict:
    return {
        "defaults": {"confidence": 0.3, "refresh_s": 5},
        "cameras": {
            "shelf-1": {
                "zones": [{"name": "top", "polygon": [[0, 0], [1, 0], [1, 0.5]]}],
                "rules": [
                    {"type": "count_below", "class_name": "bottle", "threshold": 3},
                    {"type": "rising_trend", "class_name": "fish", "min_slope_per_min": 1.5},
                    {"type": "ppe_violation", "head_fraction": 0.3},
                    {"type": "camera_silent", "factor": 4},
                ],
            }
        },
    }


def an_alert() -> dict:
    return {
        "alert_id": "a-1",
        "camera_id": "shelf-1",
        "rule": "count_below",
        "rule_type": "count_below",
        "value": 0.5,
        "threshold": 1.5,
        "opened_at": "2026-11-26T10:00:00Z",
        "updated_at": "2026-11-26T10:00:00Z",
    }


def a_model() -> dict:
    return {"name": "shelf", "version": 2, "classes": ["bottle"], "input_size": 320, "metrics": {}}


FLOAT_FIELDS = [  # (contract, example, path to a float field, the field as a problem names it)
    ("DetectionPayload", a_payload, ["detections", 0, "confidence"], "detections[0].confidence"),
    ("DetectionPayload", a_payload, ["detections", 0, "box", "x1"], "detections[0].box.x1"),
    ("DetectionPayload", a_payload, ["inference_ms"], "inference_ms"),
    ("Heartbeat", a_heartbeat, ["uptime_s"], "uptime_s"),
    ("Heartbeat", a_heartbeat, ["cameras", "shelf-1", "fps"], "cameras.shelf-1.fps"),
    ("ControlConfig", a_config, ["defaults", "confidence"], "defaults.confidence"),
    (
        "ControlConfig",
        a_config,
        ["cameras", "shelf-1", "rules", 1, "min_slope_per_min"],
        "cameras.shelf-1.rules[1].rising_trend.min_slope_per_min",
    ),
    (
        "ControlConfig",
        a_config,
        ["cameras", "shelf-1", "rules", 2, "head_fraction"],
        "cameras.shelf-1.rules[2].ppe_violation.head_fraction",
    ),
    (
        "ControlConfig",
        a_config,
        ["cameras", "shelf-1", "rules", 3, "factor"],
        "cameras.shelf-1.rules[3].camera_silent.factor",
    ),
    (
        "ControlConfig",
        a_config,
        ["cameras", "shelf-1", "zones", 0, "polygon", 1, 0],
        "cameras.shelf-1.zones[0].polygon[1][0]",
    ),
    ("Alert", an_alert, ["value"], "value"),
    ("Alert", an_alert, ["threshold"], "threshold"),
    ("ModelMetadata", a_model, ["metrics", "mAP50"], "metrics.mAP50"),
]
NON_FINITE_JSON = ["Infinity", "-Infinity", "NaN", "1e309", "-1e309"]
MARK = "__the_value_under_test__"


def with_literal(example: dict, path: list, literal: str) -> str:
    """``example`` as JSON text with the raw JSON ``literal`` at ``path``."""
    node = example
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = MARK
    return json.dumps(example).replace(f'"{MARK}"', literal)


def fields(error: ContractError) -> list[str]:
    return [p["field"] for p in error.problems]


@pytest.mark.parametrize("literal", NON_FINITE_JSON)
@pytest.mark.parametrize(("name", "example", "path", "field"), FLOAT_FIELDS)
def test_non_finite_numbers_are_refused_in_every_float_field_naming_it(
    name, example, path, field, literal
):
    """GIVEN a valid message with Infinity, -Infinity, NaN or 1e309 (which overflows to infinity)
    in one float field, as JSON text and as parsed Python data
    THEN the contract refuses it with a ContractError naming that field."""
    text = with_literal(example(), path, literal)
    for data in (text, json.loads(text)):
        with pytest.raises(ContractError) as raised:
            parse(CONTRACTS[name], data)
        assert field in fields(raised.value), raised.value
        assert "finite number" in str(raised.value)


@pytest.mark.parametrize(
    ("example", "path", "value", "allowed"),
    [
        (a_payload, ["counts", "bottle"], True, "not the boolean true"),
        (a_payload, ["counts", "bottle"], "5", "not the text '5'"),
        (a_payload, ["frame", "width"], "640", "not the text '640'"),
        (a_payload, ["detections", 0, "confidence"], False, "not the boolean false"),
        (a_payload, ["detections", 0, "confidence"], "0.9", "not the text '0.9'"),
        (a_payload, ["model", "version"], True, "not the boolean true"),
        (a_payload, ["captured_at"], 1764151200, "not the number 1764151200"),
        (a_heartbeat, ["uptime_s"], True, "not the boolean true"),
        (a_heartbeat, ["sent_at"], 1764151200.5, "not the number"),
    ],
)
def test_booleans_text_and_numbers_do_not_pass_for_one_another(example, path, value, allowed):
    message = example()
    node = message
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value

    with pytest.raises(ContractError) as raised:
        parse_edge_message(json.dumps(message))

    assert allowed in str(raised.value)


def test_config_numbers_are_strict_too():
    for field, value in (("refresh_s", True), ("refresh_s", "5"), ("confidence", "0.5")):
        config = {"defaults": {field: value}}
        with pytest.raises(ContractError) as raised:
            parse(CONTRACTS["ControlConfig"], config)
        assert fields(raised.value) == [f"defaults.{field}"]
    rule = {"type": "count_below", "class_name": "bottle", "threshold": 3, "enabled": "yes"}
    with pytest.raises(ContractError, match="valid boolean"):
        parse(CONTRACTS["ControlConfig"], {"defaults": {"rules": [rule]}})


def test_a_whole_float_is_an_integer_and_an_integer_is_a_float():
    """What JSON writers send for numbers keeps working: 5.0 where an integer is wanted (a
    JavaScript or pandas writer), 5 where a float is wanted."""
    config = parse(CONTRACTS["ControlConfig"], {"defaults": {"refresh_s": 5.0, "confidence": 1}})
    assert config.defaults.refresh_s == 5 and isinstance(config.defaults.refresh_s, int)
    assert config.defaults.confidence == 1.0
    with pytest.raises(ContractError, match="fractional part"):
        parse(CONTRACTS["ControlConfig"], {"defaults": {"refresh_s": 5.5}})


def test_integers_are_bounded_so_every_reader_and_dynamodb_hold_them():
    assert parse(DetectionPayload, a_payload(counts={"bottle": INTEGER_MAX})).counts == {
        "bottle": INTEGER_MAX
    }
    for huge in (INTEGER_MAX + 1, 10**30, 10**400):
        with pytest.raises(ContractError) as raised:
            parse(DetectionPayload, a_payload(counts={"bottle": huge}))
        assert fields(raised.value) == ["counts.bottle"]
    rule = {"type": "count_below", "class_name": "bottle", "threshold": 10**400}
    with pytest.raises(ContractError) as raised:
        parse(CONTRACTS["ControlConfig"], {"defaults": {"rules": [rule]}})
    assert fields(raised.value) == ["defaults.rules[0].count_below.threshold"]
    assert "an integer of" in str(raised.value)  # no 400-digit value in the message


@pytest.mark.parametrize("slope", [1e-300, 0, 1e300])
def test_a_trend_threshold_stays_within_what_an_alert_record_can_store(slope):
    rule = {"type": "rising_trend", "class_name": "fish", "min_slope_per_min": slope}
    with pytest.raises(ContractError) as raised:
        parse(CONTRACTS["ControlConfig"], {"defaults": {"rules": [rule]}})
    assert fields(raised.value) == ["defaults.rules[0].rising_trend.min_slope_per_min"]


@pytest.mark.parametrize(
    "name", ["bot\ntle", "bottle\x00", "\x07", "bot\ttle", "bottle\x7f", "a\x85"]
)
def test_control_characters_are_refused_in_class_names(name):
    for data in (
        a_payload(counts={name: 1}),
        a_payload(detections=[{**a_payload()["detections"][0], "class_name": name}]),
    ):
        with pytest.raises(ContractError, match="control character"):
            parse_edge_message(data)
    rule = {"type": "count_below", "class_name": name, "threshold": 3}
    with pytest.raises(ContractError, match="control character"):
        parse(CONTRACTS["ControlConfig"], {"defaults": {"rules": [rule]}})


def test_text_that_reaches_subjects_and_logs_has_no_control_characters():
    with pytest.raises(ContractError) as raised:
        parse(Heartbeat, {**a_heartbeat(app_version="1.0\r\nX-Injected: yes"), "kind": "heartbeat"})
    assert fields(raised.value) == ["app_version"]
    with pytest.raises(ContractError) as raised:
        parse(CONTRACTS["ControlConfig"], {"updated_by": "ana\nbob"})
    assert fields(raised.value) == ["updated_by"]
    with pytest.raises(ContractError) as raised:
        parse_edge_message(a_payload(payload_id="p\n1"))
    assert fields(raised.value) == ["detection.payload_id"]
    # Unicode letters are fine: a subject shows them as '?', a body as they are
    assert parse_edge_message(a_payload(counts={"Flasche für Öl": 1})).counts


@pytest.mark.parametrize(
    "key",
    [
        "datasets/private/secret.txt",
        "models/shelf/1/model.onnx",
        "frames/demo-2/shelf-1/2026/11/26/x.jpg",  # another device
        "frames/demo-1/shelf-2/2026/11/26/x.jpg",  # another camera
        "frames/demo-1/shelf-10/x.jpg",  # a camera whose id starts with this one's
        "frames/demo-1/shelf-1/../../demo-2/shelf-1/x.jpg",
        "frames/demo-1/shelf-1/./x.jpg",
        "frames/demo-1/shelf-1//x.jpg",
        "frames/demo-1/shelf-1/",
        "/frames/demo-1/shelf-1/x.jpg",
        "frames/demo-1/shelf-1/x\\..\\y.jpg",
        "frames/demo-1/shelf-1/x\n.jpg",
        "crops/demo-1/shelf-1/x.jpg",  # a crop is not a frame
    ],
)
def test_a_frame_key_outside_the_sending_camera_s_prefix_is_refused(key):
    with pytest.raises(ContractError) as raised:
        parse_edge_message(a_payload(frame_key=key))
    assert fields(raised.value) == ["detection.frame_key"]


def test_the_camera_s_own_objects_are_accepted():
    assert parse_edge_message(a_payload()).frame_key.startswith("frames/demo-1/shelf-1/")
    own_crop = "crops/demo-1/shelf-1/2026/11/26/20261126T100000000Z-0-hard hat.jpg"
    assert camera_object_key_problem(own_crop, device_id="demo-1", camera_id="shelf-1") is None
    assert "its device is unknown" in camera_object_key_problem(
        "frames/demo-1/shelf-1/x.jpg", device_id=None, camera_id="shelf-1"
    )


@pytest.mark.parametrize(
    ("message", "field"),
    [
        (a_payload(captured_at="2099-01-01T00:00:00Z"), "captured_at"),
        (a_heartbeat(sent_at="2099-01-01T00:00:00Z"), "sent_at"),
        (
            a_heartbeat(
                cameras={"shelf-1": {"state": "running", "last_frame_at": "2099-01-01T00:00:00Z"}}
            ),
            "cameras.shelf-1.last_frame_at",
        ),
    ],
)
def test_device_timestamps_beyond_the_clock_skew_allowance_are_refused(message, field):
    with pytest.raises(ContractError) as raised:
        parse_edge_message(message, queued_at=NOW)

    [problem] = raised.value.problems
    assert problem["field"] == field
    assert problem["value"].startswith("2099-01-01T00:00:00")
    assert (
        f"at most {MAX_CLOCK_SKEW_S} s after the queue accepted the message" in problem["allowed"]
    )
    assert "2026-11-26T10:00:00" in problem["allowed"]


def test_the_allowance_is_exactly_the_documented_one():
    skew = timedelta(seconds=MAX_CLOCK_SKEW_S)
    within = a_payload(captured_at=(NOW + skew).isoformat())
    beyond = a_payload(captured_at=(NOW + skew + timedelta(milliseconds=1)).isoformat())

    assert parse_edge_message(within, queued_at=NOW).captured_at == NOW + skew
    with pytest.raises(ContractError):
        parse_edge_message(beyond, queued_at=NOW)
    # the past is not bounded: a device replays its spool after an outage
    assert parse_edge_message(a_payload(captured_at="2020-01-01T00:00:00Z"), queued_at=NOW)
    # without the moment it was queued, only the contract is checked
    assert parse_edge_message(a_payload(captured_at="2099-01-01T00:00:00Z"))


def test_an_absurdly_deep_or_large_body_is_a_contract_error():
    for body in (
        "[" * 100_000 + "]" * 100_000,
        '{"kind": "heartbeat", "uptime_s": 1' + "0" * 5000 + "}",
    ):
        with pytest.raises(ContractError):
            parse_edge_message(body)
