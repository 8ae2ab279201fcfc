"""The local Lambda runner: event shapes, the HTTP bridge, and the whole `kit local up` backend."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from kit.core.backend import CONTROL_API_ROUTES
from kit.core.settings import load_settings
from kit.local import LocalStack
from kit.local.http_api import http_api_event, http_response, match_route
from kit.local.lambda_events import LocalLambdaContext, scheduled_event, sqs_event
from kit.local.runner import read_alert_inbox, wait_for_alerts
from tests.support.wait import DEFAULT_TIMEOUT_S, process_tree, wait_until, wait_until_exited

EVENTS = Path(__file__).resolve().parents[2] / "lambdas" / "events"


def recorded(name: str) -> dict:
    return json.loads((EVENTS / name).read_text())


# -- event shapes ------------------------------------------------------------------------------
def test_sqs_events_have_exactly_the_fields_lambda_sends():
    message = {
        "MessageId": "m-1",
        "ReceiptHandle": "r-1",
        "MD5OfBody": "abc",
        "Body": '{"kind": "heartbeat"}',
        "Attributes": {"ApproximateReceiveCount": "2", "SentTimestamp": "1769860800123"},
        "MD5OfMessageAttributes": "def",
        "MessageAttributes": {
            "device_id": {"StringValue": "demo-1", "DataType": "String"},
            "raw": {"BinaryValue": b"\x00\xff", "DataType": "Binary"},
        },
    }
    arn = "arn:aws:sqs:eu-west-1:123456789012:q"

    [record] = sqs_event([message], queue_arn=arn, region="eu-west-1")["Records"]

    assert set(record) == set(recorded("sqs_batch.json")["Records"][0])
    assert record["attributes"]["ApproximateReceiveCount"] == "2"
    assert record["messageAttributes"]["device_id"] == {
        "stringValue": "demo-1",
        "stringListValues": [],
        "binaryListValues": [],
        "dataType": "String",
    }
    assert base64.b64decode(record["messageAttributes"]["raw"]["binaryValue"]) == b"\x00\xff"
    assert (record["eventSource"], record["eventSourceARN"], record["awsRegion"]) == (
        "aws:sqs",
        arn,
        "eu-west-1",
    )
    with pytest.raises(ValueError, match="1 to 10 messages, not 11"):
        sqs_event([message] * 11, queue_arn=arn, region="eu-west-1")


def test_routes_match_like_api_gateway():
    routes = CONTROL_API_ROUTES
    assert match_route("POST", "/alerts/a%2Fb/ack", routes) == (
        "POST /alerts/{id}/ack",
        {"id": "a/b"},
    )
    assert match_route("GET", "/config", routes) == ("GET /config", {})
    assert match_route("GET", "/config/", routes) == ("GET /config", {})
    assert match_route("DELETE", "/config", routes) is None
    assert match_route("GET", "/config/a/b", routes) is None


def test_http_api_events_have_the_v2_shape():
    event = http_api_event(
        method="PUT",
        target="/config/shelf-1?x=1&x=2&empty=",
        headers=[
            ("Content-Type", "application/json"),
            ("X-Tag", "a"),
            ("x-tag", "b"),
            ("Cookie", "s=1; t=2"),
        ],
        body=b'{"refresh_s": 3}',
        route_key="PUT /config/{camera}",
        path_parameters={"camera": "shelf-1"},
    )

    assert set(event) == set(recorded("http_put_camera_config.json")) | {
        "cookies",
        "queryStringParameters",
    }
    assert event["version"] == "2.0" and event["routeKey"] == "PUT /config/{camera}"
    assert event["rawPath"] == "/config/shelf-1" and event["rawQueryString"] == "x=1&x=2&empty="
    assert event["queryStringParameters"] == {"x": "1,2", "empty": ""}
    assert event["headers"] == {"content-type": "application/json", "x-tag": "a,b"}
    assert event["cookies"] == ["s=1", "t=2"]
    assert event["requestContext"]["http"]["method"] == "PUT"
    assert (event["body"], event["isBase64Encoded"]) == ('{"refresh_s": 3}', False)

    binary = http_api_event(
        method="POST",
        target="/x",
        headers=[("Content-Type", "image/jpeg")],
        body=b"\xff\xd8",
        route_key="POST /x",
        path_parameters={},
    )
    assert binary["isBase64Encoded"] and base64.b64decode(binary["body"]) == b"\xff\xd8"
    empty = http_api_event(
        method="GET", target="/x", headers=[], body=b"", route_key="GET /x", path_parameters={}
    )
    assert "body" not in empty and "queryStringParameters" not in empty


def test_function_results_become_http_responses_as_api_gateway_makes_them():
    assert http_response({"ok": True}) == (
        200,
        [("Content-Type", "application/json")],
        b'{"ok": true}',
    )
    status, headers, body = http_response(
        {
            "statusCode": 201,
            "headers": {"X-A": "1"},
            "cookies": ["s=1"],
            "body": base64.b64encode(b"\x00").decode(),
            "isBase64Encoded": True,
        }
    )
    assert (status, headers, body) == (201, [("X-A", "1"), ("Set-Cookie", "s=1")], b"\x00")


def test_context_and_scheduled_events():
    context = LocalLambdaContext("evk-processor", timeout_s=2, region="eu-west-1")
    assert context.invoked_function_arn == (
        "arn:aws:lambda:eu-west-1:123456789012:function:evk-processor"
    )
    assert 0 < context.get_remaining_time_in_millis() <= 2000
    event = scheduled_event(
        rule_name="evk-hc", region="eu-west-1", at=datetime(2026, 1, 31, tzinfo=UTC)
    )
    assert set(event) == set(recorded("scheduled_health_check.json"))
    assert event["time"] == "2026-01-31T00:00:00Z"


# -- the whole local backend -------------------------------------------------------------------
@pytest.fixture(scope="module")
def running_stack(tmp_path_factory):
    """`kit local up` of its own: moto, the backend, and the runner as a separate process."""
    stack = LocalStack(
        load_settings(
            state_dir=tmp_path_factory.mktemp("runner-stack"),
            local_port=0,
            api_port=0,
            prefix="evkrun",
        )
    )
    status = stack.up()
    yield stack, status
    stack.down(snapshot=False)


@pytest.fixture(scope="module")
def api(running_stack):
    stack, _ = running_stack
    settings = stack.settings.model_copy(update={"endpoint_url": stack.endpoint_url})
    url = settings.control_api_url()
    auth = {"Authorization": f"Bearer {settings.api_token}"}
    return settings, url, auth


def payload(camera: str, bottles: int, **fields) -> str:
    return json.dumps(
        {
            "kind": "detection",
            "payload_id": uuid.uuid4().hex,
            "device_id": "demo-1",
            "camera_id": camera,
            "model": {"name": "shelf", "version": 1},
            "captured_at": datetime.now(UTC).isoformat(),
            "frame": {"width": 640, "height": 480},
            "counts": {"bottle": bottles},
            **fields,
        }
    )


def test_up_records_the_runner_and_its_url(running_stack, api):
    stack, status = running_stack
    settings, url, _ = api

    state = json.loads(stack.state_file.read_text())

    assert set(status.services) == {"moto", "runner"} and status.services["runner"]["alive"]
    assert state["api_url"] == url == status.services["runner"]["url"]
    assert url.startswith("http://127.0.0.1:") and url != stack.endpoint_url
    assert requests.get(f"{url}/health", timeout=10).json()["status"] == "ok"


def test_a_low_count_makes_exactly_one_open_alert_and_one_message(api):
    """The issue's 'done when': GIVEN a camera whose threshold is 3 bottles (set through the API)
    WHEN payloads with 1, then 0 bottles go to the detections queue
    THEN one OPEN alert exists and exactly one message reached the alerts subscription."""
    settings, url, auth = api
    rule = {"type": "count_below", "name": "low-stock", "class_name": "bottle", "threshold": 3}
    assert requests.put(
        f"{url}/config/shelf-1", json={"rules": [rule]}, headers=auth, timeout=10
    ).ok
    sqs = settings.client("sqs")
    queue = sqs.get_queue_url(QueueName=settings.resources.detections_queue)["QueueUrl"]

    sqs.send_message(QueueUrl=queue, MessageBody=payload("shelf-1", 1))
    [notice] = wait_for_alerts(settings, 1, timeout_s=DEFAULT_TIMEOUT_S)
    sqs.send_message(QueueUrl=queue, MessageBody=payload("shelf-1", 0))

    assert notice.subject == "[EVK] OPEN shelf-1: bottle count 1 is below 3"
    assert f"Acknowledge: POST {url}/alerts/" in notice.body
    wait_until(
        lambda: (
            requests.get(f"{url}/cameras", headers=auth, timeout=10).json()["items"][0]["counts"]
            == {"bottle": 0}
        ),
        what="the second payload processed",
    )
    assert read_alert_inbox(settings, wait_s=1) == []
    alerts = requests.get(f"{url}/alerts?state=OPEN", headers=auth, timeout=10).json()["items"]
    assert [(a["camera_id"], a["rule"], a["state"]) for a in alerts] == [
        ("shelf-1", "low-stock", "OPEN")
    ]


def test_a_malformed_message_ends_in_the_dlq(api):
    settings, _, _ = api
    sqs = settings.client("sqs")
    queue = sqs.get_queue_url(QueueName=settings.resources.detections_queue)["QueueUrl"]
    dlq = sqs.get_queue_url(QueueName=settings.resources.detections_dlq)["QueueUrl"]
    poison = f"poison {uuid.uuid4()}"

    sqs.send_message(QueueUrl=queue, MessageBody=poison)

    received = wait_until(
        lambda: sqs.receive_message(QueueUrl=dlq, WaitTimeSeconds=2).get("Messages"),
        120,
        what="the malformed message in the DLQ",
    )
    assert [m["Body"] for m in received] == [poison]
    count = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessages"])
    assert count["Attributes"]["ApproximateNumberOfMessages"] == "0"


def test_the_api_over_http_reads_and_changes_the_config_and_says_what_is_wrong(api):
    settings, url, auth = api

    assert requests.get(f"{url}/config", timeout=10).status_code == 401
    assert (
        requests.get(
            f"{url}/config", headers={"Authorization": "Bearer nope-nope"}, timeout=10
        ).status_code
        == 401
    )
    before = requests.get(f"{url}/config", headers=auth, timeout=10).json()
    changed = requests.put(
        f"{url}/config", json={**before, "defaults": {"refresh_s": 4}}, headers=auth, timeout=10
    )
    assert changed.status_code == 200 and changed.json()["revision"] == before["revision"] + 1
    assert (
        requests.get(f"{url}/config", headers=auth, timeout=10).json()["defaults"]["refresh_s"] == 4
    )

    bad = requests.get(f"{url}/detections?camera=shelf-1&limit=0", headers=auth, timeout=10)
    assert bad.status_code == 400 and bad.json()["field"] == "limit"
    invalid = requests.put(f"{url}/config", data="{oops", headers=auth, timeout=10)
    assert invalid.status_code == 400 and invalid.json()["field"] == "body"
    unknown = requests.get(f"{url}/config/ghost", headers=auth, timeout=10)
    assert unknown.status_code == 404 and "unknown camera 'ghost'" in unknown.json()["message"]
    assert requests.get(f"{url}/no/such/route", headers=auth, timeout=10).status_code == 404


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_with_the_token_changes_the_config_and_without_it_gets_401(api):
    settings, url, _ = api
    put = subprocess.run(
        [
            "curl",
            "-s",
            "-X",
            "PUT",
            f"{url}/config/dock-1",
            "-H",
            f"Authorization: Bearer {settings.api_token}",
            "-H",
            "Content-Type: application/json",
            "-d",
            '{"refresh_s": 15}',
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    denied = subprocess.run(
        ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", f"{url}/config"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )

    assert json.loads(put.stdout)["settings"]["refresh_s"] == 15
    assert denied.stdout == "401"


def test_down_stops_the_runner_and_the_server(running_stack):
    """(Last in the module: it takes the module's stack down.)"""
    stack, _ = running_stack
    services = stack.status().services
    assert set(services) == {"moto", "runner"} and all(s["alive"] for s in services.values())
    started = [process for s in services.values() for process in process_tree(s["pid"])]

    stack.down(snapshot=False)

    wait_until_exited(started, what="the runner and the moto server")
    assert not stack.state_file.exists()
