"""The main job end to end (`kit demo`): three use cases live on the local target, each raising the
alert its scenario implies, the dashboard served, a second run reusing what runs, and everything
stopped by SIGTERM to ``kit demo`` as a service manager or ``make`` sends it (``stop_demo``, which
``kit demo --stop`` and Ctrl-C run too)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import psutil
import pytest
import requests

from kit.core.settings import Settings, load_settings
from kit.demo import DEVICE_ID, dashboard_record, run_demo, stop_demo
from kit.deploy.local import LocalDevice
from kit.deploy.status import device_status
from kit.local import LocalStack
from kit.local.processes import free_port, port_in_use
from kit.local.runner import read_alert_inbox
from tests.support.wait import process_tree, wait_until, wait_until_exited

ALERT_TIMEOUT_S = 300
"""Failure bound for the three scenario alerts: the videos play in real time and the edge app
detects at 5 fps per camera, slower still on a loaded machine."""


def demo_processes(settings: Settings) -> dict[str, list[psutil.Process]]:
    """What the demo started, by the pids kit recorded (the local stack's services, the device's
    app, the dashboard), each with its descendants (the dashboard's kernels among them)."""
    stack = LocalStack(settings).status()
    pids = {name: service["pid"] for name, service in stack.services.items()}
    for name, record in (
        ("device", LocalDevice(settings, DEVICE_ID).process_record()),
        ("dashboard", dashboard_record(settings)),
    ):
        assert record is not None and record.is_alive(), f"the demo's {name} is not running"
        pids[name] = record.pid
    assert set(pids) == {"moto", "runner", "device", "dashboard"}, pids
    return {name: process_tree(pid) for name, pid in pids.items()}


@pytest.mark.timeout(900)
def test_demo_runs_the_three_use_cases_and_sigterm_stops_everything(tmp_path):
    """GIVEN `kit demo` running in the foreground THEN the dashboard is served and each camera
    raises the alert its scenario implies; a second `kit demo` reuses what runs; WHEN `kit demo`
    gets SIGTERM (as a service manager or `make` sends it) THEN it stops what it started, as
    Ctrl-C does: every process it recorded exits and its ports are free."""
    state_dir = tmp_path / "state"
    port = free_port()
    env = {
        **os.environ,
        "EVK_STATE_DIR": str(state_dir),
        "EVK_LOCAL_PORT": "0",
        "EVK_API_PORT": "0",
        "EVK_PREFIX": "demotest",
    }
    settings = load_settings(state_dir=state_dir, local_port=0, api_port=0, prefix="demotest")
    output = tmp_path / "kit-demo.out"
    with open(output, "w") as out:
        demo = subprocess.Popen(
            [str(Path(sys.executable).with_name("kit")), "demo", f"--port={port}"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=tmp_path,
        )
    started: list[psutil.Process] = []
    try:
        wait_until(
            lambda: demo.poll() is not None or "stop with:" in output.read_text(),
            ALERT_TIMEOUT_S,
            what="kit demo ready",
        )
        assert demo.poll() is None, f"kit demo exited with {demo.returncode}:\n{output.read_text()}"
        page = requests.get(f"http://127.0.0.1:{port}/", timeout=60)
        assert page.status_code == 200 and "dashboard" in page.text.lower()
        first = demo_processes(settings)
        started += [process for tree in first.values() for process in tree]
        statuses = {s.device_id: s for s in device_status(settings)}
        assert statuses[DEVICE_ID].health == "RUNNING"

        opened: dict[str, str] = {}

        def each_camera_alerted() -> bool:
            for notice in read_alert_inbox(settings, wait_s=5):
                if notice.state == "OPEN":
                    opened.setdefault(notice.attributes.get("camera_id"), notice.subject)
            return len(opened) >= 3

        wait_until(each_camera_alerted, ALERT_TIMEOUT_S, what="an OPEN alert from each camera")
        assert set(opened) == {"shelf-1", "pond-1", "site-1"}, opened
        assert "bottle count" in opened["shelf-1"] and "rising" in opened["pond-1"]
        assert "without helmet" in opened["site-1"]

        # run again: everything is reused, nothing is duplicated
        assert run_demo(settings, port=port, detach=True) == 0
        again = demo_processes(settings)
        started += [process for tree in again.values() for process in tree]
        for name in ("moto", "runner", "dashboard"):
            assert again[name][0] == first[name][0], f"the {name} process was not reused"
        config = requests.get(
            f"{settings.control_api_url()}/config",
            headers={"Authorization": f"Bearer {settings.api_token}"},
            timeout=10,
        ).json()
        assert sorted(config["cameras"]) == ["pond-1", "shelf-1", "site-1"]

        endpoints = [
            LocalStack(settings).endpoint_url,
            settings.control_api_url(),
            f"http://127.0.0.1:{port}/",
        ]
        ports = [(urlsplit(url).hostname, urlsplit(url).port) for url in endpoints]
        assert all(port_in_use(host, number) for host, number in ports), ports

        demo.send_signal(signal.SIGTERM)
        wait_until(lambda: demo.poll() is not None, what="kit demo to exit after SIGTERM")
        wait_until_exited(started, what="every process kit demo started")
        assert demo.returncode == 0, output.read_text()
        assert "demo stopped" in output.read_text()
        assert [p for p in ports if port_in_use(*p)] == []
        assert not LocalStack(settings).status().running
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
        stop_demo(settings)
