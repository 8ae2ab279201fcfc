"""The hosted dashboard component built on its own: every resource a direct child of the
component (so splitting its constructor by concern keeps every URN), and a clear error when the
Cognito pieces its login needs are missing."""

from __future__ import annotations

import json

import pulumi
import pytest

from infra.auth import Auth, AuthArgs
from infra.config import DashboardConfig
from infra.dashboard import (
    DashboardHosting,
    DashboardHostingArgs,
    container_definitions,
    execution_policy,
)

CONFIG = DashboardConfig(
    enabled=True,
    domain="dashboard.example.com",
    certificate_arn="arn:aws:acm:eu-west-1:123456789012:certificate/abc",
)


def hosting_args(auth: Auth) -> DashboardHostingArgs:
    return DashboardHostingArgs(
        config=CONFIG,
        name_prefix="evkdash",
        region="eu-west-1",
        auth=auth,
        api_execution_arn="arn:aws:execute-api:eu-west-1:123456789012:abc",
        environment={"EVK_TARGET": "aws"},
        log_retention_days=7,
    )


def test_every_dashboard_resource_is_a_direct_child_of_the_component(under_mocks):
    parents: dict[str, str | None] = {}

    def record_parent(args: pulumi.ResourceTransformationArgs) -> None:
        parent = args.opts.parent if args.opts else None
        parents[args.name] = parent._name if parent is not None else None

    def build():
        pulumi.runtime.register_stack_transformation(record_parent)
        auth = Auth("auth", AuthArgs(name_prefix="evkdash", dashboard_domain=CONFIG.domain))
        DashboardHosting("dashboard", hosting_args(auth))

    mocks = under_mocks(build)

    built = {r.name for r in mocks.resources if r.name.startswith("dashboard-")}
    assert {
        "dashboard-vpc",
        "dashboard-public-a",
        "dashboard-public-b",
        "dashboard-alb-sg",
        "dashboard-task-sg",
        "dashboard-images",
        "dashboard-logs",
        "dashboard-execution-role",
        "dashboard-task-role",
        "dashboard-alb",
        "dashboard-https",
        "dashboard-http-redirect",
        "dashboard-cluster",
        "dashboard-task",
        "dashboard-service",
    } <= built
    assert {name: parents[name] for name in built} == dict.fromkeys(built, "dashboard")
    service = next(r for r in mocks.resources if r.name == "dashboard-service")
    assert service.inputs["networkConfiguration"]["assignPublicIp"] is True


def test_hosting_without_the_dashboard_login_client_names_what_is_missing(under_mocks):
    def build():
        auth = Auth("auth", AuthArgs(name_prefix="evkdash"))
        DashboardHosting("dashboard", hosting_args(auth))

    with pytest.raises(ValueError, match="needs the Cognito dashboard client and hosted-UI domain"):
        under_mocks(build)


def test_the_container_and_the_execution_policy_are_plain_json():
    [container] = json.loads(
        container_definitions(
            image="repo:latest",
            log_group="/ecs/evk-dashboard",
            environment={"B": "2", "A": "1"},
            port=8866,
            region="eu-west-1",
        )
    )
    assert [e["name"] for e in container["environment"]] == ["A", "B"]
    assert container["portMappings"] == [{"containerPort": 8866, "protocol": "tcp"}]
    assert container["logConfiguration"]["options"]["awslogs-region"] == "eu-west-1"

    statements = json.loads(execution_policy(repository_arn="arn:repo", log_group_arn="arn:logs"))[
        "Statement"
    ]
    resources = {s["Sid"]: s["Resource"] for s in statements}
    assert resources == {
        "RegistryLogin": ["*"],
        "PullDashboardImage": ["arn:repo"],
        "WriteContainerLogs": ["arn:logs:*"],
    }
