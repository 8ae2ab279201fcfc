"""The hosted dashboard component built on its own: every resource a direct child of the
component (so splitting its constructor by concern keeps every URN), a clear error when the
Cognito pieces its login needs are missing; its image built from the Dockerfile and run by
digest, or, without Docker, a preview that warns and an ``up`` that says what it needs; its
subnets in the zones the region offers."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

import pulumi
import pytest

from infra.auth import Auth, AuthArgs
from infra.config import DashboardConfig
from infra.dashboard import (
    DOCKERFILE,
    REPO_ROOT,
    DashboardHosting,
    DashboardHostingArgs,
    DashboardImageError,
    container_definitions,
    docker_available,
    execution_policy,
)

CONFIG = DashboardConfig(
    enabled=True,
    domain="dashboard.example.com",
    certificate_arn="arn:aws:acm:eu-west-1:123456789012:certificate/abc",
)


REGISTRY = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
IMAGE_TYPE = "docker-build:index:Image"
TASK_TYPE = "aws:ecs/taskDefinition:TaskDefinition"


def hosting_args(
    auth: Auth, *, docker: bool = True, config: DashboardConfig = CONFIG
) -> DashboardHostingArgs:
    return DashboardHostingArgs(
        config=config,
        name_prefix="evkdash",
        region="eu-west-1",
        auth=auth,
        api_execution_arn="arn:aws:execute-api:eu-west-1:123456789012:abc",
        environment={"EVK_TARGET": "aws"},
        log_retention_days=7,
        account_id="123456789012",
        dns_suffix="amazonaws.com",
        docker_available=docker,
    )


def build_hosting(*, docker: bool = True, config: DashboardConfig = CONFIG):
    def build():
        auth = Auth("auth", AuthArgs(name_prefix="evkdash", dashboard_domain=CONFIG.domain))
        DashboardHosting("dashboard", hosting_args(auth, docker=docker, config=config))

    return build


def _task_image(mocks) -> str:
    [task] = [r for r in mocks.resources if r.type == TASK_TYPE]
    [container] = json.loads(task.inputs["containerDefinitions"])
    return container["image"]


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
        "dashboard-image",
        "dashboard-images-expiry",
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


def test_the_image_is_built_from_the_dockerfile_pushed_to_the_stacks_repository_and_run_by_digest(
    under_mocks,
):
    mocks = under_mocks(build_hosting())

    [image] = [r for r in mocks.resources if r.type == IMAGE_TYPE]
    assert image.inputs["push"] is True and image.inputs["buildOnPreview"] is True
    assert image.inputs["tags"] == [f"{REGISTRY}/evkdash-dashboard:latest"]
    assert image.inputs["platforms"] == ["linux/amd64"]
    assert (Path.cwd() / image.inputs["context"]["location"]).resolve() == REPO_ROOT
    assert (Path.cwd() / image.inputs["dockerfile"]["location"]).resolve() == DOCKERFILE
    [registry] = image.inputs["registries"]
    assert registry["address"] == REGISTRY and registry["username"] == "AWS"
    assert (
        "aws:ecr/getAuthorizationToken:getAuthorizationToken",
        {"registryId": "123456789012"},
    ) in mocks.calls
    [repository] = [r for r in mocks.resources if r.type == "aws:ecr/repository:Repository"]
    assert repository.inputs["name"] == "evkdash-dashboard"

    # The task runs exactly what was pushed: a new image is a new digest, so a new task
    # definition, so ECS rolls the service.
    image_reference = _task_image(mocks)
    repository_url, _, digest = image_reference.partition("@")
    assert repository_url == f"{REGISTRY}/evkdash-dashboard"
    assert digest.startswith("sha256:") and len(digest) == len("sha256:") + 64


def test_a_preview_without_docker_skips_the_build_and_says_what_up_needs(under_mocks, caplog):
    with caplog.at_level(logging.WARNING):
        mocks = under_mocks(build_hosting(docker=False), preview=True)

    [image] = [r for r in mocks.resources if r.type == IMAGE_TYPE]
    assert image.inputs["buildOnPreview"] is False
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(
        "not built in this preview" in w
        and "`pulumi up` builds the dashboard image" in w
        and "docker/dashboard.Dockerfile" in w
        and "DOCKER_HOST" in w
        and "dashboard.image" in w
        for w in warnings
    ), warnings


def test_up_without_docker_stops_before_building_and_says_what_it_needs(under_mocks):
    with pytest.raises(DashboardImageError) as stopped:
        under_mocks(build_hosting(docker=False), preview=False)
    message = str(stopped.value)
    assert "no Docker daemon found" in message and "/var/run/docker.sock" in message
    assert "set DOCKER_HOST" in message and "dashboard.image" in message


def test_an_image_of_your_own_is_run_as_given_and_nothing_is_built(under_mocks):
    own = replace(CONFIG, image="registry.example.com/evk/dashboard:1.2.3")
    mocks = under_mocks(build_hosting(docker=False, config=own))

    assert not [r for r in mocks.resources if r.type == IMAGE_TYPE]
    assert _task_image(mocks) == "registry.example.com/evk/dashboard:1.2.3"


def test_docker_is_found_by_docker_host_or_a_daemon_socket(tmp_path):
    socket = tmp_path / "run" / "docker.sock"
    sockets = (
        "/nonexistent/docker.sock",
        "~/.docker/run/docker.sock",
        "$XDG_RUNTIME_DIR/docker.sock",
    )
    assert docker_available({"DOCKER_HOST": "tcp://10.0.0.5:2375"}, sockets=())
    assert not docker_available({"HOME": str(tmp_path)}, sockets=sockets)
    socket.parent.mkdir()
    socket.touch()
    assert docker_available({"XDG_RUNTIME_DIR": str(socket.parent)}, sockets=sockets)
    desktop = tmp_path / ".docker" / "run" / "docker.sock"
    desktop.parent.mkdir(parents=True)
    desktop.touch()
    assert docker_available({"HOME": str(tmp_path)}, sockets=sockets)


def test_subnets_take_the_zones_the_region_offers(under_mocks):
    zones = ("ap-southeast-7b", "ap-southeast-7a", "ap-southeast-7c")
    mocks = under_mocks(build_hosting(), zones=zones)

    subnets = {
        r.name: r.inputs["availabilityZone"]
        for r in mocks.resources
        if r.type == "aws:ec2/subnet:Subnet"
    }
    assert subnets == {
        "dashboard-public-a": "ap-southeast-7a",
        "dashboard-public-b": "ap-southeast-7b",
    }
    [lookup] = [
        args
        for token, args in mocks.calls
        if token == "aws:index/getAvailabilityZones:getAvailabilityZones"
    ]
    assert lookup["state"] == "available"
    assert lookup["filters"] == [{"name": "opt-in-status", "values": ["opt-in-not-required"]}]


def test_a_region_with_one_zone_is_refused_naming_what_it_offers(under_mocks):
    with pytest.raises(ValueError, match=r"needs 2 availability zones .* offers \['xx-test-1a'\]"):
        under_mocks(build_hosting(), zones=("xx-test-1a",))


def test_the_whole_program_without_docker_previews_but_up_stops_before_creating_anything(
    under_mocks, new_mocks, facts, caplog
):
    from infra.program import build_backend

    with caplog.at_level(logging.WARNING):
        previewed = under_mocks(
            lambda: build_backend(facts.full_config, docker=False), preview=True
        )
    assert [r for r in previewed.resources if r.type == IMAGE_TYPE]
    warned = [
        r.getMessage() for r in caplog.records if "not built in this preview" in r.getMessage()
    ]
    assert len(warned) == 1, warned

    mocks = new_mocks()
    with pytest.raises(DashboardImageError, match="no Docker daemon found"):
        under_mocks(lambda: build_backend(facts.full_config, docker=False), mocks=mocks)
    assert mocks.resources == [], "nothing is created"
