"""The processor under hostile and careless messages (issue 14): non-finite and huge numbers,
device clocks in the future, keys of other objects and control characters are refused as
contract errors naming the field; data stored before they were refused does not freeze a camera
or a device, and never gets another object linked in an e-mail."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from kit.core.contracts import MAX_CLOCK_SKEW_S, Alert, ContractError, utc_now
from kit.core.timefmt import stamp
from lambdas.alerts import render_body, render_subject
from lambdas.processor.records import handle_record

LOW_STOCK = {
    "cameras": {
        "shelf-1": {"rules": [{"type": "count_below", "class_name": "bottle", "threshold": 3}]}
    }
}
SILENT = {"cameras": {"shelf-1": {"refresh_s": 5, "rules": [{"type": "camera_silent"}]}}}
FUTURE = datetime(2099, 1, 1, tzinfo=UTC)


def failures(response) -> list[str]:
    return [f["itemIdentifier"] for f in response["batchItemFailures"]]


def rejection(harness, body) -> ContractError:
    """The error the record handler raises for ``body`` (what the batch reports as failed)."""
    record = SQSRecord(harness.sqs_record(body))
    with pytest.raises(ContractError) as raised:
        handle_record(record, services=harness.services, config=harness.store.get_config())
    return raised.value


def heartbeat(sent_at: datetime, **fields) -> dict:
    return {
        "kind": "heartbeat",
        "device_id": "demo-1",
        "app_version": "0.1.0",
        "sent_at": stamp(sent_at),
        "uptime_s": 5,
        "cameras": {"shelf-1": {"state": "running"}},
        **fields,
    }


@pytest.mark.parametrize(
    "body",
    [
        '"counts": {"bottle": 1e400}',
        '"counts": {"bottle": 100000000000000000000}',
        '"inference_ms": NaN',
        '"inference_ms": Infinity',
        '"counts": {"bottle": true}',
        '"counts": {"bottle": "5"}',
    ],
)
def test_non_finite_huge_and_mistyped_numbers_are_refused_and_nothing_is_stored(harness, body):
    harness.set_config(**LOW_STOCK)
    text = json.dumps(harness.payload()).replace('"counts": {"bottle": 5}', body)
    assert body in text

    response = harness.process(text)

    assert len(failures(response)) == 1
    assert harness.detection_items() == [] and harness.store.get_camera("shelf-1") is None
    assert rejection(harness, text).problems


def test_a_payload_dated_beyond_the_clock_skew_allowance_is_refused_naming_field_value_and_allowance(
    harness,
):
    """GIVEN a device whose clock says 2099 WHEN its payload arrives THEN it is refused, and the
    camera's later real payloads keep moving it on (it is not frozen)."""
    future = harness.payload(at=FUTURE, counts={"bottle": 9})

    response = harness.process(future)

    assert len(failures(response)) == 1
    [problem] = rejection(harness, future).problems
    assert problem["field"] == "captured_at" and problem["value"].startswith("2099-01-01T00:00:00")
    assert (
        f"at most {MAX_CLOCK_SKEW_S} s after the queue accepted the message" in problem["allowed"]
    )
    now = utc_now()
    harness.process(harness.payload(at=now - timedelta(seconds=10)))
    harness.process(harness.payload(at=now, counts={"bottle": 1}))
    camera = harness.store.get_camera("shelf-1")
    assert camera.last_seen == now and camera.counts == {"bottle": 1}


def test_a_heartbeat_dated_in_the_future_is_refused(harness):
    now = utc_now()
    for body in (
        heartbeat(FUTURE),
        heartbeat(now, cameras={"shelf-1": {"state": "running", "last_frame_at": stamp(FUTURE)}}),
    ):
        assert len(failures(harness.process(body))) == 1
    harness.process(heartbeat(now))
    [device] = harness.store.list_devices()
    assert device.heartbeat.sent_at == now


def test_a_camera_and_device_frozen_in_2099_before_the_fix_move_on_again(harness):
    """GIVEN a camera and a device whose stored newest times say 2099 (stored before future
    timestamps were refused) WHEN real payloads and heartbeats arrive
    THEN they replace them, the rules judge them and the health check sees the device running."""
    harness.set_config(**LOW_STOCK)
    now = utc_now()
    harness.process(
        harness.payload(at=now - timedelta(minutes=1)), heartbeat(now - timedelta(minutes=1))
    )
    names = harness.settings.resources
    for table, key, attribute in (
        (names.cameras_table, {"camera_id": {"S": "shelf-1"}}, "last_seen"),
        (names.devices_table, {"device_id": {"S": "demo-1"}}, "sent_at"),
        (names.devices_table, {"device_id": {"S": "demo-1"}}, "last_payload_at"),
    ):
        harness.services.dynamodb.update_item(
            TableName=table,
            Key=key,
            UpdateExpression=f"SET {attribute} = :future",
            ExpressionAttributeValues={":future": {"S": stamp(FUTURE)}},
        )

    harness.process(harness.payload(at=now, counts={"bottle": 0}), heartbeat(now))

    camera = harness.store.get_camera("shelf-1")
    assert camera.last_seen == now and camera.counts == {"bottle": 0}
    assert [a.state for a in harness.alerts()] == ["OPEN"]
    [device] = harness.store.list_devices()
    assert device.heartbeat.sent_at == now and device.last_payload_at == now
    assert harness.health_check(now + timedelta(seconds=5))["devices"] == {"demo-1": "RUNNING"}


@pytest.mark.parametrize(
    "frame_key",
    ["datasets/private/secret.txt", "frames/demo-2/shelf-1/x.jpg", "frames/demo-1/shelf-1/../x"],
)
def test_a_payload_pointing_outside_its_camera_s_frames_is_refused(harness, frame_key):
    body = harness.payload(frame_key=frame_key)

    assert len(failures(harness.process(body))) == 1
    [problem] = rejection(harness, body).problems
    assert problem["field"] == "detection.frame_key"
    assert "frames/demo-1/shelf-1/" in problem["allowed"]


def test_an_alert_e_mail_never_links_an_object_outside_the_camera_s_frames(harness):
    """GIVEN a silent-camera rule and a camera whose stored frame key points at a private dataset
    file (stored before payloads were checked) WHEN the health check opens its alert
    THEN the e-mail goes out without a link."""
    harness.set_config(**SILENT)
    bucket = harness.settings.resources.bucket
    harness.services.s3.put_object(Bucket=bucket, Key="datasets/private/secret.txt", Body=b"x")
    now = utc_now()
    harness.process(harness.payload(at=now))
    harness.services.dynamodb.update_item(
        TableName=harness.settings.resources.cameras_table,
        Key={"camera_id": {"S": "shelf-1"}},
        UpdateExpression="SET frame_key = :key",
        ExpressionAttributeValues={":key": {"S": "datasets/private/secret.txt"}},
    )

    opened = harness.health_check(now + timedelta(minutes=5))

    assert [a["state"] for a in opened["alerts"]] == ["OPEN"]
    [notice] = harness.inbox()
    assert "Frame:     no frame was published with this payload" in notice.body
    assert "secret" not in notice.body and "http" not in notice.body


def test_control_characters_in_a_payload_are_refused(harness):
    for counts in ({"bot\x07tle": 1}, {"bottle\n": 1}, {"\x00": 1}):
        body = harness.payload(counts=counts)
        assert len(failures(harness.process(body))) == 1
        assert "control character" in str(rejection(harness, body))


def test_subjects_and_bodies_of_alerts_stored_before_the_fix_carry_no_control_characters(t0):
    alert = Alert(
        alert_id="a-1",
        camera_id="shelf-1",
        rule="count_below",
        rule_type="count_below",
        value=1,
        threshold=3,
        message="bot\x00tle\x07 count\x7f 1\x1b[31m is\u2028below 3",
        opened_at=t0,
        updated_at=t0,
        acked_by="ana\r\nBcc: x",
        state="ACKED",
        acked_at=t0,
    )

    subject = render_subject(alert)
    body = render_body(alert, frame_url=None)

    assert all(" " <= c <= "~" for c in subject), subject
    assert subject == "[EVK] ACKED shelf-1: bot tle count 1 [31m is below 3"
    assert all(c == "\n" or c.isprintable() for c in body), body
