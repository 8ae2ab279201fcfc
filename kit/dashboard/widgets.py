"""The dashboard's parts, each a small class with a ``widget`` and methods that show data.

Parts only show what they are given and report what the user does through callbacks; the
:class:`~kit.dashboard.core.Dashboard` fetches data and wires them. CSS classes (``evk-…``) name
the elements for browser tests and styling.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from html import escape
from typing import Any

import ipywidgets as widgets

from kit.dashboard.client import ControlApiClient, ControlApiError
from kit.dashboard.config_form import (
    EDITABLE_RULE_FIELDS,
    CameraForm,
    RuleRow,
    camera_form,
    changes,
    model_classes,
    model_label,
    model_options,
    overrides_body,
)
from kit.dashboard.views import alert_html, camera_html, clock, devices_html, rule_outlook

RULE_TITLES = {
    "count_below": "count below",
    "count_above": "count above",
    "rising_trend": "rising trend",
    "ppe_violation": "PPE violation",
    "camera_silent": "camera silent",
}
PARAM_TITLES = {
    "class_name": "class",
    "threshold": "threshold",
    "min_slope_per_min": "min slope /min",
    "window": "window",
    "min_confidence": "min confidence",
    "min_overlap": "min overlap",
    "factor": "× refresh",
    "hysteresis": "resolve ±",
    "min_duration_s": "for (s)",
}
INT_PARAMS = {"threshold", "window", "hysteresis", "min_duration_s"}
NARROW_PARAMS = {"hysteresis", "min_duration_s"}
"""Small whole numbers: narrower boxes, so a row fits a 1280-pixel screen."""
PRECISION_OPTIONS = (("FP32", "fp32"), ("INT8", "int8"))
"""The precision dropdown's ``(label, value)`` pairs (``CameraSettings.precision``)."""
OUTLOOK_RESOLVED_READ = 50
"""Resolved alerts read to find a rule's last one (for its cooldown), newest first."""


def _classed(widget: widgets.Widget, *names: str) -> widgets.Widget:
    for name in names:
        widget.add_class(name)
    return widget


NOTICE_COLOR = "#ef6c00"
"""Orange: neither done nor refused (a saved rule that cannot open an alert yet)."""


def message_html(text: str, *, ok: bool, color: str | None = None) -> str:
    """A green (ok) or red message (or one of ``color``); the text is escaped and keeps its
    line breaks."""
    color = color or ("#2e7d32" if ok else "#c62828")
    body = escape(text).replace("\n", "<br>")
    return f'<div style="color:{color};white-space:normal">{body}</div>'


def error_text(error: ControlApiError) -> str:
    """What the API refused and why, for a person: status, message, each problem."""
    status = f" ({error.status})" if error.status else ""
    lines = [f"Refused{status}: {error.message}"]
    for problem in error.problems:
        line = f"{problem.get('field')}: {problem.get('allowed')} (got {problem.get('value')})"
        if line not in error.message:
            lines.append(line)
    return "\n".join(lines)


class StatusBanner:
    """One line at the top: connected, unreachable since …, or not signed in."""

    def __init__(self) -> None:
        self.widget = _classed(widgets.HTML(), "evk-banner")

    def show(self, html: str) -> None:
        if self.widget.value != html:
            self.widget.value = html


class CameraCard:
    """One camera: its live annotated frame, a caption and the counts chart."""

    def __init__(self, camera_id: str):
        self.camera_id = camera_id
        self.frame_key: str | None = None
        self.frame_counts: dict[str, int] | None = None
        self.title = widgets.HTML(f"<b style='font-size:14px'>{escape(camera_id)}</b>")
        self.frame = _classed(
            widgets.Image(
                format="jpeg",
                layout=widgets.Layout(width="100%", max_width="520px", display="none"),
            ),
            "evk-frame",
        )
        self.frame_note = _classed(
            widgets.HTML("<i>waiting for the first frame …</i>"), "evk-frame-note"
        )
        self.caption = _classed(widgets.HTML(), "evk-caption")
        self.chart = _classed(
            widgets.Image(
                format="png", layout=widgets.Layout(width="100%", max_width="520px", display="none")
            ),
            "evk-chart",
        )
        self.widget = _classed(
            widgets.VBox(
                [self.title, self.frame, self.frame_note, self.caption, self.chart],
                layout=widgets.Layout(border="1px solid #ddd", padding="6px", margin="4px"),
            ),
            "evk-camera",
            f"evk-camera-{camera_id}",
        )

    def show_frame(
        self,
        jpeg: bytes,
        frame_key: str,
        captured_at: str | None,
        counts: dict[str, int] | None = None,
    ) -> None:
        """Show a new frame (the JPEG bytes), when it was captured and the counts of its payload
        (the caption shows those while the frame is shown)."""
        self.frame.value = jpeg
        self.frame_key = frame_key
        self.frame_counts = counts
        self.frame.layout.display = None
        when = f"{clock(captured_at)} UTC" if captured_at else "at an unknown time"
        self.frame_note.value = f"<small>frame captured {when}</small>"

    def show_no_frame(self, text: str) -> None:
        """No frame to show (none published yet, or the link failed): say why."""
        self.frame_note.value = f"<i>{escape(text)}</i>"

    def show_caption(self, camera: dict[str, Any], now: datetime) -> None:
        """The caption of the camera record ``camera``; its counts are those of the frame shown
        (the record may be of a newer payload whose frame is not shown yet)."""
        if self.frame_counts is not None and camera.get("frame_key") != self.frame_key:
            camera = {**camera, "counts": self.frame_counts}
        html = camera_html(camera, now)
        if self.caption.value != html:
            self.caption.value = html

    def show_chart(self, png: bytes) -> None:
        self.chart.value = png
        self.chart.layout.display = None


class CameraGrid:
    """The camera cards, one per camera, in the order of the camera list."""

    def __init__(self) -> None:
        self.cards: dict[str, CameraCard] = {}
        self.empty_note = widgets.HTML("<i>No camera yet: start an edge device.</i>")
        self.widget = _classed(
            widgets.GridBox(
                [self.empty_note],
                layout=widgets.Layout(
                    grid_template_columns="repeat(auto-fill, minmax(380px, 1fr))", width="100%"
                ),
            ),
            "evk-cameras",
        )

    def sync(self, camera_ids: list[str]) -> dict[str, CameraCard]:
        """Keep exactly one card per camera in ``camera_ids`` (new cards added, gone ones removed)."""
        for gone in set(self.cards) - set(camera_ids):
            self.cards.pop(gone).widget.close()
        for camera_id in camera_ids:
            if camera_id not in self.cards:
                self.cards[camera_id] = CameraCard(camera_id)
        children = tuple(self.cards[c].widget for c in camera_ids) or (self.empty_note,)
        if self.widget.children != children:
            self.widget.children = children
        return self.cards


class AlertFeed:
    """The alerts: every open (OPEN, ACKED) one, then the newest resolved ones folded to a page,
    with an Acknowledge button on each OPEN one.

    A page of resolved alerts at a time keeps the control panel below within reach: a demo that
    ran for an hour has hundreds. "Show more" unfolds the next page, "Show fewer" folds them again.

    Args:
        on_ack: called with the alert id when the user presses Acknowledge.
        resolved_page: how many resolved alerts a page shows.
    """

    def __init__(self, on_ack: Callable[[str], None], resolved_page: int = 5):
        if resolved_page < 1:
            raise ValueError(f"resolved_page must be at least 1, got {resolved_page}")
        self.on_ack = on_ack
        self.resolved_page = resolved_page
        self.resolved_shown = resolved_page
        self.rows: dict[str, tuple[widgets.HTML, widgets.Button, widgets.HBox]] = {}
        self.note = _classed(widgets.HTML(), "evk-alert-note")
        self.note_alert_id: str | None = None
        self.empty_note = widgets.HTML("<i>No alerts.</i>")
        self.list = widgets.VBox([self.empty_note])
        self.folded = _classed(widgets.HTML(), "evk-alerts-folded")
        self.more_button = _classed(
            widgets.Button(description="Show more", layout=widgets.Layout(width="120px")),
            "evk-alerts-more",
        )
        self.fewer_button = _classed(
            widgets.Button(description="Show fewer", layout=widgets.Layout(width="120px")),
            "evk-alerts-fewer",
        )
        self.more_button.on_click(self._on_more)
        self.fewer_button.on_click(self._on_fewer)
        self.fold = widgets.HBox([self.folded, self.more_button, self.fewer_button])
        self.fold.layout.display = "none"
        self._alerts: list[dict[str, Any]] = []
        self._now: datetime | None = None
        self.widget = _classed(
            widgets.VBox([widgets.HTML("<h3>Alerts</h3>"), self.note, self.list, self.fold]),
            "evk-alerts",
        )

    def _row(self, alert_id: str) -> tuple[widgets.HTML, widgets.Button, widgets.HBox]:
        if alert_id not in self.rows:
            text = _classed(widgets.HTML(), "evk-alert-text")
            button = _classed(
                widgets.Button(
                    description="Acknowledge",
                    button_style="warning",
                    layout=widgets.Layout(width="120px", min_width="120px"),
                ),
                "evk-ack",
            )
            button.on_click(lambda _: self.on_ack(alert_id))
            row = _classed(widgets.HBox([button, text]), "evk-alert")
            self.rows[alert_id] = (text, button, row)
        return self.rows[alert_id]

    def show(self, alerts: list[dict[str, Any]], now: datetime) -> None:
        """Show ``alerts`` (newest first): the open ones, then a page of the resolved ones."""
        self._alerts, self._now = alerts, now
        active = [a for a in alerts if a.get("state") != "RESOLVED"]
        resolved = [a for a in alerts if a.get("state") == "RESOLVED"]
        shown = [*active, *resolved[: self.resolved_shown]]
        children = []
        for alert in shown:
            text, button, row = self._row(alert["alert_id"])
            html = alert_html(alert, now)
            if text.value != html:
                text.value = html
            button.layout.visibility = "visible" if alert.get("state") == "OPEN" else "hidden"
            children.append(row)
        for gone in set(self.rows) - {a["alert_id"] for a in shown}:
            self.rows.pop(gone)[2].close()
        rows = tuple(children) or (self.empty_note,)
        if tuple(self.list.children) != rows:
            self.list.children = rows
        self._show_fold(len(resolved) - min(len(resolved), self.resolved_shown))
        self._forget_resolved_note(alerts)

    def _show_fold(self, hidden: int) -> None:
        unfolded = self.resolved_shown > self.resolved_page
        self.fold.layout.display = None if hidden or unfolded else "none"
        self.folded.value = (
            f"<i>{hidden} older resolved alert{'s' * (hidden != 1)} folded</i>" if hidden else ""
        )
        self.more_button.layout.display = None if hidden else "none"
        self.fewer_button.layout.display = None if unfolded else "none"

    def _forget_resolved_note(self, alerts: list[dict[str, Any]]) -> None:
        # "Acknowledged …" is about an alert still open: once it resolves, the note is stale.
        if self.note_alert_id is None:
            return
        states = {a["alert_id"]: a.get("state") for a in alerts}
        if states.get(self.note_alert_id, "RESOLVED") == "RESOLVED":
            self.clear_note()

    def _on_more(self, _: Any = None) -> None:
        self.resolved_shown += self.resolved_page
        self._show_again()

    def _on_fewer(self, _: Any = None) -> None:
        self.resolved_shown = self.resolved_page
        self._show_again()

    def _show_again(self) -> None:
        if self._now is not None:
            self.show(self._alerts, self._now)

    def show_note(self, text: str, *, ok: bool, alert_id: str | None = None) -> None:
        """A note above the feed; one about ``alert_id`` goes away when that alert resolves."""
        self.note.value = message_html(text, ok=ok)
        self.note_alert_id = alert_id

    def clear_note(self) -> None:
        self.note.value = ""
        self.note_alert_id = None


class DeviceList:
    """Devices and their health."""

    def __init__(self) -> None:
        self.table = _classed(widgets.HTML(devices_html([])), "evk-devices-table")
        self.widget = _classed(
            widgets.VBox([widgets.HTML("<h3>Devices</h3>"), self.table]), "evk-devices"
        )

    def show(self, devices: list[dict[str, Any]]) -> None:
        html = devices_html(devices)
        if self.table.value != html:
            self.table.value = html


class RuleEditor:
    """One rule type's row: an on/off box and its parameters."""

    def __init__(self, rule_type: str):
        self.rule_type = rule_type
        self.enabled = _classed(
            widgets.Checkbox(
                description=RULE_TITLES[rule_type],
                indent=False,
                layout=widgets.Layout(width="140px"),
            ),
            "evk-rule-enabled",
        )
        self.inputs: dict[str, widgets.Widget] = {}
        for name in EDITABLE_RULE_FIELDS[rule_type]:
            if name == "class_name":
                field: widgets.Widget = widgets.Combobox(ensure_option=False)
            elif name in INT_PARAMS:
                field = widgets.IntText()
            else:
                field = widgets.FloatText(step=0.05)
            field.description = PARAM_TITLES[name]
            field.style = {"description_width": "initial"}
            field.layout = widgets.Layout(width="130px" if name in NARROW_PARAMS else "200px")
            self.inputs[name] = _classed(field, f"evk-param-{name}")
        self.widget = _classed(
            widgets.HBox([self.enabled, *self.inputs.values()]),
            "evk-rule",
            f"evk-rule-{rule_type}",
        )

    def load(self, row: RuleRow, classes: list[str]) -> None:
        self.enabled.value = row.enabled
        for name, field in self.inputs.items():
            if name == "class_name":
                field.options = tuple(classes)
            field.value = row.params.get(name) if row.params.get(name) is not None else ""

    def row(self) -> RuleRow:
        return RuleRow(
            self.rule_type,
            bool(self.enabled.value),
            {name: field.value for name, field in self.inputs.items()},
        )


class ControlPanel:
    """Per camera: model, confidence, refresh rate, precision and rules, written with
    ``PUT /config/{camera}``.

    Args:
        client: the control API client.
        on_saved: called with the camera's new config after a successful save.
    """

    def __init__(
        self,
        client: ControlApiClient,
        on_saved: Callable[[dict[str, Any]], None] | None = None,
    ):
        self.client = client
        self.on_saved = on_saved
        self.models: list[dict[str, Any]] = []
        self.camera_config: dict[str, Any] | None = None
        self._loading = False
        self._lock = threading.RLock()
        self.camera = _classed(
            widgets.Dropdown(description="camera", options=()), "evk-control-camera"
        )
        self.model = _classed(
            widgets.Dropdown(description="model", options=()), "evk-control-model"
        )
        self.confidence = _classed(
            widgets.FloatSlider(
                description="confidence", min=0.0, max=1.0, step=0.05, readout_format=".2f"
            ),
            "evk-control-confidence",
        )
        self.refresh_s = _classed(
            widgets.IntText(description="refresh (s)", layout=widgets.Layout(width="200px")),
            "evk-control-refresh",
        )
        self.iou = _classed(
            widgets.FloatSlider(
                description="NMS IoU", min=0.0, max=1.0, step=0.05, readout_format=".2f"
            ),
            "evk-control-iou",
        )
        self.max_detections = _classed(
            widgets.IntText(description="max detections", layout=widgets.Layout(width="200px")),
            "evk-control-max-detections",
        )
        self.precision = _classed(
            widgets.Dropdown(
                description="precision",
                options=PRECISION_OPTIONS,
                tooltip="int8: the model version's INT8 format (kit models quantize adds one)",
                layout=widgets.Layout(width="200px"),
            ),
            "evk-control-precision",
        )
        self.rules = {rule_type: RuleEditor(rule_type) for rule_type in EDITABLE_RULE_FIELDS}
        self.apply_button = _classed(
            widgets.Button(description="Apply", button_style="primary", icon="check"),
            "evk-apply",
        )
        self.reload_button = _classed(widgets.Button(description="Reload"), "evk-reload")
        self.message = _classed(widgets.HTML(), "evk-control-message")
        self.outlook = _classed(widgets.HTML(), "evk-control-outlook")
        self.camera.observe(self._on_camera, names="value")
        self.model.observe(self._on_model, names="value")
        self.apply_button.on_click(self._on_apply)
        self.reload_button.on_click(self._on_reload)
        self.widget = _classed(
            widgets.VBox(
                [
                    widgets.HTML("<h3>Control panel</h3>"),
                    widgets.HBox([self.camera, self.model]),
                    widgets.HBox([self.confidence, self.refresh_s]),
                    widgets.HBox([self.iou, self.max_detections, self.precision]),
                    widgets.HTML("<b>Rules</b>"),
                    *(editor.widget for editor in self.rules.values()),
                    widgets.HBox([self.apply_button, self.reload_button]),
                    self.message,
                    self.outlook,
                ]
            ),
            "evk-control",
        )

    # -- what the dashboard tells it -----------------------------------------------------------
    def set_cameras(self, camera_ids: list[str]) -> None:
        """The cameras to choose from (the selection stays, or the first is loaded)."""
        with self._lock:
            options = tuple(camera_ids)
            if tuple(self.camera.options) == options:
                return
            selected = self.camera.value
            with self._quietly():
                self.camera.options = options
                self.camera.value = selected if selected in options else None
            if self.camera.value is None and options:
                self.camera.value = options[0]

    def set_models(self, models: list[dict[str, Any]]) -> None:
        """The registry's models (``GET /models``), for the model dropdown."""
        with self._lock:
            if models == self.models:
                return
            self.models = models
            if self.camera_config is not None:
                with self._quietly():
                    self._show_model_options(self.model.value or None)

    @contextmanager
    def _quietly(self) -> Iterator[None]:
        """Change widgets without their observers reacting as to a user's change."""
        before, self._loading = self._loading, True
        try:
            yield
        finally:
            self._loading = before

    # -- loading and reading the form -----------------------------------------------------------
    def load(self, camera_id: str) -> None:
        """Read the camera's config from the API and show it."""
        try:
            camera_config = self.client.camera_config(camera_id)
        except ControlApiError as error:
            self.message.value = message_html(
                f"Cannot read the config of {camera_id}: {error.message}", ok=False
            )
            return
        self.show_config(camera_config)

    def _classes(self, model: str | None) -> list[str]:
        settings = (self.camera_config or {}).get("settings") or {}
        effective = model or model_label(settings.get("model"))
        classes = model_classes(self.models, effective)
        for rule in settings.get("rules") or []:
            if rule.get("class_name") and rule["class_name"] not in classes:
                classes.append(rule["class_name"])
        return classes

    def _show_model_options(self, value: str | None) -> None:
        settings = (self.camera_config or {}).get("settings") or {}
        overrides = (self.camera_config or {}).get("overrides") or {}
        # With an override of its own, the camera's settings do not tell the defaults' model.
        inherited = (
            "the config's defaults"
            if overrides.get("model")
            else model_label(settings.get("model"))
        )
        self.model.options = model_options(self.models, current=value, inherited=inherited)
        self.model.value = value or ""

    def show_config(self, camera_config: dict[str, Any]) -> None:
        """Show a ``GET``/``PUT /config/{camera}`` answer in the form."""
        with self._lock, self._quietly():
            self.camera_config = camera_config
            form = camera_form(camera_config, self._classes(None))
            if self.camera.value != form.camera_id:
                if form.camera_id not in self.camera.options:
                    self.camera.options = (*self.camera.options, form.camera_id)
                self.camera.value = form.camera_id
            self._show_model_options(form.model)
            self.confidence.value = form.confidence
            self.refresh_s.value = form.refresh_s
            self.iou.value = form.iou
            self.max_detections.value = form.max_detections
            self.precision.value = form.precision
            classes = self._classes(form.model)
            for rule_type, editor in self.rules.items():
                editor.load(form.rules[rule_type], classes)

    def form(self) -> CameraForm:
        """What the form holds now.

        Raises:
            RuntimeError: no camera's config is loaded.
        """
        if self.camera_config is None:
            raise RuntimeError("no camera is loaded in the control panel yet")
        return CameraForm(
            camera_id=self.camera_config["camera_id"],
            revision=int(self.camera_config["revision"]),
            model=self.model.value or None,
            confidence=round(float(self.confidence.value), 4),
            refresh_s=int(self.refresh_s.value),
            iou=round(float(self.iou.value), 4),
            max_detections=int(self.max_detections.value),
            precision=self.precision.value,
            rules={rule_type: editor.row() for rule_type, editor in self.rules.items()},
        )

    # -- callbacks ----------------------------------------------------------------------------
    def _on_camera(self, change: dict[str, Any]) -> None:
        if not self._loading and change["new"]:
            self.message.value = ""
            self.outlook.value = ""
            self.load(change["new"])

    def _on_model(self, change: dict[str, Any]) -> None:
        if self._loading or self.camera_config is None:
            return
        classes = self._classes(change["new"])
        for editor in self.rules.values():
            if "class_name" in editor.inputs:
                editor.inputs["class_name"].options = tuple(classes)

    def _on_reload(self, _: Any = None) -> None:
        if self.camera.value:
            self.load(self.camera.value)
            if self.camera_config is not None:
                self.message.value = message_html(
                    f"Reloaded {self.camera.value} (revision {self.camera_config['revision']}).",
                    ok=True,
                )

    def _on_apply(self, _: Any = None) -> None:
        if self.camera_config is None:
            self.message.value = message_html("Choose a camera first.", ok=False)
            return
        form = self.form()
        what = changes(self.camera_config, form)
        self.outlook.value = ""
        if not what:
            self.message.value = message_html("Nothing changed.", ok=True)
            return
        body = overrides_body(self.camera_config, form)
        try:
            saved = self.client.put_camera_config(form.camera_id, body, revision=form.revision)
        except ControlApiError as error:
            text = error_text(error)
            if error.status == 409:
                text += "\nPress Reload to read the current config, then apply your change again."
            self.message.value = message_html(text, ok=False)
            return
        self.show_config(saved)
        self.message.value = message_html(
            f"Saved {form.camera_id} (revision {saved['revision']}): " + "; ".join(what), ok=True
        )
        self.show_outlook(saved)
        if self.on_saved is not None:
            self.on_saved(saved)

    def show_outlook(self, camera_config: dict[str, Any]) -> None:
        """Say which of the camera's rules cannot open an alert yet, and why (an alert already
        open, a cooldown): what the user just applied then shows no alert for a reason they see.
        """
        camera_id = camera_config["camera_id"]
        rules = (camera_config.get("settings") or {}).get("rules") or []
        try:
            cameras = self.client.cameras()
            resolved = self.client.alerts(state="RESOLVED", limit=OUTLOOK_RESOLVED_READ)
        except ControlApiError as error:
            self.outlook.value = message_html(
                f"Cannot tell whether an alert can open now: {error.message}", ok=False
            )
            return
        camera = next((c for c in cameras if c.get("camera_id") == camera_id), None)
        own = [a for a in resolved if a.get("camera_id") == camera_id]
        lines = rule_outlook(rules, camera, own, datetime.now(UTC))
        self.outlook.value = (
            message_html("No alert opens yet:\n" + "\n".join(lines), ok=True, color=NOTICE_COLOR)
            if lines
            else ""
        )


class LoginBox:
    """Cognito sign-in (aws target): e-mail, password and, the first time, a new password.

    Args:
        client: signs in with :meth:`ControlApiClient.sign_in`.
        on_signed_in: called after a successful sign-in.
    """

    def __init__(self, client: ControlApiClient, on_signed_in: Callable[[], None]):
        self.client = client
        self.on_signed_in = on_signed_in
        self.email = _classed(widgets.Text(description="e-mail"), "evk-login-email")
        self.password = _classed(widgets.Password(description="password"), "evk-login-password")
        self.new_password = _classed(
            widgets.Password(
                description="new password",
                placeholder="first sign-in only",
                style={"description_width": "initial"},
            ),
            "evk-login-new-password",
        )
        self.button = _classed(
            widgets.Button(description="Sign in", button_style="primary"), "evk-login"
        )
        self.message = _classed(widgets.HTML(), "evk-login-message")
        self.button.on_click(self._on_sign_in)
        self.widget = _classed(
            widgets.VBox(
                [
                    widgets.HTML("<h3>Sign in</h3>"),
                    self.email,
                    self.password,
                    self.new_password,
                    self.button,
                    self.message,
                ]
            ),
            "evk-login-box",
        )

    def _on_sign_in(self, _: Any = None) -> None:
        email = self.email.value.strip()
        if not email or not self.password.value:
            self.message.value = message_html("Enter your e-mail and password.", ok=False)
            return
        try:
            self.client.sign_in(
                email, self.password.value, new_password=self.new_password.value or None
            )
        except Exception as error:  # noqa: BLE001 - Cognito's errors are botocore ClientErrors
            text = getattr(error, "response", {}).get("Error", {}).get("Message") or str(error)
            self.message.value = message_html(f"Sign-in failed: {text}", ok=False)
            return
        self.password.value = ""
        self.new_password.value = ""
        self.message.value = message_html(f"Signed in as {email}.", ok=True)
        self.on_signed_in()
