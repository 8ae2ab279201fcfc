"""Alerts raised by the backend, and heartbeats sent by edge devices."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from kit.core.contracts.base import (
    SCHEMA_VERSION,
    Contract,
    Identifier,
    NonNegativeInteger,
    NonNegativeReal,
    Real,
    SchemaVersion,
    SingleLine,
    UtcDatetime,
    utc_now,
)
from kit.core.contracts.model import ModelRef

AlertState = Literal["OPEN", "ACKED", "RESOLVED"]
RuleType = Literal["count_below", "count_above", "rising_trend", "ppe_violation", "camera_silent"]


class Alert(Contract):
    """One alert of one rule on one camera, from OPEN (first breach) to ACKED and RESOLVED."""

    schema_version: SchemaVersion = SCHEMA_VERSION
    alert_id: str = Field(min_length=1, max_length=128)
    device_id: Identifier | None = None
    camera_id: Identifier
    rule: Identifier = Field(description="the rule's key on the camera (its name or type)")
    rule_type: RuleType
    state: AlertState = "OPEN"
    value: Real
    threshold: Real
    message: str = ""
    opened_at: UtcDatetime
    updated_at: UtcDatetime
    resolved_at: UtcDatetime | None = None
    acked_at: UtcDatetime | None = None
    acked_by: str | None = None
    frame_key: str | None = None
    payload_id: str | None = None

    @model_validator(mode="after")
    def _state_fields(self) -> Alert:
        if self.state == "RESOLVED" and self.resolved_at is None:
            raise ValueError("a RESOLVED alert needs resolved_at")
        if self.state == "ACKED" and self.acked_at is None:
            raise ValueError("an ACKED alert needs acked_at")
        if self.updated_at < self.opened_at:
            raise ValueError("updated_at must not be before opened_at")
        return self


CameraState = Literal[
    "starting", "running", "degraded", "reconnecting", "failed", "stopped", "ended"
]
"""``degraded``: frames arrive but the model the camera should run cannot be loaded."""


class CameraHealth(Contract):
    state: CameraState
    fps: NonNegativeReal = 0.0
    last_frame_at: UtcDatetime | None = None
    model: ModelRef | None = None
    frames_published: NonNegativeInteger = 0
    reconnects: NonNegativeInteger = 0
    error: str | None = Field(default=None, max_length=2000)


class DroppedCounts(Contract):
    """Items the spool had to drop because its disk bound was reached."""

    frames: NonNegativeInteger = 0
    payloads: NonNegativeInteger = 0


class Heartbeat(Contract):
    """Device health, sent every few seconds on the same queue as detection payloads."""

    kind: Literal["heartbeat"] = "heartbeat"
    schema_version: SchemaVersion = SCHEMA_VERSION
    device_id: Identifier
    app_version: SingleLine = Field(min_length=1, max_length=64)
    sent_at: UtcDatetime = Field(default_factory=utc_now)
    uptime_s: NonNegativeReal
    cameras: dict[Identifier, CameraHealth] = Field(default_factory=dict)
    spool_depth: NonNegativeInteger = 0
    spool_bytes: NonNegativeInteger = 0
    dropped: DroppedCounts = Field(default_factory=DroppedCounts)
    spool_error: str | None = Field(
        default=None,
        max_length=2000,
        description="why the spool cannot keep everything on disk (a full or read-only disk)",
    )
