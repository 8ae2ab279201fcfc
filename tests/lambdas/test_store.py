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


def test_a_device_keeps_its_newest_heartbeat_and_payload_time(harness, t0):
    store = harness.store
    newer = Heartbeat(device_id="demo-1", app_version="2", uptime_s=9, sent_at=t0)
    older = Heartbeat(
        device_id="demo-1", app_version="1", uptime_s=1, sent_at=t0 - timedelta(seconds=5)
    )

    assert store.record_heartbeat(newer, received_at=t0)
    assert not store.record_heartbeat(older, received_at=t0)
    store.touch_device(detection(harness, 10), received_at=t0)
    store.touch_device(detection(harness, 5), received_at=t0)  # older: no change, no error

    [device] = store.list_devices()
    assert device.heartbeat.app_version == "2"
    assert device.last_payload_at == t0 + timedelta(seconds=10)


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
