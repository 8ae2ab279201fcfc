"""The dashboard as a user sees it: Voila serves ``notebooks/dashboard.ipynb``, headless Chromium
(Debian's ``/usr/bin/chromium``, driven by Playwright) opens it, against a local stack of the
test's own (moto + the local Lambda runner, ``LocalStack.up()``).

GIVEN shelf-1 whose count_below rule alerts under 8 bottles, and frames published as an edge
device publishes them (JPEG at its frame key, payload on the detections queue)
WHEN a new frame is published
THEN the dashboard shows the new frame's bytes;
WHEN the user raises the bottle threshold in the control panel
THEN GET /config reports it, a payload with fewer bottles opens a count_below alert, and the
dashboard's alert feed shows it (and acknowledges it).

The screenshot goes to ``$DASHBOARD_SCREENSHOT`` (default: the test's temp dir).
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import cv2
import psutil
import pytest
import requests

from kit.core.settings import load_settings
from kit.dashboard.server import voila_command
from kit.local import LocalStack
from kit.local.processes import free_port
from kit.synthetic import draw_labels, render_scene
from tests.support.wait import wait_until

CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REPO_ROOT = Path(__file__).resolve().parents[3]
OLD_THRESHOLD = 8
RESOLVED_ALERTS = 12
NEW_THRESHOLD = 12

pytestmark = pytest.mark.skipif(
    not CHROMIUM.is_file(),
    reason=f"no Chromium at {CHROMIUM}: install it with scripts/install-browser.sh "
    "(Debian's chromium package)",
)


def jpeg_of(use_case: str, seed: int, **params) -> tuple[bytes, dict[str, int]]:
    scene = render_scene(use_case, seed=seed, size=(480, 320), **params)
    ok, encoded = cv2.imencode(".jpg", draw_labels(scene), [cv2.IMWRITE_JPEG_QUALITY, 80])
    assert ok
    return encoded.tobytes(), scene.counts()


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    stack = LocalStack(
        load_settings(
            state_dir=tmp_path_factory.mktemp("dashboard-stack"),
            local_port=0,
            api_port=0,
            prefix="evkdash",
        )
    )
    stack.up()
    yield stack
    stack.down(snapshot=False)


@pytest.fixture(scope="module")
def voila(stack, tmp_path_factory):
    """Voila serving the dashboard notebook with the stack's settings in its environment."""
    port = free_port("127.0.0.1")
    env = {**os.environ, **stack.settings.as_env()}
    log = tmp_path_factory.mktemp("voila") / "voila.log"
    with open(log, "w") as out:
        process = subprocess.Popen(
            voila_command("--Voila.ip=127.0.0.1", f"--port={port}", "--show_tracebacks=True"),
            cwd=REPO_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )

    def listening_or_exited() -> bool:
        if process.poll() is not None:
            return True
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
        return True

    try:
        wait_until(listening_or_exited, 120, what=f"voila on port {port}")
    except AssertionError as error:
        pytest.fail(f"{error}\n{log.read_text()[-3000:]}")
    if process.poll() is not None:
        pytest.fail(f"voila exited with {process.returncode}:\n{log.read_text()[-3000:]}")
    VOILA_PROCESSES[port] = psutil.Process(process.pid)
    yield f"http://127.0.0.1:{port}/", log
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=str(CHROMIUM),
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": 1400, "height": 1000},
        )
        try:
            yield context
        finally:
            context.close()


@pytest.fixture(scope="module")
def browser_page(browser):
    return browser.new_page()


VOILA_PROCESSES: dict[int, psutil.Process] = {}
"""The Voila server the module started, by port (its kernels are its children)."""

KERNEL_ID_JS = (
    "() => JSON.parse(document.getElementById('jupyter-config-data').textContent).kernelId"
)


def kernel_exists(url: str, kernel_id: str) -> bool:
    """Whether the Voila server at ``url`` still has the kernel (its ``/api/kernels/<id>``)."""
    return requests.get(f"{url}api/kernels/{kernel_id}", timeout=10).status_code == 200


def test_each_closed_page_leaves_no_kernel(voila, browser, stack):
    """Three visits, each page closed as a person closes a tab: their kernels end (Voila's
    shutdown call is accepted), and at most one kernel is left running."""
    url, voila_log = voila
    kernel_ids = []
    for _ in range(3):
        page = browser.new_page()
        page.goto(url, timeout=60_000)
        try:
            wait_until(
                lambda page=page: page.locator(".evk-dashboard").count() == 1, 60, what="the page"
            )
        except AssertionError:
            print("--- voila log ---\n" + voila_log.read_text()[-4000:])
            raise
        kernel_id = page.evaluate(KERNEL_ID_JS)
        assert kernel_exists(url, kernel_id)
        kernel_ids.append(kernel_id)
        page.close(run_before_unload=True)
    try:
        wait_until(
            lambda: not any(kernel_exists(url, k) for k in kernel_ids),
            60,
            what="the closed pages' kernels to end",
        )
    except AssertionError:
        print("--- voila log ---\n" + voila_log.read_text()[-4000:])
        raise
    voila_process = VOILA_PROCESSES[urlsplit(url).port]
    wait_until(lambda: len(voila_process.children()) <= 1, what="at most one kernel process")
    assert "_xsrf" not in voila_log.read_text()


FRAME_BYTES_JS = """async (selector) => {
    const image = document.querySelector(selector);
    if (!image || !image.src || !image.complete || image.naturalWidth === 0) return null;
    const response = await fetch(image.src);
    return {src: image.src, bytes: Array.from(new Uint8Array(await response.arrayBuffer()))};
}"""


def test_live_frame_threshold_change_and_alert_in_the_browser(
    stack, voila, browser_page, make_api, make_feed, wait
):
    settings = stack.settings.model_copy(update={"endpoint_url": stack.endpoint_url})
    api = make_api(settings.control_api_url(), settings.api_token)
    feed = make_feed(settings)
    page = browser_page
    url, voila_log = voila

    # GIVEN: a model, shelf-1's rule, a few minutes of history, frames of the three use cases.
    feed.register_model("shelf", 1, ["bottle"])
    low_jpeg, low = jpeg_of("shelf", 4, fill=0.4, n_boards=2)
    first_jpeg, first = jpeg_of("shelf", 1, fill=1.0, n_boards=2)
    second_jpeg, second = jpeg_of("shelf", 3, fill=1.0, n_boards=2)
    assert OLD_THRESHOLD <= low["bottle"] < NEW_THRESHOLD <= min(first["bottle"], second["bottle"])
    rule = {"type": "count_below", "name": "low-stock", "class_name": "bottle"}
    api.put("/config/shelf-1", {"refresh_s": 1, "rules": [{**rule, "threshold": OLD_THRESHOLD}]})
    now = datetime.now(UTC)
    fish_jpeg, fish = jpeg_of("fish", 1)
    ppe_jpeg, ppe = jpeg_of("ppe", 1)
    for minutes, bottles, fishes, persons in ((4, 26, 2, 1), (3, 24, 3, 2), (2, 21, 3, 1)):
        earlier = now - timedelta(minutes=minutes)
        feed.publish("shelf-1", {"bottle": bottles}, captured_at=earlier)
        feed.publish("fish-1", {"fish": fishes}, captured_at=earlier, model="fish")
        feed.publish("ppe-1", {"person": persons, "helmet": 1}, captured_at=earlier, model="ppe")
    feed.publish("fish-1", fish, jpeg=fish_jpeg, model="fish")
    feed.publish("ppe-1", ppe, jpeg=ppe_jpeg, model="ppe")
    shown = feed.publish("shelf-1", first, jpeg=first_jpeg)
    feed.heartbeat({"shelf-1": "running", "fish-1": "running", "ppe-1": "running"})
    wait(lambda: api.camera_seen("shelf-1", shown.payload_id), 30, "the first frame processed")

    page.goto(url, timeout=60_000)
    frame = ".evk-camera-shelf-1 img.evk-frame"

    def displayed() -> dict | None:
        return page.evaluate(FRAME_BYTES_JS, frame)

    start = time.monotonic()
    try:
        before = wait(
            lambda: (d := displayed()) and bytes(d["bytes"]) == first_jpeg and d, 60, "frame 1"
        )
    except BaseException:
        print("--- voila log ---\n" + voila_log.read_text()[-4000:])
        print("--- page text ---\n" + page.inner_text("body")[-4000:])
        raise
    print(f"dashboard showed the first frame {time.monotonic() - start:.1f} s after opening")
    assert page.locator(".evk-dashboard").count() == 1

    # WHEN a new frame is published THEN the page shows its bytes (a new image source).
    feed.publish("shelf-1", second, jpeg=second_jpeg)
    after = wait(
        lambda: (d := displayed()) and bytes(d["bytes"]) == second_jpeg and d, 30, "frame 2"
    )
    assert after["src"] != before["src"]

    # WHEN the user raises shelf-1's bottle threshold in the control panel.
    page.locator(".evk-control-camera select").select_option(label="shelf-1")
    threshold = page.locator(".evk-rule-count_below .evk-param-threshold input")
    wait(lambda: threshold.input_value() == str(OLD_THRESHOLD), 20, "shelf-1's form loaded")
    threshold.fill(str(NEW_THRESHOLD))
    threshold.press("Enter")
    page.locator("button.evk-apply").click()
    message = page.locator(".evk-control-message")
    wait(lambda: "Saved shelf-1" in message.inner_text(), 20, "the Saved message")

    # THEN the backend reports the new config ...
    config = api.get("/config")
    [saved] = config["cameras"]["shelf-1"]["rules"]
    assert (saved["type"], saved["name"], saved["threshold"]) == (
        "count_below",
        "low-stock",
        NEW_THRESHOLD,
    )
    # ... and raises the alert it implies once fewer bottles are seen.
    feed.publish("shelf-1", low, jpeg=low_jpeg)
    [alert] = wait(lambda: api.get("/alerts", state="OPEN")["items"], 30, "an OPEN alert")
    assert (alert["camera_id"], alert["rule_type"], alert["value"], alert["threshold"]) == (
        "shelf-1",
        "count_below",
        low["bottle"],
        NEW_THRESHOLD,
    )
    feed_row = page.locator(".evk-alerts .evk-alert", has_text="count_below")
    wait(lambda: feed_row.count() == 1 and "OPEN" in feed_row.inner_text(), 30, "the alert row")
    wait(lambda: bytes((displayed() or {"bytes": []})["bytes"]) == low_jpeg, 20, "frame 3")
    screenshot = Path(
        os.environ.get("DASHBOARD_SCREENSHOT") or voila_log.with_name("dashboard.png")
    )
    dashboard = page.locator(".evk-dashboard")
    height = dashboard.evaluate("(element) => element.scrollHeight")
    page.set_viewport_size({"width": 1400, "height": int(height) + 80})
    dashboard.screenshot(path=str(screenshot))

    # WHEN the user raises the threshold again while the alert is open THEN Apply says why no
    # new alert opens.
    threshold.fill(str(NEW_THRESHOLD + 1))
    threshold.press("Enter")
    page.locator("button.evk-apply").click()
    wait(lambda: "threshold=13" in message.inner_text(), 20, "saved")
    outlook = page.locator(".evk-control-outlook")
    wait(lambda: "alert open since" in outlook.inner_text(), 20, "why no new alert opens")
    assert "low-stock" in outlook.inner_text()

    # The Acknowledge button acknowledges it; its note goes once the alert resolves.
    feed_row.locator("button.evk-ack").click()
    wait(lambda: api.get("/alerts", state="ACKED")["items"], 20, "the alert ACKED")
    assert api.get("/alerts", state="OPEN")["items"] == []
    note = page.locator(".evk-alert-note")
    wait(lambda: "Acknowledged shelf-1" in note.inner_text(), 20, "the Acknowledged note")
    feed.publish("shelf-1", {"bottle": NEW_THRESHOLD + 5}, jpeg=second_jpeg)
    wait(lambda: api.get("/alerts", state="RESOLVED")["items"], 30, "the alert RESOLVED")
    wait(lambda: note.inner_text().strip() == "", 30, "the note gone with its alert")

    # WHEN the user switches shelf-1's model THEN the backend's config names it.
    feed.register_model("shelf", 2, ["bottle"])
    model = page.locator(".evk-control-model select")
    wait(lambda: "shelf:2" in model.inner_text(), 90, "shelf:2 offered")
    model.select_option(label="shelf:2")
    page.locator("button.evk-apply").click()
    wait(lambda: "model → shelf:2" in message.inner_text(), 20, "saved")
    assert api.get("/config/shelf-1")["overrides"]["model"] == {"name": "shelf", "version": 2}


def test_the_page_is_usable_at_1280_by_800_with_many_resolved_alerts(
    stack, voila, browser_page, make_api, make_feed, wait
):
    """GIVEN a camera whose alert opened and resolved a dozen times THEN at 1280x800 the feed
    shows a page of them and folds the rest, and the control panel is within two screens."""
    settings = stack.settings.model_copy(update={"endpoint_url": stack.endpoint_url})
    api = make_api(settings.control_api_url(), settings.api_token)
    feed = make_feed(settings)
    rule = {"type": "count_below", "name": "flappy", "class_name": "bottle", "threshold": 5}
    api.put("/config/busy-1", {"rules": [{**rule, "cooldown_s": 0}]})
    start = datetime.now(UTC) - timedelta(minutes=10)
    for index in range(2 * RESOLVED_ALERTS):
        sent = feed.publish(
            "busy-1",
            {"bottle": 1 if index % 2 == 0 else 9},
            captured_at=start + timedelta(seconds=index),
        )
        wait(lambda sent=sent: api.camera_seen("busy-1", sent.payload_id), 30, "processed")
    resolved = api.get("/alerts", camera="busy-1", state="RESOLVED", limit=50)["items"]
    assert len(resolved) == RESOLVED_ALERTS

    page = browser_page
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(voila[0], timeout=60_000)
    folded = page.locator(".evk-alerts-folded")
    wait(lambda: "older resolved alerts folded" in folded.inner_text(), 60, "the folded alerts")
    rows = page.locator(".evk-alerts .evk-alert")
    assert rows.count() <= 5 + len(api.get("/alerts", state="OPEN")["items"]) + 1
    top = page.locator(".evk-control").evaluate(
        "(element) => element.getBoundingClientRect().top + window.scrollY"
    )
    assert top <= 2 * 800, f"the control panel starts {top:.0f} px down the page"

    page.locator(".evk-alerts-more").click()
    wait(lambda: rows.count() > 6, 20, "another page of resolved alerts")
