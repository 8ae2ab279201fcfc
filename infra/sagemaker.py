"""The SageMaker execution role training jobs and Neo compilation jobs run with (optional).

Scoped to the kit's bucket and the training image's registry: read ``datasets/`` and ``models/``
(what a job trains on and starts from) and the jobs' own folders ``training-jobs/`` and
``compilation-jobs/`` (their source, inputs and checkpoints); write only those two job folders;
pull the AWS Deep Learning Container the jobs run (:func:`kit.aws.training_image_registry`);
write the jobs' logs and metrics. ``kit aws outputs`` writes its ARN into the settings
(``sagemaker_role_arn``), and :mod:`kit.train` and :mod:`kit.compile.neo` use it by default.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.iam import assume_role_policy, document, statement
from kit.aws import (
    DLC_REGISTRIES,
    SAGEMAKER_READ_PREFIXES,
    SAGEMAKER_WRITE_PREFIXES,
    TRAINING_IMAGE_REPOSITORY,
)

ECR_PULL_ACTIONS = (
    "ecr:BatchCheckLayerAvailability",
    "ecr:BatchGetImage",
    "ecr:GetDownloadUrlForLayer",
)
JOB_LOG_ACTIONS = (
    "logs:CreateLogGroup",
    "logs:CreateLogStream",
    "logs:DescribeLogStreams",
    "logs:PutLogEvents",
)


def sagemaker_role_statements(
    *, bucket_arn: str, partition: str, region: str, account_id: str
) -> list[dict[str, Any]]:
    """The execution role's statements (see the module's docstring)."""
    arn = f"arn:{partition}"
    statements = [
        statement(
            ["s3:ListBucket"],
            [bucket_arn],
            sid="ListJobFolders",
            Condition={"StringLike": {"s3:prefix": [f"{p}/*" for p in SAGEMAKER_READ_PREFIXES]}},
        ),
        statement(
            ["s3:GetObject"],
            [f"{bucket_arn}/{p}/*" for p in SAGEMAKER_READ_PREFIXES],
            sid="ReadDatasetsModelsAndJobs",
        ),
        statement(
            ["s3:AbortMultipartUpload", "s3:PutObject"],
            [f"{bucket_arn}/{p}/*" for p in SAGEMAKER_WRITE_PREFIXES],
            sid="WriteJobOutputs",
        ),
        statement(["ecr:GetAuthorizationToken"], ["*"], sid="RegistryLogin"),
        statement(
            JOB_LOG_ACTIONS,
            [f"{arn}:logs:{region}:{account_id}:log-group:/aws/sagemaker/*"],
            sid="JobLogs",
        ),
        statement(
            ["cloudwatch:PutMetricData"],
            ["*"],
            sid="JobMetrics",
            Condition={"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}},
        ),
    ]
    registry = DLC_REGISTRIES.get(region)
    if registry:
        statements.append(
            statement(
                ECR_PULL_ACTIONS,
                [f"{arn}:ecr:{region}:{registry}:repository/{TRAINING_IMAGE_REPOSITORY}"],
                sid="PullTrainingImage",
            )
        )
    return statements


@dataclass
class SageMakerAccessArgs:
    """Args of :class:`SageMakerAccess`.

    Attributes:
        name_prefix: the role is ``<prefix>-sagemaker``.
        bucket_arn: the kit's bucket.
        account_id, partition, region: for the ARNs and the trust condition.
        permissions_boundary: the stack's permissions boundary.
    """

    name_prefix: str
    bucket_arn: pulumi.Input[str]
    account_id: pulumi.Input[str]
    partition: pulumi.Input[str]
    region: str
    permissions_boundary: pulumi.Input[str] | None = None


class SageMakerAccess(pulumi.ComponentResource):
    """The SageMaker execution role (``<prefix>-sagemaker``) and its policy."""

    def __init__(
        self, name: str, args: SageMakerAccessArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("kit:backend:SageMakerAccess", name, {}, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.role = aws.iam.Role(
            f"{name}-execution-role",
            name=f"{args.name_prefix}-sagemaker",
            description="SageMaker training and Neo compilation jobs of the kit",
            assume_role_policy=pulumi.Output.from_input(args.account_id).apply(
                lambda account: assume_role_policy(
                    "sagemaker.amazonaws.com", StringEquals={"aws:SourceAccount": account}
                )
            ),
            permissions_boundary=args.permissions_boundary,
            opts=child,
        )
        self.policy_document = pulumi.Output.all(
            args.bucket_arn, args.partition, args.account_id
        ).apply(
            lambda values: document(
                sagemaker_role_statements(
                    bucket_arn=values[0],
                    partition=values[1],
                    region=args.region,
                    account_id=values[2],
                )
            )
        )
        aws.iam.RolePolicy(
            f"{name}-execution-policy",
            name=f"{args.name_prefix}-sagemaker-jobs",
            role=self.role.id,
            policy=self.policy_document,
            opts=child,
        )
        self.register_outputs({"role_arn": self.role.arn})
