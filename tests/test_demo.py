"""The main job end to end (`kit demo`): three use cases live on the local target, each raising the
alert its scenario implies, the dashboard served, and everything stopped afterwards."""

from __future__ import annotations

import time

import psutil
import requests

from kit.core.settings import load_settings
from kit.demo import DEVICE_ID, run_demo, stop_demo
from kit.deploy.status import device_status
from kit.local import LocalStack
from kit.local.processes import free_port
from kit.local.runner import read_alert_inbox


def test_demo_runs_the_three_use_cases_and_stops_everything(tmp_path):
    settings = load_settings(
        state_dir=tmp_path / "state", local_port=0, api_port=0, prefix="demotest"
    )
    port = free_port()
    before = {p.pid for p in psutil.process_iter()}
    try:
        assert run_demo(settings, port=port, detach=True) == 0
        page = requests.get(f"http://127.0.0.1:{port}/", timeout=30)
        assert page.status_code == 200 and "dashboard" in page.text.lower()
        statuses = {s.device_id: s for s in device_status(settings)}
        assert statuses[DEVICE_ID].health == "RUNNING"

        opened, deadline = {}, time.monotonic() + 150
        while len(opened) < 3 and time.monotonic() < deadline:
            for notice in read_alert_inbox(settings, wait_s=5):
                if notice.state == "OPEN":
                    opened.setdefault(notice.attributes.get("camera_id"), notice.subject)
        assert set(opened) == {"shelf-1", "pond-1", "site-1"}, opened
        assert "bottle count" in opened["shelf-1"] and "rising" in opened["pond-1"]
        assert "without helmet" in opened["site-1"]

        # run again: everything is reused, nothing is duplicated
        assert run_demo(settings, port=port, detach=True) == 0
        config = requests.get(
            f"{settings.control_api_url()}/config",
            headers={"Authorization": f"Bearer {settings.api_token}"},
            timeout=10,
        ).json()
        assert sorted(config["cameras"]) == ["pond-1", "shelf-1", "site-1"]
    finally:
        stop_demo(settings)
    assert not LocalStack(settings).status().running
    started = {p.pid for p in psutil.process_iter()} - before
    alive = [
        p
        for p in map(psutil.Process, started)
        if p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    ]
    assert not [p.cmdline() for p in alive if "python" in " ".join(p.cmdline())]
