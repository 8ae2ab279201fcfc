"""One description of the backend, built by ``kit local up`` (on moto) and by ``infra/`` (on AWS).

The description names resources logically (``detections`` queue, ``alerts`` table …) and carries
what both builders need: keys, TTL attributes, indexes, redrive, triggers. Physical names come
from :class:`kit.core.settings.Settings` (``<prefix>-<logical>`` unless overridden).

Examples:
    >>> from kit.core.backend import describe_backend
    >>> from kit.core.settings import load_settings
    >>> spec = describe_backend(load_settings(prefix="demo"))
    >>> spec.queue("detections").dlq, spec.table("detections").ttl_attribute
    ('demo-detections-dlq', 'expires_at')
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from kit.core.settings import Settings

KeyType = Literal["S", "N", "B"]

PROCESSOR_TIMEOUT_S = 30
"""The processor function's timeout; the queue's visibility timeout is 6x this, as AWS advises."""


@dataclass(frozen=True)
class Key:
    name: str
    type: KeyType = "S"


@dataclass(frozen=True)
class Index:
    """A global secondary index (projection ALL)."""

    name: str
    hash_key: Key
    range_key: Key | None = None


@dataclass(frozen=True)
class TableSpec:
    logical: str
    name: str
    hash_key: Key
    range_key: Key | None = None
    ttl_attribute: str | None = None
    indexes: tuple[Index, ...] = ()
    purpose: str = ""

    @property
    def attributes(self) -> dict[str, KeyType]:
        """Every key attribute of the table and its indexes, with its type."""
        keys = [self.hash_key, self.range_key]
        for index in self.indexes:
            keys += [index.hash_key, index.range_key]
        return {k.name: k.type for k in keys if k is not None}


@dataclass(frozen=True)
class QueueSpec:
    logical: str
    name: str
    dlq: str | None = None
    max_receive_count: int = 5
    visibility_timeout_s: int = 6 * PROCESSOR_TIMEOUT_S
    retention_s: int = 4 * 86400
    purpose: str = ""
    local_only: bool = False


@dataclass(frozen=True)
class TopicSpec:
    logical: str
    name: str
    email_subscriptions: tuple[str, ...] = ()
    webhook_url: str | None = None
    inbox_queue: str | None = None
    """A queue subscribed to the topic on the local target, so users and tests see each alert."""


@dataclass(frozen=True)
class BucketSpec:
    name: str
    prefixes: dict[str, str] = field(default_factory=dict)
    frames_expiry_days: int = 30


@dataclass(frozen=True)
class SqsTrigger:
    queue: str
    batch_size: int = 10
    batching_window_s: int = 1
    report_batch_item_failures: bool = True


@dataclass(frozen=True)
class ScheduleTrigger:
    expression: str


@dataclass(frozen=True)
class HttpTrigger:
    routes: tuple[str, ...]


@dataclass(frozen=True)
class Permission:
    """Actions a function may call on one resource of the backend.

    ``resource`` is logical: ``table:<logical>`` (its indexes included), ``queue:<logical>``,
    ``topic:<logical>``, ``bucket`` (the bucket itself, e.g. ListBucket) or ``bucket:<key prefix>``
    (objects under that prefix). infra/ turns these into IAM statements; a test checks them
    against the boto3 calls the handlers make.
    """

    actions: tuple[str, ...]
    resource: str


@dataclass(frozen=True)
class FunctionSpec:
    logical: str
    handler: str
    trigger: SqsTrigger | ScheduleTrigger | HttpTrigger
    timeout_s: int
    memory_mb: int = 256
    permissions: tuple[Permission, ...] = ()
    purpose: str = ""


@dataclass(frozen=True)
class BackendSpec:
    bucket: BucketSpec
    queues: tuple[QueueSpec, ...]
    tables: tuple[TableSpec, ...]
    topics: tuple[TopicSpec, ...]
    functions: tuple[FunctionSpec, ...]

    def queue(self, logical: str) -> QueueSpec:
        return _by_logical(self.queues, logical, "queue")

    def table(self, logical: str) -> TableSpec:
        return _by_logical(self.tables, logical, "table")

    def topic(self, logical: str) -> TopicSpec:
        return _by_logical(self.topics, logical, "topic")

    def function(self, logical: str) -> FunctionSpec:
        return _by_logical(self.functions, logical, "function")


def _by_logical(items, logical, what):
    for item in items:
        if item.logical == logical:
            return item
    known = ", ".join(i.logical for i in items)
    raise KeyError(f"no {what} named {logical!r}; the backend has: {known}")


CONTROL_API_ROUTES = (
    "GET /health",
    "GET /config",
    "PUT /config",
    "GET /config/{camera}",
    "PUT /config/{camera}",
    "GET /models",
    "GET /cameras",
    "GET /devices",
    "GET /detections",
    "GET /alerts",
    "POST /alerts/{id}/ack",
    "GET /frames/latest",
)


def describe_backend(settings: Settings) -> BackendSpec:
    """The backend for ``settings``: every queue, table, topic and function with its physical name."""
    names = settings.resources
    queues = (
        QueueSpec(
            "detections",
            names.detections_queue,
            dlq=names.detections_dlq,
            purpose="edge messages: detection payloads and heartbeats, consumed by the processor",
        ),
        QueueSpec(
            "alerts-inbox",
            names.alerts_inbox_queue,
            purpose="local only: subscribed to the alerts topic so each alert sent can be seen",
            local_only=True,
        ),
    )
    tables = (
        TableSpec(
            "detections",
            names.detections_table,
            hash_key=Key("camera_id"),
            range_key=Key("sk"),
            ttl_attribute="expires_at",
            purpose="time series of payloads; sk = '<captured_at ISO>#<payload_id>'",
        ),
        TableSpec(
            "alerts",
            names.alerts_table,
            hash_key=Key("alert_id"),
            ttl_attribute="expires_at",
            indexes=(
                Index("by-state", Key("state"), Key("opened_at")),
                Index("by-camera", Key("camera_id"), Key("opened_at")),
                Index("recent", Key("feed"), Key("opened_at")),
            ),
            purpose="alert records and their state machine; 'recent': every alert (feed='alert') "
            "newest first",
        ),
        TableSpec(
            "devices",
            names.devices_table,
            hash_key=Key("device_id"),
            purpose="device health from the latest heartbeat",
        ),
        TableSpec(
            "cameras",
            names.cameras_table,
            hash_key=Key("camera_id"),
            purpose="camera last-seen, latest frame and per-rule state (open alert, trend window)",
        ),
        TableSpec(
            "config",
            names.config_table,
            hash_key=Key("config_id"),
            purpose="the control config (ControlConfig JSON; config_id 'current')",
        ),
        TableSpec(
            "audit",
            names.audit_table,
            hash_key=Key("entity"),
            range_key=Key("at"),
            ttl_attribute="expires_at",
            purpose="who changed what, when, old -> new",
        ),
        TableSpec(
            "idempotency",
            names.idempotency_table,
            hash_key=Key("id"),
            ttl_attribute="expiration",
            purpose="payload ids claimed or processed, with their results (exactly once)",
        ),
    )
    topics = (
        TopicSpec(
            "alerts",
            names.alerts_topic,
            email_subscriptions=tuple(settings.alert_emails),
            webhook_url=settings.alert_webhook_url,
            inbox_queue=names.alerts_inbox_queue,
        ),
    )
    functions = (
        FunctionSpec(
            "processor",
            handler="lambdas.processor.handler.handler",
            trigger=SqsTrigger(queue="detections"),
            timeout_s=PROCESSOR_TIMEOUT_S,
            permissions=(
                # The event source mapping's (the function's role needs them for its trigger).
                Permission(
                    ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"),
                    "queue:detections",
                ),
                Permission(("dynamodb:BatchWriteItem", "dynamodb:Query"), "table:detections"),
                Permission(("dynamodb:PutItem", "dynamodb:UpdateItem"), "table:alerts"),
                Permission(("dynamodb:UpdateItem",), "table:cameras"),
                Permission(("dynamodb:UpdateItem",), "table:devices"),
                Permission(("dynamodb:GetItem",), "table:config"),
                # Payload ids: claimed (conditional put), released when processing fails,
                # recorded as completed with their results (batch write).
                Permission(
                    ("dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"),
                    "table:idempotency",
                ),
                Permission(("sns:Publish",), "topic:alerts"),
                # Presigned links to annotated frames in the notifications.
                Permission(("s3:GetObject",), "bucket:frames/"),
            ),
            purpose="validate, store, evaluate rules, raise/resolve alerts, publish to SNS",
        ),
        FunctionSpec(
            "control-api",
            handler="lambdas.control_api.handler.handler",
            trigger=HttpTrigger(routes=CONTROL_API_ROUTES),
            timeout_s=15,
            permissions=(
                Permission(("dynamodb:GetItem", "dynamodb:PutItem"), "table:config"),
                Permission(("dynamodb:PutItem",), "table:audit"),
                Permission(("dynamodb:UpdateItem", "dynamodb:Query"), "table:alerts"),
                Permission(("dynamodb:GetItem", "dynamodb:Scan"), "table:cameras"),
                Permission(("dynamodb:Scan",), "table:devices"),
                Permission(("dynamodb:Query",), "table:detections"),
                Permission(("s3:ListBucket",), "bucket"),
                Permission(("s3:GetObject",), "bucket:models/"),
                # Presigned URLs of the latest frames.
                Permission(("s3:GetObject",), "bucket:frames/"),
            ),
            purpose="the control panel's API (HTTP API v2)",
        ),
        FunctionSpec(
            "health-check",
            handler="lambdas.health_check.handler.handler",
            trigger=ScheduleTrigger("rate(1 minute)"),
            timeout_s=60,
            permissions=(
                Permission(("dynamodb:Scan", "dynamodb:UpdateItem"), "table:cameras"),
                Permission(("dynamodb:Scan", "dynamodb:UpdateItem"), "table:devices"),
                Permission(("dynamodb:PutItem", "dynamodb:UpdateItem"), "table:alerts"),
                Permission(("dynamodb:GetItem",), "table:config"),
                Permission(("sns:Publish",), "topic:alerts"),
                # Presigned links to the camera's last frame in the notifications.
                Permission(("s3:GetObject",), "bucket:frames/"),
            ),
            purpose="camera_silent rule and device OFFLINE state",
        ),
    )
    bucket = BucketSpec(
        names.bucket,
        prefixes={
            "frames": "frames/<device>/<camera>/<yyyy>/<mm>/<dd>/<timestamp>.jpg",
            "crops": "crops/<device>/<camera>/<yyyy>/<mm>/<dd>/<timestamp>-<n>.jpg",
            "samples": "samples/<device>/<camera>/<yyyy-mm-dd>/<id>.{jpg,txt,json}",
            "models": "models/<name>/<version>/",
            "datasets": "datasets/<name>/<version>/",
            "packages": "packages/<kind>/<name>/<version>/",
        },
    )
    return BackendSpec(bucket, queues, tables, topics, functions)
