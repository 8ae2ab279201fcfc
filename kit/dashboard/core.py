"""The control-panel dashboard: one ipywidgets app over the control API.

Per camera the live annotated frame (refreshed at the camera's refresh rate) with the counts of
that frame's payload, and its counts over time; below the cameras the control panel that writes
each camera's model, confidence, refresh rate and rules (and says, at Apply, why a rule cannot open
an alert yet); the alert feed (open alerts with Acknowledge, resolved ones folded a page at a
time); devices and their health. Polling runs in a background thread, so
the kernel never waits on the backend; when the backend goes away the banner says since when,
polling backs off (1 s doubling to 30 s) and picks up again by itself. ``stop()`` ends the thread.

Examples:
    >>> from kit.dashboard import Dashboard

    In a notebook the widget shows and keeps itself up to date:

    >>> dashboard = Dashboard().start()   # doctest: +SKIP
    >>> dashboard                         # doctest: +SKIP
    >>> dashboard.stop()                  # doctest: +SKIP

    Headless (papermill, CI): one synchronous refresh, then stop.

    >>> Dashboard().refresh_once().reachable   # doctest: +SKIP
    True
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime
from typing import Any

import ipywidgets as widgets

from kit.core.settings import Settings, load_settings
from kit.dashboard.chart import counts_chart_png
from kit.dashboard.client import (
    BackendUnreachableError,
    ControlApiClient,
    ControlApiError,
    NotSignedInError,
)
from kit.dashboard.history import DEFAULT_WINDOW_S, CountHistory
from kit.dashboard.status import BackendState, Backoff, Schedule
from kit.dashboard.views import banner_html
from kit.dashboard.widgets import (
    AlertFeed,
    CameraCard,
    CameraGrid,
    ControlPanel,
    DeviceList,
    LoginBox,
    StatusBanner,
    error_text,
    message_html,
)

log = logging.getLogger(__name__)

MODELS_EVERY_S = 60.0
ALERTS_READ = 100
"""The newest alerts read each time: the feed shows the open ones and folds the resolved ones."""
LONGEST_IDLE_S = 1.0
"""The poller wakes at least this often, so a sign-in or a stop is noticed at once."""


class Dashboard:
    """The dashboard app.

    Args:
        settings: the kit's settings (default :func:`kit.core.settings.load_settings`: ``EVK_*``
            variables, ``evk.yaml``, the local stack's ``stack.json``).
        client: the control API client (default: from the settings).
        poll_s: seconds between reads of the camera list, alerts, devices and backend health.
        chart_every_s: shortest time between two reads of a camera's detections for its chart.
        window_s: how much history the charts show.
        backoff: how long to wait between attempts while the backend is unreachable.

    Attributes:
        widget: the app's root widget (a notebook shows the dashboard itself the same way).
        state: the backend's reachability (:class:`~kit.dashboard.status.BackendState`).
    """

    def __init__(
        self,
        settings: Settings | None = None,
        client: ControlApiClient | None = None,
        *,
        poll_s: float = 5.0,
        chart_every_s: float = 10.0,
        window_s: float = DEFAULT_WINDOW_S,
        backoff: Backoff | None = None,
    ):
        if poll_s <= 0 or chart_every_s <= 0:
            raise ValueError(
                f"poll_s and chart_every_s must be > 0 seconds (got {poll_s}, {chart_every_s})"
            )
        if settings is None:
            settings = client.settings if client is not None and client.settings else None
        self.settings = settings or load_settings()
        self._owns_client = client is None
        self.client = client or ControlApiClient.from_settings(self.settings, require_url=False)
        self.poll_s = poll_s
        self.chart_every_s = chart_every_s
        self.window_s = window_s
        self.state = BackendState(backoff=backoff or Backoff())
        self.backend_info: dict[str, Any] | None = None
        self.cameras: list[dict[str, Any]] = []
        self.histories: dict[str, CountHistory] = {}
        self._schedule = Schedule()
        self._cycle_lock = threading.RLock()
        self._stop_event = threading.Event()
        self._thread: threading.Thread | None = None

        self.banner = StatusBanner()
        self.grid = CameraGrid()
        self.alerts = AlertFeed(on_ack=self.acknowledge)
        self.devices = DeviceList()
        self.control = ControlPanel(self.client, on_saved=self._on_config_saved)
        self.login = LoginBox(self.client, on_signed_in=self._on_signed_in)
        self.login.widget.layout.display = None if self._needs_sign_in() else "none"
        title = widgets.HTML(
            "<h2 style='margin:4px 0'>Edge Vision Kit — live cameras, alerts and control</h2>"
        )
        self.widget = widgets.VBox(
            [
                title,
                self.banner.widget,
                self.login.widget,
                self.grid.widget,
                # right below the cameras it acts on, above the feeds that grow with time
                self.control.widget,
                widgets.HBox(
                    [self.alerts.widget, self.devices.widget],
                    layout=widgets.Layout(width="100%", justify_content="space-between"),
                ),
            ]
        )
        self.widget.add_class("evk-dashboard")
        self.alerts.widget.layout.width = "58%"
        self.devices.widget.layout.width = "40%"
        self._show_banner()

    # -- notebook display -----------------------------------------------------------------------
    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    # -- lifecycle ------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        """Whether the polling thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> Dashboard:
        """Start polling in a background thread (returns at once; a second call does nothing)."""
        if self.running:
            return self
        self._stop_event.clear()
        self._thread = threading.Thread(
            target=self._poll_forever, name="evk-dashboard", daemon=True
        )
        self._thread.start()
        return self

    def stop(self, timeout_s: float | None = None) -> None:
        """Stop polling and wait for the thread to end.

        Args:
            timeout_s: how long to wait (default: long enough for a request in flight to time out).

        Raises:
            RuntimeError: the thread did not end in time.
        """
        self._stop_event.set()
        thread, self._thread = self._thread, None
        if thread is None:
            return
        wait_s = timeout_s if timeout_s is not None else 2 * self.client.timeout_s + 5
        thread.join(wait_s)
        if thread.is_alive():
            self._thread = thread
            raise RuntimeError(f"the dashboard's poller did not stop within {wait_s:.0f} s")

    def __enter__(self) -> Dashboard:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def refresh_once(self) -> BackendState:
        """Read everything now, synchronously, and show it (headless runs, tests).

        Returns:
            The backend's state after the refresh (``reachable``, ``last_error`` …); an
            unreachable backend is reported there and in the banner, not raised.
        """
        with self._cycle_lock:
            self._schedule.reset()
            self._cycle()
        return self.state

    # -- polling --------------------------------------------------------------------------------
    def _poll_forever(self) -> None:
        while not self._stop_event.is_set():
            with self._cycle_lock:
                try:
                    self._cycle()
                except Exception as error:  # noqa: BLE001 - a bad answer must not end polling
                    log.exception("dashboard refresh failed")
                    self.state.failed(f"{type(error).__name__}: {error}", _now())
                    self._show_banner()
            if self.state.reachable is False:
                wait_s = self.state.retry_in_s
            else:
                wait_s = min(self._schedule.next_in(time.monotonic()), LONGEST_IDLE_S)
            self._stop_event.wait(max(wait_s, 0.05))

    def _needs_sign_in(self) -> bool:
        return self.settings.target == "aws" and not self.client.token

    def _cycle(self) -> None:
        """Run every job that is due; record whether the backend answered."""
        if self._needs_sign_in():
            self.login.widget.layout.display = None
            self._show_banner()
            return
        now = _now()
        if self._owns_client and self.state.reachable is not True:
            self._follow_api_url()
        try:
            self._run_due_jobs(time.monotonic(), now)
        except NotSignedInError as error:
            if self.settings.target == "aws":
                self.client.token = None
                self.login.widget.layout.display = None
                self.login.message.value = message_html(
                    f"Your session ended ({error.message}): sign in again.", ok=False
                )
            else:
                self.state.failed(f"the API refused the token ({error.message})", now)
        except ControlApiError as error:
            # Unreachable, or an answer the dashboard cannot use: either way, say so and back off.
            self.state.failed(str(error), now)
        else:
            self.state.succeeded(now)
        self._show_banner()

    def _follow_api_url(self) -> None:
        # A local stack started after the dashboard, or restarted on another port, records its
        # URL in stack.json: pick it up while the old one does not answer.
        try:
            url = self.settings.control_api_url()
        except (OSError, ValueError) as error:
            log.warning("cannot read the control API URL: %s", error)
            return
        if url and url.rstrip("/") != self.client.base_url:
            self.client.use_url(url)
            self._schedule.reset()

    def _due(self, job: object, mono: float) -> bool:
        return self._schedule.is_due(job, mono)

    def _run_due_jobs(self, mono: float, now: datetime) -> None:
        if self._due("health", mono):
            self.backend_info = self.client.health()
            self._schedule.done("health", self.poll_s, mono)
        if self._due("cameras", mono):
            self._refresh_cameras(now)
            self._schedule.done("cameras", self._cameras_every_s(), mono)
        for camera in self.cameras:
            camera_id = camera["camera_id"]
            refresh_s = max(1.0, float(camera.get("refresh_s") or self.poll_s))
            if self._due(("frame", camera_id), mono):
                self._refresh_frame(camera_id)
                self._schedule.done(("frame", camera_id), refresh_s, mono)
            if self._due(("chart", camera_id), mono):
                self._refresh_chart(camera_id, now)
                self._schedule.done(("chart", camera_id), max(refresh_s, self.chart_every_s), mono)
        if self._due("alerts", mono):
            self._refresh_alerts(now)
            self._schedule.done("alerts", self.poll_s, mono)
        if self._due("devices", mono):
            self.devices.show(self.client.devices())
            self._schedule.done("devices", self.poll_s, mono)
        if self._due("models", mono):
            self.control.set_models(self.client.models())
            self._schedule.done("models", MODELS_EVERY_S, mono)

    def _cameras_every_s(self) -> float:
        # A frame is shown only with the camera record it belongs to (its caption's counts are
        # that payload's): the camera list is read as often as the fastest camera refreshes.
        rates = [max(1.0, float(c.get("refresh_s") or self.poll_s)) for c in self.cameras]
        return min([self.poll_s, *rates])

    def _refresh_cameras(self, now: datetime) -> None:
        cameras = self.client.cameras()
        ids = [camera["camera_id"] for camera in cameras]
        for gone in {c["camera_id"] for c in self.cameras} - set(ids):
            self.histories.pop(gone, None)
            self._schedule.forget(("frame", gone))
            self._schedule.forget(("chart", gone))
        self.cameras = cameras
        cards = self.grid.sync(ids)
        for camera in cameras:
            card = cards[camera["camera_id"]]
            card.show_caption(camera, now)
            if camera.get("frame_key") and camera["frame_key"] != card.frame_key:
                self._schedule.forget(("frame", camera["camera_id"]))
        self.control.set_cameras(ids)

    def _card(self, camera_id: str) -> CameraCard | None:
        return self.grid.cards.get(camera_id)

    def _refresh_frame(self, camera_id: str) -> None:
        """Show the frame of the camera record last read, so that the caption's counts (that
        record's) are the frame's own; a newer frame waits for the next read of the record."""
        card = self._card(camera_id)
        camera = next((c for c in self.cameras if c["camera_id"] == camera_id), None)
        if card is None or camera is None or not camera.get("frame_key"):
            return
        if camera["frame_key"] == card.frame_key:
            return
        try:
            latest = self.client.latest_frame(camera_id)
            if latest["frame_key"] != camera["frame_key"]:
                self._schedule.forget("cameras")
                return
            jpeg = self.client.fetch_frame(latest["url"])
        except BackendUnreachableError:
            raise
        except ControlApiError as error:
            card.show_no_frame(error.message)
            return
        card.show_frame(jpeg, latest["frame_key"], latest.get("captured_at"), camera.get("counts"))
        card.show_caption(camera, _now())

    def _refresh_chart(self, camera_id: str, now: datetime) -> None:
        card = self._card(camera_id)
        if card is None:
            return
        history = self.histories.setdefault(camera_id, CountHistory(window_s=self.window_s))
        first = card.chart.layout.display == "none"
        try:
            items = self.client.detections(camera_id, **history.next_query(now))
        except BackendUnreachableError:
            raise
        except ControlApiError as error:
            card.show_no_frame(error.message)
            return
        if history.add(items) or first:
            card.show_chart(counts_chart_png(history.series(), title="counts (UTC)"))

    def _refresh_alerts(self, now: datetime) -> None:
        self.alerts.show(self.client.alerts(limit=ALERTS_READ), now)

    def _show_banner(self) -> None:
        self.banner.show(
            banner_html(
                self.state,
                api_url=self.client.base_url or "(no control API URL yet)",
                now=_now(),
                backend=self.backend_info,
                signed_in=not self._needs_sign_in(),
            )
        )

    # -- user actions ---------------------------------------------------------------------------
    def acknowledge(self, alert_id: str) -> None:
        """Acknowledge an OPEN alert (the Acknowledge button) and show the feed again."""
        try:
            answer = self.client.acknowledge(alert_id)
        except ControlApiError as error:
            self.alerts.show_note(error_text(error), ok=False)
            return
        alert = answer["alert"]
        self.alerts.show_note(
            f"Acknowledged {alert['camera_id']} · {alert['rule']} ({alert_id})"
            + ("" if answer.get("changed") else " (it already was)"),
            ok=True,
            alert_id=alert_id,
        )
        with self._cycle_lock:
            try:
                self._refresh_alerts(_now())
            except ControlApiError as error:
                self.alerts.show_note(error_text(error), ok=False)

    def _on_config_saved(self, _: dict[str, Any]) -> None:
        # The camera list carries each camera's refresh rate: read it again on the next tick.
        self._schedule.forget("cameras")

    def _on_signed_in(self) -> None:
        self.login.widget.layout.display = "none"
        self._schedule.reset()
        self._show_banner()


def _now() -> datetime:
    return datetime.now(UTC)
