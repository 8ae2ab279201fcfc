"""What the dashboard shows, as HTML text made from API answers (plain functions, no widgets).

Every value that comes from the backend is escaped.

Examples:
    >>> from datetime import UTC, datetime
    >>> now = datetime(2026, 1, 31, 12, 0, 30, tzinfo=UTC)
    >>> age_text("2026-01-31T12:00:00Z", now)
    '30 s ago'
    >>> "OPEN" in alert_html({"alert_id": "a", "camera_id": "shelf-1", "rule": "low",
    ...     "rule_type": "count_below", "state": "OPEN", "message": "bottle count 1 is below 3",
    ...     "opened_at": "2026-01-31T12:00:00Z"}, now)
    True
"""

from __future__ import annotations

from datetime import datetime, timedelta
from html import escape
from typing import Any

from kit.dashboard.history import parse_time
from kit.dashboard.status import BackendState

STATE_COLORS = {"OPEN": "#c62828", "ACKED": "#ef6c00", "RESOLVED": "#757575"}
HEALTH_COLORS = {
    "RUNNING": "#2e7d32",
    "DEGRADED": "#f9a825",
    "STOPPED": "#757575",
    "ERROR": "#c62828",
    "OFFLINE": "#ef6c00",
}


def clock(value: datetime | str | None) -> str:
    """``12:00:03`` (UTC) of a time or an API time string; ``-`` when None."""
    if value is None:
        return "-"
    moment = parse_time(value) if isinstance(value, str) else value
    return moment.strftime("%H:%M:%S")


def age_text(value: datetime | str | None, now: datetime) -> str:
    """How long ago: ``"12 s ago"``, ``"3 min ago"``, ``"2 h ago"``; ``"never"`` when None."""
    if value is None:
        return "never"
    moment = parse_time(value) if isinstance(value, str) else value
    seconds = max(0.0, (now - moment).total_seconds())
    if seconds < 120:
        return f"{seconds:.0f} s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.0f} h ago"


def badge(text: str, color: str) -> str:
    """A small coloured label."""
    return (
        f'<span style="background:{color};color:white;border-radius:3px;padding:1px 6px;'
        f'font-size:11px;font-weight:600">{escape(text)}</span>'
    )


def banner_html(
    state: BackendState,
    *,
    api_url: str,
    now: datetime,
    backend: dict[str, Any] | None = None,
    signed_in: bool = True,
) -> str:
    """The status line: connected (and since when it answers), unreachable, or not signed in."""
    where = escape(api_url)
    if not signed_in:
        color, text = "#ef6c00", f"Sign in to use the control API at {where}"
    elif state.reachable is None:
        color, text = "#757575", f"Connecting to {where} …"
    elif state.reachable is False:
        since = clock(state.down_since)
        color = "#c62828"
        text = (
            f"Backend unreachable since {since} UTC ({escape(state.last_error or 'no answer')}); "
            f"retrying in {state.retry_in_s:.0f} s"
        )
    else:
        about = ""
        if backend:
            about = f" ({escape(str(backend.get('target')))}, kit {escape(str(backend.get('version')))})"
        text = f"Backend {where}{about} · updated {clock(state.last_ok)} UTC"
        if state.recovered_after_s is not None:
            text += f" · recovered after {state.recovered_after_s:.0f} s unreachable"
        color = "#2e7d32"
    return (
        f'<div class="evk-banner-text" style="border-left:6px solid {color};padding:4px 10px;'
        f'background:#fafafa;color:{color};font-weight:600">{text}</div>'
    )


def counts_text(counts: dict[str, int]) -> str:
    """``bottle 3 · fish 0`` ({} → ``no detections yet``)."""
    if not counts:
        return "no detections yet"
    return " · ".join(f"{name} {n}" for name, n in sorted(counts.items()))


def camera_html(camera: dict[str, Any], now: datetime) -> str:
    """A camera card's caption: counts, model, refresh rate, last seen, active alerts."""
    alerts = camera.get("active_alerts") or []
    lines = [
        f"<b>{escape(counts_text(camera.get('counts') or {}))}</b>",
        f"model {escape(str(camera.get('model') or camera.get('configured_model') or '-'))}"
        f" · every {camera.get('refresh_s', '-')} s",
        f"last seen {escape(age_text(camera.get('last_seen'), now))}",
    ]
    if alerts:
        rules = ", ".join(escape(str(a.get("rule"))) for a in alerts)
        lines.append(badge(f"{len(alerts)} active alert{'s' * (len(alerts) > 1)}", "#c62828"))
        lines[-1] += f" {rules}"
    return "<br>".join(lines)


def alert_html(alert: dict[str, Any], now: datetime) -> str:
    """One line of the alert feed."""
    state = str(alert.get("state", "?"))
    message = alert.get("message") or f"{alert.get('rule_type')} {alert.get('value')}"
    acked = ""
    if alert.get("acked_by"):
        acked = f" · acked by {escape(str(alert['acked_by']))}"
    return (
        f"{badge(state, STATE_COLORS.get(state, '#757575'))} "
        f"<b>{escape(str(alert.get('camera_id')))}</b> · {escape(str(alert.get('rule')))} "
        f"({escape(str(alert.get('rule_type')))}): {escape(str(message))} · opened "
        f"{clock(alert.get('opened_at'))} ({escape(age_text(alert.get('opened_at'), now))})"
        f"{acked}"
    )


FRAMES_ARRIVING = ("running", "degraded")
"""Camera states whose frames arrive, so whose rates mean something."""


def camera_rates_text(camera_id: str, camera: dict[str, Any], device: dict[str, Any]) -> str:
    """``shelf-1 running 9.8 fps · publishes 0.5/s``: the rate frames are decoded at and the rate
    annotated frames leave the device at (frames published over the app's uptime); just the
    state for a camera that receives no frames or a device that is stopped or offline (its
    newest heartbeat is then older than the stop)."""
    state = str(camera.get("state"))
    if state not in FRAMES_ARRIVING or device.get("health") in ("STOPPED", "OFFLINE"):
        return f"{camera_id} {state}"
    text = f"{camera_id} {state} {float(camera.get('fps') or 0):.1f} fps"
    uptime_s = float(device.get("uptime_s") or 0)
    if uptime_s > 0:
        text += f" · publishes {int(camera.get('frames_published') or 0) / uptime_s:.1f}/s"
    return text


def rule_outlook(
    rules: list[dict[str, Any]],
    camera: dict[str, Any] | None,
    resolved: list[dict[str, Any]],
    now: datetime,
) -> list[str]:
    """Why a camera's enabled rules cannot open an alert right now, one line per such rule.

    A rule with an alert open (``GET /cameras``' ``active_alerts``) opens no other until that one
    resolves (the open one takes the rule's new threshold); a rule whose last alert resolved less
    than ``cooldown_s`` ago (the newest of ``resolved``, ``GET /alerts?state=RESOLVED``) at the
    threshold it still has opens none before the cooldown ends (a new threshold is not held back).
    A rule with a ``min_duration_s`` opens its alert only once the breach has held that long.

    Args:
        rules: the camera's rules (``settings.rules`` of a ``GET``/``PUT /config/{camera}``).
        camera: the camera in ``GET /cameras`` (None when the backend has not seen it).
        resolved: the camera's resolved alerts.
        now: the time to judge cooldowns against.

    Examples:
        >>> from datetime import UTC, datetime
        >>> rule_outlook([{"type": "count_below", "name": "low", "cooldown_s": 30}],
        ...     None, [{"rule": "low", "resolved_at": "2026-01-31T12:00:00Z"}],
        ...     datetime(2026, 1, 31, 12, 0, 10, tzinfo=UTC))
        ['low: cooldown until 12:00:30 UTC (its last alert resolved at 12:00:00); no alert opens before']
    """
    active = {alert.get("rule"): alert for alert in (camera or {}).get("active_alerts") or []}
    lines = []
    for rule in rules:
        if rule.get("enabled") is False:
            continue
        key = rule.get("name") or rule.get("type")
        if key in active:
            lines.append(
                f"{key}: alert open since {clock(active[key].get('opened_at'))} UTC; it will "
                "update to the new threshold, with no new alert (nor e-mail) while it is open: it "
                "resolves once the rule is no longer breached"
            )
            continue
        if rule.get("min_duration_s"):
            lines.append(
                f"{key}: an alert opens once the rule has been breached for "
                f"{rule['min_duration_s']} s"
            )
        mine = [a for a in resolved if a.get("rule") == key and a.get("resolved_at")]
        if not mine:
            continue
        newest = max(mine, key=lambda a: parse_time(a["resolved_at"]))
        last = parse_time(newest["resolved_at"])
        until = last + timedelta(seconds=float(rule.get("cooldown_s") or 0))
        threshold = rule.get("threshold", rule.get("min_slope_per_min"))
        changed = (
            threshold is not None
            and newest.get("threshold") is not None
            and float(threshold) != float(newest["threshold"])
        )
        if until > now and not changed:
            lines.append(
                f"{key}: cooldown until {clock(until)} UTC (its last alert resolved at "
                f"{clock(last)}); no alert opens before"
            )
    return lines


def devices_html(devices: list[dict[str, Any]]) -> str:
    """The devices table: health, heartbeat age, cameras (state, fps), spool, app version."""
    if not devices:
        return "<i>No device has sent a heartbeat yet.</i>"
    rows = []
    for device in devices:
        health = str(device.get("health", "?"))
        cameras = "<br>".join(
            escape(camera_rates_text(str(cid), cam, device))
            for cid, cam in sorted((device.get("cameras") or {}).items())
        )
        age = device.get("heartbeat_age_s")
        rows.append(
            "<tr>"
            f"<td><b>{escape(str(device.get('device_id')))}</b></td>"
            f"<td>{badge(health, HEALTH_COLORS.get(health, '#757575'))}</td>"
            f"<td>{'-' if age is None else f'{float(age):.0f} s ago'}</td>"
            f"<td>{cameras or '-'}</td>"
            f"<td>{device.get('spool_depth') if device.get('spool_depth') is not None else '-'}</td>"
            f"<td>{escape(str(device.get('app_version') or '-'))}</td>"
            "</tr>"
        )
    head = "".join(
        f'<th style="text-align:left;padding-right:12px">{h}</th>'
        for h in ("device", "health", "heartbeat", "cameras", "spool", "version")
    )
    return f'<table class="evk-devices-table"><tr>{head}</tr>{"".join(rows)}</table>'
