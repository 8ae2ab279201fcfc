"""The dashboard's logic without a browser or a backend: reachability and backoff, the schedule,
counts over time, the control panel's form and PUT bodies, what each part shows, the chart; the
client's Cognito tokens renewed before they expire (moto's Cognito, in process)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from moto import mock_aws

from kit.aws import create_cognito_user
from kit.core.contracts import CameraOverrides, parse
from kit.core.settings import Settings, load_settings
from kit.dashboard import (
    BackendState,
    Backoff,
    ControlApiClient,
    CountHistory,
    Schedule,
    camera_form,
    overrides_body,
)
from kit.dashboard.chart import counts_chart_png
from kit.dashboard.client import (
    REFRESH_MARGIN_S,
    BackendUnreachableError,
    ControlApiError,
    NotSignedInError,
    jwt_expiry,
    missing_url_hint,
)
from kit.dashboard.config_form import (
    apply_rule_row,
    changes,
    model_classes,
    model_label,
    model_options,
    model_ref,
)
from kit.dashboard.history import iso, parse_time
from kit.dashboard.views import age_text, alert_html, banner_html, camera_html, devices_html
from kit.dashboard.widgets import error_text

T0 = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)


def payload(pid: str, seconds: float, **counts: int) -> dict:
    return {
        "payload_id": pid,
        "captured_at": iso(T0 + timedelta(seconds=seconds)),
        "counts": counts,
    }


# -- reachability, backoff, schedule ------------------------------------------------------------
def test_backoff_doubles_up_to_its_limit_and_refuses_nonsense():
    backoff = Backoff(initial_s=0.5, max_s=4)
    assert [backoff.delay_s(n) for n in range(6)] == [0.0, 0.5, 1.0, 2.0, 4.0, 4.0]
    assert Backoff().delay_s(10_000) == 30.0
    with pytest.raises(ValueError, match="initial_s=5, max_s=1"):
        Backoff(initial_s=5, max_s=1)


def test_an_outage_keeps_its_start_time_and_its_length_is_kept_after_recovery():
    state = BackendState(backoff=Backoff(initial_s=1, max_s=8))
    assert state.reachable is None

    state.succeeded(T0)
    assert state.failed("refused", T0 + timedelta(seconds=10)) == 1.0
    assert state.failed("timeout", T0 + timedelta(seconds=11)) == 2.0

    assert (state.reachable, state.down_since, state.last_error) == (
        False,
        T0 + timedelta(seconds=10),
        "timeout",
    )
    state.succeeded(T0 + timedelta(seconds=40))
    assert (state.reachable, state.down_since, state.failures, state.retry_in_s) == (
        True,
        None,
        0,
        0.0,
    )
    assert state.recovered_after_s == 30.0


def test_schedule_runs_each_job_at_its_own_rate():
    schedule = Schedule()
    assert schedule.next_in(0.0) == float("inf")
    for job, every in (("alerts", 5.0), (("frame", "shelf-1"), 1.0)):
        assert schedule.is_due(job, 0.0)
        schedule.done(job, every, 0.0)

    assert not schedule.is_due("alerts", 1.0) and schedule.is_due(("frame", "shelf-1"), 1.0)
    assert schedule.next_in(0.25) == 0.75
    schedule.forget("alerts")
    assert schedule.is_due("alerts", 0.1)
    schedule.reset()
    assert schedule.is_due(("frame", "shelf-1"), 0.0)


# -- counts over time ---------------------------------------------------------------------------
def test_history_keeps_each_payload_once_in_time_order_with_zeros_for_missing_classes():
    history = CountHistory(window_s=600)

    assert history.add([payload("b", 5, bottle=2), payload("a", 0, bottle=3, person=1)])
    assert not history.add([payload("b", 5, bottle=2)])

    times, bottles = history.series()["bottle"]
    assert times == [T0, T0 + timedelta(seconds=5)] and bottles == [3, 2]
    assert history.series()["person"][1] == [1, 0]
    assert history.latest_counts() == {"bottle": 2}


def test_history_counts_zones_and_keeps_only_its_window_and_size():
    history = CountHistory(window_s=60, max_points=3)
    zoned = {**payload("z", 100, fish=5), "zone_counts": {"tank": {"fish": 4}}}

    history.add([payload(str(i), i * 20, fish=i) for i in range(5)] + [zoned])

    assert [p.payload_id for p in history.points] == ["3", "4", "z"]
    assert history.series()["fish in tank"][1] == [0, 0, 4]
    with pytest.raises(ValueError, match="window_s must be > 0"):
        CountHistory(window_s=0)


def test_history_asks_for_the_newest_first_then_only_what_came_after():
    history = CountHistory(window_s=900, max_points=50)

    first = history.next_query(now=T0)
    history.add([payload("a", 0, bottle=1), payload("b", 3, bottle=1)])
    then = history.next_query(now=T0 + timedelta(hours=1))

    assert first == {"since": "2026-01-31T11:45:00.000000Z", "order": "desc", "limit": 50}
    assert then == {"since": "2026-01-31T12:00:03.000000Z", "order": "asc", "limit": 50}


def test_api_times_parse_with_z_or_offset_and_refuse_naive_ones():
    assert parse_time("2026-01-31T13:00:00+01:00") == T0
    assert parse_time("2026-01-31T12:00:00.000000Z") == T0
    with pytest.raises(ValueError, match="has no timezone"):
        parse_time("2026-01-31T12:00:00")


# -- the control panel's form -------------------------------------------------------------------
def camera_config(rules: list[dict], overrides: dict | None = None, **settings) -> dict:
    """A GET /config/{camera} answer whose resolved rules are filled in like the server's."""
    resolved = {"model": None, "confidence": 0.25, "refresh_s": 5, **settings}
    resolved["rules"] = [
        parse(CameraOverrides, {"rules": [rule]}).rules[0].model_dump(mode="json") for rule in rules
    ]
    return {"camera_id": "shelf-1", "revision": 7, "settings": resolved, "overrides": overrides}


LOW_STOCK = {
    "type": "count_below",
    "name": "low-stock",
    "class_name": "bottle",
    "threshold": 3,
    "cooldown_s": 60,
}


def test_an_untouched_form_changes_nothing():
    config = camera_config([LOW_STOCK], overrides={"refresh_s": 5, "rules": [LOW_STOCK]})

    form = camera_form(config, classes=["bottle"])

    assert overrides_body(config, form) == config["overrides"]
    assert changes(config, form) == []
    assert form.rules["count_below"].params == {
        "class_name": "bottle",
        "threshold": 3,
        "hysteresis": 1,
        "min_duration_s": 0,
    }
    assert not form.rules["count_above"].enabled


def test_changing_the_threshold_updates_that_rule_and_keeps_its_other_fields():
    config = camera_config([LOW_STOCK], overrides=None)
    form = camera_form(config, classes=["bottle"])

    form.rules["count_below"].params["threshold"] = 5
    body = overrides_body(config, form)

    [rule] = body["rules"]
    assert (rule["name"], rule["threshold"], rule["cooldown_s"], rule["enabled"]) == (
        "low-stock",
        5,
        60,
        True,
    )
    assert set(body) == {"rules"}
    assert parse(CameraOverrides, body).rules[0].threshold == 5
    assert changes(config, form) == [
        "count_below: class_name=bottle, threshold=5, hysteresis=1, min_duration_s=0"
    ]


def test_enabling_a_new_rule_adds_it_and_disabling_one_keeps_it_switched_off():
    config = camera_config([LOW_STOCK])
    form = camera_form(config, classes=["fish"])
    form.rules["rising_trend"].enabled = True
    form.rules["count_below"].enabled = False

    body = overrides_body(config, form)

    below, trend = body["rules"]
    assert below["enabled"] is False and below["threshold"] == 3
    assert trend == {
        "type": "rising_trend",
        "class_name": "fish",
        "min_slope_per_min": 1.0,
        "window": 12,
        "min_duration_s": 0,
    }
    assert parse(CameraOverrides, body).rules[1].min_points == 6
    assert changes(config, form) == [
        "count_below: class_name=bottle, threshold=3, hysteresis=1, min_duration_s=0 (disabled)",
        "rising_trend: added class_name=fish, min_slope_per_min=1.0, window=12, min_duration_s=0",
    ]


def test_model_confidence_and_refresh_are_overridden_only_when_changed():
    config = camera_config([], overrides={"model": {"name": "shelf", "version": 1}})
    form = camera_form(config, classes=[])
    assert form.model == "shelf:1"

    form.confidence = 0.25 + 1e-12
    assert overrides_body(config, form) == config["overrides"]

    form.model, form.confidence, form.refresh_s = "shelf:latest", 0.5, 2
    assert overrides_body(config, form) == {
        "model": {"name": "shelf", "version": "latest"},
        "confidence": 0.5,
        "refresh_s": 2,
    }
    form.model = None
    assert "model" not in overrides_body(config, form)
    assert changes(config, form)[0] == "model → default"


def test_rule_rows_apply_to_the_first_rule_of_their_type_only():
    rules = [dict(LOW_STOCK), {**LOW_STOCK, "name": "empty", "threshold": 1}]
    form = camera_form(camera_config(rules), classes=[])
    row = form.rules["count_below"]
    row.params["threshold"] = 9

    edited = apply_rule_row(rules, row)

    assert [r["threshold"] for r in edited] == [9, 1] and rules[0]["threshold"] == 3


def test_model_labels_options_and_classes():
    models = [
        {"name": "shelf", "version": 1, "classes": ["bottle"]},
        {"name": "shelf", "version": 2, "classes": ["bottle", "can"]},
        {"name": "ppe", "version": 1, "classes": ["person", "helmet"]},
    ]
    assert model_ref("shelf:2") == {"name": "shelf", "version": 2}
    assert model_ref("shelf") == {"name": "shelf", "version": "latest"}
    assert model_label({"name": "shelf", "version": "production"}) == "shelf:production"
    assert model_ref(None) is None and model_label(None) is None

    options = model_options(models, current="fish:3", inherited="shelf:1")

    assert options == [
        ("default (shelf:1)", ""),
        ("ppe:latest", "ppe:latest"),
        ("ppe:1", "ppe:1"),
        ("shelf:latest", "shelf:latest"),
        ("shelf:2", "shelf:2"),
        ("shelf:1", "shelf:1"),
        ("fish:3", "fish:3"),
    ]
    assert model_classes(models, "shelf:latest") == ["bottle", "can"]
    assert model_classes(models, "shelf:1") == ["bottle"]
    assert model_classes(models, "fish:1") == [] and model_classes(models, None) == []


# -- what the parts show ------------------------------------------------------------------------
def test_banner_says_connected_unreachable_since_recovered_or_sign_in():
    state = BackendState()
    url = "http://127.0.0.1:8088"
    assert "Connecting to http://127.0.0.1:8088" in banner_html(state, api_url=url, now=T0)

    state.failed("BackendUnreachableError: ConnectionError <refused>", T0)
    down = banner_html(state, api_url=url, now=T0)
    assert "Backend unreachable since 12:00:00 UTC" in down and "retrying in 1 s" in down
    assert "&lt;refused&gt;" in down

    state.succeeded(T0 + timedelta(seconds=42))
    up = banner_html(state, api_url=url, now=T0, backend={"target": "local", "version": "0.1.0"})
    assert "(local, kit 0.1.0) · updated 12:00:42 UTC" in up
    assert "recovered after 42 s unreachable" in up
    assert "Sign in" in banner_html(state, api_url=url, now=T0, signed_in=False)


def test_alerts_cameras_and_devices_are_shown_escaped():
    alert = {
        "alert_id": "a1",
        "camera_id": "shelf-1",
        "rule": "low-stock",
        "rule_type": "count_below",
        "state": "ACKED",
        "message": "bottle count 1 is below 3 <b>",
        "opened_at": iso(T0),
        "acked_by": "ana@example.com",
    }
    html = alert_html(alert, T0 + timedelta(minutes=5))
    assert "ACKED" in html and "below 3 &lt;b&gt;" in html and "5 min ago" in html
    assert "acked by ana@example.com" in html

    camera = {
        "camera_id": "shelf-1",
        "counts": {"bottle": 2},
        "model": "shelf:1",
        "refresh_s": 5,
        "last_seen": iso(T0),
        "active_alerts": [{"rule": "low-stock", "alert_id": "a1"}],
    }
    caption = camera_html(camera, T0 + timedelta(seconds=3))
    assert "bottle 2" in caption and "every 5 s" in caption and "3 s ago" in caption
    assert "1 active alert" in caption and "low-stock" in caption

    device = {
        "device_id": "demo-1",
        "health": "ERROR",
        "heartbeat_age_s": 4.2,
        "cameras": {"shelf-1": {"state": "failed", "fps": 0}},
        "spool_depth": 3,
        "app_version": "0.1.0",
    }
    table = devices_html([device])
    # a camera that receives no frames shows no rate
    assert "ERROR" in table and "shelf-1 failed" in table and "4 s ago" in table
    assert "fps" not in table
    running = {
        **device,
        "health": "RUNNING",
        "uptime_s": 100.0,
        "cameras": {"shelf-1": {"state": "running", "fps": 9.8, "frames_published": 50}},
    }
    assert "shelf-1 running 9.8 fps · publishes 0.5/s" in devices_html([running])
    assert "fps" not in devices_html([{**running, "health": "STOPPED"}])
    assert "No device" in devices_html([])
    assert age_text(None, T0) == "never" and age_text(T0, T0 + timedelta(hours=3)) == "3 h ago"


def test_refused_values_are_explained_with_every_problem():
    error = ControlApiError(
        "invalid CameraOverrides",
        status=400,
        method="PUT",
        path="/config/shelf-1",
        problems=[{"field": "refresh_s", "allowed": "≥ 1", "value": 0}],
    )
    assert error_text(error) == "Refused (400): invalid CameraOverrides\nrefresh_s: ≥ 1 (got 0)"
    assert str(error) == "PUT /config/shelf-1 answered 400: invalid CameraOverrides"


def test_the_chart_is_a_png_that_changes_with_the_data():
    one = counts_chart_png({"bottle": ([T0, T0 + timedelta(seconds=5)], [3, 2])}, title="t")
    two = counts_chart_png({"bottle": ([T0, T0 + timedelta(seconds=5)], [3, 1])}, title="t")
    empty = counts_chart_png({})

    assert one.startswith(b"\x89PNG") and empty.startswith(b"\x89PNG")
    assert len({one, two, empty}) == 3


# -- the client without a backend ---------------------------------------------------------------
def test_client_urls_tokens_and_missing_urls(tmp_path, monkeypatch):
    client = ControlApiClient("http://127.0.0.1:1/", token="t" * 8)
    assert client.url("/alerts/2026 x/ack") == "http://127.0.0.1:1/alerts/2026%20x/ack"
    with pytest.raises(ValueError, match="must start with http:// or https://"):
        ControlApiClient("127.0.0.1:8088")

    local = load_settings(state_dir=tmp_path, api_url=None)
    with pytest.raises(ValueError, match="start the local stack with `kit local up`"):
        ControlApiClient.from_settings(local)
    waiting = ControlApiClient.from_settings(local, require_url=False)
    assert waiting.base_url is None and waiting.token == local.api_token

    monkeypatch.setenv("HTTP_X_AMZN_OIDC_ACCESSTOKEN", "token-from-the-load-balancer")
    aws = load_settings(state_dir=tmp_path, target="aws", api_url="https://api.example.com")
    assert ControlApiClient.from_settings(aws).token == "token-from-the-load-balancer"
    assert "kit aws outputs" in missing_url_hint(aws)


# -- Cognito tokens renewed before they expire ----------------------------------------------------
class Clock:
    """The time a client sees, moved by the test (seconds since the epoch)."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC).timestamp()

    def __call__(self) -> float:
        return self.now


def _claims(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def _jwt(**claims) -> str:
    def part(value: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none'})}.{part(claims)}.signature"


@pytest.fixture
def cognito_user(monkeypatch):
    """A user of a Cognito pool whose API client may refresh tokens, as infra/auth.py builds it."""
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        cognito = boto3.client("cognito-idp", region_name="eu-west-1")
        pool = cognito.create_user_pool(PoolName="evk-users", UsernameAttributes=["email"])[
            "UserPool"
        ]["Id"]
        client_id = cognito.create_user_pool_client(
            UserPoolId=pool,
            ClientName="evk-api",
            ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
        )["UserPoolClient"]["ClientId"]
        settings = Settings(
            target="aws",
            api_url="http://127.0.0.1:1",
            cognito_user_pool_id=pool,
            cognito_client_id=client_id,
        )
        create_cognito_user(
            settings,
            "eva@example.com",
            temporary_password="Temp-pass-1",
            send_invitation=False,
            client=cognito,
        )
        yield settings, cognito


def test_a_signed_in_client_renews_its_token_before_it_expires(cognito_user):
    settings, cognito = cognito_user
    clock = Clock()
    client = ControlApiClient.from_settings(settings, cognito=cognito, clock=clock)
    client.sign_in("eva@example.com", "Temp-pass-1", new_password="New-pass-123")
    first = client.token
    assert _claims(first)["token_use"] == "id" and client.refresh_token
    expires_at = client.token_expires_at
    assert expires_at == pytest.approx(clock.now + 3600)

    clock.now = expires_at - REFRESH_MARGIN_S - 1
    assert client.fresh_token() == first, "still well within its hour: kept"

    clock.now = expires_at - REFRESH_MARGIN_S + 1
    renewed = client.fresh_token()
    assert renewed != first and _claims(renewed)["token_use"] == "id"
    assert _claims(renewed)["aud"] == settings.cognito_client_id
    assert client.token_expires_at == pytest.approx(clock.now + 3600)

    # a request renews too, before it is sent (this one then finds no API at the URL)
    clock.now = client.token_expires_at + 60
    with pytest.raises(BackendUnreachableError):
        client.config()
    assert client.token not in (first, renewed)
    assert client.token_expires_at > clock.now


def test_a_refused_renewal_ends_the_session_with_a_clear_message(cognito_user):
    settings, cognito = cognito_user
    clock = Clock()
    client = ControlApiClient.from_settings(
        settings, cognito=cognito, clock=clock, email="eva@example.com",
        password="Temp-pass-1", new_password="New-pass-123",
    )  # fmt: skip
    client.refresh_token = "revoked-or-expired"
    clock.now = client.token_expires_at
    with pytest.raises(NotSignedInError, match="the session ended: Cognito refused to renew"):
        client.config()
    assert client.token is None, "the dashboard then asks to sign in again"


def test_a_handed_in_token_is_sent_until_it_expires_then_asks_for_a_reload():
    clock = Clock()
    settings = Settings(target="aws", api_url="http://127.0.0.1:1")
    token = _jwt(exp=int(clock.now) + 600, token_use="access")
    client = ControlApiClient.from_settings(settings, token=token, clock=clock)
    assert client.token_expires_at == int(clock.now) + 600 and client.refresh_token is None
    assert client.fresh_token() == token
    clock.now += 601
    with pytest.raises(NotSignedInError, match="expired at .* UTC and cannot be renewed here"):
        client.config()
    assert jwt_expiry("evk-local-token") is None and jwt_expiry("a.b.c") is None
    local = ControlApiClient("http://127.0.0.1:1", token="evk-local-token", clock=clock)
    clock.now += 10 * 365 * 86400
    assert local.fresh_token() == "evk-local-token", "the local token never expires"
