"""Who may deploy the stack, and how far the roles the stack creates may ever reach.

Three identities run the stack's CI/CD (the CodePipeline's CodeBuild roles of
:mod:`infra.pipeline`, or the GitHub Actions roles ``python -m infra.deploy_access`` prints):

- **deploy** (:func:`deploy_role_statements`): ``pulumi up`` of this stack. Every service's
  resources under the stack's prefix; named actions only, never ``iam:*`` or ``*``. It may create
  a role, or put a policy on one, only when the role carries the stack's permissions boundary.
- **edge** (:func:`edge_role_statements`): ``kit deploy --target greengrass``: publish the
  component (artefact to ``packages/``, ``CreateComponentVersion``) and deploy it to a thing
  group (``CreateDeployment`` and the IoT jobs and shadows it drives).
- **preview** (:func:`preview_role_statements`): ``pulumi preview`` on pull requests; reads the
  state and what the program looks up, changes nothing.

The **permissions boundary** (:class:`PermissionsBoundary`, the managed policy
``<prefix>-permissions-boundary``) is set on every role the stack creates but the CodePipeline's
deploy role. It allows what the edge deployment and the runtime roles (functions, devices,
dashboard, SageMaker, pipeline) do, no IAM at all, so a role made by the deploy role never holds
more than that. The deploy role may create a role, or change a role's policies, only when the
role carries the boundary; it may read the boundary but not change it, and it cannot change its
own role (which has none). So an administrator's ``pulumi up`` creates the boundary and the
CodePipeline deploy role, and applies any later change to either.

Examples:
    >>> statements = edge_role_statements(partition="aws", region="eu-west-1",
    ...     account_id="123456789012", bucket_arn="arn:aws:s3:::evk-bucket-1a2b3c4d")
    >>> sorted(s["Sid"] for s in statements)[:2]
    ['ComponentArtifacts', 'Components']
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pulumi
import pulumi_aws as aws

from infra.iam import POLICY_VERSION, document, statement
from kit.aws import DLC_REGISTRIES

BOUNDARY_SUFFIX = "permissions-boundary"
SERVICE_LINKED_ROLE_SERVICES = ("ecs.amazonaws.com", "elasticloadbalancing.amazonaws.com")
"""Services whose service-linked roles the dashboard's first deployment may create."""
ROLE_MANAGEMENT_ACTIONS = (
    "iam:AttachRolePolicy",
    "iam:CreateRole",
    "iam:DeleteRolePolicy",
    "iam:DetachRolePolicy",
    "iam:PutRolePermissionsBoundary",
    "iam:PutRolePolicy",
)
"""What changes a role's rights: allowed only on roles that carry the stack's boundary."""
ROLE_UPKEEP_ACTIONS = (
    "iam:DeleteRole",
    "iam:GetRole",
    "iam:GetRolePolicy",
    "iam:ListAttachedRolePolicies",
    "iam:ListInstanceProfilesForRole",
    "iam:ListRolePolicies",
    "iam:ListRoleTags",
    "iam:PassRole",
    "iam:TagRole",
    "iam:UntagRole",
    "iam:UpdateAssumeRolePolicy",
    "iam:UpdateRole",
    "iam:UpdateRoleDescription",
)
"""Reading, tagging, passing and deleting the stack's roles."""
BOUNDARY_READ_ACTIONS = (
    "iam:GetPolicy",
    "iam:GetPolicyVersion",
    "iam:ListPolicyTags",
    "iam:ListPolicyVersions",
)
ACCESS_LOG_DELIVERY_ACTIONS = (
    "logs:CreateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:DescribeResourcePolicies",
    "logs:GetLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:UpdateLogDelivery",
)
"""What enabling the API stage's access logs needs (API Gateway's docs: on ``*``)."""
DASHBOARD_NETWORK_ACTIONS = (
    "ec2:AssociateRouteTable",
    "ec2:AttachInternetGateway",
    "ec2:AuthorizeSecurityGroupEgress",
    "ec2:AuthorizeSecurityGroupIngress",
    "ec2:CreateInternetGateway",
    "ec2:CreateRoute",
    "ec2:CreateRouteTable",
    "ec2:CreateSecurityGroup",
    "ec2:CreateSubnet",
    "ec2:CreateTags",
    "ec2:CreateVpc",
    "ec2:DeleteInternetGateway",
    "ec2:DeleteRoute",
    "ec2:DeleteRouteTable",
    "ec2:DeleteSecurityGroup",
    "ec2:DeleteSubnet",
    "ec2:DeleteTags",
    "ec2:DeleteVpc",
    "ec2:Describe*",
    "ec2:DetachInternetGateway",
    "ec2:DisassociateRouteTable",
    "ec2:ModifySubnetAttribute",
    "ec2:ModifyVpcAttribute",
    "ec2:ReplaceRoute",
    "ec2:RevokeSecurityGroupEgress",
    "ec2:RevokeSecurityGroupIngress",
)
ECR_PULL_ACTIONS = (
    "ecr:BatchCheckLayerAvailability",
    "ecr:BatchGetImage",
    "ecr:GetDownloadUrlForLayer",
)
GREENGRASS_DEPLOYMENT_IOT_ACTIONS = (
    "iot:CancelJob",
    "iot:CreateJob",
    "iot:DeleteThingShadow",
    "iot:DescribeJob",
    "iot:DescribeThing",
    "iot:DescribeThingGroup",
    "iot:GetThingShadow",
    "iot:UpdateJob",
    "iot:UpdateThingShadow",
)
"""What a Greengrass deployment to a thing or thing group needs in AWS IoT (the Greengrass
developer guide, "Create deployments")."""


@dataclass(frozen=True)
class StackAccount:
    """Where the stack lives: the ARN parts every statement needs.

    Attributes:
        prefix: the stack's prefix (every resource name starts with it).
        partition: ``aws``, ``aws-cn`` or ``aws-us-gov``.
        region: the stack's region.
        account_id: the AWS account.
    """

    prefix: str
    partition: str
    region: str
    account_id: str

    @property
    def arn(self) -> str:
        return f"arn:{self.partition}"

    @property
    def own(self) -> str:
        """``<region>:<account>`` as in regional ARNs."""
        return f"{self.region}:{self.account_id}"

    @property
    def boundary_arn(self) -> str:
        return f"{self.arn}:iam::{self.account_id}:policy/{self.prefix}-{BOUNDARY_SUFFIX}"


def state_bucket_name(backend_url: str) -> str | None:
    """The bucket of an ``s3://bucket/path?region=…`` backend; None for Pulumi Cloud."""
    parsed = urlparse(backend_url)
    return parsed.netloc if parsed.scheme == "s3" else None


def _state_statements(
    where: StackAccount,
    *,
    backend_url: str,
    secrets_key_arn: str,
    token_secret_name: str,
    read_only: bool,
) -> list[dict[str, Any]]:
    arn = where.arn
    statements = []
    bucket = state_bucket_name(backend_url)
    if bucket:
        bucket_arn = f"{arn}:s3:::{bucket}"
        if read_only:
            statements += [
                statement(
                    ["s3:GetBucketLocation", "s3:GetObject", "s3:ListBucket"],
                    [bucket_arn, f"{bucket_arn}/*"],
                    sid="PulumiStateRead",
                ),
                statement(
                    ["s3:DeleteObject", "s3:PutObject"],
                    [f"{bucket_arn}/.pulumi/locks/*"],
                    sid="PulumiStateLocks",
                ),
            ]
        else:
            statements.append(
                statement(
                    [
                        "s3:DeleteObject",
                        "s3:GetBucketLocation",
                        "s3:GetObject",
                        "s3:ListBucket",
                        "s3:PutObject",
                    ],
                    [bucket_arn, f"{bucket_arn}/*"],
                    sid="PulumiState",
                )
            )
    elif token_secret_name:
        statements.append(
            statement(
                ["secretsmanager:GetSecretValue"],
                [f"{arn}:secretsmanager:{where.own}:secret:{token_secret_name}-*"],
                sid="PulumiCloudToken",
            )
        )
    if secrets_key_arn:
        actions = (
            ["kms:Decrypt"] if read_only else ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"]
        )
        statements.append(statement(actions, [secrets_key_arn], sid="PulumiSecrets"))
    return statements


def deploy_role_statements(
    *,
    prefix: str,
    partition: str,
    region: str,
    account_id: str,
    backend_url: str,
    secrets_key_arn: str,
    token_secret_name: str,
) -> list[dict[str, Any]]:
    """What ``pulumi up`` of this stack needs: every service's resources under ``prefix``.

    Services that cannot scope creation by name (EC2 networking, Cognito pools, KMS keys, log
    deliveries) get named actions on ``*``, never ``<service>:*`` on ``*``. IAM: named actions
    on ``role/<prefix>-*``; creating a role or changing its policies only with the boundary.

    Args:
        backend_url: where Pulumi keeps state: ``s3://<bucket>`` (read and write it) or Pulumi
            Cloud (then the access token is read from Secrets Manager, ``token_secret_name``).
        secrets_key_arn: the KMS key of the stack's secrets provider (empty: none).
        token_secret_name: the Secrets Manager name of the Pulumi Cloud token (empty: none).
    """
    where = StackAccount(prefix, partition, region, account_id)
    arn, own = where.arn, where.own
    roles = f"{arn}:iam::{account_id}:role/{prefix}-*"
    statements = [
        statement(["ecr:GetAuthorizationToken", "sts:GetCallerIdentity"], ["*"], sid="Identity"),
        statement(
            ["iam:CreateServiceLinkedRole"],
            [f"{arn}:iam::{account_id}:role/aws-service-role/*"],
            sid="ServiceLinkedRoles",
            Condition={"StringEquals": {"iam:AWSServiceName": list(SERVICE_LINKED_ROLE_SERVICES)}},
        ),
        statement(
            ROLE_MANAGEMENT_ACTIONS,
            [roles],
            sid="BoundedRolesOfTheStack",
            Condition={"StringEquals": {"iam:PermissionsBoundary": where.boundary_arn}},
        ),
        statement(ROLE_UPKEEP_ACTIONS, [roles], sid="RolesOfTheStack"),
        statement(BOUNDARY_READ_ACTIONS, [where.boundary_arn], sid="ReadTheBoundary"),
        statement(
            ["ssm:GetParameter"],
            [f"{arn}:ssm:{region}::parameter/aws/service/powertools/*"],
            sid="PowertoolsLayerLookup",
        ),
        statement(
            ["lambda:GetLayerVersion"],
            [f"{arn}:lambda:{region}:017000801446:layer:*"],
            sid="PowertoolsLayer",
        ),
        statement(["s3:*"], [f"{arn}:s3:::{prefix}-*", f"{arn}:s3:::{prefix}-*/*"], sid="Buckets"),
        statement(["sqs:*"], [f"{arn}:sqs:{own}:{prefix}-*"], sid="Queues"),
        statement(["dynamodb:*"], [f"{arn}:dynamodb:{own}:table/{prefix}-*"], sid="Tables"),
        statement(["sns:*"], [f"{arn}:sns:{own}:{prefix}-*"], sid="Topics"),
        statement(["lambda:*"], [f"{arn}:lambda:{own}:function:{prefix}-*"], sid="Functions"),
        statement(
            [
                "lambda:CreateEventSourceMapping",
                "lambda:DeleteEventSourceMapping",
                "lambda:GetEventSourceMapping",
                "lambda:ListEventSourceMappings",
                "lambda:ListTags",
                "lambda:TagResource",
                "lambda:UpdateEventSourceMapping",
            ],
            ["*"],
            sid="EventSourceMappings",
        ),
        statement(
            ["logs:*"],
            [
                f"{arn}:logs:{own}:log-group:/aws/lambda/{prefix}-*",
                f"{arn}:logs:{own}:log-group:/aws/apigateway/{prefix}-*",
                f"{arn}:logs:{own}:log-group:/ecs/{prefix}-*",
                f"{arn}:logs:{own}:log-group:/aws/codebuild/{prefix}-*",
            ],
            sid="LogGroups",
        ),
        statement(
            ["logs:DescribeLogGroups", "logs:ListTagsForResource"], ["*"], sid="LogGroupLookup"
        ),
        statement(ACCESS_LOG_DELIVERY_ACTIONS, ["*"], sid="ApiAccessLogDelivery"),
        statement(["events:*"], [f"{arn}:events:{own}:rule/{prefix}-*"], sid="Schedules"),
        statement(["cloudwatch:*"], [f"{arn}:cloudwatch:{own}:alarm:{prefix}-*"], sid="Alarms"),
        statement(
            ["apigateway:*"],
            [
                f"{arn}:apigateway:{region}::/apis",
                f"{arn}:apigateway:{region}::/apis/*",
                f"{arn}:apigateway:{region}::/tags/*",
            ],
            sid="HttpApi",
        ),
        statement(["cognito-idp:*"], [f"{arn}:cognito-idp:{own}:userpool/*"], sid="UserPools"),
        statement(
            [
                "cognito-idp:CreateUserPool",
                "cognito-idp:CreateUserPoolDomain",
                "cognito-idp:DeleteUserPoolDomain",
                "cognito-idp:DescribeUserPoolDomain",
            ],
            ["*"],
            sid="UserPoolCreation",
        ),
        statement(["kms:CreateKey", "kms:ListAliases"], ["*"], sid="KeyCreation"),
        statement(
            [
                "kms:CreateAlias",
                "kms:DeleteAlias",
                "kms:DescribeKey",
                "kms:EnableKeyRotation",
                "kms:GetKeyPolicy",
                "kms:GetKeyRotationStatus",
                "kms:ListResourceTags",
                "kms:PutKeyPolicy",
                "kms:ScheduleKeyDeletion",
                "kms:TagResource",
                "kms:UntagResource",
                "kms:UpdateAlias",
                "kms:UpdateKeyDescription",
            ],
            [f"{arn}:kms:{own}:key/*", f"{arn}:kms:{own}:alias/{prefix}-*"],
            sid="KeysOfTheStack",
        ),
        statement(
            ["iot:*"],
            [f"{arn}:iot:{own}:rolealias/{prefix}-*", f"{arn}:iot:{own}:policy/{prefix}-*"],
            sid="EdgeIdentity",
        ),
        statement(DASHBOARD_NETWORK_ACTIONS, ["*"], sid="DashboardNetwork"),
        statement(
            ["elasticloadbalancing:*"],
            [
                f"{arn}:elasticloadbalancing:{own}:loadbalancer/app/{prefix}-dash/*",
                f"{arn}:elasticloadbalancing:{own}:targetgroup/{prefix}-dash/*",
                f"{arn}:elasticloadbalancing:{own}:listener/app/{prefix}-dash/*",
                f"{arn}:elasticloadbalancing:{own}:listener-rule/app/{prefix}-dash/*",
            ],
            sid="DashboardLoadBalancer",
        ),
        statement(["elasticloadbalancing:Describe*"], ["*"], sid="LoadBalancerLookup"),
        statement(
            ["ecs:*"],
            [
                f"{arn}:ecs:{own}:cluster/{prefix}-*",
                f"{arn}:ecs:{own}:service/{prefix}-*/*",
                f"{arn}:ecs:{own}:task-definition/{prefix}-*:*",
            ],
            sid="DashboardService",
        ),
        statement(
            [
                "ecs:DeregisterTaskDefinition",
                "ecs:DescribeTaskDefinition",
                "ecs:RegisterTaskDefinition",
            ],
            ["*"],
            sid="TaskDefinitions",
        ),
        statement(["ecr:*"], [f"{arn}:ecr:{own}:repository/{prefix}-*"], sid="DashboardImages"),
        statement(
            ["codebuild:*"], [f"{arn}:codebuild:{own}:project/{prefix}-*"], sid="BuildProjects"
        ),
        statement(["codepipeline:*"], [f"{arn}:codepipeline:{own}:{prefix}-*"], sid="Pipeline"),
        statement(
            ["codeconnections:*", "codestar-connections:*"],
            [
                f"{arn}:codestar-connections:{own}:connection/*",
                f"{arn}:codeconnections:{own}:connection/*",
            ],
            sid="RepositoryConnection",
        ),
    ]
    statements += _state_statements(
        where,
        backend_url=backend_url,
        secrets_key_arn=secrets_key_arn,
        token_secret_name=token_secret_name,
        read_only=False,
    )
    return statements


def edge_role_statements(
    *, partition: str, region: str, account_id: str, bucket_arn: str
) -> list[dict[str, Any]]:
    """What ``kit deploy --target greengrass`` needs: resolve the model in the registry, publish
    the component (artefact to ``packages/``), deploy it to a thing or thing group (thing
    groups are the customer's own names, not the stack's)."""
    own = f"{region}:{account_id}"
    arn = f"arn:{partition}"
    return [
        statement(
            ["s3:GetObject", "s3:PutObject"],
            [f"{bucket_arn}/packages/*", f"{bucket_arn}/models/*"],
            sid="ComponentArtifacts",
        ),
        statement(["s3:ListBucket"], [bucket_arn], sid="Registry"),
        statement(
            [
                "greengrass:CreateComponentVersion",
                "greengrass:DescribeComponent",
                "greengrass:ListComponentVersions",
            ],
            [
                f"{arn}:greengrass:{own}:components:*",
                f"{arn}:greengrass:{own}:components:*:versions:*",
            ],
            sid="Components",
        ),
        statement(
            [
                "greengrass:CreateDeployment",
                "greengrass:GetDeployment",
                "greengrass:ListDeployments",
            ],
            ["*"],
            sid="Deployments",
        ),
        statement(
            GREENGRASS_DEPLOYMENT_IOT_ACTIONS,
            [
                f"{arn}:iot:{own}:thing/*",
                f"{arn}:iot:{own}:thinggroup/*",
                f"{arn}:iot:{own}:job/*",
            ],
            sid="ThingGroupJobs",
        ),
    ]


def preview_role_statements(
    *,
    prefix: str,
    partition: str,
    region: str,
    account_id: str,
    backend_url: str,
    secrets_key_arn: str,
) -> list[dict[str, Any]]:
    """What ``pulumi preview`` (pull requests) needs: read the state and decrypt its secrets, and
    the program's lookups (identity, availability zones, the Powertools layer parameter, the
    registry login the image build asks for). Nothing that creates, changes or deletes."""
    where = StackAccount(prefix, partition, region, account_id)
    statements = [
        statement(
            ["ec2:DescribeAvailabilityZones", "ecr:GetAuthorizationToken", "sts:GetCallerIdentity"],
            ["*"],
            sid="Lookups",
        ),
        statement(
            ["ssm:GetParameter"],
            [f"{where.arn}:ssm:{region}::parameter/aws/service/powertools/*"],
            sid="PowertoolsLayerLookup",
        ),
    ]
    statements += _state_statements(
        where,
        backend_url=backend_url,
        secrets_key_arn=secrets_key_arn,
        token_secret_name="",
        read_only=True,
    )
    return statements


def runtime_statements(where: StackAccount, key_arns: Sequence[str]) -> list[dict[str, Any]]:
    """What the stack's runtime roles do beyond its prefix-named resources: use the topic's key,
    log in to ECR, invoke the API, write device and job logs, pull training images, publish
    SageMaker's metrics."""
    arn, own = where.arn, where.own
    statements = [
        statement(["ecr:GetAuthorizationToken"], ["*"], sid="RegistryLogin"),
        statement(["execute-api:Invoke"], [f"{arn}:execute-api:{own}:*/*"], sid="InvokeApi"),
        statement(
            [
                "logs:CreateLogGroup",
                "logs:CreateLogStream",
                "logs:DescribeLogStreams",
                "logs:PutLogEvents",
            ],
            [
                f"{arn}:logs:{own}:log-group:/aws/greengrass/*",
                f"{arn}:logs:{own}:log-group:/aws/sagemaker/*",
            ],
            sid="DeviceAndJobLogs",
        ),
        statement(
            ["cloudwatch:PutMetricData"],
            ["*"],
            sid="JobMetrics",
            Condition={"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}},
        ),
        statement(
            ["codeconnections:UseConnection", "codestar-connections:UseConnection"],
            [
                f"{arn}:codeconnections:{own}:connection/*",
                f"{arn}:codestar-connections:{own}:connection/*",
            ],
            sid="RepositoryConnection",
        ),
    ]
    if key_arns:
        statements.append(
            statement(["kms:Decrypt", "kms:GenerateDataKey*"], key_arns, sid="UseTopicKeys")
        )
    if where.region in DLC_REGISTRIES:
        registry = DLC_REGISTRIES[where.region]
        statements.append(
            statement(
                ECR_PULL_ACTIONS,
                [f"{arn}:ecr:{where.region}:{registry}:repository/*"],
                sid="PullTrainingImages",
            )
        )
    return statements


STACK_SERVICES = (
    "cloudwatch",
    "codebuild",
    "codepipeline",
    "dynamodb",
    "ecr",
    "ecs",
    "elasticloadbalancing",
    "events",
    "iot",
    "lambda",
    "logs",
    "s3",
    "sns",
    "sqs",
)
"""Services whose resources the stack names ``<prefix>-…``: the boundary allows their actions on
such resources (the deploy role holds the same, service by service)."""


def stack_resource_patterns(where: StackAccount) -> list[str]:
    """ARN patterns of resources named with the stack's prefix, in any of its services: buckets,
    and regional resources whose name (after ``:`` or ``/``) starts with ``<prefix>-``."""
    arn, own, prefix = where.arn, where.own, where.prefix
    return [
        f"{arn}:s3:::{prefix}-*",
        f"{arn}:s3:::{prefix}-*/*",
        f"{arn}:*:{own}:{prefix}-*",
        f"{arn}:*:{own}:*:{prefix}-*",
        f"{arn}:*:{own}:*/{prefix}-*",
    ]


def boundary_statements(
    where: StackAccount, *, bucket_arn: str, key_arns: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """The permissions boundary: the most a role of the stack may do.

    Every action of the stack's services on resources named with its prefix; what the edge
    deployment (CodeBuild edge stage) and the runtime roles (functions, devices, dashboard,
    SageMaker, pipeline) need besides; no IAM at all. The deploy role's own rights are wider
    (it creates the VPC, keys, user pools …) and it has no boundary: an administrator grants
    them, and the deploy role cannot change its own role (changing a role needs the boundary).

    Args:
        key_arns: KMS keys the runtime encrypts with (the alerts topic's).
    """
    edge = edge_role_statements(
        partition=where.partition,
        region=where.region,
        account_id=where.account_id,
        bucket_arn=bucket_arn,
    )
    patterns = stack_resource_patterns(where)
    boundary = [
        statement([f"{service}:*" for service in STACK_SERVICES], patterns, sid="StackResources")
    ]
    for item in [*edge, *runtime_statements(where, key_arns)]:
        folded = all(a.split(":", 1)[0] in STACK_SERVICES for a in item["Action"]) and all(
            _within(resource, patterns) for resource in item["Resource"]
        )
        if not folded:
            boundary.append(item)
    return boundary


def _within(resource: str, patterns: Sequence[str]) -> bool:
    return any(fnmatchcase(resource, pattern) for pattern in patterns)


MANAGED_POLICY_MAX_CHARS = 6144
"""IAM's limit on a managed policy document (characters, whitespace not counted)."""


def policy_size(policy: str) -> int:
    """The size IAM counts for ``policy``: its characters without whitespace."""
    return sum(1 for char in policy if not char.isspace())


@dataclass
class PermissionsBoundaryArgs:
    """Args of :class:`PermissionsBoundary`.

    Attributes:
        prefix, partition, region, account_id: where the stack lives.
        bucket_arn: the data bucket (the edge deployment's registry and artefacts).
        key_arns: KMS keys the runtime encrypts with (the alerts topic's).
    """

    prefix: str
    partition: pulumi.Input[str]
    region: str
    account_id: pulumi.Input[str]
    bucket_arn: pulumi.Input[str]
    key_arns: Sequence[pulumi.Input[str]] = ()


class PermissionsBoundary(pulumi.ComponentResource):
    """The managed policy ``<prefix>-permissions-boundary`` every role of the stack carries."""

    def __init__(
        self,
        name: str,
        args: PermissionsBoundaryArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("kit:backend:PermissionsBoundary", name, {}, opts)
        self.document = pulumi.Output.all(
            args.partition, args.account_id, args.bucket_arn, list(args.key_arns)
        ).apply(
            lambda values: _boundary_document(
                StackAccount(args.prefix, values[0], args.region, values[1]),
                bucket_arn=values[2],
                key_arns=values[3],
            )
        )
        self.policy = aws.iam.Policy(
            f"{name}-policy",
            name=f"{args.prefix}-{BOUNDARY_SUFFIX}",
            description=f"the most any role of the {args.prefix} stack may do",
            policy=self.document,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.arn = self.policy.arn
        self.register_outputs({"arn": self.arn})


def _boundary_document(where: StackAccount, *, bucket_arn: str, key_arns: Sequence[str]) -> str:
    policy = document(boundary_statements(where, bucket_arn=bucket_arn, key_arns=key_arns))
    if policy_size(policy) > MANAGED_POLICY_MAX_CHARS:
        raise ValueError(
            f"the permissions boundary of {where.prefix} is {policy_size(policy)} characters; "
            f"IAM allows {MANAGED_POLICY_MAX_CHARS} in a managed policy"
        )
    return policy


GITHUB_OIDC_HOST = "token.actions.githubusercontent.com"
GITHUB_DEPLOY_ENVIRONMENT = "production"
"""The GitHub environment the workflow's deploy and edge jobs run in (its approval gate)."""


def github_trust_policy(account_id: str, partition: str, repository: str, subject: str) -> str:
    """A trust policy letting GitHub's OIDC provider assume the role for ``repository`` jobs
    whose token subject is ``repo:<repository>:<subject>``."""
    provider = f"arn:{partition}:iam::{account_id}:oidc-provider/{GITHUB_OIDC_HOST}"
    return json.dumps(
        {
            "Version": POLICY_VERSION,
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Federated": provider},
                    "Action": "sts:AssumeRoleWithWebIdentity",
                    "Condition": {
                        "StringEquals": {
                            f"{GITHUB_OIDC_HOST}:aud": "sts.amazonaws.com",
                            f"{GITHUB_OIDC_HOST}:sub": f"repo:{repository}:{subject}",
                        }
                    },
                }
            ],
        },
        sort_keys=True,
    )


def github_role_documents(
    *,
    repository: str,
    prefix: str,
    partition: str,
    region: str,
    account_id: str,
    bucket: str,
    backend_url: str,
    secrets_key_arn: str,
) -> dict[str, str]:
    """The GitHub Actions roles of ``.github/workflows/deploy.yml``, as IAM documents by file name.

    - ``deploy-trust.json`` + ``deploy-policy.json`` + ``edge-policy.json``: the role of the
      ``deploy`` and ``edge`` jobs (the ``production`` environment): ``pulumi up`` and
      ``kit deploy --target greengrass``.
    - ``preview-trust.json`` + ``preview-policy.json``: the read-only role of ``pulumi preview``
      on pull requests.

    Raises:
        ValueError: ``repository`` is not ``owner/name``.
    """
    if repository.count("/") != 1 or not all(repository.split("/")):
        raise ValueError(f"repository {repository!r} must be owner/name")
    where = StackAccount(prefix, partition, region, account_id)
    common = {"prefix": prefix, "partition": partition, "region": region, "account_id": account_id}
    return {
        "deploy-trust.json": github_trust_policy(
            account_id, partition, repository, f"environment:{GITHUB_DEPLOY_ENVIRONMENT}"
        ),
        "deploy-policy.json": document(
            deploy_role_statements(
                **common,
                backend_url=backend_url,
                secrets_key_arn=secrets_key_arn,
                token_secret_name="",
            )
        ),
        "edge-policy.json": document(
            edge_role_statements(
                partition=partition,
                region=region,
                account_id=account_id,
                bucket_arn=f"{where.arn}:s3:::{bucket}",
            )
        ),
        "preview-trust.json": github_trust_policy(
            account_id, partition, repository, "pull_request"
        ),
        "preview-policy.json": document(
            preview_role_statements(
                **common, backend_url=backend_url, secrets_key_arn=secrets_key_arn
            )
        ),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m infra.deploy_access --repository … --out DIR``: write the GitHub roles' files."""
    parser = argparse.ArgumentParser(
        prog="python -m infra.deploy_access",
        description="Write the IAM documents of the GitHub Actions deploy and preview roles.",
    )
    parser.add_argument("--repository", required=True, help="owner/name of the GitHub repository")
    parser.add_argument("--prefix", required=True, help="the stack's prefix")
    parser.add_argument("--account", required=True, help="the AWS account id")
    parser.add_argument("--region", required=True, help="the stack's region")
    parser.add_argument("--partition", default="aws", help="aws, aws-cn or aws-us-gov")
    parser.add_argument(
        "--bucket", required=True, help="the data bucket (`pulumi stack output bucket`)"
    )
    parser.add_argument(
        "--backend-url", required=True, help="s3://<state bucket> or https://api.pulumi.com"
    )
    parser.add_argument("--secrets-key-arn", default="", help="the stack's secrets KMS key")
    parser.add_argument("--out", required=True, help="the folder to write the JSON files into")
    args = parser.parse_args(argv)
    try:
        documents = github_role_documents(
            repository=args.repository,
            prefix=args.prefix,
            partition=args.partition,
            region=args.region,
            account_id=args.account,
            bucket=args.bucket,
            backend_url=args.backend_url,
            secrets_key_arn=args.secrets_key_arn,
        )
    except ValueError as error:
        parser.error(str(error))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name, text in documents.items():
        (out / name).write_text(json.dumps(json.loads(text), indent=2) + "\n")
        print(out / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
