"""The control-API handler fed HTTP API v2 events against moto (GIVEN / WHEN / THEN)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import requests

from kit.core.backend import CONTROL_API_ROUTES
from lambdas import runtime
from lambdas.control_api.handler import ROUTES

LOW_STOCK_CAMERA = {
    "rules": [{"type": "count_below", "name": "low-stock", "class_name": "bottle", "threshold": 3}]
}


def metadata(name: str, version: int, classes=("bottle",)) -> bytes:
    return json.dumps(
        {"name": name, "version": version, "classes": list(classes), "input_size": 320}
    ).encode()


@pytest.fixture
def registry(harness):
    """Models shelf:1, shelf:2 and fish:1 in the bucket, plus a broken metadata file."""
    s3, bucket = harness.services.s3, harness.settings.resources.bucket
    for name, version in (("shelf", 1), ("shelf", 2), ("fish", 1)):
        key = f"models/{name}/{version}/metadata.json"
        s3.put_object(Bucket=bucket, Key=key, Body=metadata(name, version))
    s3.put_object(Bucket=bucket, Key="models/shelf/2/model.onnx", Body=b"onnx")
    s3.put_object(Bucket=bucket, Key="models/broken/1/metadata.json", Body=b'{"name": "broken"}')
    alias = {"alias": "production", "version": 2, "updated_at": "2026-01-31T12:00:00Z"}
    s3.put_object(Bucket=bucket, Key="models/shelf/aliases/production.json", Body=json.dumps(alias))
    return harness


def audit_items(harness) -> list[dict]:
    audit_table = harness.settings.resources.audit_table
    items = harness.services.dynamodb.scan(TableName=audit_table)["Items"]
    return sorted(
        ({k: list(v.values())[0] for k, v in item.items()} for item in items), key=lambda i: i["at"]
    )


def test_the_routes_are_exactly_the_backend_description_s():
    assert set(ROUTES) == set(CONTROL_API_ROUTES)


def test_a_recorded_event_reads_a_camera_s_config(harness, event_json):
    harness.set_config(cameras={"shelf-1": LOW_STOCK_CAMERA})

    status, body = harness.api_event(event_json("http_get_config.json"))

    assert status == 200
    assert body["camera_id"] == "shelf-1" and body["revision"] == 1
    assert body["settings"]["rules"][0]["threshold"] == 3
    assert body["overrides"]["rules"][0]["name"] == "low-stock"


def test_a_recorded_put_changes_the_camera_and_is_audited(harness, event_json):
    status, body = harness.api_event(event_json("http_put_camera_config.json"))

    assert status == 200
    assert body["revision"] == 1 and body["settings"]["refresh_s"] == 10
    config = harness.store.get_config()
    assert config.updated_by == "local-token"
    assert config.for_camera("shelf-1").rules[0].key == "low-stock"
    [audit] = audit_items(harness)
    assert audit["entity"] == "config/shelf-1" and audit["who"] == "local-token"
    assert json.loads(audit["old"]) is None
    assert json.loads(audit["new"])["refresh_s"] == 10


@pytest.mark.parametrize(
    ("token", "reason"),
    [(None, "missing Authorization header"), ("wrong-token-123", "wrong token")],
)
def test_without_the_right_token_every_route_but_health_is_401(harness, token, reason):
    for route in sorted(CONTROL_API_ROUTES):
        method, path = route.split(" ")
        path = path.replace("{camera}", "shelf-1").replace("{id}", "a-1")
        status, body = harness.api(method, path, token=token, body={} if method != "GET" else None)
        if route == "GET /health":
            assert status == 200 and body["status"] == "ok"
        else:
            assert status == 401, route
            assert reason in body["message"] and body["error"] == "unauthorized"


def test_on_aws_the_user_comes_from_the_verified_jwt_claims(harness, event_json, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    runtime.use_settings(harness.settings.model_copy(update={"target": "aws"}))
    put = event_json("http_put_camera_config.json")
    put["headers"].pop("authorization")
    put["requestContext"]["authorizer"] = event_json("http_get_config.json")["requestContext"][
        "authorizer"
    ]
    anonymous = event_json("http_get_config.json")
    del anonymous["requestContext"]["authorizer"]

    status, _ = harness.api_event(put)
    denied, body = harness.api_event(anonymous)

    assert status == 200
    assert harness.store.get_config().updated_by == "ana@example.com"
    assert denied == 401 and "no verified identity" in body["message"]


def test_put_config_validates_and_names_the_bad_field(harness):
    bad = {
        "cameras": {
            "shelf-1": {"rules": [{"type": "count_below", "class_name": "bottle", "threshold": -1}]}
        }
    }

    status, body = harness.api("PUT", "/config", body=bad)

    assert status == 400 and body["error"] == "bad_request"
    [problem] = body["problems"]
    assert problem["field"] == "cameras.shelf-1.rules.0.count_below.threshold".replace(".0", "[0]")
    assert "greater than or equal to 0" in problem["allowed"]
    assert harness.store.get_config().revision == 0


def test_put_config_rejects_bodies_that_are_not_json_objects(harness):
    for body, allowed in (
        ("{not json", "valid JSON"),
        ("[1, 2]", "a JSON object"),
        (None, "a JSON object"),
    ):
        status, answer = harness.api("PUT", "/config", body=body)
        assert status == 400 and answer["field"] == "body" and allowed in answer["allowed"]


def test_put_config_rejects_a_zone_that_does_not_exist(harness):
    camera = {
        "rules": [{"type": "count_below", "class_name": "bottle", "threshold": 1, "zone": "nope"}]
    }

    status, body = harness.api("PUT", "/config/shelf-1", body=camera)

    assert status == 400
    assert "refers to zone 'nope'" in body["message"]


def test_an_unknown_model_is_422_and_a_registered_one_is_accepted(registry):
    harness = registry
    unknown = {"model": {"name": "shelf", "version": 7}}
    missing = {"model": {"name": "boats", "version": "latest"}}
    known = {"model": {"name": "shelf", "version": 2}}

    status, body = harness.api("PUT", "/config/shelf-1", body=unknown)
    assert status == 422
    assert body["problems"] == [
        {
            "field": "cameras.shelf-1.model",
            "value": "shelf:7",
            "allowed": "model 'shelf' has no version 7; versions: 1, 2",
        }
    ]
    status, body = harness.api("PUT", "/config/shelf-1", body=missing)
    assert status == 422 and "models: broken, fish, shelf (got boats:latest)" in body["message"]
    status, body = harness.api("PUT", "/config/shelf-1", body=known)
    assert status == 200 and body["settings"]["model"] == {"name": "shelf", "version": 2}


def test_an_alias_is_accepted_only_when_a_device_could_resolve_it(registry):
    """The API and the device resolve aliases by the same rule (kit.core.registry)."""
    typo = {"model": {"name": "shelf", "version": "typo"}}
    production = {"model": {"name": "shelf", "version": "production"}}

    status, body = registry.api("PUT", "/config/shelf-1", body=typo)
    assert status == 422
    assert body["problems"][0]["allowed"].startswith("model 'shelf' has no alias 'typo'")
    assert "production -> 2" in body["problems"][0]["allowed"]
    status, body = registry.api("PUT", "/config/shelf-1", body=production)
    assert status == 200 and body["settings"]["model"] == {"name": "shelf", "version": "production"}


def test_the_revision_increments_and_a_stale_revision_is_409(harness):
    status, first = harness.api("PUT", "/config", body={"defaults": {"refresh_s": 7}})
    assert status == 200 and first["revision"] == 1 and first["updated_by"] == "local-token"

    status, second = harness.api("PUT", "/config", body={**first, "defaults": {"refresh_s": 9}})
    assert status == 200 and second["revision"] == 2

    status, stale = harness.api("PUT", "/config", body={**first, "defaults": {"refresh_s": 1}})
    assert status == 409 and stale["field"] == "revision"
    status, stale = harness.api(
        "PUT", "/config/shelf-1", body={"refresh_s": 2}, headers={"If-Match": '"1"'}
    )
    assert status == 409 and "revision 2" in stale["message"]
    status, config = harness.api("GET", "/config")
    assert config["revision"] == 2 and config["defaults"]["refresh_s"] == 9
    assert [a["entity"] for a in audit_items(harness)] == ["config", "config"]


def test_models_come_from_the_registry_layout(registry):
    status, body = registry.api("GET", "/models")

    assert status == 200
    assert [(m["name"], m["version"]) for m in body["items"]] == [
        ("fish", 1),
        ("shelf", 1),
        ("shelf", 2),
    ]
    assert [p["key"] for p in body["problems"]] == ["models/broken/1/metadata.json"]
    status, body = registry.api("GET", "/models?name=shelf")
    assert [m["version"] for m in body["items"]] == [1, 2]
    status, body = registry.api("GET", "/models?name=boats")
    assert status == 404 and body["message"].endswith("models: fish, shelf")


def test_detections_are_paged_with_a_cursor_and_filtered_by_time(harness):
    payloads = [harness.payload(at=timedelta(seconds=10 * i)) for i in range(5)]
    harness.process(*payloads)

    seen, cursor = [], None
    while True:
        target = "/detections?camera=shelf-1&limit=2&order=asc" + (
            f"&cursor={cursor}" if cursor else ""
        )
        status, body = harness.api("GET", target)
        assert status == 200 and len(body["items"]) <= 2
        seen += [p["payload_id"] for p in body["items"]]
        cursor = body["cursor"]
        if not cursor:
            break
    assert seen == [p["payload_id"] for p in payloads]

    status, body = harness.api(
        "GET", "/detections?camera=shelf-1&since=2026-01-31T12:00:20Z&until=2026-01-31T12:00:40Z"
    )
    assert [p["payload_id"] for p in body["items"]] == [
        payloads[3]["payload_id"],
        payloads[2]["payload_id"],
    ]


BAD_DETECTION_QUERIES = [
    ("", "camera", "required"),
    ("camera=bad camera", "camera", "1-64 characters"),
    ("camera=shelf-1&limit=0", "limit", "an integer from 1 to 1000"),
    ("camera=shelf-1&limit=many", "limit", "an integer from 1 to 1000"),
    ("camera=shelf-1&since=yesterday", "since", "an ISO 8601 time"),
    ("camera=shelf-1&order=sideways", "order", "one of desc, asc"),
    ("camera=shelf-1&cursor=bm9wZQ", "cursor", "not a cursor this API returned"),
    (
        "camera=shelf-1&since=2026-01-31T12:00:00Z&until=2026-01-31T11:00:00Z",
        "until",
        "a time after since",
    ),
]


def test_bad_detection_queries_are_400_naming_the_field(harness):
    harness.process(harness.payload())
    for query, field, allowed in BAD_DETECTION_QUERIES:
        status, body = harness.api("GET", f"/detections?{query}")

        assert status == 400, (query, body)
        assert body["field"] == field and allowed in body["allowed"], query
        assert body["message"].startswith(f"{field}: ")


def test_unknown_cameras_are_404(harness):
    harness.set_config(cameras={"shelf-1": LOW_STOCK_CAMERA})
    for target in (
        "/detections?camera=ghost",
        "/frames/latest?camera=ghost",
        "/config/ghost",
        "/alerts?camera=ghost",
    ):
        status, body = harness.api("GET", target)
        assert status == 404, target
        assert "unknown camera 'ghost'" in body["message"] and "shelf-1" in body["message"]


def test_alerts_are_listed_by_state_and_acknowledged_once(harness):
    harness.set_config(cameras={"shelf-1": LOW_STOCK_CAMERA, "shelf-2": LOW_STOCK_CAMERA})
    harness.process(
        harness.payload(counts={"bottle": 0}),
        harness.payload(camera_id="shelf-2", at=timedelta(seconds=1), counts={"bottle": 1}),
    )
    status, body = harness.api("GET", "/alerts?state=OPEN")
    assert status == 200
    assert [a["camera_id"] for a in body["items"]] == ["shelf-2", "shelf-1"]  # newest first
    alert_id = body["items"][1]["alert_id"]

    status, acked = harness.api("POST", f"/alerts/{alert_id}/ack")
    assert status == 200 and acked["changed"] is True
    assert acked["alert"]["state"] == "ACKED" and acked["alert"]["acked_by"] == "local-token"
    status, again = harness.api("POST", f"/alerts/{alert_id}/ack")
    assert status == 200 and again["changed"] is False

    assert [a["state"] for a in harness.api("GET", "/alerts?camera=shelf-1")[1]["items"]] == [
        "ACKED"
    ]
    assert len(harness.api("GET", "/alerts?state=OPEN")[1]["items"]) == 1
    assert len(harness.api("GET", "/alerts")[1]["items"]) == 2
    assert audit_items(harness)[-1]["entity"] == f"alert/{alert_id}"


def test_an_acked_alert_stays_quiet_and_resolves_with_its_ack_kept(harness):
    harness.set_config(cameras={"shelf-1": LOW_STOCK_CAMERA})
    harness.process(harness.payload(counts={"bottle": 0}))
    [opened] = harness.inbox()
    harness.api("POST", f"/alerts/{opened.alert_id}/ack")

    harness.process(harness.payload(at=timedelta(seconds=5), counts={"bottle": 1}))
    assert harness.inbox() == []
    harness.process(harness.payload(at=timedelta(seconds=9), counts={"bottle": 6}))

    [resolved] = harness.inbox()
    assert resolved.state == "RESOLVED" and "Acked by:  local-token" in resolved.body
    [alert] = harness.alerts()
    assert alert.state == "RESOLVED" and alert.acked_by == "local-token"
    status, body = harness.api("POST", f"/alerts/{alert.alert_id}/ack")
    assert status == 409 and "RESOLVED" in body["message"]


def test_acking_an_unknown_alert_is_404_and_a_bad_state_is_400(harness):
    status, body = harness.api("POST", "/alerts/20260131T120000Z-0000000000/ack")
    assert status == 404 and body["field"] == "id"
    status, body = harness.api("GET", "/alerts?state=CLOSED")
    assert status == 400 and body["allowed"] == "one of OPEN, ACKED, RESOLVED"


def test_the_latest_frame_is_a_presigned_url_that_can_be_fetched(harness):
    bucket = harness.settings.resources.bucket
    keys = [f"frames/demo-1/shelf-1/2026/01/31/{i}.jpg" for i in range(2)]
    for i, key in enumerate(keys):
        harness.services.s3.put_object(Bucket=bucket, Key=key, Body=f"frame {i}".encode())
    harness.process(
        harness.payload(frame_key=keys[0]),
        harness.payload(at=timedelta(seconds=5), frame_key=keys[1]),
        harness.payload(at=timedelta(seconds=9)),  # no frame: the latest frame stays
        harness.payload(camera_id="shelf-2"),
    )

    status, body = harness.api("GET", "/frames/latest?camera=shelf-1")

    assert status == 200 and body["frame_key"] == keys[1]
    assert body["captured_at"] == "2026-01-31T12:00:05.000000Z"
    assert requests.get(body["url"], timeout=10).content == b"frame 1"
    status, body = harness.api("GET", "/frames/latest?camera=shelf-2")
    assert status == 404 and "no frame yet" in body["message"]


def test_cameras_list_the_configured_and_the_seen(harness):
    harness.set_config(cameras={"shelf-1": LOW_STOCK_CAMERA, "dock-9": {"refresh_s": 30}})
    harness.process(harness.payload(counts={"bottle": 0}), harness.payload(camera_id="tank-1"))

    status, body = harness.api("GET", "/cameras")

    cameras = {c["camera_id"]: c for c in body["items"]}
    assert status == 200 and sorted(cameras) == ["dock-9", "shelf-1", "tank-1"]
    assert (cameras["dock-9"]["configured"], cameras["dock-9"]["seen"]) == (True, False)
    assert cameras["dock-9"]["refresh_s"] == 30
    assert (cameras["tank-1"]["configured"], cameras["tank-1"]["seen"]) == (False, True)
    assert cameras["shelf-1"]["counts"] == {"bottle": 0}
    assert [a["rule"] for a in cameras["shelf-1"]["active_alerts"]] == ["low-stock"]


def test_devices_report_health_from_their_heartbeats(harness, event_json):
    heartbeat = json.loads(event_json("sqs_batch.json")["Records"][1]["body"])
    failing = {
        **heartbeat,
        "device_id": "demo-2",
        "cameras": {"cam": {"state": "failed", "error": "RTSP 401"}},
    }
    idle = {**heartbeat, "device_id": "demo-3", "cameras": {}}
    no_model = {
        **heartbeat,
        "device_id": "demo-4",
        "cameras": {"cam": {"state": "degraded", "error": "cannot fetch model shelf:7"}},
    }
    full_disk = {**heartbeat, "device_id": "demo-5", "spool_error": "the disk is full"}
    harness.process(heartbeat, failing, idle, no_model, full_disk)

    status, body = harness.api("GET", "/devices")

    health = {d["device_id"]: d["health"] for d in body["items"]}
    assert status == 200 and health == {
        "demo-1": "RUNNING",
        "demo-2": "ERROR",
        "demo-3": "STOPPED",
        "demo-4": "DEGRADED",
        "demo-5": "DEGRADED",
    }
    assert body["items"][4]["spool_error"] == "the disk is full"
    demo1 = body["items"][0]
    assert demo1["cameras"]["shelf-1"]["fps"] == 14.8 and demo1["heartbeat_age_s"] < 60


def test_unknown_routes_are_404_listing_the_routes(harness):
    status, body = harness.api("GET", "/nothing-here")
    assert status == 404 and "GET /config" in body["message"]
