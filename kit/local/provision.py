"""Create the backend description's resources through boto3, idempotently (local target: moto)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field

from botocore.exceptions import ClientError

from kit.core.backend import BackendSpec, QueueSpec, TableSpec
from kit.core.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class ProvisionReport:
    """What :func:`provision` created now and what already existed."""

    created: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)

    def note(self, created: bool, what: str) -> None:
        (self.created if created else self.existing).append(what)


def provision(
    spec: BackendSpec, settings: Settings, *, include_local_only: bool = True
) -> ProvisionReport:
    """Create the bucket, queues, tables and topic of ``spec``; existing ones are left as they are."""
    report = ProvisionReport()
    _create_bucket(settings, spec.bucket.name, report)
    queue_arns = {}
    for queue in spec.queues:
        if queue.local_only and not include_local_only:
            continue
        queue_arns[queue.logical] = _create_queue(settings, queue, report)
    for table in spec.tables:
        _create_table(settings, table, report)
    for topic in spec.topics:
        sns = settings.client("sns")
        topic_arn = sns.create_topic(Name=topic.name)["TopicArn"]
        report.note(False, f"topic {topic.name}")
        existing = {
            (s["Protocol"], s["Endpoint"])
            for s in sns.list_subscriptions_by_topic(TopicArn=topic_arn)["Subscriptions"]
        }
        wanted = [("email", email) for email in topic.email_subscriptions]
        if topic.webhook_url:
            wanted.append(("https", topic.webhook_url))
        if include_local_only and topic.inbox_queue:
            inbox = next(q for q in spec.queues if q.name == topic.inbox_queue)
            wanted.append(("sqs", queue_arns[inbox.logical]))
        for protocol, endpoint in wanted:
            created = (protocol, endpoint) not in existing
            if created:
                sns.subscribe(TopicArn=topic_arn, Protocol=protocol, Endpoint=endpoint)
            report.note(created, f"subscription {protocol}:{endpoint}")
    return report


def _create_bucket(settings: Settings, name: str, report: ProvisionReport) -> None:
    s3 = settings.client("s3")
    try:
        s3.head_bucket(Bucket=name)
        report.note(False, f"bucket {name}")
        return
    except ClientError as error:
        if error.response["Error"]["Code"] not in {"404", "NoSuchBucket", "NotFound"}:
            raise
    options = {}
    if settings.region != "us-east-1":
        options["CreateBucketConfiguration"] = {"LocationConstraint": settings.region}
    s3.create_bucket(Bucket=name, **options)
    report.note(True, f"bucket {name}")


def _queue_arn(sqs, url: str) -> str:
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]


def _queue_exists(sqs, name: str) -> str | None:
    try:
        return sqs.get_queue_url(QueueName=name)["QueueUrl"]
    except ClientError as error:
        if "NonExistentQueue" in error.response["Error"]["Code"]:
            return None
        raise


def _create_queue(settings: Settings, queue: QueueSpec, report: ProvisionReport) -> str:
    sqs = settings.client("sqs")
    attributes = {
        "VisibilityTimeout": str(queue.visibility_timeout_s),
        "MessageRetentionPeriod": str(queue.retention_s),
    }
    if queue.dlq:
        dlq_url = _queue_exists(sqs, queue.dlq)
        report.note(dlq_url is None, f"queue {queue.dlq}")
        if dlq_url is None:
            dlq_url = sqs.create_queue(
                QueueName=queue.dlq, Attributes={"MessageRetentionPeriod": "1209600"}
            )["QueueUrl"]
        attributes["RedrivePolicy"] = json.dumps(
            {
                "deadLetterTargetArn": _queue_arn(sqs, dlq_url),
                "maxReceiveCount": str(queue.max_receive_count),
            }
        )
    url = _queue_exists(sqs, queue.name)
    report.note(url is None, f"queue {queue.name}")
    if url is None:
        url = sqs.create_queue(QueueName=queue.name, Attributes=attributes)["QueueUrl"]
    return _queue_arn(sqs, url)


def _create_table(settings: Settings, table: TableSpec, report: ProvisionReport) -> None:
    dynamodb = settings.client("dynamodb")
    try:
        dynamodb.describe_table(TableName=table.name)
        report.note(False, f"table {table.name}")
        return
    except ClientError as error:
        if error.response["Error"]["Code"] != "ResourceNotFoundException":
            raise
    key_schema = [{"AttributeName": table.hash_key.name, "KeyType": "HASH"}]
    if table.range_key:
        key_schema.append({"AttributeName": table.range_key.name, "KeyType": "RANGE"})
    options = {}
    if table.indexes:
        options["GlobalSecondaryIndexes"] = [
            {
                "IndexName": index.name,
                "KeySchema": [{"AttributeName": index.hash_key.name, "KeyType": "HASH"}]
                + (
                    [{"AttributeName": index.range_key.name, "KeyType": "RANGE"}]
                    if index.range_key
                    else []
                ),
                "Projection": {"ProjectionType": "ALL"},
            }
            for index in table.indexes
        ]
    dynamodb.create_table(
        TableName=table.name,
        KeySchema=key_schema,
        AttributeDefinitions=[
            {"AttributeName": n, "AttributeType": t} for n, t in table.attributes.items()
        ],
        BillingMode="PAY_PER_REQUEST",
        **options,
    )
    if table.ttl_attribute:
        dynamodb.update_time_to_live(
            TableName=table.name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": table.ttl_attribute},
        )
    report.note(True, f"table {table.name}")
