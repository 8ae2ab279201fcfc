"""The main job on the local target: three use cases live, end to end, with the dashboard.

``kit demo`` (``make demo``):

1. starts the local stack (moto + the Lambda runner), or reuses the running one;
2. registers the shipped demo models (``shelf``, ``fish``, ``ppe`` as ``<name>:production``);
3. renders one synthetic scenario video per use case (kept, so a second run reuses them);
4. sets the control config of the three cameras — only those not configured yet, so a user's
   changes survive a restart: the shelf alerts once fewer than 3 bottles are left for 4 s, the
   fish tank once the count in its region has kept rising for 6 s, the building site once a
   person has been without a helmet for 4 s (:data:`CAMERAS`);
5. deploys the edge app to the local device ``demo-1`` with the three cameras;
6. serves the dashboard with Voila and prints its URL.

It then waits; Ctrl-C, SIGTERM (what a service manager or ``make`` sends) or ``kit demo --stop``
from another shell (after ``--detach``) stops what it started: the dashboard and the device
together, then the local stack (whose data is kept for the next run). An interrupted start
stops what it had started too. While stopping, Ctrl-C and SIGTERM are ignored, so that no
process is left behind half-stopped.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

from kit.core.settings import Settings
from kit.local.processes import ServiceRecord

log = logging.getLogger(__name__)

DEVICE_ID = "demo-1"
DASHBOARD_SERVICE = "dashboard"
VIDEO_SECONDS = 40
VIDEO_FPS = 10
DEMO_COOLDOWN_S = 300
"""No repeat of a camera's alert within 5 minutes of its last one resolving: each scenario video
loops every :data:`VIDEO_SECONDS` and tells its story (and so breaches its rule) every loop, and
the demo would otherwise send two e-mails per camera and loop. A user's new threshold is not held
back by it (:mod:`lambdas.alerts`)."""


@dataclass(frozen=True)
class DemoCamera:
    """One demo camera: its model, scenario video and control config (``overrides``).

    Each rule holds its breach a few seconds (``min_duration_s``) before it alerts, so a missed
    detection or a bottle half out of view does not open an alert, and the count rule resolves
    only one bottle past its threshold (``hysteresis``); tests/kit/synthetic/test_demo_alerts.py
    plays the videos through the rules.
    """

    camera_id: str
    model: str
    scenario: str
    video_options: dict
    overrides: dict


CAMERAS = (
    DemoCamera(
        "shelf-1",
        "shelf",
        "bottles_removed",
        {"n_bottles": 8, "remaining": 1},
        {
            "refresh_s": 2,
            "rules": [
                {
                    "type": "count_below",
                    "class_name": "bottle",
                    "threshold": 3,
                    "hysteresis": 1,
                    "min_duration_s": 4,
                    "cooldown_s": DEMO_COOLDOWN_S,
                }
            ],
        },
    ),
    DemoCamera(
        "pond-1",
        "fish",
        "fish_arriving",
        {"max_fish": 10, "start_fish": 1},
        {
            "refresh_s": 2,
            "rules": [
                {
                    "type": "rising_trend",
                    "class_name": "fish",
                    "zone": "region",
                    "window": 8,
                    "min_points": 5,
                    "min_slope_per_min": 3.0,
                    "min_duration_s": 6,
                    "cooldown_s": DEMO_COOLDOWN_S,
                }
            ],
        },
    ),
    DemoCamera(
        "site-1",
        "ppe",
        "helmet_off",
        {},
        # Workers stand close in these scenes: at ultralytics' NMS IoU of 0.7 overlapping people
        # and helmets come out twice; 0.45 keeps one box each (a per-camera setting).
        {
            "refresh_s": 2,
            "iou": 0.45,
            "rules": [
                {"type": "ppe_violation", "min_duration_s": 4, "cooldown_s": DEMO_COOLDOWN_S}
            ],
        },
    ),
)


def demo_videos(settings: Settings) -> dict[str, tuple[Path, list | None]]:
    """One scenario video per camera (rendered once, then reused) and its region, if any."""
    from kit.synthetic import ScenarioInfo, write_scenario_video

    folder = settings.state_dir / "demo" / "videos"
    folder.mkdir(parents=True, exist_ok=True)
    videos = {}
    for camera in CAMERAS:
        path = folder / f"{camera.camera_id}-{camera.scenario}-{VIDEO_SECONDS}s.mp4"
        if not path.is_file() or not path.with_suffix(".json").is_file():
            print(f"  rendering the {camera.scenario} video for {camera.camera_id} ...", flush=True)
            partial = path.with_name(".partial-" + path.name)
            write_scenario_video(
                camera.scenario,
                partial,
                seconds=VIDEO_SECONDS,
                fps=VIDEO_FPS,
                size=(640, 480),
                seed=1,
                **camera.video_options,
            )
            partial.with_suffix(".json").replace(path.with_suffix(".json"))
            partial.replace(path)
        videos[camera.camera_id] = (path, ScenarioInfo.load(path).region)
    return videos


def camera_zones(region: list | None) -> list[dict]:
    """The zones of a demo camera whose scenario has ``region`` (fish counted in it)."""
    return [{"name": "region", "polygon": region, "classes": ["fish"]}] if region else []


def configure_cameras(settings: Settings, regions: dict[str, list | None]) -> list[str]:
    """Set each demo camera's control config through the control API, unless it has one already."""
    api = settings.control_api_url()
    headers = {"Authorization": f"Bearer {settings.api_token}"}
    current = requests.get(f"{api}/config", headers=headers, timeout=10)
    current.raise_for_status()
    configured = current.json().get("cameras", {})
    changed = []
    for camera in CAMERAS:
        if camera.camera_id in configured:
            continue
        body = {"model": {"name": camera.model, "version": "production"}, **camera.overrides}
        zones = camera_zones(regions.get(camera.camera_id))
        if zones:
            body["zones"] = zones
        response = requests.put(
            f"{api}/config/{camera.camera_id}", json=body, headers=headers, timeout=10
        )
        if response.status_code >= 400:
            raise RuntimeError(
                f"PUT /config/{camera.camera_id} answered {response.status_code}: {response.text}"
            )
        changed.append(camera.camera_id)
    return changed


def _dashboard_record_file(settings: Settings) -> Path:
    return settings.state_dir / "demo" / "dashboard.json"


def dashboard_record(settings: Settings) -> ServiceRecord | None:
    """The dashboard process the demo started (running or not), or None when none is recorded."""
    record_file = _dashboard_record_file(settings)
    if not record_file.is_file():
        return None
    return ServiceRecord(**json.loads(record_file.read_text()))


def start_dashboard(settings: Settings, port: int) -> str:
    """Serve notebooks/dashboard.ipynb with Voila on 127.0.0.1 (reused when already running).

    Ready when Voila serves a static file of its own: opening the notebook's page would start a
    kernel that no browser ever connects to.
    """
    from kit.dashboard.server import STATIC_PROBE_PATH, voila_command
    from kit.local.processes import port_in_use, start_service, wait_until

    url = f"http://127.0.0.1:{port}/"
    running = dashboard_record(settings)
    if running is not None and running.is_alive():
        return running.url
    if port_in_use("127.0.0.1", port):
        raise RuntimeError(
            f"port {port} is in use by another program: pass --port to serve the dashboard elsewhere"
        )
    record = start_service(
        DASHBOARD_SERVICE,
        voila_command("--Voila.ip=127.0.0.1", f"--port={port}"),
        settings.state_dir / "demo" / "dashboard.log",
        env=settings.as_env(),
        url=url,
    )
    _dashboard_record_file(settings).write_text(json.dumps(record.to_json()))
    probe = url + STATIC_PROBE_PATH
    wait_until(
        lambda: requests.get(probe, timeout=5).status_code == 200,
        120,
        interval_s=0.5,
        what=f"the dashboard at {url}",
    )
    return url


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


@contextmanager
def _signals(handler: object) -> Iterator[None]:
    """Handle :data:`STOP_SIGNALS` with ``handler`` meanwhile (main thread only: elsewhere
    Python delivers no signal)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, handler) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, before in previous.items():
            signal.signal(signum, before)


def _stop_dashboard(settings: Settings) -> None:
    from kit.local.processes import stop_service

    dashboard = dashboard_record(settings)
    if dashboard is not None:
        stop_service(dashboard)
        _dashboard_record_file(settings).unlink(missing_ok=True)


def _stop_device(settings: Settings) -> None:
    from kit.deploy.local import LocalDevice

    device = LocalDevice(settings, DEVICE_ID)
    if device.process_state() == "running":
        device.stop()


def stop_demo(settings: Settings) -> None:
    """Stop the dashboard and the demo device (together), then the local stack (data kept for
    the next run). Ctrl-C and SIGTERM are ignored meanwhile."""
    from kit.local import LocalStack

    with _signals(signal.SIG_IGN):
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="demo-stop") as pool:
            stopping = [pool.submit(_stop_dashboard, settings), pool.submit(_stop_device, settings)]
        for stopped in stopping:
            stopped.result()
        counts = LocalStack(settings).down()
    print(f"demo stopped; local data saved ({sum(counts.values())} items)")


def run_demo(
    settings: Settings, *, port: int = 8866, detach: bool = False, dashboard: bool = True
) -> int:
    """Everything in the module docstring; returns the exit code."""
    started = time.monotonic()
    with _signals(_interrupt):
        try:
            url = _start(settings, port=port, dashboard=dashboard)
            print(f"\nready in {time.monotonic() - started:.0f} s")
            if url:
                print(f"\n  dashboard:  {url}\n")
            print("  alerts:     kit alerts tail      (the e-mails the alerts topic sends)")
            print("  devices:    kit devices")
            if detach:
                print("  stop with:  kit demo --stop")
                return 0
            print("  stop with:  Ctrl-C")
            while True:
                time.sleep(1)
        except KeyboardInterrupt:
            # A second Ctrl-C must not cut the stop short (and leave processes behind).
            for signum in STOP_SIGNALS:
                signal.signal(signum, signal.SIG_IGN)
            print("\nstopping ...", flush=True)
        stop_demo(settings)
    return 0


def _start(settings: Settings, *, port: int, dashboard: bool) -> str | None:
    """Steps 1 to 6; the dashboard's URL (None without the dashboard)."""
    from kit.demo_models import register_demo_models
    from kit.deploy.local import deploy_local
    from kit.deploy.status import device_status, format_devices
    from kit.local import LocalStack

    print("1/6 local stack ...", flush=True)
    status = LocalStack(settings).up()
    print(f"    AWS endpoint {status.endpoint_url}, control API {settings.control_api_url()}")
    print("2/6 demo models ...", flush=True)
    models = register_demo_models(settings)
    print(
        "    "
        + ", ".join(
            f"{m.name}:{m.version} (mAP50 {m.metrics.get('mAP50', 0):.2f})" for m in models.values()
        )
    )
    print("3/6 camera videos ...", flush=True)
    videos = demo_videos(settings)
    print("4/6 control config ...", flush=True)
    changed = configure_cameras(settings, {cid: region for cid, (_, region) in videos.items()})
    print(
        f"    configured {', '.join(changed)}"
        if changed
        else "    kept the existing camera configs"
    )
    print(f"5/6 edge app on local device {DEVICE_ID} ...", flush=True)
    cameras = [
        {
            "id": camera.camera_id,
            "source": {"uri": str(videos[camera.camera_id][0]), "loop": True},
            "model": {"name": camera.model, "version": "production"},
            "process_fps": 5,
            # synthetic scenes show no real people: keep the helmets visible (a real site
            # camera keeps the default, people blurred in every frame that leaves the device)
            "privacy": {"blur_classes": []},
        }
        for camera in CAMERAS
    ]
    deploy_local(settings, DEVICE_ID, cameras=cameras, ship_model=False, heartbeat_s=5)
    _wait_for_device(settings, timeout_s=120)
    print(format_devices([s for s in device_status(settings) if s.device_id == DEVICE_ID]))
    if not dashboard:
        return None
    print("6/6 dashboard ...", flush=True)
    return start_dashboard(settings, port)


def _wait_for_device(settings: Settings, timeout_s: float) -> None:
    from kit.deploy.status import device_status

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for status in device_status(settings):
            if status.device_id == DEVICE_ID and status.health == "RUNNING":
                return
        time.sleep(1)
    raise RuntimeError(
        f"device {DEVICE_ID} did not report RUNNING within {timeout_s:.0f} s: see `kit device logs {DEVICE_ID}`"
    )
