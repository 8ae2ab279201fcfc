"""The alerts topic: SNS encrypted with its own KMS key, e-mail and optional HTTPS subscribers.

The key is customer-managed because CloudWatch alarms (the DLQ depth alarm) cannot publish to a
topic encrypted with the AWS-managed ``alias/aws/sns`` key. The local-only inbox queue of the
description is not built here: it exists so local users and tests can see each alert.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.iam import POLICY_VERSION
from kit.core.backend import TopicSpec

KEY_ADMIN_ACTIONS = (
    "kms:CancelKeyDeletion",
    "kms:Create*",
    "kms:Delete*",
    "kms:Describe*",
    "kms:Disable*",
    "kms:Enable*",
    "kms:Get*",
    "kms:List*",
    "kms:Put*",
    "kms:Revoke*",
    "kms:ScheduleKeyDeletion",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:Update*",
)
"""What the account may do to the key itself (no wildcard-everything, see the policies)."""
KEY_USE_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey*")
"""What publishing to (and delivering from) an encrypted topic needs."""


@dataclass
class AlertsArgs:
    """Args of :class:`Alerts`.

    Attributes:
        topic: the topic from the backend description (name, e-mails, webhook).
        account_id: the account, for the key policy's root principal.
        partition: ``aws`` (or ``aws-cn``, ``aws-us-gov``).
    """

    topic: TopicSpec
    account_id: pulumi.Input[str]
    partition: pulumi.Input[str] = "aws"


class Alerts(pulumi.ComponentResource):
    """SNS alerts topic with a customer-managed KMS key and its subscriptions."""

    def __init__(
        self, name: str, args: AlertsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("kit:backend:Alerts", name, {}, opts)
        child = pulumi.ResourceOptions(parent=self)
        spec = args.topic
        self.key = aws.kms.Key(
            f"{name}-key",
            description=f"encrypts the {spec.name} SNS topic",
            enable_key_rotation=True,
            deletion_window_in_days=7,
            policy=pulumi.Output.all(args.account_id, args.partition).apply(
                lambda values: topic_key_policy(values[0], values[1])
            ),
            opts=child,
        )
        self.key_alias = aws.kms.Alias(
            f"{name}-key-alias",
            name=f"alias/{spec.name}",
            target_key_id=self.key.key_id,
            opts=child,
        )
        self.topic = aws.sns.Topic(
            f"{name}-topic", name=spec.name, kms_master_key_id=self.key.arn, opts=child
        )
        self.subscriptions: list[aws.sns.TopicSubscription] = []
        for number, email in enumerate(spec.email_subscriptions):
            self.subscriptions.append(
                aws.sns.TopicSubscription(
                    f"{name}-email-{number}",
                    topic=self.topic.arn,
                    protocol="email",
                    endpoint=email,
                    opts=child,
                )
            )
        if spec.webhook_url:
            if not spec.webhook_url.startswith("https://"):
                raise ValueError(
                    f"alert webhook {spec.webhook_url!r} must be an https:// URL "
                    "(alerts are not sent in clear text)"
                )
            self.subscriptions.append(
                aws.sns.TopicSubscription(
                    f"{name}-webhook",
                    topic=self.topic.arn,
                    protocol="https",
                    endpoint=spec.webhook_url,
                    opts=child,
                )
            )
        self.register_outputs({"topic_arn": self.topic.arn, "key_arn": self.key.arn})


def topic_key_policy(account_id: str, partition: str = "aws") -> str:
    """The alerts key's policy: the account administers it (IAM decides who uses it), CloudWatch
    alarms may encrypt messages for the topic, and SNS may decrypt them to deliver."""
    root = f"arn:{partition}:iam::{account_id}:root"
    return json.dumps(
        {
            "Version": POLICY_VERSION,
            "Statement": [
                {
                    "Sid": "AccountAdministersKey",
                    "Effect": "Allow",
                    "Principal": {"AWS": root},
                    "Action": list(KEY_ADMIN_ACTIONS),
                    "Resource": "*",
                },
                {
                    "Sid": "AccountPrincipalsUseKeyThroughIam",
                    "Effect": "Allow",
                    "Principal": {"AWS": root},
                    "Action": list(KEY_USE_ACTIONS),
                    "Resource": "*",
                },
                {
                    "Sid": "CloudWatchAlarmsPublish",
                    "Effect": "Allow",
                    "Principal": {"Service": "cloudwatch.amazonaws.com"},
                    "Action": list(KEY_USE_ACTIONS),
                    "Resource": "*",
                    "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
                },
            ],
        },
        sort_keys=True,
    )
