"""The store's conditional writes: a condition that holds writes, one that does not is an answer
(False, None, the item as it is), and any other failure raises."""

from __future__ import annotations

from datetime import timedelta

import pytest
from botocore.exceptions import ClientError

from kit.core.contracts import Alert, ControlConfig, DetectionPayload, Heartbeat, parse, utc_now
from lambdas.store import NOTIFICATION_CLAIM_S


def detection(harness, seconds: float) -> DetectionPayload:
    return parse(DetectionPayload, harness.payload(at=timedelta(seconds=seconds)))


def open_alert(t0, alert_id: str = "20260131T120000Z-0000000001") -> Alert:
    return Alert(
        alert_id=alert_id,
        camera_id="shelf-1",
        rule="low-stock",
        rule_type="count_below",
        value=1,
        threshold=3,
        message="bottle count 1 is below 3",
        opened_at=t0,
        updated_at=t0,
    )


def test_a_camera_s_newest_payload_moves_it_on_and_an_older_one_does_not(harness, t0):
    store = harness.store
    newest, older = detection(harness, 10), detection(harness, 5)

    recorded = store.touch_camera(newest, received_at=t0)
    stale = store.touch_camera(older, received_at=t0)

    assert recorded.last_payload_id == newest.payload_id and recorded.rules == {}
    assert stale is None
    assert store.get_camera("shelf-1").last_payload_id == newest.payload_id


def test_rule_states_are_replaced_only_from_the_states_they_were_computed_from(harness, t0):
    store = harness.store
    missing = store.replace_rule_states("shelf-1", {"low": ('{"v": 1}', None)})
    assert (missing.done, missing.current) == (False, {})  # no camera yet
    first = detection(harness, 0)
    store.touch_camera(first, received_at=t0)

    assert store.replace_rule_states("shelf-1", {"low": ('{"v": 1}', None)}).done
    stale = store.replace_rule_states("shelf-1", {"low": ('{"v": 2}', None)})
    assert (stale.done, stale.current) == (False, {"low": '{"v": 1}'})  # as it is now
    assert not store.replace_rule_states("shelf-1", {"low": ('{"v": 2}', '{"v": 0}')}).done
    assert store.replace_rule_states("shelf-1", {"low": ('{"v": 2}', '{"v": 1}')}).done
    # all or none: one stale expectation refuses every change
    assert not store.replace_rule_states(
        "shelf-1", {"low": ('{"v": 3}', '{"v": 2}'), "high": ('{"v": 1}', '{"v": 9}')}
    ).done
    assert store.get_camera("shelf-1").rules == {"low": '{"v": 2}'}


def test_rule_states_are_written_only_while_the_payload_judged_is_the_newest(harness, t0):
    store = harness.store
    older, newer = detection(harness, 0), detection(harness, 5)
    store.touch_camera(older, received_at=t0)
    store.touch_camera(newer, received_at=t0)

    stale = store.replace_rule_states(
        "shelf-1", {"low": ('{"v": 1}', None)}, newest_payload_id=older.payload_id
    ).done
    current = store.replace_rule_states(
        "shelf-1", {"low": ('{"v": 1}', None)}, newest_payload_id=newer.payload_id
    ).done

    assert (stale, current) == (False, True)


def test_a_device_keeps_its_newest_heartbeat_and_its_cameras_give_its_newest_payload_time(
    harness, t0
):
    """A payload writes nothing to its device: the device's newest payload time is the newest
    of its cameras', and a device known only from payloads is listed too."""
    store = harness.store
    newer = Heartbeat(device_id="demo-1", app_version="2", uptime_s=9, sent_at=t0)
    older = Heartbeat(
        device_id="demo-1", app_version="1", uptime_s=1, sent_at=t0 - timedelta(seconds=5)
    )

    assert store.record_heartbeat(newer, received_at=t0)
    assert not store.record_heartbeat(older, received_at=t0)
    for camera_id, device_id, seconds in (
        ("shelf-1", "demo-1", 10),
        ("shelf-1", "demo-1", 5),  # older: the camera keeps its newest
        ("shelf-2", "demo-1", 7),
        ("shelf-3", "edge-b", 20),
    ):
        payload = harness.payload(
            camera_id=camera_id, device_id=device_id, at=timedelta(seconds=seconds)
        )
        store.touch_camera(parse(DetectionPayload, payload), received_at=t0)

    devices = {device.device_id: device for device in store.list_devices()}
    assert devices["demo-1"].heartbeat.app_version == "2"
    assert devices["demo-1"].last_payload_at == t0 + timedelta(seconds=10)
    assert devices["edge-b"].heartbeat is None
    assert devices["edge-b"].last_payload_at == t0 + timedelta(seconds=20)
    assert store.list_devices(store.list_cameras()) == store.list_devices()


def test_a_camera_stored_before_its_latest_payload_was_one_attribute_reads_as_it_was(harness, t0):
    harness.services.dynamodb.put_item(
        TableName=harness.settings.resources.cameras_table,
        Item={
            "camera_id": {"S": "shelf-1"},
            "device_id": {"S": "demo-1"},
            "last_seen": {"S": "2026-01-31T12:00:00.000000Z"},
            "received_at": {"S": "2026-01-31T12:00:01.000000Z"},
            "last_payload_id": {"S": "p-1"},
            "model": {"S": "shelf@1"},
            "counts": {"S": '{"bottle": 2}'},
            "zone_counts": {"S": '{"top": {"bottle": 1}}'},
            "frame_key": {"S": "frames/demo-1/shelf-1/old.jpg"},
            "frame_at": {"S": "2026-01-31T12:00:00.000000Z"},
            "rules": {"M": {}},
        },
    )

    camera = harness.store.get_camera("shelf-1")

    assert (camera.device_id, camera.model, camera.last_payload_id) == ("demo-1", "shelf@1", "p-1")
    assert camera.counts == {"bottle": 2} and camera.zone_counts == {"top": {"bottle": 1}}
    assert camera.last_seen == t0 and camera.received_at == t0 + timedelta(seconds=1)
    assert (camera.frame_key, camera.frame_at) == ("frames/demo-1/shelf-1/old.jpg", t0)
    frameless = detection(harness, 5)
    assert harness.store.touch_camera(frameless, received_at=t0).counts == frameless.counts
    assert harness.store.get_camera("shelf-1").frame_key == "frames/demo-1/shelf-1/old.jpg"
    framed = parse(
        DetectionPayload,
        harness.payload(at=timedelta(seconds=9), frame_key="frames/demo-1/shelf-1/new.jpg"),
    )
    harness.store.touch_camera(framed, received_at=t0)
    camera = harness.store.get_camera("shelf-1")
    assert camera.last_payload_id == framed.payload_id
    assert (camera.frame_key, camera.frame_at) == (framed.frame_key, framed.captured_at)


def test_a_camera_keeps_its_newest_frame_when_a_payload_comes_without_one(harness, t0):
    store = harness.store
    framed = parse(
        DetectionPayload,
        harness.payload(at=timedelta(seconds=1), frame_key="frames/demo-1/shelf-1/a.jpg"),
    )
    store.touch_camera(framed, received_at=t0)
    store.touch_camera(detection(harness, 2), received_at=t0)

    camera = store.get_camera("shelf-1")

    assert camera.last_seen == t0 + timedelta(seconds=2)
    assert (camera.frame_key, camera.frame_at) == (framed.frame_key, framed.captured_at)


def test_a_camera_s_first_rule_states_make_its_map_once(harness, t0):
    """A payload's camera update leaves out the rule states' map: the first states make it, on
    the same conditions as any other."""
    store = harness.store
    newest = detection(harness, 0)
    store.touch_camera(newest, received_at=t0)
    assert store.get_camera("shelf-1").rules == {}

    stale = store.replace_rule_states(
        "shelf-1", {"low": ('{"v": 1}', None)}, newest_payload_id="not-the-newest"
    )
    expecting = store.replace_rule_states("shelf-1", {"low": ('{"v": 1}', '{"v": 0}')})
    first = store.replace_rule_states(
        "shelf-1", {"low": ('{"v": 1}', None)}, newest_payload_id=newest.payload_id
    )
    second = store.replace_rule_states("shelf-1", {"silent": ('{"s": 1}', None)})
    again = store.replace_rule_states("shelf-1", {"low": ('{"v": 9}', None)})

    assert (stale.done, stale.current) == (False, {})
    assert (expecting.done, expecting.current) == (False, {})
    assert first.done and second.done
    assert (again.done, again.current) == (False, {"low": '{"v": 1}', "silent": '{"s": 1}'})
    assert store.get_camera("shelf-1").rules == {"low": '{"v": 1}', "silent": '{"s": 1}'}


def test_a_config_is_stored_only_over_the_revision_it_was_based_on(harness):
    store = harness.store
    first = ControlConfig(revision=1, updated_by="a")

    assert store.put_config(first, expected_revision=0)
    assert not store.put_config(ControlConfig(revision=2, updated_by="b"), expected_revision=0)
    assert store.get_config().updated_by == "a"


def test_an_alert_record_is_created_once(harness, t0):
    alert = open_alert(t0)

    assert harness.store.create_alert(alert)
    assert not harness.store.create_alert(alert.model_copy(update={"message": "again"}))
    assert [a.message for a in harness.alerts()] == ["bottle count 1 is below 3"]


def test_resolving_keeps_who_acked_and_writes_a_record_that_is_missing(harness, t0):
    store = harness.store
    alert = open_alert(t0)
    store.create_alert(alert)
    store.ack_alert(alert.alert_id, by="ann", at=t0 + timedelta(seconds=1))
    at = t0 + timedelta(seconds=30)
    resolution = {"state": "RESOLVED", "resolved_at": at, "updated_at": at, "value": 5.0}

    resolved = store.resolve_alert(alert.model_copy(update=resolution))
    missing = store.resolve_alert(
        open_alert(t0, "20260131T120000Z-0000000002").model_copy(update=resolution)
    )

    assert (resolved.state, resolved.acked_by, resolved.value) == ("RESOLVED", "ann", 5.0)
    assert missing is None
    assert {(a.alert_id[-1], a.state) for a in harness.alerts()} == {
        ("1", "RESOLVED"),
        ("2", "RESOLVED"),
    }


def test_only_an_open_alert_is_acknowledged_and_otherwise_it_comes_back_as_it_is(harness, t0):
    store = harness.store
    alert = open_alert(t0)
    store.create_alert(alert)

    acked, unchanged = store.ack_alert(alert.alert_id, by="ann", at=t0)
    again = store.ack_alert(alert.alert_id, by="bob", at=t0)
    unknown = store.ack_alert("20260131T120000Z-ffffffffff", by="ann", at=t0)

    assert (acked.state, acked.acked_by, unchanged) == ("ACKED", "ann", None)
    assert again[0] is None and (again[1].state, again[1].acked_by) == ("ACKED", "ann")
    assert unknown == (None, None)


def test_a_failure_other_than_the_condition_raises(harness, t0):
    harness.services.dynamodb.delete_table(TableName=harness.settings.resources.alerts_table)

    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        harness.store.create_alert(open_alert(t0))


def test_a_notification_is_claimed_by_one_caller_until_sent_or_expired(harness, t0):
    store = harness.store
    alert = open_alert(t0)
    store.create_alert(alert)
    now = utc_now()

    first = store.claim_notification(alert.alert_id, "OPEN", now=now)
    second = store.claim_notification(alert.alert_id, "OPEN", now=now)
    later = store.claim_notification(
        alert.alert_id, "OPEN", now=now + timedelta(seconds=NOTIFICATION_CLAIM_S + 1)
    )
    store.mark_notified(alert.alert_id, "OPEN", now=now)
    after_sending = store.claim_notification(alert.alert_id, "OPEN", now=now)

    assert (first, second, later, after_sending) == ("claimed", "busy", "claimed", "sent")
    assert store.claim_notification(alert.alert_id, "RESOLVED", now=now) == "claimed"
