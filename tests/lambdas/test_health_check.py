"""The scheduled health check: silent cameras and device health (GIVEN / WHEN / THEN)."""

from __future__ import annotations

import json
from datetime import timedelta

from kit.core.contracts import utc_now

SILENT = {
    "cameras": {
        "shelf-1": {
            "refresh_s": 5,
            "rules": [{"type": "camera_silent", "factor": 3, "cooldown_s": 0}],
        }
    }
}


def test_a_camera_that_stops_sending_raises_one_silent_alert_that_its_next_payload_resolves(
    harness, t0
):
    """GIVEN camera_silent with factor 3 and a 5 s refresh (limit 15 s)
    WHEN the checks run 10 s, 20 s and 30 s after the last payload, then a payload arrives
    THEN one alert opens at the 20 s check and the payload resolves it."""
    harness.set_config(**SILENT)
    harness.process(harness.payload(at=t0))

    quiet = harness.health_check(t0 + timedelta(seconds=10))
    opened = harness.health_check(t0 + timedelta(seconds=20))
    repeat = harness.health_check(t0 + timedelta(seconds=30))

    assert quiet["alerts"] == [] and repeat["alerts"] == []
    assert [a["state"] for a in opened["alerts"]] == ["OPEN"]
    [notice] = harness.inbox()
    assert notice.subject == "[EVK] OPEN shelf-1: camera silent: last payload 20 s ago (limit 15 s)"
    [alert] = harness.alerts()
    assert (alert.rule_type, alert.value, alert.threshold) == ("camera_silent", 20, 15)

    harness.process(harness.payload(at=t0 + timedelta(seconds=31)))
    assert [n.state for n in harness.inbox()] == ["RESOLVED"]
    assert harness.health_check(t0 + timedelta(seconds=40))["alerts"] == []


def test_a_camera_never_seen_is_not_judged_silent(harness, t0):
    harness.set_config(**SILENT)

    result = harness.health_check(t0)

    assert result == {
        "checked_at": "2026-01-31T12:00:00.000000Z",
        "cameras": 0,
        "alerts": [],
        "devices": {},
    }


def test_the_recorded_scheduled_event_drives_the_check(harness, event_json):
    from kit.local.lambda_events import LocalLambdaContext
    from lambdas.health_check.handler import handler

    harness.set_config(**SILENT)
    harness.process(harness.payload())  # at 12:00:00; the event says 12:10:00

    result = handler(event_json("scheduled_health_check.json"), LocalLambdaContext("hc"))

    assert result["checked_at"] == "2026-01-31T12:10:00.000000Z"
    assert [a["camera_id"] for a in result["alerts"]] == ["shelf-1"]


def test_device_health_changes_are_stored_once(harness, event_json):
    heartbeat = json.loads(event_json("sqs_batch.json")["Records"][1]["body"])
    harness.process(heartbeat)
    now = utc_now()

    running = harness.health_check(now)
    unchanged = harness.health_check(now + timedelta(seconds=30))
    offline = harness.health_check(now + timedelta(seconds=90))

    assert running["devices"] == {"demo-1": "RUNNING"}
    assert unchanged["devices"] == {}
    assert offline["devices"] == {"demo-1": "OFFLINE"}
    [device] = harness.store.list_devices()
    assert device.health == "OFFLINE"


def test_the_local_runner_schedules_the_health_check(harness):
    """GIVEN a camera silent for a minute WHEN an in-process runner runs with a short schedule
    THEN its scheduled health check raises the silent alert (and its API answers meanwhile)."""
    import requests

    from kit.local.runner import LocalRunner, wait_for_alerts

    harness.set_config(**SILENT)
    harness.process(harness.payload(at=utc_now() - timedelta(minutes=1)))

    with LocalRunner(harness.settings, port=0, health_interval_s=0.2) as runner:
        assert requests.get(f"{runner.url}/health", timeout=10).status_code == 200
        [notice] = wait_for_alerts(harness.settings, 1, timeout_s=20)

    assert notice.state == "OPEN" and "camera silent" in notice.subject
    assert runner.stats.health_checks >= 1
