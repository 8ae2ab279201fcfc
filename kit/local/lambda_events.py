"""The events and context AWS Lambda hands a function, built from what the local target has.

- :func:`sqs_event`: an SQS event-source-mapping batch from ``ReceiveMessage`` results (field for
  field what Lambda sends: ``messageId``, ``receiptHandle``, ``body``, ``attributes`` with
  ``ApproximateReceiveCount``/``SentTimestamp``…, ``messageAttributes`` in Lambda's camelCase
  form, ``md5OfBody``, ``eventSource``, ``eventSourceARN``, ``awsRegion``).
- :func:`scheduled_event`: an EventBridge "Scheduled Event".
- :class:`LocalLambdaContext`: the context object (name, ARN, memory, request id, remaining time).

Examples:
    >>> event = sqs_event([{"MessageId": "m1", "ReceiptHandle": "r1", "Body": "{}",
    ...     "MD5OfBody": "99914b932bd37a50b983c5e7c90ae93b", "Attributes": {}}],
    ...     queue_arn="arn:aws:sqs:eu-west-1:123456789012:q", region="eu-west-1")
    >>> event["Records"][0]["eventSource"]
    'aws:sqs'
"""

from __future__ import annotations

import base64
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

LOCAL_ACCOUNT_ID = "123456789012"
"""The account moto serves by default."""


def _lambda_message_attribute(attribute: dict[str, Any]) -> dict[str, Any]:
    converted: dict[str, Any] = {
        "stringListValues": list(attribute.get("StringListValues", [])),
        "binaryListValues": [
            base64.b64encode(v).decode() for v in attribute.get("BinaryListValues", [])
        ],
        "dataType": attribute["DataType"],
    }
    if "StringValue" in attribute:
        converted["stringValue"] = attribute["StringValue"]
    if "BinaryValue" in attribute:
        converted["binaryValue"] = base64.b64encode(attribute["BinaryValue"]).decode()
    return converted


def sqs_record(message: dict[str, Any], *, queue_arn: str, region: str) -> dict[str, Any]:
    """One Lambda SQS record from one message of a boto3 ``receive_message`` response."""
    record = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": {name: str(value) for name, value in message.get("Attributes", {}).items()},
        "messageAttributes": {
            name: _lambda_message_attribute(attribute)
            for name, attribute in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }
    if message.get("MD5OfMessageAttributes"):
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


def sqs_event(messages: list[dict[str, Any]], *, queue_arn: str, region: str) -> dict[str, Any]:
    """The event Lambda's SQS event source mapping sends for ``messages`` (at most 10)."""
    if not 1 <= len(messages) <= 10:
        raise ValueError(f"an SQS batch holds 1 to 10 messages, not {len(messages)}")
    return {"Records": [sqs_record(m, queue_arn=queue_arn, region=region) for m in messages]}


def scheduled_event(
    *, rule_name: str, region: str, account: str = LOCAL_ACCOUNT_ID, at: datetime | None = None
) -> dict[str, Any]:
    """The event an EventBridge schedule rule (``rate(...)``) sends."""
    at = at or datetime.now(UTC)
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account,
        "time": at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [f"arn:aws:events:{region}:{account}:rule/{rule_name}"],
        "detail": {},
    }


@dataclass
class LocalLambdaContext:
    """What a handler's ``context`` argument offers on AWS, for one invocation.

    Examples:
        >>> ctx = LocalLambdaContext("evk-processor", timeout_s=30)
        >>> 0 < ctx.get_remaining_time_in_millis() <= 30_000
        True
    """

    function_name: str
    timeout_s: float = 30.0
    memory_limit_in_mb: int = 256
    region: str = "eu-west-1"
    account: str = LOCAL_ACCOUNT_ID
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    identity: Any = None
    client_context: Any = None
    _deadline: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_s

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{self.account}:function:{self.function_name}"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return f"{datetime.now(UTC):%Y/%m/%d}/[$LATEST]{self.aws_request_id.replace('-', '')}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))
