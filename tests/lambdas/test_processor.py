"""The processor handler fed real SQS batch events against moto (GIVEN / WHEN / THEN)."""

from __future__ import annotations

import json
from datetime import timedelta

import requests

from kit.core.backend import describe_backend
from kit.core.contracts import DetectionPayload, parse
from kit.local.provision import provision
from lambdas.processor.records import process_detection

LOW_STOCK = {
    "cameras": {
        "shelf-1": {
            "rules": [
                {
                    "type": "count_below",
                    "name": "low-stock",
                    "class_name": "bottle",
                    "threshold": 3,
                    "cooldown_s": 60,
                }
            ]
        }
    }
}


def failures(response) -> list[str]:
    return [f["itemIdentifier"] for f in response["batchItemFailures"]]


def test_a_real_batch_stores_payload_and_heartbeat_and_fails_only_the_bad_record(
    harness, event_json
):
    """GIVEN the recorded SQS batch (a payload, a heartbeat, a malformed payload)
    WHEN the processor handles it
    THEN only the malformed record is reported, the other two are stored."""
    event = event_json("sqs_batch.json")

    response = harness.process_event(event)

    assert failures(response) == [event["Records"][2]["messageId"]]
    [stored] = harness.detection_items("shelf-1")
    assert stored["payload_id"] == "0c6f1d3e9a7b4c2d8e5f6a7b8c9d0e1f"
    assert stored["zone_counts"] == {"top-shelf": {"bottle": 1}}
    [device] = harness.store.list_devices()
    assert device.device_id == "demo-1" and device.heartbeat.app_version == "0.1.0"
    assert device.last_payload_at is not None
    camera = harness.store.get_camera("shelf-1")
    assert camera.frame_key.endswith("20260131T120000000000Z.jpg")
    assert camera.counts == {"bottle": 1}


def test_a_breach_opens_one_alert_with_a_readable_notification_and_a_working_frame_link(harness):
    """GIVEN a low-stock rule (fewer than 3 bottles) and an annotated frame in the bucket
    WHEN a payload counts 1 bottle
    THEN one OPEN alert is stored and one readable message goes out, linking the frame."""
    harness.set_config(**LOW_STOCK)
    key = "frames/demo-1/shelf-1/2026/01/31/120000.jpg"
    harness.services.s3.put_object(
        Bucket=harness.settings.resources.bucket, Key=key, Body=b"\xff\xd8annotated"
    )

    response = harness.process(harness.payload(counts={"bottle": 1}, frame_key=key))

    assert failures(response) == []
    [alert] = harness.alerts()
    assert (alert.state, alert.rule, alert.value, alert.threshold) == ("OPEN", "low-stock", 1, 3)
    [notice] = harness.inbox()
    assert notice.subject == "[EVK] OPEN shelf-1: bottle count 1 is below 3"
    assert notice.attributes["alert_id"] == alert.alert_id
    assert "Camera:    shelf-1 (device demo-1)" in notice.body
    assert "Rule:      low-stock (count_below)" in notice.body
    assert "Value:     1 (threshold 3)" in notice.body
    assert "Time:      2026-01-31 12:00:00 UTC" in notice.body
    link = next(line for line in notice.body.splitlines() if line.startswith("Frame:")).split()[1]
    assert requests.get(link, timeout=10).content == b"\xff\xd8annotated"


def test_a_message_delivered_twice_gives_one_record_and_one_alert(harness):
    """GIVEN a breaching payload
    WHEN SQS delivers the same message twice, and the device re-sends the payload in a new one
    THEN there is one detection record, one alert and one notification."""
    harness.set_config(**LOW_STOCK)
    body = harness.payload(counts={"bottle": 0})
    record = harness.sqs_record(body, message_id="m-1")

    first = harness.process_event({"Records": [record]})
    again = harness.process_event({"Records": [dict(record, receiptHandle="second-receipt")]})
    resent = harness.process(body)

    assert failures(first) == failures(again) == failures(resent) == []
    assert len(harness.detection_items()) == 1
    assert len(harness.alerts()) == 1
    assert len(harness.inbox()) == 1


def test_the_same_payload_twice_in_one_batch_is_processed_once(harness):
    harness.set_config(**LOW_STOCK)
    body = harness.payload(counts={"bottle": 0})

    response = harness.process(body, body)

    assert failures(response) == []
    assert len(harness.detection_items()) == 1 and len(harness.inbox()) == 1


def test_breach_cooldown_resolve_breach(harness):
    """GIVEN low-stock with a 60 s cooldown
    WHEN the count goes low, stays low, recovers, dips within the cooldown, stays low past it,
    recovers, and dips long after
    THEN alerts open, resolve and re-open exactly at the documented moments."""
    harness.set_config(**LOW_STOCK)
    timeline = [  # (seconds after T0, bottles, notifications expected)
        (0, 1, ["OPEN"]),  # first breach
        (5, 2, []),  # still breached: no repeat
        (10, 5, ["RESOLVED"]),  # back to normal
        (20, 1, []),  # breached 10 s after the resolve: within the cooldown
        (40, 0, []),  # still within the cooldown
        (80, 1, ["OPEN"]),  # still breached, cooldown over: a new alert
        (90, 4, ["RESOLVED"]),
        (300, 0, ["OPEN"]),  # a breach long after: a new alert at once
    ]
    for seconds, bottles, expected in timeline:
        response = harness.process(
            harness.payload(at=timedelta(seconds=seconds), counts={"bottle": bottles})
        )
        assert failures(response) == []
        assert [n.state for n in harness.inbox()] == expected, f"at +{seconds} s"

    alerts = harness.alerts()
    assert [a.state for a in alerts] == ["RESOLVED", "RESOLVED", "OPEN"]
    assert [(a.opened_at - alerts[0].opened_at).total_seconds() for a in alerts] == [0, 80, 300]
    assert [a.resolved_at.second for a in alerts[:2]] == [10, 30]  # +10 s and +90 s
    assert alerts[0].value == 5  # the resolving count


def test_an_older_payload_arriving_late_is_stored_but_does_not_drive_alerts(harness):
    harness.set_config(**LOW_STOCK)
    harness.process(harness.payload(at=timedelta(seconds=60), counts={"bottle": 8}))

    late = harness.process(harness.payload(at=timedelta(seconds=30), counts={"bottle": 0}))

    assert failures(late) == []
    assert len(harness.detection_items()) == 2
    assert harness.alerts() == [] and harness.inbox() == []
    assert harness.store.get_camera("shelf-1").counts == {"bottle": 8}


def test_process_detection_is_a_plain_function(harness):
    """The record logic runs without any event: stale payloads come back as not evaluated."""
    config = harness.set_config(**LOW_STOCK)
    newest = parse(DetectionPayload, harness.payload(at=timedelta(seconds=10)))
    older = parse(DetectionPayload, harness.payload(at=timedelta(seconds=5), counts={"bottle": 0}))

    first = process_detection(payload=newest, services=harness.services, config=config)
    second = process_detection(payload=older, services=harness.services, config=config)

    assert first == {"payload_id": newest.payload_id, "evaluated": True, "alerts": []}
    assert second == {"payload_id": older.payload_id, "evaluated": False, "alerts": []}


def test_a_rising_count_opens_a_trend_alert_and_a_flat_one_resolves_it(harness):
    """GIVEN a rising_trend rule on fish in the 'inlet' zone (>= 1 fish/min over >= 4 payloads)
    WHEN counts rise 1, 2, 3, 5 over 90 s and then stay flat
    THEN the alert opens on the 4th payload with the least-squares slope, and resolves later."""
    harness.set_config(
        cameras={
            "tank-1": {
                "zones": [{"name": "inlet", "polygon": [[0, 0], [1, 0], [1, 1]]}],
                "rules": [
                    {
                        "type": "rising_trend",
                        "class_name": "fish",
                        "zone": "inlet",
                        "window": 6,
                        "min_points": 4,
                        "min_slope_per_min": 1.0,
                        "cooldown_s": 0,
                    }
                ],
            }
        }
    )
    sent = []
    for step, fish in enumerate([1, 2, 3, 5, 5, 5, 5, 5, 5, 5]):
        harness.process(
            harness.payload(
                camera_id="tank-1",
                at=timedelta(seconds=30 * step),
                counts={"fish": fish},
                zone_counts={"inlet": {"fish": fish}},
            )
        )
        sent += [(step, n.state) for n in harness.inbox()]

    assert sent[0] == (3, "OPEN")
    assert [state for _, state in sent] == ["OPEN", "RESOLVED"]
    opened = harness.alerts()[0]
    assert opened.rule_type == "rising_trend"
    assert opened.threshold == 1.0 and "payloads" in opened.message


def test_a_person_without_helmet_opens_a_ppe_alert(harness):
    harness.set_config(cameras={"gate-1": {"rules": [{"type": "ppe_violation"}]}})
    person = {"class_name": "person", "class_id": 0, "confidence": 0.9}
    helmet = {"class_name": "helmet", "class_id": 1, "confidence": 0.8}
    protected = [
        {**person, "box": {"x1": 100, "y1": 100, "x2": 200, "y2": 400}},
        {**helmet, "box": {"x1": 120, "y1": 95, "x2": 180, "y2": 150}},
    ]
    bare = [{**person, "box": {"x1": 300, "y1": 100, "x2": 400, "y2": 400}}]

    harness.process(harness.payload(camera_id="gate-1", detections=protected))
    assert harness.inbox() == []
    harness.process(
        harness.payload(camera_id="gate-1", at=timedelta(seconds=5), detections=protected + bare)
    )

    [notice] = harness.inbox()
    assert notice.subject == "[EVK] OPEN gate-1: 1 of 2 person without helmet"


def test_a_failed_record_is_retried_and_then_alerts_exactly_once(harness):
    """GIVEN the alerts table is unavailable
    WHEN a breaching payload arrives
    THEN its record fails (and only it); WHEN it is redelivered after the table is back
    THEN exactly one alert record and one notification exist."""
    harness.set_config(**LOW_STOCK)
    harness.services.dynamodb.delete_table(TableName=harness.settings.resources.alerts_table)
    breaching = harness.sqs_record(harness.payload(counts={"bottle": 0}))
    healthy = harness.sqs_record(harness.payload(camera_id="shelf-2", counts={"bottle": 0}))

    first = harness.process_event({"Records": [breaching, healthy]})

    assert failures(first) == [breaching["messageId"]]
    provision(describe_backend(harness.settings), harness.settings)
    retried = harness.process_event({"Records": [dict(breaching, receiptHandle="again")]})
    assert failures(retried) == []
    assert [a.state for a in harness.alerts()] == ["OPEN"]
    assert len(harness.inbox()) == 1
    assert len(harness.detection_items()) == 1


def test_malformed_bodies_are_reported_as_batch_item_failures(harness):
    bad = [
        "",
        "not json",
        "[]",
        '{"kind": "alert"}',
        '{"kind": "detection", "schema_version": "2.0"}',
    ]
    good = harness.payload()
    event = harness.sqs_event(*bad, good)

    response = harness.process_event(event)

    assert failures(response) == [r["messageId"] for r in event["Records"][:-1]]
    assert [p["payload_id"] for p in harness.detection_items()] == [good["payload_id"]]


def test_a_payload_without_an_id_is_still_deduplicated(harness):
    harness.set_config(**LOW_STOCK)
    body = harness.payload(counts={"bottle": 0})
    del body["payload_id"]
    record = harness.sqs_record(body)

    harness.process_event({"Records": [record]})
    harness.process_event({"Records": [dict(record, receiptHandle="again")]})

    [stored] = harness.detection_items()
    assert len(stored["payload_id"]) == 32 and len(harness.inbox()) == 1


def test_an_older_heartbeat_does_not_replace_a_newer_one(harness, event_json):
    heartbeat = json.loads(event_json("sqs_batch.json")["Records"][1]["body"])
    older = {**heartbeat, "sent_at": "2026-01-31T11:59:00Z", "app_version": "0.0.9"}

    harness.process(heartbeat, older)

    [device] = harness.store.list_devices()
    assert device.heartbeat.app_version == "0.1.0"


def test_a_payload_with_two_thousand_detections_is_stored_and_read_back(harness):
    """A maximal payload is larger than DynamoDB's 400 KB item limit as JSON."""
    box = {"x1": 123.456789, "y1": 234.5678901, "x2": 345.678901, "y2": 456.789012}
    detection = {"class_name": "c" * 64, "class_id": 999, "confidence": 0.123456789, "box": box}
    body = harness.payload(frame={"width": 1000, "height": 1000}, detections=[detection] * 2000)
    assert len(json.dumps(body)) > 400_000

    response = harness.process(body)

    assert failures(response) == []
    [stored] = harness.detection_items()
    assert len(stored["detections"]) == 2000 and stored["detections"][0]["box"] == box
