"""The dashboard against a real control API (the local runner over moto): what it shows, what
its buttons and the control panel do, how it survives the backend going away, and how it stops."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import nbformat
import papermill
import pytest

from kit.aws import create_cognito_user
from kit.dashboard import Backoff, ControlApiClient, Dashboard
from kit.local.processes import free_port, port_in_use


@pytest.fixture(scope="module")
def shelf_history(served_backend, feed, api, wait, make_shelf_frame):
    """shelf-1 with a count_below rule, a registered model, three payloads and a heartbeat."""
    feed.register_model("shelf", 1, ["bottle"])
    api.put(
        "/config/shelf-1",
        {
            "refresh_s": 1,
            "rules": [
                {"type": "count_below", "name": "low-stock", "class_name": "bottle", "threshold": 1}
            ],
        },
    )
    frame = make_shelf_frame(seed=3, fill=1.0)
    sent = [feed.publish("shelf-1", {"bottle": n}) for n in (frame.bottles, frame.bottles - 1)]
    sent.append(feed.publish("shelf-1", {"bottle": frame.bottles}, jpeg=frame.jpeg))
    feed.heartbeat({"shelf-1": "running"})
    wait(lambda: api.camera_seen("shelf-1", sent[-1].payload_id), 30, "the payloads processed")
    wait(lambda: api.get("/devices")["items"], 30, "the heartbeat processed")
    return frame, sent


def test_one_refresh_shows_frames_counts_alerts_devices_and_models(served_backend, shelf_history):
    settings, _ = served_backend
    frame, sent = shelf_history
    dashboard = Dashboard(settings)

    state = dashboard.refresh_once()

    assert state.reachable is True
    card = dashboard.grid.cards["shelf-1"]
    assert bytes(card.frame.value) == frame.jpeg
    assert card.frame_key == sent[-1].frame_key
    assert bytes(card.chart.value).startswith(b"\x89PNG")
    assert [p.payload_id for p in dashboard.histories["shelf-1"].points] == [
        p.payload_id for p in sent
    ]
    assert f"bottle {frame.bottles}" in card.caption.value
    assert "demo-1" in dashboard.devices.table.value and "RUNNING" in dashboard.devices.table.value
    assert dashboard.control.camera.value == "shelf-1"
    assert "shelf:1" in [value for _, value in dashboard.control.model.options]
    assert "Backend " in dashboard.banner.widget.value and "unreachable" not in (
        dashboard.banner.widget.value
    )


def test_the_control_panel_writes_a_threshold_and_shows_what_the_server_refuses(
    served_backend, shelf_history, api, feed
):
    settings, _ = served_backend
    dashboard = Dashboard(settings)
    dashboard.refresh_once()
    panel = dashboard.control
    below = panel.rules["count_below"].inputs
    assert panel.camera.value == "shelf-1" and below["threshold"].value == 1
    assert below["class_name"].value == "bottle" and panel.refresh_s.value == 1

    below["threshold"].value = 4
    panel.apply_button.click()

    assert "Saved shelf-1" in panel.message.value and "threshold=4" in panel.message.value
    [rule] = api.get("/config")["cameras"]["shelf-1"]["rules"]
    assert (rule["name"], rule["threshold"]) == ("low-stock", 4)

    # Values the contracts refuse: the server's 400 names both, nothing is written.
    panel.refresh_s.value = 0
    below["threshold"].value = -2
    panel.apply_button.click()
    assert "Refused (400)" in panel.message.value
    assert (
        "refresh_s" in panel.message.value
        and "rules[0].count_below.threshold" in panel.message.value
    )
    assert api.get("/config/shelf-1")["settings"]["refresh_s"] == 1

    # A model the registry no longer has: the server's 422.
    panel.refresh_s.value, below["threshold"].value = 1, 4
    feed.s3.delete_object(Bucket=settings.resources.bucket, Key="models/shelf/1/metadata.json")
    try:
        panel.model.value = "shelf:1"
        panel.apply_button.click()
        assert "Refused (422)" in panel.message.value and "shelf" in panel.message.value
    finally:
        feed.register_model("shelf", 1, ["bottle"])

    # Someone else changed the config meanwhile: 409, Reload reads it, then the change applies.
    current = api.get("/config/shelf-1")["overrides"]
    api.put("/config/shelf-1", {**current, "refresh_s": 2})
    panel.apply_button.click()
    assert "Refused (409)" in panel.message.value and "Reload" in panel.message.value
    panel.reload_button.click()
    assert panel.refresh_s.value == 2 and panel.model.value == ""
    panel.refresh_s.value = 1
    panel.apply_button.click()
    assert "Saved shelf-1" in panel.message.value
    assert api.get("/config/shelf-1")["overrides"] == {**current, "refresh_s": 1}
    panel.apply_button.click()
    assert "Nothing changed" in panel.message.value


def test_acknowledge_moves_an_open_alert_to_acked_and_explains_a_refusal(
    served_backend, shelf_history, api, feed, wait
):
    settings, _ = served_backend
    threshold = api.get("/config/shelf-1")["settings"]["rules"][0]["threshold"]
    empty = feed.publish("shelf-1", {"bottle": 0})
    [alert] = wait(lambda: api.get("/alerts", state="OPEN")["items"], 30, "the OPEN alert")
    assert (alert["payload_id"], alert["threshold"]) == (empty.payload_id, threshold)
    dashboard = Dashboard(settings)
    dashboard.refresh_once()
    text, button, _ = dashboard.alerts.rows[alert["alert_id"]]
    assert "OPEN" in text.value and button.layout.visibility == "visible"

    button.click()

    assert api.get("/alerts", state="ACKED")["items"][0]["alert_id"] == alert["alert_id"]
    assert "Acknowledged shelf-1 · low-stock" in dashboard.alerts.note.value
    assert "ACKED" in text.value and button.layout.visibility == "hidden"

    full = feed.publish("shelf-1", {"bottle": threshold + 5})
    wait(lambda: api.camera_seen("shelf-1", full.payload_id), 30, "the full shelf processed")
    wait(lambda: api.get("/alerts", state="RESOLVED")["items"], 30, "the alert RESOLVED")
    dashboard.acknowledge(alert["alert_id"])
    assert "Refused (409)" in dashboard.alerts.note.value
    assert "only OPEN alerts can be acknowledged" in dashboard.alerts.note.value


def test_polling_updates_the_frame_in_the_background_and_stop_ends_the_thread(
    served_backend, shelf_history, feed, make_shelf_frame, wait
):
    settings, _ = served_backend
    dashboard = Dashboard(settings, poll_s=0.5, chart_every_s=1)
    new_frame = make_shelf_frame(seed=8, fill=0.5)

    with dashboard:
        assert dashboard.running
        card = wait(lambda: dashboard.grid.cards.get("shelf-1"), 20, "the shelf-1 card")
        wait(lambda: card.frame_key is not None, 20, "the first frame")
        sent = feed.publish("shelf-1", {"bottle": new_frame.bottles}, jpeg=new_frame.jpeg)
        wait(lambda: card.frame_key == sent.frame_key, 20, "the new frame shown")
        assert bytes(card.frame.value) == new_frame.jpeg
        wait(
            lambda: (
                sent.payload_id in {p.payload_id for p in dashboard.histories["shelf-1"].points}
            ),
            20,
            "the new payload in the chart",
        )

    assert not dashboard.running
    assert not [t for t in threading.enumerate() if t.name == "evk-dashboard"]
    dashboard.stop()


def test_the_dashboard_survives_the_backend_going_away_and_recovers_by_itself(
    served_backend, wait, tmp_path
):
    settings, _ = served_backend
    port = free_port("127.0.0.1")
    env = {**os.environ, **settings.model_copy(update={"api_url": None}).as_env()}
    command = [sys.executable, "-m", "kit.local.runner", "--port", str(port)]

    def start_backend() -> subprocess.Popen:
        with open(tmp_path / "runner.log", "a") as log:
            process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        wait(lambda: port_in_use("127.0.0.1", port), 30, "the runner's port")
        return process

    backend = start_backend()
    client = ControlApiClient(f"http://127.0.0.1:{port}", settings.api_token, timeout_s=2)
    dashboard = Dashboard(settings, client, poll_s=0.2, backoff=Backoff(initial_s=0.1, max_s=0.4))
    try:
        with dashboard:
            wait(lambda: dashboard.state.reachable, 20, "the first answer")
            backend.terminate()
            backend.wait(timeout=20)
            wait(lambda: dashboard.state.failures >= 3, 20, "failed attempts, retried")
            banner = dashboard.banner.widget.value
            assert "Backend unreachable since" in banner and "ConnectionError" in banner
            assert dashboard.running

            backend = start_backend()
            wait(lambda: dashboard.state.reachable, 20, "the dashboard to recover")
            assert "recovered after" in dashboard.banner.widget.value
    finally:
        backend.terminate()
        backend.wait(timeout=20)
    assert not dashboard.running


def test_a_wrong_local_token_is_reported_not_retried_silently(served_backend):
    settings, _ = served_backend
    client = ControlApiClient(settings.api_url, token="not-the-token", timeout_s=5)
    dashboard = Dashboard(settings, client)

    state = dashboard.refresh_once()

    assert state.reachable is False
    assert "refused the token" in dashboard.banner.widget.value


def test_on_aws_the_login_box_signs_in_with_cognito_and_comes_back_when_refused(
    served_backend, local_stack
):
    settings, _ = served_backend
    cognito = settings.client("cognito-idp")
    pool = cognito.create_user_pool(PoolName="evk-dashboard-test")["UserPool"]["Id"]
    app = cognito.create_user_pool_client(
        UserPoolId=pool, ClientName="dashboard", ExplicitAuthFlows=["USER_PASSWORD_AUTH"]
    )["UserPoolClient"]["ClientId"]
    aws = settings.model_copy(
        update={"target": "aws", "cognito_user_pool_id": pool, "cognito_client_id": app}
    )
    create_cognito_user(
        aws,
        "ana@example.com",
        temporary_password="Temp-pass-1",
        send_invitation=False,
        client=cognito,
    )
    dashboard = Dashboard(aws, ControlApiClient.from_settings(aws, cognito=cognito))
    login = dashboard.login

    assert dashboard.client.token is None and login.widget.layout.display is None
    dashboard.refresh_once()
    assert "Sign in" in dashboard.banner.widget.value and not dashboard.grid.cards

    login.email.value, login.password.value = "ana@example.com", "Temp-pass-1"
    login.button.click()
    assert "give new_password" in login.message.value and dashboard.client.token is None

    login.new_password.value = "New-pass-123"
    login.button.click()
    assert "Signed in as ana@example.com" in login.message.value
    assert dashboard.client.token and login.widget.layout.display == "none"

    # This API is the local one: it refuses a Cognito token (401), as an expired one would be.
    dashboard.refresh_once()
    assert dashboard.client.token is None and login.widget.layout.display is None
    assert "sign in again" in login.message.value

    login.password.value = "wrong-password-1"
    login.button.click()
    assert "Sign-in failed" in login.message.value


def test_the_notebook_runs_headless_with_papermill(served_backend, shelf_history, tmp_path):
    settings, _ = served_backend
    notebook = Path(__file__).resolve().parents[3] / "notebooks" / "dashboard.ipynb"
    env = settings.as_env()

    with_env = dict(os.environ)
    try:
        os.environ.update(env)
        papermill.execute_notebook(
            str(notebook),
            str(tmp_path / "out.ipynb"),
            parameters={"headless": True},
            kernel_name="python3",
            cwd=str(notebook.parent),
            progress_bar=False,
        )
    finally:
        os.environ.clear()
        os.environ.update(with_env)

    executed = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    outputs = [o for cell in executed.cells for o in cell.get("outputs", [])]
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)
    assert not [o for o in outputs if o.get("output_type") == "error"]


def test_a_hanging_backend_never_blocks_the_caller(served_backend, wait):
    settings, _ = served_backend
    with socket.socket() as silent:  # accepts connections into its backlog, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        client = ControlApiClient(
            f"http://127.0.0.1:{silent.getsockname()[1]}", settings.api_token, timeout_s=0.5
        )
        dashboard = Dashboard(settings, client, backoff=Backoff(initial_s=0.2, max_s=0.2))

        started = time.monotonic()
        dashboard.start()
        assert time.monotonic() - started < 0.5

        wait(lambda: dashboard.state.failures >= 2, 10, "timed-out attempts")
        assert "Timeout" in dashboard.banner.widget.value
        dashboard.stop()
    assert not dashboard.running


def test_without_a_local_stack_it_says_how_to_start_one_and_follows_it_once_up(
    served_backend, tmp_path
):
    settings, _ = served_backend
    waiting = settings.model_copy(update={"api_url": None, "state_dir": tmp_path})
    dashboard = Dashboard(waiting)

    assert dashboard.refresh_once().reachable is False
    assert "start the local stack with `kit local up`" in dashboard.banner.widget.value

    waiting.local_dir.mkdir(parents=True)
    (waiting.local_dir / "stack.json").write_text(json.dumps({"api_url": settings.api_url}))
    assert dashboard.refresh_once().reachable is True
    assert dashboard.client.base_url == settings.api_url and "shelf-1" in dashboard.grid.cards
