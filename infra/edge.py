"""IAM for edge devices: what the edge app on a Greengrass core device or a Panorama appliance may do.

Both get the same data-plane rights, written as :class:`kit.core.backend.Permission` like the
functions' so the same code turns them into statements: list the bucket and read models/ (the
registry reader resolves aliases and ``latest`` by listing keys, and fetches models not shipped
with the app), read packages/ (the Greengrass component artifacts), write frames/, crops/ and
samples/ (frames kept for labelling), send to the detections queue, read the control config.
Greengrass core devices get them through the token exchange role and its role alias (the IoT
policy lets a device's certificate assume it); Panorama applications through the application
role.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.iam import (
    POLICY_VERSION,
    assume_role_policy,
    document,
    permission_statements,
    resource_arns,
    statement,
)
from kit.core.backend import BackendSpec, Permission

EDGE_PERMISSIONS = (
    Permission(("s3:ListBucket",), "bucket"),
    Permission(("s3:GetObject",), "bucket:models/"),
    Permission(("s3:GetObject",), "bucket:packages/"),
    Permission(("s3:GetBucketLocation",), "bucket"),
    Permission(("s3:PutObject",), "bucket:frames/"),
    Permission(("s3:PutObject",), "bucket:crops/"),
    Permission(("s3:PutObject",), "bucket:samples/"),
    Permission(("sqs:GetQueueUrl", "sqs:SendMessage"), "queue:detections"),
    Permission(("dynamodb:GetItem",), "table:config"),
)
"""What the edge app does with the backend: edge_app/publisher.py, edge_app/control.py and the
registry reader (kit/core/registry.py). tests/infra/test_iam.py checks it against every AWS call
the edge bundle's code can reach from its entry points."""
GREENGRASS_LOG_ACTIONS = (
    "logs:CreateLogGroup",
    "logs:CreateLogStream",
    "logs:DescribeLogStreams",
    "logs:PutLogEvents",
)
THING = "${iot:Connection.Thing.ThingName}"


def greengrass_log_statement(partition: str, region: str, account_id: str) -> dict[str, Any]:
    """Greengrass' log manager uploads device logs to /aws/greengrass/* log groups."""
    return statement(
        GREENGRASS_LOG_ACTIONS,
        [f"arn:{partition}:logs:{region}:{account_id}:log-group:/aws/greengrass/*"],
        sid="GreengrassLogs",
    )


def core_device_iot_policy(
    partition: str, region: str, account_id: str, role_alias_arn: str
) -> str:
    """The IoT policy of Greengrass core devices: MQTT on their own topics, the role alias, and
    the Greengrass data-plane calls a deployment needs (after AWS's minimal core device policy)."""
    iot = f"arn:{partition}:iot:{region}:{account_id}"
    return json.dumps(
        {
            "Version": POLICY_VERSION,
            "Statement": [
                {
                    "Sid": "ConnectAsOwnThing",
                    "Effect": "Allow",
                    "Action": ["iot:Connect"],
                    "Resource": [f"{iot}:client/{THING}*"],
                },
                {
                    "Sid": "OwnTopics",
                    "Effect": "Allow",
                    "Action": ["iot:Publish", "iot:Receive"],
                    "Resource": [
                        f"{iot}:topic/$aws/things/{THING}/*",
                        f"{iot}:topic/$aws/things/{THING}-gci/shadow/*",
                    ],
                },
                {
                    "Sid": "OwnTopicFilters",
                    "Effect": "Allow",
                    "Action": ["iot:Subscribe"],
                    "Resource": [
                        f"{iot}:topicfilter/$aws/things/{THING}/*",
                        f"{iot}:topicfilter/$aws/things/{THING}-gci/shadow/*",
                    ],
                },
                {
                    "Sid": "TokenExchange",
                    "Effect": "Allow",
                    "Action": ["iot:AssumeRoleWithCertificate"],
                    "Resource": [role_alias_arn],
                },
                {
                    "Sid": "GreengrassDataPlane",
                    "Effect": "Allow",
                    "Action": [
                        "greengrass:GetComponentVersionArtifact",
                        "greengrass:GetDeploymentConfiguration",
                        "greengrass:ListThingGroupsForCoreDevice",
                        "greengrass:ResolveComponentCandidates",
                    ],
                    "Resource": ["*"],
                },
            ],
        },
        sort_keys=True,
    )


@dataclass
class EdgeAccessArgs:
    """Args of :class:`EdgeAccess`.

    Attributes:
        backend: the backend description (resource names, indexes).
        resource_arns: ARNs keyed ``bucket``, ``table:<logical>``, ``queue:<logical>``,
            ``topic:<logical>`` (as for the functions).
        name_prefix: roles are ``<prefix>-greengrass-tes`` and ``<prefix>-panorama-app``.
        account_id, partition, region: for the ARNs of logs and IoT resources.
        credential_duration_s: how long credentials from the role alias last.
        panorama: build the Panorama application role too.
        permissions_boundary: the stack's permissions boundary, set on both roles.
    """

    backend: BackendSpec
    resource_arns: Mapping[str, pulumi.Input[str]]
    name_prefix: str
    account_id: pulumi.Input[str]
    partition: pulumi.Input[str]
    region: str
    credential_duration_s: int = 3600
    panorama: bool = True
    permissions_boundary: pulumi.Input[str] | None = None


class EdgeAccess(pulumi.ComponentResource):
    """Greengrass token exchange role + role alias + core device IoT policy; Panorama app role."""

    def __init__(
        self, name: str, args: EdgeAccessArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("kit:backend:EdgeAccess", name, {}, opts)
        child = pulumi.ResourceOptions(parent=self)
        data_plane = pulumi.Output.from_input(dict(args.resource_arns)).apply(
            lambda values: permission_statements(
                EDGE_PERMISSIONS, resource_arns(args.backend, values)
            )
        )
        self.token_exchange_role = aws.iam.Role(
            f"{name}-greengrass-tes",
            name=f"{args.name_prefix}-greengrass-tes",
            description="Greengrass core devices' token exchange role: the edge app's AWS rights",
            assume_role_policy=assume_role_policy("credentials.iot.amazonaws.com"),
            max_session_duration=max(3600, args.credential_duration_s),
            permissions_boundary=args.permissions_boundary,
            opts=child,
        )
        self.token_exchange_policy_document = pulumi.Output.all(
            data_plane, args.partition, args.account_id
        ).apply(
            lambda values: document(
                [*values[0], greengrass_log_statement(values[1], args.region, values[2])]
            )
        )
        aws.iam.RolePolicy(
            f"{name}-greengrass-tes-policy",
            name=f"{args.name_prefix}-greengrass-edge-app",
            role=self.token_exchange_role.id,
            policy=self.token_exchange_policy_document,
            opts=child,
        )
        self.role_alias = aws.iot.RoleAlias(
            f"{name}-greengrass-role-alias",
            alias=f"{args.name_prefix}-greengrass-tes-alias",
            role_arn=self.token_exchange_role.arn,
            credential_duration=args.credential_duration_s,
            opts=child,
        )
        self.core_device_policy = aws.iot.Policy(
            f"{name}-greengrass-core-policy",
            name=f"{args.name_prefix}-greengrass-core",
            policy=pulumi.Output.all(args.partition, args.account_id, self.role_alias.arn).apply(
                lambda values: core_device_iot_policy(values[0], args.region, values[1], values[2])
            ),
            opts=child,
        )
        self.panorama_role: aws.iam.Role | None = None
        self.panorama_policy_document: pulumi.Output[str] | None = None
        if args.panorama:
            self.panorama_role = aws.iam.Role(
                f"{name}-panorama-app",
                name=f"{args.name_prefix}-panorama-app",
                description="AWS Panorama application role for legacy appliances running the edge app",
                assume_role_policy=pulumi.Output.from_input(args.account_id).apply(
                    lambda account: assume_role_policy(
                        "panorama.amazonaws.com",
                        StringEquals={"aws:SourceAccount": account},
                    )
                ),
                permissions_boundary=args.permissions_boundary,
                opts=child,
            )
            self.panorama_policy_document = data_plane.apply(document)
            aws.iam.RolePolicy(
                f"{name}-panorama-app-policy",
                name=f"{args.name_prefix}-panorama-edge-app",
                role=self.panorama_role.id,
                policy=self.panorama_policy_document,
                opts=child,
            )
        self.register_outputs(
            {
                "role_alias": self.role_alias.alias,
                "token_exchange_role_arn": self.token_exchange_role.arn,
            }
        )
