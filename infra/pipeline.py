"""The optional AWS-native CI/CD: CodePipeline source → test → approval → deploy → edge deployment.

The same steps as ``.github/workflows/deploy.yml``, for teams that keep everything in AWS:

1. **Source**: the repository through a CodeStar connection (complete its handshake once).
2. **Test**: CodeBuild runs the tests and the notebooks headless (papermill).
3. **Approve**: a person approves in the console.
4. **Deploy**: CodeBuild runs ``pulumi up`` on the stack and turns its outputs into ``evk.yaml``.
5. **Edge**: CodeBuild runs ``kit deploy`` to the Greengrass thing group, with that ``evk.yaml``.

Each CodeBuild project has its own role (:mod:`infra.deploy_access` writes their statements).
The deploy role can create only what this stack holds (names under the stack's prefix), and
roles only with the stack's permissions boundary; it is the most powerful role here, so the
pipeline stops for approval before it. It carries no boundary itself and cannot change its own
role: an administrator's ``pulumi up`` creates it and applies changes to it. The other roles
carry the boundary.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import version
from typing import Any

import pulumi
import pulumi_aws as aws
import yaml

from infra.config import PipelineConfig
from infra.deploy_access import deploy_role_statements, edge_role_statements, state_bucket_name
from infra.iam import assume_role_policy, document, statement
from infra.storage import SecureBucket, SecureBucketArgs

PULUMI_CLI_VERSION = version("pulumi")
"""The CLI release matching the pinned Python SDK."""
BUILD_IMAGE = "aws/codebuild/standard:7.0"
DEPLOY_PACKAGES = (
    "pulumi",
    "pulumi-aws",
    "pulumi-docker-build",
    "pulumi-policy",
    "pydantic",
    "pyyaml",
    "boto3",
)
"""What ``pulumi up`` (with the policy pack) and ``kit aws outputs`` need: the deploy stage
installs only these, at the pins of requirements.txt."""
TEST_COMMANDS = (
    "make test",
    "mkdir -p build/notebooks",
    'for notebook in notebooks/[0-9]*.ipynb; do .venv/bin/papermill "$notebook" '
    '"build/notebooks/$(basename "$notebook")" -p quick True --cwd notebooks; done',
)
"""The test stage: the README's test command, then every numbered notebook headless."""
DEPLOY_COMMANDS = (
    'pulumi login "$PULUMI_BACKEND_URL"',
    'pulumi stack select "$PULUMI_STACK"',
    "pulumi up --yes --non-interactive --policy-pack infra/policy_pack",
    "pulumi stack output --json > stack-outputs.json",
    ".venv/bin/kit aws outputs --from stack-outputs.json --write evk.yaml",
)
EDGE_DEPLOY_COMMAND = (
    '.venv/bin/kit --config evk.yaml deploy --target greengrass --thing-group "$EVK_THING_GROUP"'
)
"""The edge stage; the GitHub workflow runs the same command."""


def _buildspec(install: list[str], build: list[str], artifacts: list[str] | None = None) -> str:
    spec: dict[str, Any] = {
        "version": 0.2,
        "phases": {
            "install": {"runtime-versions": {"python": "3.11"}, "commands": install},
            "build": {"commands": build},
        },
    }
    if artifacts:
        spec["artifacts"] = {"files": artifacts}
    return yaml.safe_dump(spec, sort_keys=False, width=200)


def test_buildspec() -> str:
    """Tests and notebooks (the full environment, as a developer has it)."""
    return _buildspec(["python -m venv .venv"], list(TEST_COMMANDS))


def deploy_buildspec() -> str:
    """``pulumi up`` with the pinned CLI and only the packages the program needs."""
    pins = "|".join(DEPLOY_PACKAGES)
    return _buildspec(
        [
            f"curl -fsSL https://get.pulumi.com | sh -s -- --version {PULUMI_CLI_VERSION}",
            'export PATH="$HOME/.pulumi/bin:$PATH"',
            "python -m venv .venv",
            f"grep -E '^({pins})==' requirements.txt > deploy-requirements.txt",
            ".venv/bin/pip install -q -r deploy-requirements.txt",
            ".venv/bin/pip install -q --no-deps -e .",
        ],
        ['export PATH="$HOME/.pulumi/bin:$PATH"', *DEPLOY_COMMANDS],
        artifacts=["evk.yaml", "stack-outputs.json"],
    )


def edge_buildspec() -> str:
    """``kit deploy`` to the Greengrass thing group with the settings the deploy stage wrote."""
    return _buildspec(
        [
            "python -m venv .venv",
            ".venv/bin/pip install -q -r requirements.txt",
            ".venv/bin/pip install -q --no-deps -e .",
        ],
        ['cp "$CODEBUILD_SRC_DIR_settings/evk.yaml" evk.yaml', EDGE_DEPLOY_COMMAND],
    )


@dataclass
class DeliveryPipelineArgs:
    """Args of :class:`DeliveryPipeline`.

    Attributes:
        config: the pipeline's stack config (repository, branch, state backend, thing group).
        name_prefix: the stack's prefix (resource names and the deploy role's scope).
        artifact_bucket_name: a bucket for pipeline artifacts (created here).
        data_bucket_arn: the kit's bucket (the edge stage publishes components there).
        account_id, partition, region: for the roles' ARNs.
        permissions_boundary: the stack's boundary, set on every role here but the deploy role's.
        builds_images: the deploy stage builds container images (the hosted dashboard's): its
            CodeBuild project runs privileged, with a Docker daemon.
    """

    config: PipelineConfig
    name_prefix: str
    artifact_bucket_name: str
    data_bucket_arn: pulumi.Input[str]
    account_id: pulumi.Input[str]
    partition: pulumi.Input[str]
    region: str
    permissions_boundary: pulumi.Input[str] | None = None
    builds_images: bool = False


class DeliveryPipeline(pulumi.ComponentResource):
    """CodePipeline V2 with CodeBuild test, manual approval, ``pulumi up`` and edge deployment."""

    def __init__(
        self, name: str, args: DeliveryPipelineArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("kit:backend:DeliveryPipeline", name, {}, opts)
        child = pulumi.ResourceOptions(parent=self)
        config = args.config
        prefix = args.name_prefix
        self.artifacts = SecureBucket(
            f"{name}-artifacts",
            SecureBucketArgs(
                bucket_name=args.artifact_bucket_name,
                force_destroy=True,
                noncurrent_days=7,
                expiring_prefixes={"": 30},
            ),
            opts=child,
        )
        artifacts_arn = self.artifacts.bucket.arn
        if config.connection_arn:
            connection_arn: pulumi.Input[str] = config.connection_arn
            self.connection = None
        else:
            self.connection = aws.codestarconnections.Connection(
                f"{name}-github",
                name=f"{prefix}-github"[:32],
                provider_type="GitHub",
                opts=child,
            )
            connection_arn = self.connection.arn
        token_secret_name = f"{prefix}/pulumi-access-token"
        context = pulumi.Output.all(args.partition, args.account_id, artifacts_arn)

        self.projects: dict[str, aws.codebuild.Project] = {}
        self.role_documents: dict[str, pulumi.Output[str]] = {}
        stages = {
            "test": ("tests and notebooks", test_buildspec(), "BUILD_GENERAL1_LARGE", [], []),
            "deploy": (
                "pulumi up",
                deploy_buildspec(),
                "BUILD_GENERAL1_MEDIUM",
                [
                    {"name": "PULUMI_BACKEND_URL", "value": config.backend_url},
                    {"name": "PULUMI_STACK", "value": config.stack},
                ]
                + (
                    []
                    if state_bucket_name(config.backend_url)
                    else [
                        {
                            "name": "PULUMI_ACCESS_TOKEN",
                            "value": token_secret_name,
                            "type": "SECRETS_MANAGER",
                        }
                    ]
                ),
                ["deploy"],
            ),
            "edge": (
                "edge deployment",
                edge_buildspec(),
                "BUILD_GENERAL1_MEDIUM",
                [{"name": "EVK_THING_GROUP", "value": config.thing_group}],
                ["edge"],
            ),
        }
        for stage, (purpose, buildspec, compute, variables, extra) in stages.items():
            project_name = f"{prefix}-{stage}"
            role = aws.iam.Role(
                f"{name}-{stage}-role",
                name=f"{project_name}-codebuild",
                description=f"CodeBuild {purpose} for {prefix}",
                assume_role_policy=assume_role_policy("codebuild.amazonaws.com"),
                permissions_boundary=None if stage == "deploy" else args.permissions_boundary,
                opts=child,
            )
            role_document = pulumi.Output.all(context, args.data_bucket_arn).apply(
                lambda values, stage=stage, project_name=project_name, extra=extra: document(
                    self._build_role_statements(
                        stage=stage,
                        project_name=project_name,
                        partition=values[0][0],
                        account_id=values[0][1],
                        artifacts_arn=values[0][2],
                        data_bucket_arn=values[1],
                        region=args.region,
                        config=config,
                        prefix=prefix,
                        token_secret_name=token_secret_name,
                        extra=extra,
                    )
                )
            )
            aws.iam.RolePolicy(
                f"{name}-{stage}-policy",
                name=f"{project_name}-codebuild",
                role=role.id,
                policy=role_document,
                opts=child,
            )
            self.role_documents[stage] = role_document
            self.projects[stage] = aws.codebuild.Project(
                f"{name}-{stage}",
                name=project_name,
                description=f"{prefix}: {purpose}",
                service_role=role.arn,
                build_timeout=60,
                artifacts={"type": "CODEPIPELINE"},
                source={"type": "CODEPIPELINE", "buildspec": buildspec},
                environment={
                    "compute_type": compute,
                    "image": BUILD_IMAGE,
                    "type": "LINUX_CONTAINER",
                    "environment_variables": variables,
                    "privileged_mode": stage == "deploy" and args.builds_images,
                },
                logs_config={"cloudwatch_logs": {"group_name": f"/aws/codebuild/{project_name}"}},
                opts=child,
            )

        self.pipeline_role = aws.iam.Role(
            f"{name}-pipeline-role",
            name=f"{prefix}-pipeline",
            description=f"CodePipeline of {prefix}",
            assume_role_policy=assume_role_policy("codepipeline.amazonaws.com"),
            permissions_boundary=args.permissions_boundary,
            opts=child,
        )
        self.pipeline_role_document = pulumi.Output.all(
            artifacts_arn,
            connection_arn,
            [project.arn for project in self.projects.values()],
        ).apply(
            lambda values: document(
                [
                    statement(
                        ["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject"],
                        [f"{values[0]}/*"],
                        sid="Artifacts",
                    ),
                    statement(
                        ["s3:GetBucketVersioning", "s3:ListBucket"],
                        [values[0]],
                        sid="ArtifactBucket",
                    ),
                    statement(
                        ["codestar-connections:UseConnection", "codeconnections:UseConnection"],
                        [values[1]],
                        sid="Source",
                    ),
                    statement(
                        ["codebuild:BatchGetBuilds", "codebuild:StartBuild"],
                        values[2],
                        sid="Builds",
                    ),
                ]
            )
        )
        aws.iam.RolePolicy(
            f"{name}-pipeline-policy",
            name=f"{prefix}-pipeline",
            role=self.pipeline_role.id,
            policy=self.pipeline_role_document,
            opts=child,
        )

        def build_action(stage: str, inputs: list[str], outputs: list[str] | None = None):
            action: dict[str, Any] = {
                "name": stage.capitalize(),
                "category": "Build",
                "owner": "AWS",
                "provider": "CodeBuild",
                "version": "1",
                "input_artifacts": inputs,
                "configuration": {
                    "ProjectName": self.projects[stage].name,
                    **({"PrimarySource": "source"} if len(inputs) > 1 else {}),
                },
            }
            if outputs:
                action["output_artifacts"] = outputs
            return action

        self.pipeline = aws.codepipeline.Pipeline(
            f"{name}-pipeline",
            name=f"{prefix}-delivery",
            pipeline_type="V2",
            execution_mode="QUEUED",
            role_arn=self.pipeline_role.arn,
            artifact_stores=[{"location": self.artifacts.bucket.bucket, "type": "S3"}],
            stages=[
                {
                    "name": "Source",
                    "actions": [
                        {
                            "name": "Repository",
                            "category": "Source",
                            "owner": "AWS",
                            "provider": "CodeStarSourceConnection",
                            "version": "1",
                            "output_artifacts": ["source"],
                            "configuration": {
                                "ConnectionArn": connection_arn,
                                "FullRepositoryId": config.repository,
                                "BranchName": config.branch,
                                "OutputArtifactFormat": "CODE_ZIP",
                            },
                        }
                    ],
                },
                {"name": "Test", "actions": [build_action("test", ["source"])]},
                {
                    "name": "Approve",
                    "actions": [
                        {
                            "name": "Approve",
                            "category": "Approval",
                            "owner": "AWS",
                            "provider": "Manual",
                            "version": "1",
                            "configuration": {
                                "CustomData": f"Deploy {config.repository}@{config.branch} "
                                f"to stack {config.stack}?"
                            },
                        }
                    ],
                },
                {"name": "Deploy", "actions": [build_action("deploy", ["source"], ["settings"])]},
                {"name": "Edge", "actions": [build_action("edge", ["source", "settings"])]},
            ],
            opts=child,
        )
        self.register_outputs({"pipeline": self.pipeline.name})

    @staticmethod
    def _build_role_statements(
        *,
        stage: str,
        project_name: str,
        partition: str,
        account_id: str,
        artifacts_arn: str,
        data_bucket_arn: str,
        region: str,
        config: PipelineConfig,
        prefix: str,
        token_secret_name: str,
        extra: list[str],
    ) -> list[dict[str, Any]]:
        log_group = (
            f"arn:{partition}:logs:{region}:{account_id}:log-group:/aws/codebuild/{project_name}"
        )
        statements = [
            statement(
                ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                [log_group, f"{log_group}:*"],
                sid="BuildLogs",
            ),
            statement(
                ["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject"],
                [f"{artifacts_arn}/*"],
                sid="PipelineArtifacts",
            ),
        ]
        if "deploy" in extra:
            statements += deploy_role_statements(
                prefix=prefix,
                partition=partition,
                region=region,
                account_id=account_id,
                backend_url=config.backend_url,
                secrets_key_arn=config.secrets_key_arn,
                token_secret_name=token_secret_name,
            )
        if "edge" in extra:
            statements += edge_role_statements(
                partition=partition,
                region=region,
                account_id=account_id,
                bucket_arn=data_bucket_arn,
            )
        return statements
