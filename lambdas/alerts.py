"""The alert state machine and the notifications it sends.

Per camera and rule the backend keeps a :class:`RuleState` (in the cameras table):

- the current alert, if one is OPEN or ACKED;
- when the previous alert was resolved, and at which threshold (for the cooldown);
- since when the rule has been breached without an alert (``breaching_since``, for a rule's
  ``min_duration_s``; kept only for rules that set one);
- an *outbox*: alerts whose record and notification are still to be written/sent.

Transitions, for a rule evaluated at time ``at`` (a :class:`RuleOutcome`; :func:`next_state`):

=================  ===========================================  ==============================
current alert      evaluation                                   result
=================  ===========================================  ==============================
none               breached since ``min_duration_s`` or more,   OPEN a new alert (notify)
                   no resolve within ``cooldown_s``
none               breached for less than ``min_duration_s``    breaching since noted
none               breached, resolved < ``cooldown_s`` ago at   nothing (suppressed)
                   the same threshold
OPEN / ACKED       not recovered, same threshold                nothing (no repeat)
OPEN / ACKED       not recovered, the rule's threshold changed  record revised (no notify)
OPEN / ACKED       recovered                                    RESOLVED (notify)
none               not breached                                 breaching since forgotten
=================  ===========================================  ==============================

"Breached since" counts capture times (``at``), never the function's clock: the breach must
hold on every payload from the first breaching one to one captured ``min_duration_s`` later; a
payload that does not breach starts it over. "Recovered" is not breached, except for count
rules, whose ``hysteresis`` keeps their alert open a little past the threshold
(:attr:`kit.core.rules.Evaluation.resolves_alert`). A revised alert keeps its id and state; its
record takes the new threshold, value and message. The cooldown holds back a repeat of the
same alert: once its rule's threshold changed (a user raised it), a breach opens an alert
without waiting for it.

A user acknowledges an OPEN alert (``POST /alerts/{id}/ack``): it becomes ACKED and stays the
current alert until the rule is back to normal. A breach that outlasts the cooldown after a
resolve opens a new alert as soon as the cooldown has passed.

Applying transitions (:class:`AlertDesk`) is safe to repeat and to run in parallel: a camera's
changed rule states are written first, in one write, conditionally on the states they were
computed from and on the payload judged still being the camera's newest, with the alerts in
their outboxes; then each alert record is written, its notification claimed, published and
marked sent, and the outbox cleared. A retry after a crash finds the outbox and finishes the
job, so no alert is lost; a processor that finds an outbox another one is sending skips the
notifications claimed, so none is sent twice, unless a crash falls between publishing and
marking it sent.

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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Literal, Protocol

from kit.core.contracts import Alert, Rule, utc_now
from kit.core.rules import Evaluation
from kit.core.timefmt import parse_stamp, stamp

SUBJECT_MAX = 100
"""SNS rejects longer subjects."""
OUTBOX_CLEAR_ATTEMPTS = 5
"""Tries at taking sent alerts out of an outbox that other processors keep changing (each of
them flushes it too, so what is left is sent by whoever changes it last)."""


@dataclass(frozen=True)
class RuleState:
    """What the backend remembers of one rule on one camera between evaluations."""

    alert: Alert | None = None
    last_resolved_at: datetime | None = None
    outbox: tuple[Alert, ...] = field(default=())
    breaching_since: datetime | None = None
    resolved_threshold: float | None = None

    def to_json(self) -> str:
        data = {
            "alert": self.alert.model_dump(mode="json") if self.alert else None,
            "last_resolved_at": stamp(self.last_resolved_at) if self.last_resolved_at else None,
            "outbox": [a.model_dump(mode="json") for a in self.outbox],
        }
        if self.breaching_since is not None:
            data["breaching_since"] = stamp(self.breaching_since)
        if self.resolved_threshold is not None:
            data["resolved_threshold"] = self.resolved_threshold
        return json.dumps(data, sort_keys=True)

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
            breaching_since=parse_stamp(data["breaching_since"])
            if data.get("breaching_since")
            else None,
            resolved_threshold=data.get("resolved_threshold"),
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
            return state if state.breaching_since is None else replace(state, breaching_since=None)
        since = state.breaching_since or at
        held_s = (at - since).total_seconds()
        cooling = (
            state.last_resolved_at is not None
            and (at - state.last_resolved_at).total_seconds() < rule.cooldown_s
            and state.resolved_threshold in (None, evaluation.threshold)
        )
        if cooling or held_s < rule.min_duration_s:
            # The breach's start is kept through a cooldown too: a breach that outlasts both
            # opens its alert as soon as the cooldown ends.
            if rule.min_duration_s and state.breaching_since is None:
                return replace(state, breaching_since=at)
            return state
        message = evaluation.summary
        if rule.min_duration_s:
            message += f" for {held_s:.0f} s"
        alert = Alert(
            alert_id=alert_id_for(outcome.camera_id, rule.key, outcome.token, at),
            device_id=outcome.device_id,
            camera_id=outcome.camera_id,
            rule=rule.key,
            rule_type=rule.type,
            state="OPEN",
            value=evaluation.value,
            threshold=evaluation.threshold,
            message=message,
            opened_at=at,
            updated_at=at,
            frame_key=outcome.frame_key,
            payload_id=outcome.payload_id,
        )
        return replace(state, alert=alert, outbox=(*state.outbox, alert), breaching_since=None)
    if not evaluation.resolves_alert:
        if evaluation.threshold == state.alert.threshold:
            return state
        revised = state.alert.model_copy(
            update={
                "threshold": evaluation.threshold,
                "value": evaluation.value,
                "message": evaluation.summary,
                "updated_at": max(at, state.alert.updated_at),
            }
        )
        return replace(state, alert=revised, outbox=(*state.outbox, revised))
    resolved_at = max(at, state.alert.opened_at)
    resolved = state.alert.model_copy(
        update={
            "state": "RESOLVED",
            "resolved_at": resolved_at,
            "updated_at": resolved_at,
            "value": evaluation.value,
            "threshold": evaluation.threshold,
            "message": evaluation.summary,
            "frame_key": outcome.frame_key or state.alert.frame_key,
        }
    )
    return RuleState(
        alert=None,
        last_resolved_at=resolved_at,
        outbox=(*state.outbox, resolved),
        resolved_threshold=evaluation.threshold,
    )


def _number(value: float) -> str:
    return f"{value:g}" if abs(value) < 1e6 else f"{value:.3e}"


def _printable(text: str) -> str:
    # Contracts refuse control characters; alerts stored before they did may still carry some.
    return "".join(c if c.isprintable() else " " for c in text)


def render_subject(alert: Alert) -> str:
    """A one-line SNS subject (ASCII, no control characters, at most 100 characters)."""
    text = _printable(f"[EVK] {alert.state} {alert.camera_id}: {alert.message or alert.rule}")
    text = " ".join(text.split())
    text = text.encode("ascii", "replace").decode()
    return text if len(text) <= SUBJECT_MAX else text[: SUBJECT_MAX - 3] + "..."


def render_body(alert: Alert, *, frame_url: str | None, api_url: str | None = None) -> str:
    """The readable notification text: what, where, value vs threshold, when, a link to the frame."""
    when = alert.resolved_at if alert.state == "RESOLVED" else alert.opened_at
    message = _printable(alert.message)
    headline = {
        "OPEN": f"Alert on camera {alert.camera_id}: {message}",
        "ACKED": f"Alert acknowledged on camera {alert.camera_id}: {message}",
        "RESOLVED": f"Back to normal on camera {alert.camera_id}: {message}",
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
        lines.append(f"Acked by:  {_printable(alert.acked_by)}")
    lines.append(f"Frame:     {frame_url or 'no frame was published with this payload'}")
    lines.append(f"Alert id:  {alert.alert_id}")
    if api_url and alert.state == "OPEN":
        lines.append(f"Acknowledge: POST {api_url.rstrip('/')}/alerts/{alert.alert_id}/ack")
    return "\n".join(lines) + "\n"


class RuleStatesWritten(Protocol):
    """What writing rule states did (see :class:`lambdas.store.RuleStatesWrite`)."""

    done: bool
    current: dict[str, str]


class AlertStore(Protocol):
    """What :class:`AlertDesk` needs from storage (see :class:`lambdas.store.Store`)."""

    def replace_rule_states(
        self,
        camera_id: str,
        changes: Mapping[str, tuple[str, str | None]],
        *,
        newest_payload_id: str | None = None,
    ) -> RuleStatesWritten: ...

    def create_alert(self, alert: Alert) -> bool: ...

    def revise_alert(self, alert: Alert) -> bool: ...

    def resolve_alert(self, alert: Alert) -> Alert | None: ...

    def claim_notification(
        self, alert_id: str, state: str, *, now: datetime
    ) -> Literal["claimed", "sent", "busy"]: ...

    def mark_notified(self, alert_id: str, state: str, *, now: datetime) -> None: ...


class Notifier(Protocol):
    def publish(self, alert: Alert) -> str: ...


@dataclass
class AppliedTransition:
    """What :meth:`AlertDesk.apply` did for one rule."""

    camera_id: str
    rule: str
    sent: list[tuple[str, str]] = field(default_factory=list)
    """(alert_id, state) of each alert this call notified."""


class StateConflictError(RuntimeError):
    """The rule states changed, or a newer payload arrived, between reading and writing them;
    retry the message."""


def _outbox_key(alert: Alert) -> tuple[str, str, datetime]:
    """What tells an outbox entry from the others: an alert's revisions share its id and state."""
    return (alert.alert_id, alert.state, alert.updated_at)


class AlertDesk:
    """Applies rule evaluations to the stored rule states, alert records and notifications."""

    def __init__(self, store: AlertStore, notifier: Notifier):
        self.store = store
        self.notifier = notifier

    def apply(
        self,
        outcomes: Sequence[RuleOutcome],
        stored_states: Mapping[str, str | None],
        *,
        newest_payload_id: str | None = None,
    ) -> list[AppliedTransition]:
        """Move one camera's rule states on by ``outcomes``, all or none; then write the alerts,
        notify and clear the outboxes.

        Every changed state is written in one conditional write: each from the state it was
        computed from, and (``newest_payload_id``) only while the camera's newest payload is still
        the one judged. So the states of a camera only ever move on by its newest payload's
        outcomes, each from the outcome of the payload before it, however many processors run.

        Args:
            outcomes: the camera's rules evaluated at one moment (one camera only).
            stored_states: rule key -> the rule state's JSON as read (missing/None: never stored).
            newest_payload_id: the camera's newest payload when the states were read; None: no
                such condition.

        Raises:
            StateConflictError: another evaluation changed a rule state first, or a newer payload
                arrived.
        """
        if not outcomes:
            return []
        camera_id = outcomes[0].camera_id
        states: dict[str, tuple[RuleState, str | None]] = {}
        changes: dict[str, tuple[str, str | None]] = {}
        for outcome in outcomes:
            key = outcome.rule.key
            stored = stored_states.get(key)
            state = RuleState.from_json(stored)
            new = next_state(state, outcome)
            if new is state:
                states[key] = (state, stored)
            else:
                new_json = new.to_json()
                changes[key] = (new_json, stored)
                states[key] = (new, new_json)
        if (
            changes
            and not self.store.replace_rule_states(
                camera_id, changes, newest_payload_id=newest_payload_id
            ).done
        ):
            raise StateConflictError(
                f"rules {sorted(changes)} of camera {camera_id!r} changed, or a newer payload "
                "arrived, while they were evaluated"
            )
        results = []
        for key, (state, state_json) in states.items():
            result = AppliedTransition(camera_id, key)
            if state.outbox:
                result.sent = self._flush(camera_id, key, state, state_json)
            results.append(result)
        return results

    def _flush(
        self, camera_id: str, rule_key: str, state: RuleState, state_json: str | None
    ) -> list[tuple[str, str]]:
        """Write each outbox alert's record, send its notification once, and take what was sent
        out of the outbox.

        Several processors may find the same outbox (one wrote it, another evaluated the next
        payload before it was cleared): each writes the record (idempotent), but only the one
        that claims the notification sends it, and an alert stays in the outbox until it is sent.
        A claim left by a function that stopped expires (:data:`lambdas.store.NOTIFICATION_CLAIM_S`)
        and the next flush of the rule sends it. A revision of an open alert (its threshold
        changed: ``updated_at`` after ``opened_at``) rewrites the record's figures; its
        notification was sent when it opened, so none is sent again.
        """
        sent, done = [], set()
        for entry in state.outbox:
            alert = entry
            if alert.state == "RESOLVED":
                stored = self.store.resolve_alert(alert)
                if stored is not None:
                    alert = stored
            elif not self.store.create_alert(alert) and alert.updated_at > alert.opened_at:
                self.store.revise_alert(alert)
            claim = self.store.claim_notification(alert.alert_id, alert.state, now=utc_now())
            if claim == "claimed":
                self.notifier.publish(alert)
                self.store.mark_notified(alert.alert_id, alert.state, now=utc_now())
                sent.append((alert.alert_id, alert.state))
            if claim != "busy":
                done.add(_outbox_key(entry))
        self._take_out_of_outbox(camera_id, rule_key, state, state_json, done)
        return sent

    def _take_out_of_outbox(
        self,
        camera_id: str,
        rule_key: str,
        state: RuleState,
        state_json: str | None,
        done: set[tuple[str, str, datetime]],
    ) -> None:
        # Another processor may have moved the state on meanwhile (its outbox still holds what
        # was sent here): take the sent alerts out of the state as it is now.
        for _ in range(OUTBOX_CLEAR_ATTEMPTS):
            remaining = tuple(a for a in state.outbox if _outbox_key(a) not in done)
            if remaining == state.outbox:
                return
            cleared = replace(state, outbox=remaining).to_json()
            written = self.store.replace_rule_states(camera_id, {rule_key: (cleared, state_json)})
            if written.done:
                return
            state_json = written.current.get(rule_key)
            state = RuleState.from_json(state_json)
