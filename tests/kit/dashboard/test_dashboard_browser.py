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
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import pytest

from kit.core.settings import load_settings
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
NOTEBOOK = REPO_ROOT / "notebooks" / "dashboard.ipynb"
OLD_THRESHOLD = 8
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
            [
                str(Path(sys.executable).with_name("voila")),
                str(NOTEBOOK),
                "--no-browser",
                "--Voila.ip=127.0.0.1",
                f"--port={port}",
                "--show_tracebacks=True",
            ],
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
    yield f"http://127.0.0.1:{port}/", log
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="module")
def browser_page(tmp_path_factory):
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
            yield context.new_page()
        finally:
            context.close()


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

    # The Acknowledge button acknowledges it.
    feed_row.locator("button.evk-ack").click()
    wait(lambda: api.get("/alerts", state="ACKED")["items"], 20, "the alert ACKED")
    assert api.get("/alerts", state="OPEN")["items"] == []
