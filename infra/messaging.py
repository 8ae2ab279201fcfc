"""Queues from the backend description: each with its dead-letter queue, redrive and a depth alarm.

Queues the description marks ``local_only`` (the alerts inbox) are not built on AWS. Every queue is
encrypted (SSE-SQS) and refuses requests without TLS. Dead-letter queues carry the tag
``evk:queue-role = dead-letter`` so the policies know they need no DLQ of their own.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.iam import POLICY_VERSION
from kit.core.backend import QueueSpec

DLQ_RETENTION_S = 14 * 86400
"""The longest SQS keeps a message: time to look at what failed."""
QUEUE_ROLE_TAG = "evk:queue-role"
DEAD_LETTER = "dead-letter"


@dataclass
class MessagingArgs:
    """Args of :class:`Messaging`.

    Attributes:
        queues: the queues of the backend description (local-only ones are skipped).
        consumer_timeout_s: the timeout of the slowest function reading a queue; visibility
            timeouts are at least 6x this, as AWS advises for Lambda event sources.
        alarm_topic_arn: where the DLQ depth alarms notify (the alerts topic).
        alarm_name_prefix: alarms are named ``<prefix>-<queue>-dlq-depth``.
    """

    queues: Sequence[QueueSpec]
    consumer_timeout_s: int
    alarm_topic_arn: pulumi.Input[str]
    alarm_name_prefix: str


class Messaging(pulumi.ComponentResource):
    """SQS queues with dead-letter queues, redrive and a CloudWatch alarm on each DLQ's depth."""

    def __init__(
        self, name: str, args: MessagingArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("kit:backend:Messaging", name, {}, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.queues: dict[str, aws.sqs.Queue] = {}
        self.dead_letter_queues: dict[str, aws.sqs.Queue] = {}
        self.alarms: dict[str, aws.cloudwatch.MetricAlarm] = {}
        minimum_visibility = 6 * args.consumer_timeout_s
        for spec in args.queues:
            if spec.local_only:
                continue
            if spec.visibility_timeout_s < minimum_visibility:
                raise ValueError(
                    f"queue {spec.name}: visibility timeout {spec.visibility_timeout_s}s is below "
                    f"6 x the consumer timeout ({minimum_visibility}s); messages would be "
                    "delivered twice while still being processed"
                )
            if not spec.dlq:
                raise ValueError(
                    f"queue {spec.name} has no dead-letter queue in the backend description; "
                    "every queue on AWS needs one (messages that keep failing must not be lost)"
                )
            dlq = aws.sqs.Queue(
                f"{name}-{spec.logical}-dlq",
                name=spec.dlq,
                message_retention_seconds=DLQ_RETENTION_S,
                sqs_managed_sse_enabled=True,
                tags={QUEUE_ROLE_TAG: DEAD_LETTER},
                opts=child,
            )
            queue = aws.sqs.Queue(
                f"{name}-{spec.logical}",
                name=spec.name,
                visibility_timeout_seconds=spec.visibility_timeout_s,
                message_retention_seconds=spec.retention_s,
                receive_wait_time_seconds=20,
                sqs_managed_sse_enabled=True,
                redrive_policy=dlq.arn.apply(
                    lambda arn, count=spec.max_receive_count: redrive_policy(arn, count)
                ),
                tags={QUEUE_ROLE_TAG: "work"},
                opts=child,
            )
            aws.sqs.RedriveAllowPolicy(
                f"{name}-{spec.logical}-dlq-allow",
                queue_url=dlq.url,
                redrive_allow_policy=queue.arn.apply(
                    lambda arn: json.dumps(
                        {"redrivePermission": "byQueue", "sourceQueueArns": [arn]}
                    )
                ),
                opts=child,
            )
            for logical, resource in ((spec.logical, queue), (f"{spec.logical}-dlq", dlq)):
                aws.sqs.QueuePolicy(
                    f"{name}-{logical}-tls-only",
                    queue_url=resource.url,
                    policy=resource.arn.apply(tls_only_queue_policy),
                    opts=child,
                )
            self.alarms[spec.logical] = aws.cloudwatch.MetricAlarm(
                f"{name}-{spec.logical}-dlq-depth",
                name=f"{args.alarm_name_prefix}-{spec.logical}-dlq-depth",
                alarm_description=(
                    f"messages in {spec.dlq}: {spec.name} messages failed "
                    f"{spec.max_receive_count} times; inspect and redrive them"
                ),
                namespace="AWS/SQS",
                metric_name="ApproximateNumberOfMessagesVisible",
                dimensions={"QueueName": spec.dlq},
                statistic="Maximum",
                period=300,
                evaluation_periods=1,
                threshold=0,
                comparison_operator="GreaterThanThreshold",
                treat_missing_data="notBreaching",
                alarm_actions=[args.alarm_topic_arn],
                ok_actions=[args.alarm_topic_arn],
                opts=pulumi.ResourceOptions(parent=self, depends_on=[dlq]),
            )
            self.queues[spec.logical] = queue
            self.dead_letter_queues[spec.logical] = dlq
        self.register_outputs(
            {
                "queue_urls": {k: q.url for k, q in self.queues.items()},
                "dlq_urls": {k: q.url for k, q in self.dead_letter_queues.items()},
            }
        )


def redrive_policy(dlq_arn: str, max_receive_count: int) -> str:
    """The queue attribute moving a message to ``dlq_arn`` after ``max_receive_count`` receives."""
    return json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive_count})


def tls_only_queue_policy(queue_arn: str) -> str:
    """A queue policy that denies every request not made over TLS."""
    return json.dumps(
        {
            "Version": POLICY_VERSION,
            "Statement": [
                {
                    "Sid": "DenyInsecureTransport",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "sqs:*",
                    "Resource": queue_arn,
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                }
            ],
        },
        sort_keys=True,
    )
