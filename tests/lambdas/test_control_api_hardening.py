"""The control API under hostile and careless input (issue 14): every malformed request is a 4xx
naming what is wrong, the config stays readable after any bad PUT, a stored config that fails
validation never takes the backend down, and no link to an object outside a camera's prefix is
handed out. Events come from the local HTTP server's event builder, against the moto stack."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
import requests

from kit.core.config_record import CONFIG_KEY, LAST_GOOD_KEY
from kit.core.contracts import utc_now
from kit.core.timefmt import stamp
from lambdas import runtime
from lambdas.control_api.body import MAX_BODY_BYTES, MAX_JSON_DEPTH
from lambdas.control_api.service import REJECTED_PROBLEM_HEADER, REJECTED_REVISION_HEADER
from lambdas.store import CONFIG_MAX_BYTES

LOW_STOCK = {"rules": [{"type": "count_below", "class_name": "bottle", "threshold": 3}]}
INFINITE_SLOPE = (
    '{"rules":[{"type":"rising_trend","class_name":"fish","min_slope_per_min":Infinity}]}'
)


def put_raw(harness, target: str, raw: bytes, *, base64_encoded: bool = False) -> tuple[int, dict]:
    """PUT ``raw`` as the HTTP API would hand it over (base64 when ``base64_encoded``)."""
    event = harness.http_event("PUT", target, body="{}")
    event["body"] = base64.b64encode(raw).decode() if base64_encoded else raw.decode()
    event["isBase64Encoded"] = base64_encoded
    return harness.api_event(event)


def config_response(harness):
    """GET /config as (status, headers, body)."""
    from kit.local.lambda_events import LocalLambdaContext
    from lambdas.control_api.handler import handler

    response = handler(
        harness.http_event("GET", "/config"), LocalLambdaContext("evktest-control-api")
    )
    return response["statusCode"], response.get("headers") or {}, json.loads(response["body"])


def write_raw_config(harness, **attributes) -> None:
    """Overwrite the stored config item as a careless hand edit (or an older writer) would."""
    harness.services.dynamodb.put_item(
        TableName=harness.settings.resources.config_table, Item={**CONFIG_KEY, **attributes}
    )


def stored_config_with(harness, revision: int, **defaults) -> dict:
    """A stored config item's attributes: revision ``revision``, JSON as an old writer left it."""
    document = {
        "schema_version": "1.0",
        "revision": revision,
        "updated_at": "2026-01-31T12:00:00.000000Z",
        "updated_by": "hand-edit",
        "defaults": {"refresh_s": 5, **defaults},
        "cameras": {},
    }
    return {"revision": {"N": str(revision)}, "config": {"S": json.dumps(document)}}


# -- non-finite numbers and strict types ------------------------------------------------------


@pytest.mark.parametrize("literal", ["Infinity", "-Infinity", "NaN", "1e309"])
def test_the_issue_s_infinite_slope_is_a_400_and_the_config_stays_readable(harness, literal):
    """GIVEN a camera with a rule WHEN its rules are PUT with a non-finite slope
    THEN 400 naming the field; the config, the processor and a later PUT all keep working."""
    assert harness.api("PUT", "/config/shelf-1", body=LOW_STOCK)[0] == 200

    status, body = harness.api(
        "PUT", "/config/shelf-1", body=INFINITE_SLOPE.replace("Infinity", literal)
    )

    assert status == 400 and body["error"] == "bad_request"
    [problem] = body["problems"]
    assert problem["field"] == "rules[0].rising_trend.min_slope_per_min"
    assert "finite number" in problem["allowed"]
    status, config = harness.api("GET", "/config")
    assert status == 200 and config["revision"] == 1
    assert harness.process(harness.payload(counts={"bottle": 0}))["batchItemFailures"] == []
    assert [a.state for a in harness.alerts()] == ["OPEN"]
    assert harness.api("PUT", "/config/shelf-1", body={"refresh_s": 9})[0] == 200


def test_a_whole_config_with_a_non_finite_number_is_a_400_naming_the_field(harness):
    for literal in ("Infinity", "NaN", "-1e309"):
        status, body = harness.api(
            "PUT", "/config", body=f'{{"defaults":{{"confidence":{literal}}}}}'
        )
        assert status == 400
        assert [p["field"] for p in body["problems"]] == ["defaults.confidence"]
    status, body = harness.api("PUT", "/config", body='{"revision": NaN}')
    assert status == 400 and body["field"] == "revision" and body["value"] == "nan"
    assert harness.store.get_config().revision == 0


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"refresh_s": True}, "refresh_s"),
        ({"refresh_s": "5"}, "refresh_s"),
        ({"confidence": "0.5"}, "confidence"),
        (
            {"rules": [{"type": "count_below", "class_name": "b", "threshold": "3"}]},
            "rules[0].count_below.threshold",
        ),
        (
            {"rules": [{"type": "count_below", "class_name": "b", "threshold": 1, "enabled": 1}]},
            "rules[0].count_below.enabled",
        ),
    ],
)
def test_true_is_not_a_number_and_text_is_not_an_integer(harness, overrides, field):
    status, body = harness.api("PUT", "/config/shelf-1", body=overrides)

    assert status == 400
    assert [p["field"] for p in body["problems"]] == [field]


def test_a_whole_number_written_with_a_fraction_is_still_an_integer(harness):
    status, body = harness.api("PUT", "/config/shelf-1", body={"refresh_s": 10.0})

    assert status == 200 and body["settings"]["refresh_s"] == 10


# -- malformed requests -----------------------------------------------------------------------


def test_invalid_base64_is_a_400(harness):
    event = harness.http_event("PUT", "/config", body="{}")
    event["body"], event["isBase64Encoded"] = "!!!notbase64", True

    status, body = harness.api_event(event)

    assert status == 400 and body["field"] == "body" and "base64" in body["allowed"]


def test_a_body_that_is_not_utf_8_is_a_400(harness):
    status, body = put_raw(harness, "/config", b'{"updated_by": "\xff\xfe"}', base64_encoded=True)

    assert status == 400 and body["field"] == "body"
    assert body["allowed"] == "UTF-8 text (JSON)" and "0xff" in body["value"]


def test_json_nested_a_hundred_thousand_levels_deep_is_a_400(harness):
    for nested in ("[" * 100_000 + "]" * 100_000, '{"a":' * 100_000 + "1" + "}" * 100_000):
        status, body = harness.api("PUT", "/config", body=nested)
        assert status == 400 and body["field"] == "body"
        assert f"at most {MAX_JSON_DEPTH} levels" in body["allowed"]
    moderately = {
        "defaults": {"zones": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}
    }
    status, body = harness.api("PUT", "/config", body=moderately)
    assert status == 400 and f"at most {MAX_JSON_DEPTH} levels" in body["allowed"]


def test_a_body_over_the_documented_limit_is_a_413(harness):
    body = json.dumps({"updated_by": "x" * MAX_BODY_BYTES})
    for raw, encoded in ((body.encode(), False), (body.encode(), True)):
        status, answer = put_raw(harness, "/config", raw, base64_encoded=encoded)
        assert status == 413 and answer["error"] == "too_large"
        assert answer["allowed"] == f"at most {MAX_BODY_BYTES:,} bytes"
    assert harness.store.get_config().revision == 0


def big_config(cameras: int) -> dict:
    point = [0.123456789012, 0.987654321098]
    camera = {
        "zones": [
            {"name": f"zone-{z}", "polygon": [point] * 3 + [[0.5, 0.5]] * 61} for z in range(50)
        ]
    }
    return {"cameras": {f"camera-{c}": camera for c in range(cameras)}}


def test_a_config_larger_than_a_dynamodb_item_can_hold_is_a_422_naming_the_limit(harness):
    """GIVEN a config whose JSON exceeds what the config item and its audit record can hold
    WHEN it is PUT THEN 422 naming the limit and DynamoDB's 400 KB; nothing is stored."""
    too_big = big_config(cameras=12)
    assert len(json.dumps(too_big, separators=(",", ":"))) > 400 * 1024

    status, body = harness.api("PUT", "/config", body=too_big)

    assert status == 422 and body["field"] == "body"
    assert f"at most {CONFIG_MAX_BYTES:,} bytes" in body["message"]
    assert "400 KB item limit" in body["message"]
    assert harness.api("GET", "/config")[1]["revision"] == 0
    fits = big_config(cameras=1)
    assert harness.api("PUT", "/config", body=fits)[0] == 200
    assert harness.api("PUT", "/config", body={"defaults": {"refresh_s": 7}})[0] == 200  # audited


def test_control_characters_in_a_class_name_are_a_400(harness):
    rule = {"type": "count_below", "class_name": "bot\ntle", "threshold": 3}

    status, body = harness.api("PUT", "/config/shelf-1", body={"rules": [rule]})

    assert status == 400 and "control character" in body["problems"][0]["allowed"]


# -- a stored config that fails validation ----------------------------------------------------


def test_a_corrupt_stored_config_is_survived_reported_and_repaired(harness):
    """GIVEN a valid config (revision 1) WHEN the stored item is overwritten with revision 2,
    whose slope an old writer stored as null
    THEN GET /config answers revision 1 with headers naming revision 2 and its problem, the
    processor and the health check keep running with revision 1's rules, also after a cold start,
    and a PUT repairs it with a revision above the bad one."""
    assert harness.api("PUT", "/config/shelf-1", body=LOW_STOCK)[0] == 200
    trend = {"type": "rising_trend", "class_name": "fish", "min_slope_per_min": None}
    write_raw_config(harness, **stored_config_with(harness, 2, rules=[trend]))

    status, headers, config = config_response(harness)

    assert status == 200 and config["revision"] == 1
    assert headers[REJECTED_REVISION_HEADER] == "2"
    assert "min_slope_per_min" in headers[REJECTED_PROBLEM_HEADER]
    assert "serving the last good revision 1" in headers[REJECTED_PROBLEM_HEADER]
    assert harness.api("GET", "/config/shelf-1")[0] == 200
    assert harness.api("GET", "/cameras")[0] == 200
    harness.services = runtime.use_settings(harness.settings)  # a cold start
    assert harness.process(harness.payload(counts={"bottle": 0}))["batchItemFailures"] == []
    assert [(a.rule, a.state) for a in harness.alerts()] == [("count_below", "OPEN")]
    assert harness.health_check(utc_now())["cameras"] == 1

    status, repaired = harness.api("PUT", "/config", body={"defaults": {"refresh_s": 7}})

    assert status == 200 and repaired["revision"] == 3
    status, headers, config = config_response(harness)
    assert config["revision"] == 3 and REJECTED_REVISION_HEADER not in headers


@pytest.mark.parametrize(
    "attributes",
    [
        {"revision": {"N": "4"}, "config": {"S": "{not json"}},
        {"revision": {"N": "4"}, "config": {"N": "17"}},
        {"revision": {"S": "four"}, "config": {"S": "[]"}},
        {"revision": {"N": "4.5"}, "config": {"S": '{"defaults": {"refresh_s": "5"}}'}},
        {"config": {"S": '{"defaults": {"confidence": null}}'}},
    ],
)
def test_any_damage_to_the_stored_item_is_survived_and_a_put_repairs_it(harness, attributes):
    assert harness.api("PUT", "/config/shelf-1", body=LOW_STOCK)[0] == 200
    write_raw_config(harness, **attributes)

    status, headers, config = config_response(harness)
    assert status == 200 and config["revision"] == 1 and REJECTED_PROBLEM_HEADER in headers
    assert harness.process(harness.payload())["batchItemFailures"] == []

    status, repaired = harness.api("PUT", "/config", headers={"If-Match": "1"}, body={})
    assert status == 200 and repaired["revision"] >= 2
    assert REJECTED_REVISION_HEADER not in config_response(harness)[1]


def test_without_a_good_copy_the_defaults_are_served_and_reported(harness):
    """A config damaged before any valid one was written (or before last good copies existed)."""
    write_raw_config(harness, **stored_config_with(harness, 5, confidence=None))

    status, headers, config = config_response(harness)

    assert status == 200 and config["revision"] == 0 and config["updated_by"] == "default"
    assert headers[REJECTED_REVISION_HEADER] == "5"
    assert harness.process(harness.payload())["batchItemFailures"] == []
    assert (
        harness.api("PUT", "/config", body={"defaults": LOW_STOCK, "revision": 0})[1]["revision"]
        == 6
    )


def test_a_damaged_last_good_copy_falls_back_to_the_defaults(harness):
    assert harness.api("PUT", "/config/shelf-1", body=LOW_STOCK)[0] == 200
    write_raw_config(harness, **stored_config_with(harness, 2, confidence=None))
    harness.services.dynamodb.put_item(
        TableName=harness.settings.resources.config_table,
        Item={**LAST_GOOD_KEY, "revision": {"S": "x"}, "config": {"S": "{"}},
    )

    status, headers, config = config_response(harness)

    assert status == 200 and config["revision"] == 0 and headers[REJECTED_REVISION_HEADER] == "2"
    assert (
        harness.api("PUT", "/config", body={"defaults": LOW_STOCK, "revision": 0})[1]["revision"]
        == 3
    )
    assert config_response(harness)[2]["revision"] == 3


# -- links only to the camera's own objects ---------------------------------------------------


def test_a_frame_key_stored_outside_the_camera_s_prefix_is_never_presigned(harness):
    """GIVEN a camera whose stored frame key points at a private dataset file (stored before
    payloads were checked) WHEN its latest frame is asked for THEN 404, and no URL."""
    bucket = harness.settings.resources.bucket
    harness.services.s3.put_object(Bucket=bucket, Key="datasets/private/secret.txt", Body=b"x")
    harness.process(harness.payload())
    for key in (
        "datasets/private/secret.txt",
        "frames/demo-2/shelf-1/x.jpg",
        "frames/demo-1/shelf-1/../../../datasets/private/secret.txt",
    ):
        harness.services.dynamodb.update_item(
            TableName=harness.settings.resources.cameras_table,
            Key={"camera_id": {"S": "shelf-1"}},
            UpdateExpression="SET frame_key = :key, frame_at = :at",
            ExpressionAttributeValues={":key": {"S": key}, ":at": {"S": stamp(utc_now())}},
        )

        status, body = harness.api("GET", "/frames/latest?camera=shelf-1")

        assert status == 404 and "url" not in body
        assert "outside frames/demo-1/shelf-1/" in body["message"] and key not in body["message"]


def test_a_payload_pointing_at_another_object_is_refused_and_its_frame_never_served(harness):
    bucket = harness.settings.resources.bucket
    harness.services.s3.put_object(Bucket=bucket, Key="datasets/private/secret.txt", Body=b"x")
    own = "frames/demo-1/shelf-1/2026/01/31/own.jpg"
    harness.services.s3.put_object(Bucket=bucket, Key=own, Body=b"own frame")
    harness.process(harness.payload(frame_key=own))

    response = harness.process(
        harness.payload(at=timedelta(seconds=5), frame_key="datasets/private/secret.txt")
    )

    assert len(response["batchItemFailures"]) == 1
    status, body = harness.api("GET", "/frames/latest?camera=shelf-1")
    assert status == 200 and body["frame_key"] == own
    assert requests.get(body["url"], timeout=10).content == b"own frame"
