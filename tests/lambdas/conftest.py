"""Fixtures for the Lambda handlers: real event JSON, a context, and a harness over moto.

The handlers run against the session's moto server (``backend_settings``: a clean, freshly
provisioned backend per test), pointed at it with :func:`lambdas.runtime.use_settings`.
"""

from __future__ import annotations

import copy
import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from kit.core.contracts import Alert, ControlConfig, parse
from kit.local.http_api import http_api_event
from kit.local.lambda_events import LocalLambdaContext
from kit.local.runner import AlertNotice, read_alert_inbox
from lambdas import runtime
from lambdas.store import item_to_alert

EVENTS = Path(__file__).parent / "events"
T0 = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)


def load_event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())


class BackendHarness:
    """Drives the handlers with real event shapes and reads back what they stored and sent."""

    def __init__(self, services: runtime.Services):
        self.services = services
        self.settings = services.settings
        self.store = services.store
        self._sqs_template = load_event("sqs_batch.json")["Records"][0]

    # -- inputs --------------------------------------------------------------------------------
    @staticmethod
    def payload(
        *,
        camera_id: str = "shelf-1",
        at: datetime | timedelta = T0,
        counts: dict[str, int] | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """A valid detection payload as JSON data; ``at`` may be an offset from T0."""
        captured = T0 + at if isinstance(at, timedelta) else at
        body = {
            "kind": "detection",
            "payload_id": uuid.uuid4().hex,
            "device_id": "demo-1",
            "camera_id": camera_id,
            "model": {"name": "shelf", "version": 1},
            "captured_at": captured.isoformat().replace("+00:00", "Z"),
            "frame": {"width": 640, "height": 480},
            "counts": counts if counts is not None else {"bottle": 5},
        }
        body.update(fields)
        return body

    def sqs_record(
        self,
        body: Any,
        *,
        message_id: str | None = None,
        receive_count: int = 1,
        sent_at: datetime | None = None,
    ):
        """An SQS record of ``body``, accepted by the queue at ``sent_at`` (default: now)."""
        text = body if isinstance(body, str) else json.dumps(body)
        record = copy.deepcopy(self._sqs_template)
        record.update(
            messageId=message_id or str(uuid.uuid4()),
            body=text,
            md5OfBody=hashlib.md5(text.encode()).hexdigest(),
            messageAttributes={},
        )
        record.pop("md5OfMessageAttributes", None)
        record["attributes"]["ApproximateReceiveCount"] = str(receive_count)
        sent_ms = int((sent_at or datetime.now(UTC)).timestamp() * 1000)
        record["attributes"]["SentTimestamp"] = str(sent_ms)
        record["attributes"]["ApproximateFirstReceiveTimestamp"] = str(sent_ms)
        return record

    def sqs_event(self, *bodies: Any) -> dict[str, Any]:
        return {"Records": [self.sqs_record(body) for body in bodies]}

    # -- handlers ------------------------------------------------------------------------------
    def process_event(self, event: dict[str, Any]) -> dict[str, Any]:
        from lambdas.processor.handler import handler

        return handler(event, LocalLambdaContext("evktest-processor"))

    def process(self, *bodies: Any) -> dict[str, Any]:
        """Run the processor on one batch of ``bodies``; return its partial-batch response."""
        return self.process_event(self.sqs_event(*bodies))

    def http_event(
        self,
        method: str,
        target: str,
        *,
        body: Any = None,
        token: str | None = "settings",
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """An HTTP API v2 event (from the recorded one) for ``method target``; ``token``
        ``"settings"`` sends the settings' bearer token, None sends no Authorization header."""
        from kit.core.backend import CONTROL_API_ROUTES
        from kit.local.http_api import match_route

        template = load_event("http_get_config.json")
        path, _, query = target.partition("?")
        route_key, path_parameters = match_route(method, path, CONTROL_API_ROUTES) or (
            "$default",
            {},
        )
        lines = {k: v for k, v in template["headers"].items() if k != "authorization"}
        if token is not None:
            lines["authorization"] = (
                f"Bearer {self.settings.api_token if token == 'settings' else token}"
            )
        lines.update({k.lower(): v for k, v in (headers or {}).items()})
        text = body if isinstance(body, str) or body is None else json.dumps(body)
        event = http_api_event(
            method=method,
            target=target,
            headers=list(lines.items()),
            body=(text or "").encode(),
            route_key=route_key,
            path_parameters=path_parameters,
        )
        event["requestContext"]["authorizer"] = template["requestContext"]["authorizer"]
        if query == "":
            event.pop("queryStringParameters", None)
        return event

    def api_event(self, event: dict[str, Any]) -> tuple[int, Any]:
        from lambdas.control_api.handler import handler

        response = handler(event, LocalLambdaContext("evktest-control-api"))
        body = response.get("body")
        return response["statusCode"], json.loads(body) if body else None

    def api(self, method: str, target: str, **options: Any) -> tuple[int, Any]:
        """Call the control API handler; return (status, JSON body)."""
        return self.api_event(self.http_event(method, target, **options))

    def health_check(self, at: datetime) -> dict[str, Any]:
        from lambdas.health_check.handler import handler

        event = load_event("scheduled_health_check.json")
        event["time"] = at.strftime("%Y-%m-%dT%H:%M:%SZ")
        return handler(event, LocalLambdaContext("evktest-health-check"))

    def set_config(self, **values: Any) -> ControlConfig:
        """Store a control config (``defaults=...``, ``cameras=...``) directly."""
        current = self.store.get_config()
        config = parse(ControlConfig, {**values, "revision": current.revision + 1})
        assert self.store.put_config(config, expected_revision=current.revision)
        return config

    # -- outputs -------------------------------------------------------------------------------
    def inbox(self, wait_s: int = 0) -> list[AlertNotice]:
        """Notifications sent since the last call (the local alerts-inbox subscription)."""
        notices: list[AlertNotice] = []
        while True:
            batch = read_alert_inbox(self.settings, wait_s=wait_s if not notices else 0)
            if not batch:
                return notices
            notices += batch

    def alerts(self) -> list[Alert]:
        items = self.services.dynamodb.scan(TableName=self.settings.resources.alerts_table)["Items"]
        return sorted((item_to_alert(i) for i in items), key=lambda a: a.opened_at)

    def detection_items(self, camera_id: str = "shelf-1") -> list[dict[str, Any]]:
        return self.store.query_detections(camera_id, limit=1000, newest_first=False).items


@pytest.fixture
def harness(backend_settings) -> BackendHarness:
    return BackendHarness(runtime.use_settings(backend_settings))


@pytest.fixture
def t0() -> datetime:
    return T0


@pytest.fixture
def event_json():
    """Load a real event JSON from tests/lambdas/events/ (a fresh copy each call)."""
    return load_event
