"""The control API client's waits and sign-in, and the notebooks' kit calls, against the real
control API and processor (the local runner over the session's moto server): a payload sent the
way a device sends it is stored, its frame served, the alert it raises found and its notice
delivered; what never comes ends in a TimeoutError that says what was awaited."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from edge_app.publisher import frame_key
from kit.aws import create_cognito_user
from kit.core.contracts import DetectionPayload
from kit.dashboard import ControlApiClient, ControlApiError, NotSignedInError
from kit.local.processes import free_port
from kit.notebook import publish_payload, wait_for_alert_notice

LOW_STOCK = {"type": "count_below", "class_name": "bottle", "threshold": 2, "cooldown_s": 0}


def shelf_payload(camera_id: str, bottles: int, *, with_frame: bool = False) -> DetectionPayload:
    captured_at = datetime.now(UTC)
    return DetectionPayload(
        device_id="notebook",
        camera_id=camera_id,
        model={"name": "shelf", "version": 1},
        captured_at=captured_at,
        frame={"width": 480, "height": 320},
        counts={"bottle": bottles},
        frame_key=frame_key("notebook", camera_id, captured_at) if with_frame else None,
    )


@pytest.fixture(scope="module")
def client(served_backend) -> ControlApiClient:
    settings, _ = served_backend
    return ControlApiClient.from_settings(settings)


def test_a_published_payload_is_stored_and_its_frame_served(
    served_backend, client, make_shelf_frame
):
    settings, _ = served_backend
    frame = make_shelf_frame(seed=5, fill=1.0)
    payload = shelf_payload("waits-frame", frame.bottles, with_frame=True)

    assert publish_payload(settings, payload, frame_jpeg=frame.jpeg) is payload

    stored = client.wait_for_payload(payload, timeout_s=60)
    assert stored["payload_id"] == payload.payload_id
    assert stored["counts"] == {"bottle": frame.bottles}
    latest = client.wait_for_frame("waits-frame", since=payload.captured_at, timeout_s=60)
    assert latest["frame_key"] == payload.frame_key
    assert client.fetch_frame(latest["url"]) == frame.jpeg


def test_the_alert_a_payload_raises_is_found_again_after_a_resolve(served_backend, client):
    settings, _ = served_backend
    camera = "waits-shelf"
    client.put_camera_config(camera, {"rules": [LOW_STOCK]})

    first_low = publish_payload(settings, shelf_payload(camera, 1))
    opened = client.wait_for_alert(camera, payload_id=first_low.payload_id, timeout_s=60)
    assert (opened["state"], opened["rule_type"], opened["value"]) == ("OPEN", "count_below", 1)
    notice = wait_for_alert_notice(settings, opened["alert_id"], timeout_s=60)
    assert notice.state == "OPEN" and camera in notice.subject

    # What notebook 05 does when it runs again: a full shelf resolves, one bottle opens anew.
    full = publish_payload(settings, shelf_payload(camera, 3))
    client.wait_for_payload(full, timeout_s=60)
    resolved = client.wait_for_alert(camera, state="RESOLVED", timeout_s=60)
    assert resolved["alert_id"] == opened["alert_id"]
    second_low = publish_payload(settings, shelf_payload(camera, 1))
    reopened = client.wait_for_alert(camera, payload_id=second_low.payload_id, timeout_s=60)
    assert reopened["alert_id"] != opened["alert_id"] and reopened["state"] == "OPEN"
    assert wait_for_alert_notice(settings, reopened["alert_id"], timeout_s=60).state == "OPEN"


def test_what_never_comes_ends_in_a_timeout_that_says_what_was_awaited(served_backend, client):
    settings, _ = served_backend
    with pytest.raises(TimeoutError) as waited:
        client.wait_for_frame("never-seen", timeout_s=0.3, poll_s=0.1)
    message = str(waited.value)
    assert "gave up waiting for a frame from camera 'never-seen' after 0.3 s" in message
    assert "unknown camera 'never-seen'" in message and "kit devices" in message

    never_sent = shelf_payload("never-seen", 1)
    with pytest.raises(TimeoutError, match=f"payload {never_sent.payload_id} of camera"):
        client.wait_for_payload(never_sent, timeout_s=0.3, poll_s=0.1)
    with pytest.raises(TimeoutError, match="nothing about alert no-such-alert within 1 s"):
        wait_for_alert_notice(settings, "no-such-alert", timeout_s=1)


def test_refusals_other_than_not_found_are_raised_at_once(served_backend, client):
    settings, _ = served_backend
    with pytest.raises(ControlApiError) as refused:
        client.wait_for_alert("waits-shelf", state="CLOSED", timeout_s=60)
    assert refused.value.status == 400 and refused.value.field == "state"
    with pytest.raises(ValueError, match="timeout_s and poll_s must be > 0 seconds, got 0"):
        client.wait_for_frame("waits-frame", timeout_s=0)
    aws = settings.model_copy(update={"target": "aws"})
    with pytest.raises(ValueError, match="local target only, not on 'aws'"):
        wait_for_alert_notice(aws, "any")
    with pytest.raises(ValueError, match="names its frame_key"):
        publish_payload(settings, shelf_payload("waits-frame", 1), frame_jpeg=b"\xff\xd8")


def test_a_payload_the_backend_never_accepts_ends_in_a_timeout_naming_the_error(served_backend):
    settings, _ = served_backend
    unreachable = settings.model_copy(update={"endpoint_url": f"http://127.0.0.1:{free_port()}"})
    payload = shelf_payload("waits-unreachable", 1)

    with pytest.raises(TimeoutError) as refused:
        publish_payload(unreachable, payload, timeout_s=1)
    assert f"payload {payload.payload_id} was not accepted within 1 s" in str(refused.value)
    assert "EndpointConnectionError" in str(refused.value)


def test_on_aws_the_client_signs_in_with_email_and_password(served_backend):
    settings, _ = served_backend
    cognito = settings.client("cognito-idp")
    pool = cognito.create_user_pool(PoolName="evk-client-test")["UserPool"]["Id"]
    app = cognito.create_user_pool_client(
        UserPoolId=pool, ClientName="api", ExplicitAuthFlows=["USER_PASSWORD_AUTH"]
    )["UserPoolClient"]["ClientId"]
    aws = settings.model_copy(
        update={"target": "aws", "cognito_user_pool_id": pool, "cognito_client_id": app}
    )
    create_cognito_user(
        aws, "eva@example.com", temporary_password="Temp-pass-1", send_invitation=False,
        client=cognito,
    )  # fmt: skip

    signed_in = ControlApiClient.from_settings(
        aws, email="eva@example.com", password="Temp-pass-1", new_password="New-pass-123"
    )
    assert signed_in.user == "eva@example.com" and signed_in.token.count(".") == 2
    again = ControlApiClient.from_settings(aws, email="eva@example.com", password="New-pass-123")
    assert again.token and again.token != settings.api_token

    with pytest.raises(NotSignedInError, match=r"from_settings\(email=\.\.\., password=\.\.\.\)"):
        ControlApiClient.from_settings(aws).config()
    local = ControlApiClient.from_settings(settings, email="eva@example.com", password="x")
    assert local.token == settings.api_token and local.user is None
    with pytest.raises(ValueError, match="signing in as 'eva@example.com' needs the password"):
        ControlApiClient.from_settings(aws, email="eva@example.com")
