"""The alert state machine and the notifications it sends.

Per camera and rule the backend keeps a :class:`RuleState` (in the cameras table):

- the current alert, if one is OPEN or ACKED;
- when the previous alert was resolved (for the cooldown);
- an *outbox*: alerts whose record and notification are still to be written/sent.

Transitions, for a rule evaluated at time ``at`` (a :class:`RuleOutcome`; :func:`next_state`):

=================  ===========================================  ==============================
current alert      evaluation                                   result
=================  ===========================================  ==============================
none               breached, no resolve within ``cooldown_s``   OPEN a new alert (notify)
none               breached, resolved < ``cooldown_s`` ago      nothing (suppressed)
OPEN / ACKED       breached                                     nothing (no repeat)
OPEN / ACKED       not breached                                 RESOLVED (notify)
none               not breached                                 nothing
=================  ===========================================  ==============================

A user acknowledges an OPEN alert (``POST /alerts/{id}/ack``): it becomes ACKED and stays the
current alert until the rule is back to normal. A breach that outlasts the cooldown after a
resolve opens a new alert as soon as the cooldown has passed.

Applying a transition (:class:`AlertDesk`) is safe to repeat: the rule state is written first,
conditionally on the state it was computed from, with the alert in its outbox; then the alert
record is written, the notification published and the outbox cleared. A retry after a crash
finds the outbox and finishes the job, so no alert is lost; a notification may at worst be sent
twice when a crash falls between publishing and clearing the outbox.

Examples:
    >>> from datetime import UTC, datetime
    >>> from kit.core.contracts import CountBelowRule
    >>> from kit.core.rules import Evaluation
    >>> outcome = RuleOutcome(camera_id="shelf-1",
    ...     rule=CountBelowRule(class_name="bottle", threshold=3),
    ...     evaluation=Evaluation(True, 1, 3, "low"), at=datetime(2026, 1, 31, tzinfo=UTC),
    ...     token="p1")
    >>> state = next_state(RuleState(), outcome)
    >>> state.alert.state, len(state.outbox)
    ('OPEN', 1)
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Protocol

from kit.core.contracts import Alert, Rule
from kit.core.rules import Evaluation
from kit.core.timefmt import parse_stamp, stamp

SUBJECT_MAX = 100
"""SNS rejects longer subjects."""


@dataclass(frozen=True)
class RuleState:
    """What the backend remembers of one rule on one camera between evaluations."""

    alert: Alert | None = None
    last_resolved_at: datetime | None = None
    outbox: tuple[Alert, ...] = field(default=())

    def to_json(self) -> str:
        return json.dumps(
            {
                "alert": self.alert.model_dump(mode="json") if self.alert else None,
                "last_resolved_at": stamp(self.last_resolved_at) if self.last_resolved_at else None,
                "outbox": [a.model_dump(mode="json") for a in self.outbox],
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str | None) -> RuleState:
        if not text:
            return cls()
        data = json.loads(text)
        return cls(
            alert=Alert.model_validate(data["alert"]) if data.get("alert") else None,
            last_resolved_at=parse_stamp(data["last_resolved_at"])
            if data.get("last_resolved_at")
            else None,
            outbox=tuple(Alert.model_validate(a) for a in data.get("outbox", [])),
        )


@dataclass(frozen=True)
class RuleOutcome:
    """One rule evaluated on one camera at one moment: what moves the rule's state on.

    Attributes:
        camera_id: the camera judged.
        rule: the rule evaluated.
        evaluation: what it found.
        at: the moment judged (the payload's capture time, or the scheduled check's time).
        token: what identifies this breach (the payload id, or the silent-since time); the same
            breach always gets the same alert id.
        device_id: the camera's device, recorded in an alert it opens.
        frame_key: the frame to link in a notification (the payload's, or the camera's latest).
        payload_id: the payload judged (for a scheduled check: the camera's newest).
    """

    camera_id: str
    rule: Rule
    evaluation: Evaluation
    at: datetime
    token: str
    device_id: str | None = None
    frame_key: str | None = None
    payload_id: str | None = None


def alert_id_for(camera_id: str, rule_key: str, token: str, at: datetime) -> str:
    """A deterministic alert id: the same breach (camera, rule, ``token``) always gets the same one.

    ``token`` identifies the breach: the payload that opened it, or for a silent camera its
    last-seen time. Ids start with the opening time, so they sort by time.
    """
    digest = hashlib.sha256(f"{camera_id}\x00{rule_key}\x00{token}".encode()).hexdigest()[:10]
    return f"{at.strftime('%Y%m%dT%H%M%SZ')}-{digest}"


def next_state(state: RuleState, outcome: RuleOutcome) -> RuleState:
    """The rule state after ``outcome`` (see the module's table); pure.

    Returns ``state`` itself when nothing changes, so callers can skip the write.
    """
    rule, evaluation, at = outcome.rule, outcome.evaluation, outcome.at
    if state.alert is None:
        if not evaluation.breached:
            return state
        if state.last_resolved_at is not None:
            since_resolve = (at - state.last_resolved_at).total_seconds()
            if since_resolve < rule.cooldown_s:
                return state
        alert = Alert(
            alert_id=alert_id_for(outcome.camera_id, rule.key, outcome.token, at),
            device_id=outcome.device_id,
            camera_id=outcome.camera_id,
            rule=rule.key,
            rule_type=rule.type,
            state="OPEN",
            value=evaluation.value,
            threshold=evaluation.threshold,
            message=evaluation.summary,
            opened_at=at,
            updated_at=at,
            frame_key=outcome.frame_key,
            payload_id=outcome.payload_id,
        )
        return replace(state, alert=alert, outbox=(*state.outbox, alert))
    if evaluation.breached:
        return state
    resolved_at = max(at, state.alert.opened_at)
    resolved = state.alert.model_copy(
        update={
            "state": "RESOLVED",
            "resolved_at": resolved_at,
            "updated_at": resolved_at,
            "value": evaluation.value,
            "message": evaluation.summary,
            "frame_key": outcome.frame_key or state.alert.frame_key,
        }
    )
    return RuleState(alert=None, last_resolved_at=resolved_at, outbox=(*state.outbox, resolved))


def _number(value: float) -> str:
    return f"{value:g}" if abs(value) < 1e6 else f"{value:.3e}"


def render_subject(alert: Alert) -> str:
    """A one-line SNS subject (ASCII, at most 100 characters)."""
    text = f"[EVK] {alert.state} {alert.camera_id}: {alert.message or alert.rule}"
    text = " ".join(text.split())
    text = text.encode("ascii", "replace").decode()
    return text if len(text) <= SUBJECT_MAX else text[: SUBJECT_MAX - 3] + "..."


def render_body(alert: Alert, *, frame_url: str | None, api_url: str | None = None) -> str:
    """The readable notification text: what, where, value vs threshold, when, a link to the frame."""
    when = alert.resolved_at if alert.state == "RESOLVED" else alert.opened_at
    headline = {
        "OPEN": f"Alert on camera {alert.camera_id}: {alert.message}",
        "ACKED": f"Alert acknowledged on camera {alert.camera_id}: {alert.message}",
        "RESOLVED": f"Back to normal on camera {alert.camera_id}: {alert.message}",
    }[alert.state]
    lines = [
        headline,
        "",
        f"State:     {alert.state}",
        f"Camera:    {alert.camera_id}"
        + (f" (device {alert.device_id})" if alert.device_id else ""),
        f"Rule:      {alert.rule}"
        + (f" ({alert.rule_type})" if alert.rule != alert.rule_type else ""),
        f"Value:     {_number(alert.value)} (threshold {_number(alert.threshold)})",
        f"Time:      {when:%Y-%m-%d %H:%M:%S} UTC",
    ]
    if alert.state == "RESOLVED":
        lines.append(f"Opened:    {alert.opened_at:%Y-%m-%d %H:%M:%S} UTC")
    if alert.acked_by:
        lines.append(f"Acked by:  {alert.acked_by}")
    lines.append(f"Frame:     {frame_url or 'no frame was published with this payload'}")
    lines.append(f"Alert id:  {alert.alert_id}")
    if api_url and alert.state == "OPEN":
        lines.append(f"Acknowledge: POST {api_url.rstrip('/')}/alerts/{alert.alert_id}/ack")
    return "\n".join(lines) + "\n"


class AlertStore(Protocol):
    """What :class:`AlertDesk` needs from storage (see :class:`lambdas.store.Store`)."""

    def replace_rule_state(
        self, camera_id: str, rule_key: str, new: str, expected: str | None
    ) -> bool: ...

    def create_alert(self, alert: Alert) -> bool: ...

    def resolve_alert(self, alert: Alert) -> Alert | None: ...


class Notifier(Protocol):
    def publish(self, alert: Alert) -> str: ...


@dataclass
class AppliedTransition:
    """What :meth:`AlertDesk.apply` did for one rule."""

    camera_id: str
    rule: str
    sent: list[tuple[str, str]] = field(default_factory=list)
    """(alert_id, state) of each alert written and notified."""


class StateConflictError(RuntimeError):
    """The rule state changed between reading and writing it; retry the message."""


class AlertDesk:
    """Applies rule evaluations to the stored rule states, alert records and notifications."""

    def __init__(self, store: AlertStore, notifier: Notifier):
        self.store = store
        self.notifier = notifier

    def apply(self, outcome: RuleOutcome, stored_state: str | None) -> AppliedTransition:
        """Move one rule's state on by ``outcome``; write, notify and clear the outbox.

        Args:
            outcome: the rule's evaluation on its camera.
            stored_state: the rule state's JSON as read (None: never stored).

        Raises:
            StateConflictError: another evaluation changed the rule state first.
        """
        camera_id, rule_key = outcome.camera_id, outcome.rule.key
        result = AppliedTransition(camera_id, rule_key)
        state = RuleState.from_json(stored_state)
        new = next_state(state, outcome)
        current_json = stored_state
        if new is not state:
            new_json = new.to_json()
            if not self.store.replace_rule_state(camera_id, rule_key, new_json, stored_state):
                raise StateConflictError(
                    f"rule {rule_key!r} of camera {camera_id!r} changed while it was evaluated"
                )
            current_json = new_json
        if new.outbox:
            result.sent = self._flush(camera_id, rule_key, new, current_json)
        return result

    def _flush(
        self, camera_id: str, rule_key: str, state: RuleState, state_json: str | None
    ) -> list[tuple[str, str]]:
        sent = []
        for alert in state.outbox:
            if alert.state == "RESOLVED":
                stored = self.store.resolve_alert(alert)
                if stored is not None:
                    alert = stored
            else:
                self.store.create_alert(alert)
            self.notifier.publish(alert)
            sent.append((alert.alert_id, alert.state))
        cleared = replace(state, outbox=())
        # A failed clear means another evaluation took over this rule; it sees the outbox too.
        self.store.replace_rule_state(camera_id, rule_key, cleared.to_json(), state_json)
        return sent
