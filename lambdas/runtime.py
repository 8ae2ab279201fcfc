"""What the handlers talk to, built once per Lambda container (or local runner) from the settings.

A Lambda reads its settings like everything else in the kit (:func:`kit.core.settings.load_settings`,
``EVK_*`` environment variables set by ``infra/`` or by the local runner). :func:`services`
builds the :class:`Services` (clients, store, alert desk, idempotency settings) on first use and
keeps them for the container's life; :func:`use_settings` replaces them (the local runner and the
tests point the handlers at a given backend this way).

Examples:
    >>> from lambdas import runtime
    >>> runtime.use_settings(settings)      # doctest: +SKIP
    >>> runtime.services().store.get_config().revision   # doctest: +SKIP
    0
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from botocore.config import Config

from kit.core.backend import PROCESSOR_TIMEOUT_S
from kit.core.contracts import Alert, camera_object_key_problem
from kit.core.settings import Settings, load_settings
from lambdas.alerts import AlertDesk, render_body, render_subject
from lambdas.store import Store

FRAME_LINK_EXPIRY_S = 24 * 3600
"""Presigned frame links in notifications; on AWS also bounded by the role's session."""

log = logging.getLogger(__name__)


class SnsNotifier:
    """Publishes alerts to the alerts topic with a readable subject and body."""

    def __init__(
        self,
        sns: Any,
        topic: str,
        *,
        account_id: Callable[[], str],
        region: str,
        frame_url: Callable[[str], str],
        api_url: str | None = None,
    ):
        self.sns = sns
        self._topic = topic
        self._topic_arn: str | None = None
        self._account_id = account_id
        self.region = region
        self.frame_url = frame_url
        self.api_url = api_url

    @property
    def topic_arn(self) -> str:
        """The topic's ARN: taken as is when the setting holds one, else built from its name
        (once; the setting is left as it is, so that threads building it at once agree)."""
        if self._topic_arn is None:
            self._topic_arn = (
                self._topic
                if self._topic.startswith("arn:")
                else f"arn:aws:sns:{self.region}:{self._account_id()}:{self._topic}"
            )
        return self._topic_arn

    def frame_link(self, alert: Alert) -> str | None:
        """A presigned link to the alert's frame; None when it has none, or when its key lies
        outside the camera's own ``frames/<device>/<camera>/`` prefix (stored before payloads
        pointing elsewhere were refused): no other object is ever linked."""
        if not alert.frame_key:
            return None
        problem = camera_object_key_problem(
            alert.frame_key, device_id=alert.device_id, camera_id=alert.camera_id, kinds=("frames",)
        )
        if problem:
            log.warning("alert %s: no frame link, its frame key %s", alert.alert_id, problem)
            return None
        return self.frame_url(alert.frame_key)

    def publish(self, alert: Alert) -> str:
        """Send ``alert``; return the SNS message id."""
        frame = self.frame_link(alert)
        response = self.sns.publish(
            TopicArn=self.topic_arn,
            Subject=render_subject(alert),
            Message=render_body(alert, frame_url=frame, api_url=self.api_url),
            MessageAttributes={
                name: {"DataType": "String", "StringValue": value}
                for name, value in (
                    ("alert_id", alert.alert_id),
                    ("state", alert.state),
                    ("camera_id", alert.camera_id),
                    ("rule", alert.rule),
                    ("rule_type", alert.rule_type),
                )
            },
        )
        return response["MessageId"]


class IdempotencyConfig:
    """How long a processor's claim on a payload id holds (:meth:`lambdas.store.Store.claim_payload`).

    A claim lasts until the invocation's deadline, read from its Lambda context (registered at
    the start of each invocation), or :data:`kit.core.backend.PROCESSOR_TIMEOUT_S` when none is
    registered. A function stopped mid-batch thus leaves claims that have run out by the time
    the queue shows the batch again (its visibility timeout is at least the function's timeout).
    """

    def __init__(self, default_claim_s: float = PROCESSOR_TIMEOUT_S):
        self.default_claim_s = default_claim_s
        self.lambda_context: Any = None

    def register_lambda_context(self, context: Any) -> None:
        """Claims taken from now on hold until ``context``'s deadline."""
        self.lambda_context = context

    def claim_until(self, now: datetime) -> datetime:
        """When a claim taken at ``now`` runs out."""
        if self.lambda_context is not None:
            return now + timedelta(milliseconds=self.lambda_context.get_remaining_time_in_millis())
        return now + timedelta(seconds=self.default_claim_s)


class Services:
    """What the handlers use, for one settings object: the AWS clients, the store, the alert desk
    and the idempotency settings."""

    def __init__(self, settings: Settings):
        self.settings = settings
        # DynamoDB checks every request itself; checking each one here too costs CPU a call.
        self.dynamodb = settings.client("dynamodb", config=Config(parameter_validation=False))
        self.s3 = settings.client("s3", config=Config(signature_version="s3v4"))
        self.sns = settings.client("sns")
        self._sts = settings.client("sts")
        self._account: str | None = None
        self.store = Store(self.dynamodb, settings.resources)
        self.notifier = SnsNotifier(
            self.sns,
            settings.resources.alerts_topic,
            account_id=self.account_id,
            region=settings.region,
            frame_url=self.frame_url,
            api_url=settings.api_url,
        )
        self.alerts = AlertDesk(self.store, self.notifier)
        self.idempotency_config = IdempotencyConfig()

    def account_id(self) -> str:
        """This account's id (STS GetCallerIdentity needs no IAM permission), cached."""
        if self._account is None:
            self._account = self._sts.get_caller_identity()["Account"]
        return self._account

    def frame_url(self, key: str, expires_s: int = FRAME_LINK_EXPIRY_S) -> str:
        """A presigned GET URL of an object in the bucket (no request is made)."""
        return self.s3.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.settings.resources.bucket, "Key": key},
            ExpiresIn=expires_s,
        )


_lock = threading.Lock()
_current: Services | None = None


def services() -> Services:
    """The process's services, built from :func:`kit.core.settings.load_settings` on first use."""
    global _current
    with _lock:
        if _current is None:
            _current = Services(load_settings())
        return _current


def use_settings(settings: Settings) -> Services:
    """Point every handler in this process at ``settings``' backend; return its services."""
    global _current
    with _lock:
        _current = Services(settings)
        return _current
