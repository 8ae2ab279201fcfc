"""The local Lambda runner: the backend's functions, invoked the way AWS invokes them.

``python -m kit.local.runner`` (started and stopped by ``kit local up/down``) runs, in one
process, the same handler code that runs on AWS Lambda:

- **processor**, fed by an SQS poller that behaves like Lambda's event source mapping with
  ``ReportBatchItemFailures``: it long-polls the detections queue, hands batches of up to 10
  messages over in the exact SQS event shape, deletes only the records that succeeded, and
  leaves the failed ones on the queue until its redrive policy moves them to the DLQ after
  ``maxReceiveCount`` receives. A received batch stays hidden for the queue's own visibility
  timeout, as on AWS: if the runner dies mid-batch, the batch comes back only after it, by
  when the idempotency lock of the interrupted invocation (which lasts the function's
  timeout) has expired. Records the function *reported* as failed come back sooner, after
  ``retry_after_s``, so that a retry does not take minutes locally: the function released
  their idempotency records when they failed;
- **control_api**, behind an HTTP server on 127.0.0.1 that turns requests into API Gateway
  HTTP API v2 events (:mod:`kit.local.http_api`);
- **health_check**, invoked every ``health_interval_s`` seconds with a scheduled event.

Alerts go to the alerts topic; locally the alerts-inbox queue is subscribed to it, and
:func:`read_alert_inbox` reads what was sent.

Examples:
    >>> from kit.local.runner import LocalRunner, read_alert_inbox
    >>> with LocalRunner(settings, port=0) as runner:       # doctest: +SKIP
    ...     print(runner.url)
    http://127.0.0.1:40123
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError, EndpointConnectionError

from kit.core.backend import CONTROL_API_ROUTES, FunctionSpec, describe_backend
from kit.core.settings import Settings, load_settings
from kit.local.http_api import HttpApiServer
from kit.local.lambda_events import LocalLambdaContext, scheduled_event, sqs_event

log = logging.getLogger("kit.local.runner")

DEFAULT_RETRY_AFTER_S = 1
DEFAULT_HEALTH_INTERVAL_S = 60.0
DEFAULT_POLL_WAIT_S = 1


def _import_handler(path: str) -> Callable[[dict[str, Any], Any], Any]:
    module_name, _, attribute = path.rpartition(".")
    module = __import__(module_name, fromlist=[attribute])
    return getattr(module, attribute)


@dataclass
class BatchOutcome:
    """What one processor invocation did with one batch."""

    received: int = 0
    succeeded: int = 0
    failed: list[str] = field(default_factory=list)
    """Message ids left on the queue for a retry."""
    error: str | None = None
    """Set when the invocation itself failed (every record then counts as failed)."""


@dataclass
class RunnerStats:
    batches: int = 0
    records: int = 0
    succeeded: int = 0
    failed: int = 0
    health_checks: int = 0


class SqsPoller:
    """Lambda's SQS event source mapping, for one queue and one function.

    Args:
        settings: where the queue is.
        spec: the function (its handler, timeout and memory).
        retry_after_s: how long a record the function reported as failed stays hidden before
            it is retried (a received batch stays hidden for the queue's visibility timeout).
        wait_s: long-poll wait of each receive.
    """

    def __init__(
        self,
        settings: Settings,
        spec: FunctionSpec,
        *,
        retry_after_s: int = DEFAULT_RETRY_AFTER_S,
        wait_s: int = DEFAULT_POLL_WAIT_S,
    ):
        self.settings = settings
        self.spec = spec
        self.queue_name = describe_backend(settings).queue(spec.trigger.queue).name
        self.batch_size = spec.trigger.batch_size
        self.retry_after_s = retry_after_s
        self.wait_s = wait_s
        self.sqs = settings.client("sqs")
        self.handler = _import_handler(spec.handler)
        self._queue: tuple[str, str] | None = None

    def _queue_url_and_arn(self) -> tuple[str, str]:
        if self._queue is None:
            url = self.sqs.get_queue_url(QueueName=self.queue_name)["QueueUrl"]
            attributes = self.sqs.get_queue_attributes(
                QueueUrl=url, AttributeNames=["QueueArn", "VisibilityTimeout"]
            )["Attributes"]
            visibility_s = int(attributes["VisibilityTimeout"])
            if visibility_s < self.spec.timeout_s:
                # AWS refuses such a trigger: a batch could come back while still running.
                log.error(
                    "queue %s's visibility timeout (%d s) is shorter than %s's timeout (%d s): "
                    "a message being processed can be delivered again; raise it to at least "
                    "%d s",
                    self.queue_name,
                    visibility_s,
                    self.spec.logical,
                    self.spec.timeout_s,
                    self.spec.timeout_s,
                )
            self._queue = (url, attributes["QueueArn"])
        return self._queue

    def poll_once(self) -> BatchOutcome | None:
        """Receive one batch and invoke the function with it; None when the queue stayed empty."""
        try:
            url, arn = self._queue_url_and_arn()
            messages = self.sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=self.batch_size,
                WaitTimeSeconds=self.wait_s,
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
        except ClientError as error:
            # The queue can vanish under us (a reset backend); find it again next time.
            self._queue = None
            raise RuntimeError(f"cannot receive from {self.queue_name}: {error}") from None
        if not messages:
            return None
        return self.invoke(messages, url=url, arn=arn)

    def invoke(self, messages: list[dict[str, Any]], *, url: str, arn: str) -> BatchOutcome:
        """Invoke the function with ``messages``; delete the records that did not fail."""
        outcome = BatchOutcome(received=len(messages))
        event = sqs_event(messages, queue_arn=arn, region=self.settings.region)
        context = LocalLambdaContext(
            f"{self.settings.prefix}-{self.spec.logical}",
            timeout_s=self.spec.timeout_s,
            memory_limit_in_mb=self.spec.memory_mb,
            region=self.settings.region,
        )
        ids = {m["MessageId"] for m in messages}
        try:
            response = self.handler(event, context) or {}
            failures = [f.get("itemIdentifier") for f in response.get("batchItemFailures", [])]
            if any(f not in ids for f in failures):
                # What Lambda does with a malformed partial response: the whole batch failed.
                raise ValueError(f"batchItemFailures names unknown message ids: {failures}")
            failed = set(failures)
        except Exception as error:  # noqa: BLE001 - a failed invocation fails the whole batch
            log.exception("%s failed on a batch of %d", self.spec.logical, len(messages))
            outcome.error = f"{type(error).__name__}: {error}"
            failed = ids
        done = [m for m in messages if m["MessageId"] not in failed]
        for start in range(0, len(done), 10):
            chunk = done[start : start + 10]
            self.sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)
                ],
            )
        outcome.succeeded = len(done)
        outcome.failed = sorted(failed)
        if failed:
            self._retry_soon([m for m in messages if m["MessageId"] in failed], url)
            counts = {
                m["MessageId"]: m.get("Attributes", {}).get("ApproximateReceiveCount")
                for m in messages
                if m["MessageId"] in failed
            }
            log.warning(
                "%d of %d records failed and will be retried (receive counts: %s)",
                len(failed),
                len(messages),
                counts,
            )
        return outcome

    def _retry_soon(self, messages: list[dict[str, Any]], url: str) -> None:
        """Make failed records visible again after ``retry_after_s`` instead of the queue's
        visibility timeout (if this fails, they come back after the visibility timeout)."""
        for start in range(0, len(messages), 10):
            chunk = messages[start : start + 10]
            try:
                self.sqs.change_message_visibility_batch(
                    QueueUrl=url,
                    Entries=[
                        {
                            "Id": str(i),
                            "ReceiptHandle": m["ReceiptHandle"],
                            "VisibilityTimeout": self.retry_after_s,
                        }
                        for i, m in enumerate(chunk)
                    ],
                )
            except (ClientError, EndpointConnectionError) as error:
                log.warning("failed records return after the visibility timeout: %s", error)


class LocalRunner:
    """The processor poller, the control-API server and the health-check schedule, in threads.

    Args:
        settings: the backend to serve (the handlers are pointed at it too).
        port: the HTTP port (0: a free one; default ``settings.api_port``).
        retry_after_s: how soon a failed record is retried (see :class:`SqsPoller`).
        health_interval_s: seconds between health-check runs.
        poll_wait_s: long-poll wait of each receive.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        port: int | None = None,
        retry_after_s: int = DEFAULT_RETRY_AFTER_S,
        health_interval_s: float = DEFAULT_HEALTH_INTERVAL_S,
        poll_wait_s: int = DEFAULT_POLL_WAIT_S,
    ):
        from lambdas import runtime

        self.settings = settings
        self.spec = describe_backend(settings)
        runtime.use_settings(settings)
        self.stats = RunnerStats()
        self.poller = SqsPoller(
            settings,
            self.spec.function("processor"),
            retry_after_s=retry_after_s,
            wait_s=poll_wait_s,
        )
        api = self.spec.function("control-api")
        api_handler = _import_handler(api.handler)
        self.http = HttpApiServer(
            lambda event: api_handler(
                event,
                LocalLambdaContext(
                    f"{settings.prefix}-{api.logical}",
                    timeout_s=api.timeout_s,
                    memory_limit_in_mb=api.memory_mb,
                    region=settings.region,
                ),
            ),
            CONTROL_API_ROUTES,
            host=settings.local_host,
            port=settings.api_port if port is None else port,
        )
        self.health_spec = self.spec.function("health-check")
        self.health_handler = _import_handler(self.health_spec.handler)
        self.health_interval_s = health_interval_s
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    @property
    def url(self) -> str:
        """The control API's base URL."""
        return self.http.url

    def run_health_check(self, at: datetime | None = None) -> Any:
        """Invoke the health check once, now (or as if scheduled at ``at``)."""
        event = scheduled_event(
            rule_name=f"{self.settings.prefix}-{self.health_spec.logical}",
            region=self.settings.region,
            at=at,
        )
        context = LocalLambdaContext(
            f"{self.settings.prefix}-{self.health_spec.logical}",
            timeout_s=self.health_spec.timeout_s,
            memory_limit_in_mb=self.health_spec.memory_mb,
            region=self.settings.region,
        )
        self.stats.health_checks += 1
        return self.health_handler(event, context)

    def _poll_loop(self) -> None:
        while not self._stop.is_set():
            try:
                outcome = self.poller.poll_once()
            except (RuntimeError, EndpointConnectionError) as error:
                log.warning("%s; retrying in 1 s", error)
                self._stop.wait(1.0)
                continue
            except Exception:  # noqa: BLE001 - keep polling, as the event source mapping does
                log.exception("polling %s failed; retrying in 1 s", self.poller.queue_name)
                self._stop.wait(1.0)
                continue
            if outcome is None:
                continue
            self.stats.batches += 1
            self.stats.records += outcome.received
            self.stats.succeeded += outcome.succeeded
            self.stats.failed += len(outcome.failed)

    def _schedule_loop(self) -> None:
        while not self._stop.wait(self.health_interval_s):
            try:
                self.run_health_check()
            except Exception:  # noqa: BLE001 - EventBridge would retry; the next run will
                log.exception("the health check failed")

    def start(self) -> LocalRunner:
        """Start serving (returns at once)."""
        self.http.start()
        for name, target in (("sqs-poller", self._poll_loop), ("scheduler", self._schedule_loop)):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        log.info(
            "runner up: control API %s, polling %s, health check every %g s",
            self.url,
            self.poller.queue_name,
            self.health_interval_s,
        )
        return self

    def stop(self) -> None:
        """Stop polling and serving; an invocation in progress finishes first."""
        self._stop.set()
        self.http.stop()
        for thread in self._threads:
            thread.join(timeout=self.poller.wait_s + 30)
        self._threads.clear()

    def __enter__(self) -> LocalRunner:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass(frozen=True)
class AlertNotice:
    """One notification the alerts topic sent, as the local inbox received it."""

    subject: str
    body: str
    attributes: dict[str, str]
    sent_at: str
    message_id: str

    @property
    def state(self) -> str | None:
        return self.attributes.get("state")

    @property
    def alert_id(self) -> str | None:
        return self.attributes.get("alert_id")


def read_alert_inbox(
    settings: Settings, *, wait_s: int = 0, max_messages: int = 10, delete: bool = True
) -> list[AlertNotice]:
    """The notifications waiting in the local alerts-inbox queue (subscribed to the alerts topic).

    Args:
        wait_s: long-poll up to this many seconds when the inbox is empty (0-20).
        max_messages: at most this many (1-10).
        delete: remove what was read, so the next call returns only newer notices.

    Examples:
        >>> for notice in read_alert_inbox(settings, wait_s=5):     # doctest: +SKIP
        ...     print(notice.subject)
        [EVK] OPEN: shelf-1 count_below (count_below 0 vs 3)
    """
    sqs = settings.client("sqs")
    url = sqs.get_queue_url(QueueName=settings.resources.alerts_inbox_queue)["QueueUrl"]
    messages = sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=max_messages, WaitTimeSeconds=wait_s
    ).get("Messages", [])
    notices = []
    for message in messages:
        envelope = json.loads(message["Body"])
        notices.append(
            AlertNotice(
                subject=envelope.get("Subject") or "",
                body=envelope.get("Message", ""),
                attributes={
                    name: value.get("Value", "")
                    for name, value in (envelope.get("MessageAttributes") or {}).items()
                },
                sent_at=envelope.get("Timestamp", ""),
                message_id=envelope.get("MessageId", message["MessageId"]),
            )
        )
    if delete and messages:
        sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)
            ],
        )
    return notices


def wait_for_alerts(
    settings: Settings, count: int, *, timeout_s: float = 30.0
) -> list[AlertNotice]:
    """Read the inbox until ``count`` notices arrived or ``timeout_s`` passed; return them all."""
    notices: list[AlertNotice] = []
    deadline = time.monotonic() + timeout_s
    while len(notices) < count:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        notices += read_alert_inbox(settings, wait_s=max(1, min(20, int(left))))
    return notices


def main(argv: list[str] | None = None) -> int:
    """Run until SIGTERM/SIGINT; the settings come from the environment like a Lambda's."""
    parser = argparse.ArgumentParser(
        prog="python -m kit.local.runner", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--port", type=int, default=None, help="HTTP port (default: api_port)")
    parser.add_argument("--retry-after", type=int, default=DEFAULT_RETRY_AFTER_S, metavar="S")
    parser.add_argument(
        "--health-interval", type=float, default=DEFAULT_HEALTH_INTERVAL_S, metavar="S"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("botocore").setLevel(logging.WARNING)
    settings = load_settings()
    runner = LocalRunner(
        settings,
        port=args.port,
        retry_after_s=args.retry_after,
        health_interval_s=args.health_interval,
    )
    stopped = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopped.set())
    runner.start()
    stopped.wait()
    log.info("stopping (%s)", runner.stats)
    runner.stop()
    log.info("runner stopped at %s", datetime.now(UTC).isoformat(timespec="seconds"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
