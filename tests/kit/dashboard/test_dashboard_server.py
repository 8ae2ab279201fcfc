"""Voila serving the dashboard (``python -m kit.dashboard.server``): a page's kernel can be shut
down by the page's own call, and a kernel whose page went away without it is culled.

GIVEN the dashboard served with the kit's Voila configuration (no backend: the dashboard's
poller keeps updating its banner, as it keeps updating frames with one)
WHEN a page is opened THEN it carries the ``_xsrf`` cookie the browser's shutdown call sends,
and that call ends the page's kernel;
WHEN a page is opened and left without the call THEN its kernel is culled once idle.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import requests

from kit.dashboard.server import STATIC_PROBE_PATH, voila_command
from kit.local.processes import free_port
from tests.support.wait import wait_until

REPO_ROOT = Path(__file__).resolve().parents[3]


def serve(tmp_path: Path, *options: str) -> Iterator[tuple[str, psutil.Process]]:
    port = free_port("127.0.0.1")
    env = {**os.environ, "EVK_STATE_DIR": str(tmp_path / "state"), "EVK_TARGET": "local"}
    log = tmp_path / "voila.log"
    with open(log, "w") as out:
        process = subprocess.Popen(
            voila_command("--Voila.ip=127.0.0.1", f"--port={port}", *options),
            cwd=REPO_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_until(
            lambda: (
                process.poll() is not None
                or requests.get(url + STATIC_PROBE_PATH, timeout=5).status_code == 200
            ),
            120,
            what="voila serving its static files",
        )
        assert process.poll() is None, log.read_text()[-3000:]
        yield url, psutil.Process(process.pid)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def dashboard_url(tmp_path) -> Iterator[tuple[str, psutil.Process]]:
    yield from serve(tmp_path)


@pytest.fixture
def culling_dashboard_url(tmp_path) -> Iterator[tuple[str, psutil.Process]]:
    yield from serve(
        tmp_path,
        "--MappingKernelManager.cull_idle_timeout=2",
        "--MappingKernelManager.cull_interval=1",
    )


def open_page(session: requests.Session, url: str) -> str:
    """Open the dashboard's page (Voila runs the notebook in a new kernel); its kernel id."""
    page = session.get(url, timeout=120)
    assert page.status_code == 200
    return re.search(r'"kernelId": "([0-9a-f-]+)"', page.text).group(1)


def kernel_exists(url: str, kernel_id: str) -> bool:
    return requests.get(f"{url}api/kernels/{kernel_id}", timeout=10).status_code == 200


def test_the_page_has_the_xsrf_cookie_its_shutdown_call_needs(dashboard_url):
    dashboard_url, _ = dashboard_url
    session = requests.Session()
    kernel_id = open_page(session, dashboard_url)
    assert kernel_exists(dashboard_url, kernel_id)
    xsrf = session.cookies.get("_xsrf")
    assert xsrf, "the page set no _xsrf cookie: the browser's shutdown call would be refused"

    # what the page's beforeunload handler posts (voila's widgets manager)
    shutdown = session.post(
        f"{dashboard_url}voila/api/shutdown/{kernel_id}", files={"_xsrf": (None, xsrf)}, timeout=30
    )
    assert shutdown.status_code == 204, shutdown.text
    assert not kernel_exists(dashboard_url, kernel_id)


def test_the_readiness_probe_starts_no_kernel(dashboard_url):
    url, voila = dashboard_url
    for _ in range(3):
        assert requests.get(url + STATIC_PROBE_PATH, timeout=10).status_code == 200
    assert voila.children(recursive=True) == [], "the probe started a kernel"
    open_page(requests.Session(), url)
    assert voila.children(recursive=True), "opening the page started no kernel"


def test_a_kernel_whose_page_left_without_the_shutdown_call_is_culled(culling_dashboard_url):
    culling_dashboard_url, _ = culling_dashboard_url
    kernel_id = open_page(requests.Session(), culling_dashboard_url)
    assert kernel_exists(culling_dashboard_url, kernel_id)
    wait_until(
        lambda: not kernel_exists(culling_dashboard_url, kernel_id),
        what="the idle kernel culled",
    )
