"""Dashboard hosting (optional): the Voila dashboard on ECS Fargate behind an HTTPS load balancer.

The load balancer's HTTPS listener logs users in through the Cognito user pool
(``authenticate-cognito``) before any request reaches the container, and passes the user's
access token in the ``x-amzn-oidc-accesstoken`` header: the dashboard calls the control API
with it (the API's JWT authorizer accepts the dashboard client's tokens). The task role may only
invoke the control API; it has no access to the bucket, queues or tables.

Networking is a small VPC of its own: two public subnets in the first two availability zones the
region offers (looked up, not assumed), no NAT gateway (the task has a public IP for pulling its
image and reaching AWS APIs; its security group admits only the load balancer).

The image: ``pulumi up`` builds ``docker/dashboard.Dockerfile`` (Voila serving
``notebooks/dashboard.ipynb``, as ``make dashboard`` does) with Docker, through
pulumi-docker-build, pushes it to the stack's ECR repository and runs it by digest, so a changed
image rolls the service. Without a Docker daemon a preview still works (it does not build, and
warns); ``up`` stops with what it needs. ``dashboard.image`` runs an image of your own instead.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_aws as aws
import pulumi_docker_build as docker_build

from infra.auth import DASHBOARD_SESSION_S, Auth
from infra.config import DashboardConfig
from infra.iam import assume_role_policy, document, statement

VPC_CIDR = "10.60.0.0/16"
SUBNET_CIDRS = ("10.60.0.0/24", "10.60.1.0/24")
SUBNET_NAMES = ("a", "b")
"""The subnets' name suffixes (one per availability zone used; unchanged, so their URNs are)."""
REPO_ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = REPO_ROOT / "docker" / "dashboard.Dockerfile"
"""The dashboard's image; its build context is the repository (see its ``.dockerignore``)."""
HEALTH_CHECK_PATH = "/voila/static/voila.js"
"""A static file Voila serves: the load balancer's checks must not open the notebook (each
opening starts a kernel no browser ever connects to)."""
IMAGE_TAG = "latest"
IMAGE_PLATFORM = "linux/amd64"
"""The task runs on x86-64 Fargate (the task definition's runtime platform)."""
KEPT_UNTAGGED_IMAGES = 10
"""Earlier images kept in the repository (a failed deployment rolls back to the previous one)."""
DOCKER_SOCKETS = (
    "/var/run/docker.sock",
    "~/.docker/run/docker.sock",
    "~/.colima/default/docker.sock",
    "~/.rd/docker.sock",
    "$XDG_RUNTIME_DIR/docker.sock",
)
"""Where a Docker daemon listens when ``DOCKER_HOST`` is not set (Linux, Docker Desktop, Colima,
Rancher Desktop, rootless Docker)."""
TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"
CONTAINER_NAME = "dashboard"
ECR_PULL_ACTIONS = (
    "ecr:BatchCheckLayerAvailability",
    "ecr:BatchGetImage",
    "ecr:GetDownloadUrlForLayer",
)


@dataclass
class DashboardHostingArgs:
    """Args of :class:`DashboardHosting`.

    Attributes:
        config: the dashboard's stack config (domain, certificate, image, size).
        name_prefix: resources are named ``<prefix>-dashboard`` (load balancer ``<prefix>-dash``).
        region: the stack's region.
        auth: the Cognito pool with its dashboard client and hosted-UI domain.
        api_execution_arn: the control API's execution ARN (the task role may invoke it).
        environment: the container's environment (the kit settings for target aws).
        log_retention_days: how long container logs are kept.
        account_id: the account (the image registry's id).
        dns_suffix: the partition's DNS suffix (``amazonaws.com``; the registry's host name).
        docker_available: a Docker daemon is reachable here (see :func:`docker_available`).
        force_delete: let ``pulumi destroy`` delete the image repository with its images.
        permissions_boundary: the stack's permissions boundary, set on both roles.
    """

    config: DashboardConfig
    name_prefix: str
    region: str
    auth: Auth
    api_execution_arn: pulumi.Input[str]
    environment: Mapping[str, pulumi.Input[str]]
    log_retention_days: int
    account_id: pulumi.Input[str]
    dns_suffix: pulumi.Input[str]
    docker_available: bool
    force_delete: bool = True
    permissions_boundary: pulumi.Input[str] | None = None


@dataclass(frozen=True)
class DashboardNames:
    """How the dashboard's resources are named.

    Attributes:
        component: the component's name, the prefix of every resource's Pulumi name.
        base: the AWS name of most resources (``<prefix>-dashboard``).
        load_balancer: the load balancer's and target group's AWS name (``<prefix>-dash``: load
            balancer names are at most 32 characters).
    """

    component: str
    base: str
    load_balancer: str

    @classmethod
    def of(cls, component: str, name_prefix: str) -> DashboardNames:
        """The names for the component ``component`` of the stack named ``name_prefix``."""
        return cls(component, f"{name_prefix}-dashboard", f"{name_prefix}-dash")


@dataclass(frozen=True)
class CognitoLogin:
    """What the load balancer's login needs: the user pool, its dashboard client and domain."""

    user_pool_arn: pulumi.Output[str]
    client_id: pulumi.Output[str]
    domain: pulumi.Output[str]

    @classmethod
    def of(cls, auth: Auth) -> CognitoLogin:
        """The login of ``auth``.

        Raises:
            ValueError: ``auth`` has no dashboard client or no hosted-UI domain.
        """
        if auth.dashboard_client is None or auth.domain is None:
            raise ValueError(
                "dashboard hosting needs the Cognito dashboard client and hosted-UI domain: "
                "build Auth with dashboard_domain set"
            )
        return cls(auth.user_pool.arn, auth.dashboard_client.id, auth.domain.domain)


@dataclass(frozen=True)
class DashboardNetwork:
    """The VPC with its public subnets and the two security groups."""

    vpc: aws.ec2.Vpc
    subnets: list[aws.ec2.Subnet]
    load_balancer_group: aws.ec2.SecurityGroup
    task_group: aws.ec2.SecurityGroup

    @property
    def subnet_ids(self) -> list[pulumi.Output[str]]:
        return [subnet.id for subnet in self.subnets]


@dataclass(frozen=True)
class DashboardImage:
    """Where the container image and the container's logs live.

    Attributes:
        repository: the stack's image repository.
        image: what the task runs: the built image by digest, or ``dashboard.image``.
        log_group: the container's logs.
        build: the image build (None when ``dashboard.image`` names an image of yours).
    """

    repository: aws.ecr.Repository
    image: pulumi.Input[str]
    log_group: aws.cloudwatch.LogGroup
    build: docker_build.Image | None = None


class DashboardImageError(RuntimeError):
    """The dashboard image cannot be built here (no Docker daemon) and none is configured."""


def docker_available(
    environ: Mapping[str, str] | None = None, sockets: Sequence[str] = DOCKER_SOCKETS
) -> bool:
    """Whether a Docker daemon looks reachable: ``DOCKER_HOST`` is set, or one of ``sockets``
    (``~`` and ``$VARIABLES`` expanded from ``environ``) exists."""
    environ = os.environ if environ is None else environ
    if environ.get("DOCKER_HOST"):
        return True
    home = environ.get("HOME", "")
    for socket in sockets:
        if "$XDG_RUNTIME_DIR" in socket and not environ.get("XDG_RUNTIME_DIR"):
            continue
        path = socket.replace("$XDG_RUNTIME_DIR", environ.get("XDG_RUNTIME_DIR", ""))
        if path.startswith("~"):
            if not home:
                continue
            path = home + path[1:]
        if Path(path).exists():
            return True
    return False


def check_image_can_be_built(
    config: DashboardConfig, names: DashboardNames, *, docker_available: bool, warn: bool = True
) -> None:
    """Stop an ``up`` that would have to build the dashboard image without Docker; in a
    preview, warn (``warn``) that the build is skipped and what ``up`` needs.

    Raises:
        DashboardImageError: ``pulumi up`` without Docker and without ``dashboard.image``.
    """
    if config.image or docker_available:
        return
    if not pulumi.runtime.is_dry_run():
        raise DashboardImageError(missing_docker_message(names))
    if warn:
        pulumi.log.warn(
            f"the dashboard image is not built in this preview: {missing_docker_message(names)}"
        )


def missing_docker_message(names: DashboardNames) -> str:
    """What ``pulumi up`` needs when no Docker daemon is found."""
    return (
        f"no Docker daemon found (DOCKER_HOST is not set and none of "
        f"{', '.join(DOCKER_SOCKETS)} exists): `pulumi up` builds the dashboard image "
        f"({DOCKERFILE.relative_to(REPO_ROOT)}) with Docker and pushes it to the ECR repository "
        f"{names.base}. Start Docker (or set DOCKER_HOST to your daemon), or set "
        "dashboard.image to an image you pushed yourself"
    )


@dataclass(frozen=True)
class DashboardRoles:
    """The execution role (pull the image, write logs) and the task role (call the API)."""

    execution_role: aws.iam.Role
    execution_policy_document: pulumi.Output[str]
    task_role: aws.iam.Role
    task_policy_document: pulumi.Output[str]


@dataclass(frozen=True)
class DashboardTask:
    """The cluster, the task definition and the service that keeps one task running."""

    cluster: aws.ecs.Cluster
    task_definition: aws.ecs.TaskDefinition
    service: aws.ecs.Service


@dataclass(frozen=True)
class DashboardEntrance:
    """The load balancer: HTTPS with the Cognito login in front of the tasks, HTTP redirected."""

    load_balancer: aws.lb.LoadBalancer
    target_group: aws.lb.TargetGroup
    https_listener: aws.lb.Listener
    http_listener: aws.lb.Listener


class DashboardHosting(pulumi.ComponentResource):
    """VPC, load balancer with Cognito login, ECS Fargate service running the Voila dashboard.

    Each concern is built by its own function: :func:`build_network`, :func:`build_image_store`,
    :func:`build_roles`, :func:`build_entrance` and :func:`build_task` (with
    :func:`build_task_definition`). Every resource is a direct child of this component, not of a
    component per concern, so that each keeps the URN it had before the split (a new URN would
    make ``pulumi up`` replace it).
    """

    def __init__(
        self, name: str, args: DashboardHostingArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("kit:backend:DashboardHosting", name, {}, opts)
        login = CognitoLogin.of(args.auth)
        child = pulumi.ResourceOptions(parent=self)
        names = DashboardNames.of(name, args.name_prefix)
        check_image_can_be_built(args.config, names, docker_available=args.docker_available)
        self.network = build_network(
            names, zones=available_zones(), port=args.config.port, opts=child
        )
        self.image = build_image_store(
            names,
            image=args.config.image,
            log_retention_days=args.log_retention_days,
            force_delete=args.force_delete,
            registry_host=pulumi.Output.concat(
                args.account_id, ".dkr.ecr.", args.region, ".", args.dns_suffix
            ),
            account_id=args.account_id,
            docker_available=args.docker_available,
            opts=child,
        )
        self.roles = build_roles(
            names,
            image=self.image,
            api_execution_arn=args.api_execution_arn,
            permissions_boundary=args.permissions_boundary,
            opts=child,
        )
        self.entrance = build_entrance(
            names, network=self.network, login=login, config=args.config, opts=child
        )
        self.task = build_task(
            names,
            config=args.config,
            region=args.region,
            image=self.image,
            roles=self.roles,
            environment=args.environment,
            network=self.network,
            entrance=self.entrance,
            opts=child,
        )
        self.url = args.config.url
        self.register_outputs(
            {
                "url": self.url,
                "load_balancer_dns": self.entrance.load_balancer.dns_name,
                "repository_url": self.image.repository.repository_url,
                "image": self.image.image,
            }
        )


def available_zones() -> pulumi.Output[list[str]]:
    """The region's availability zones that need no opt-in (no Local or Wavelength Zones)."""
    return aws.get_availability_zones_output(
        state="available",
        filters=[{"name": "opt-in-status", "values": ["opt-in-not-required"]}],
    ).names


def zone_at(zones: Sequence[str], index: int) -> str:
    """The ``index``-th of ``zones`` (sorted).

    Raises:
        ValueError: the region has fewer zones than the dashboard needs (a load balancer needs
            two).
    """
    if len(zones) < len(SUBNET_NAMES):
        raise ValueError(
            f"the dashboard needs {len(SUBNET_NAMES)} availability zones for its load balancer; "
            f"the region offers {list(zones)}"
        )
    return sorted(zones)[index]


def build_network(
    names: DashboardNames,
    *,
    zones: pulumi.Input[Sequence[str]],
    port: int,
    opts: pulumi.ResourceOptions,
) -> DashboardNetwork:
    """A VPC of its own with two public subnets in two of ``zones`` (no NAT gateway) and the
    security groups: the load balancer admits HTTPS and HTTP from anywhere; a task admits only
    the load balancer."""
    vpc = aws.ec2.Vpc(
        f"{names.component}-vpc",
        cidr_block=VPC_CIDR,
        enable_dns_hostnames=True,
        enable_dns_support=True,
        tags={"Name": names.base},
        opts=opts,
    )
    gateway = aws.ec2.InternetGateway(
        f"{names.component}-igw", vpc_id=vpc.id, tags={"Name": names.base}, opts=opts
    )
    route_table = aws.ec2.RouteTable(
        f"{names.component}-public-routes",
        vpc_id=vpc.id,
        routes=[{"cidr_block": "0.0.0.0/0", "gateway_id": gateway.id}],
        tags={"Name": f"{names.base}-public"},
        opts=opts,
    )
    subnets = []
    for index, (suffix, cidr) in enumerate(zip(SUBNET_NAMES, SUBNET_CIDRS, strict=True)):
        subnet = aws.ec2.Subnet(
            f"{names.component}-public-{suffix}",
            vpc_id=vpc.id,
            cidr_block=cidr,
            availability_zone=pulumi.Output.from_input(zones).apply(
                lambda names_, index=index: zone_at(names_, index)
            ),
            map_public_ip_on_launch=False,
            tags={"Name": f"{names.base}-public-{suffix}"},
            opts=opts,
        )
        aws.ec2.RouteTableAssociation(
            f"{names.component}-public-{suffix}-routes",
            subnet_id=subnet.id,
            route_table_id=route_table.id,
            opts=opts,
        )
        subnets.append(subnet)

    load_balancer_group = aws.ec2.SecurityGroup(
        f"{names.component}-alb-sg",
        name=f"{names.base}-alb",
        description="dashboard load balancer: HTTPS (and HTTP redirect) from anywhere",
        vpc_id=vpc.id,
        ingress=[
            {"protocol": "tcp", "from_port": 443, "to_port": 443, "cidr_blocks": ["0.0.0.0/0"]},
            {"protocol": "tcp", "from_port": 80, "to_port": 80, "cidr_blocks": ["0.0.0.0/0"]},
        ],
        egress=[
            {
                "description": "to the dashboard tasks",
                "protocol": "tcp",
                "from_port": port,
                "to_port": port,
                "cidr_blocks": [VPC_CIDR],
            },
            {
                "description": "to Cognito's token and user info endpoints (the login)",
                "protocol": "tcp",
                "from_port": 443,
                "to_port": 443,
                "cidr_blocks": ["0.0.0.0/0"],
            },
        ],
        opts=opts,
    )
    task_group = aws.ec2.SecurityGroup(
        f"{names.component}-task-sg",
        name=f"{names.base}-task",
        description="dashboard task: only the load balancer reaches it",
        vpc_id=vpc.id,
        ingress=[
            {
                "protocol": "tcp",
                "from_port": port,
                "to_port": port,
                "security_groups": [load_balancer_group.id],
            }
        ],
        egress=[
            {
                "description": "HTTPS to the image registry, CloudWatch Logs and the API",
                "protocol": "tcp",
                "from_port": 443,
                "to_port": 443,
                "cidr_blocks": ["0.0.0.0/0"],
            }
        ],
        opts=opts,
    )
    return DashboardNetwork(vpc, subnets, load_balancer_group, task_group)


def build_image_store(
    names: DashboardNames,
    *,
    image: str,
    log_retention_days: int,
    force_delete: bool,
    registry_host: pulumi.Input[str],
    account_id: pulumi.Input[str],
    docker_available: bool,
    opts: pulumi.ResourceOptions,
) -> DashboardImage:
    """The image repository (scanned on push, old images expiring), the image the task runs and
    the container's log group.

    Args:
        image: an image of yours to run; empty builds :data:`DOCKERFILE` and pushes it here.
        registry_host: ``<account>.dkr.ecr.<region>.<dns suffix>`` (known at preview, unlike
            the repository's URL before it exists).
        account_id: the registry's id (for the push credentials).
        docker_available: a Docker daemon is reachable; without one the image is registered
            but not built in a preview (:func:`check_image_can_be_built` has warned).
    """
    repository = aws.ecr.Repository(
        f"{names.component}-images",
        name=names.base,
        image_scanning_configuration={"scan_on_push": True},
        encryption_configurations=[{"encryption_type": "AES256"}],
        force_delete=force_delete,
        opts=opts,
    )
    aws.ecr.LifecyclePolicy(
        f"{names.component}-images-expiry",
        repository=repository.name,
        policy=json.dumps(
            {
                "rules": [
                    {
                        "rulePriority": 1,
                        "description": f"keep the {KEPT_UNTAGGED_IMAGES} latest earlier images",
                        "selection": {
                            "tagStatus": "untagged",
                            "countType": "imageCountMoreThan",
                            "countNumber": KEPT_UNTAGGED_IMAGES,
                        },
                        "action": {"type": "expire"},
                    }
                ]
            },
            sort_keys=True,
        ),
        opts=opts,
    )
    log_group = aws.cloudwatch.LogGroup(
        f"{names.component}-logs",
        name=f"/ecs/{names.base}",
        retention_in_days=log_retention_days,
        opts=opts,
    )
    if image:
        return DashboardImage(repository=repository, image=image, log_group=log_group)
    build = build_dashboard_image(
        names,
        repository=repository,
        registry_host=registry_host,
        account_id=account_id,
        build_on_preview=docker_available,
        opts=opts,
    )
    reference = pulumi.Output.concat(registry_host, "/", names.base, "@", build.digest)
    return DashboardImage(repository=repository, image=reference, log_group=log_group, build=build)


def build_dashboard_image(
    names: DashboardNames,
    *,
    repository: aws.ecr.Repository,
    registry_host: pulumi.Input[str],
    account_id: pulumi.Input[str],
    build_on_preview: bool,
    opts: pulumi.ResourceOptions,
) -> docker_build.Image:
    """Build :data:`DOCKERFILE` (context: the repository) for x86-64 and push it to
    ``repository`` as ``latest``; its ``digest`` names exactly what was pushed.

    Paths are relative to the working directory (the project root, where ``pulumi`` runs), so
    the same checkout on another machine is the same build.
    """
    credentials = aws.ecr.get_authorization_token_output(registry_id=account_id)
    return docker_build.Image(
        f"{names.component}-image",
        context={"location": os.path.relpath(REPO_ROOT)},
        dockerfile={"location": os.path.relpath(DOCKERFILE)},
        platforms=[IMAGE_PLATFORM],
        push=True,
        build_on_preview=build_on_preview,
        tags=[pulumi.Output.concat(registry_host, "/", names.base, ":", IMAGE_TAG)],
        registries=[
            {
                "address": registry_host,
                "username": credentials.user_name,
                "password": credentials.password,
            }
        ],
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[repository])),
    )


def build_roles(
    names: DashboardNames,
    *,
    image: DashboardImage,
    api_execution_arn: pulumi.Input[str],
    permissions_boundary: pulumi.Input[str] | None,
    opts: pulumi.ResourceOptions,
) -> DashboardRoles:
    """The execution role (pull this image, write these logs) and the task role, which may
    invoke the control API and nothing else."""
    execution_role = aws.iam.Role(
        f"{names.component}-execution-role",
        name=f"{names.base}-execution",
        description="lets ECS pull the dashboard image and write its logs",
        assume_role_policy=assume_role_policy("ecs-tasks.amazonaws.com"),
        permissions_boundary=permissions_boundary,
        opts=opts,
    )
    execution_policy_document = pulumi.Output.all(image.repository.arn, image.log_group.arn).apply(
        lambda arns: execution_policy(repository_arn=arns[0], log_group_arn=arns[1])
    )
    aws.iam.RolePolicy(
        f"{names.component}-execution-policy",
        name=f"{names.base}-execution",
        role=execution_role.id,
        policy=execution_policy_document,
        opts=opts,
    )
    task_role = aws.iam.Role(
        f"{names.component}-task-role",
        name=f"{names.base}-task",
        description="the dashboard container: may call the control API, nothing else",
        assume_role_policy=assume_role_policy("ecs-tasks.amazonaws.com"),
        permissions_boundary=permissions_boundary,
        opts=opts,
    )
    task_policy_document = pulumi.Output.from_input(api_execution_arn).apply(
        lambda arn: document(
            [statement(["execute-api:Invoke"], [f"{arn}/*"], sid="InvokeControlApi")]
        )
    )
    aws.iam.RolePolicy(
        f"{names.component}-task-policy",
        name=f"{names.base}-control-api-only",
        role=task_role.id,
        policy=task_policy_document,
        opts=opts,
    )
    return DashboardRoles(
        execution_role, execution_policy_document, task_role, task_policy_document
    )


def execution_policy(*, repository_arn: str, log_group_arn: str) -> str:
    """The execution role's policy: log in to the registry, pull from one repository, write to
    one log group."""
    return document(
        [
            statement(["ecr:GetAuthorizationToken"], ["*"], sid="RegistryLogin"),
            statement(ECR_PULL_ACTIONS, [repository_arn], sid="PullDashboardImage"),
            statement(
                ["logs:CreateLogStream", "logs:PutLogEvents"],
                [f"{log_group_arn}:*"],
                sid="WriteContainerLogs",
            ),
        ]
    )


def container_definitions(
    *, image: str, log_group: str, environment: Mapping[str, str], port: int, region: str
) -> str:
    """The task's one container as ECS's ``containerDefinitions`` JSON (keys sorted)."""
    return json.dumps(
        [
            {
                "name": CONTAINER_NAME,
                "image": image,
                "essential": True,
                "portMappings": [{"containerPort": port, "protocol": "tcp"}],
                "environment": [
                    {"name": key, "value": str(value)} for key, value in sorted(environment.items())
                ],
                "logConfiguration": {
                    "logDriver": "awslogs",
                    "options": {
                        "awslogs-group": log_group,
                        "awslogs-region": region,
                        "awslogs-stream-prefix": CONTAINER_NAME,
                    },
                },
            }
        ],
        sort_keys=True,
    )


def build_task_definition(
    names: DashboardNames,
    *,
    config: DashboardConfig,
    region: str,
    image: DashboardImage,
    roles: DashboardRoles,
    environment: Mapping[str, pulumi.Input[str]],
    opts: pulumi.ResourceOptions,
) -> aws.ecs.TaskDefinition:
    """A Fargate task definition (x86-64 Linux) of the dashboard container with its environment."""
    definitions = pulumi.Output.all(image.image, image.log_group.name, dict(environment)).apply(
        lambda values: container_definitions(
            image=values[0],
            log_group=values[1],
            environment=values[2],
            port=config.port,
            region=region,
        )
    )
    return aws.ecs.TaskDefinition(
        f"{names.component}-task",
        family=names.base,
        cpu=str(config.cpu),
        memory=str(config.memory),
        network_mode="awsvpc",
        requires_compatibilities=["FARGATE"],
        runtime_platform={"operating_system_family": "LINUX", "cpu_architecture": "X86_64"},
        execution_role_arn=roles.execution_role.arn,
        task_role_arn=roles.task_role.arn,
        container_definitions=definitions,
        opts=opts,
    )


def build_entrance(
    names: DashboardNames,
    *,
    network: DashboardNetwork,
    login: CognitoLogin,
    config: DashboardConfig,
    opts: pulumi.ResourceOptions,
) -> DashboardEntrance:
    """The internet-facing load balancer: its HTTPS listener logs users in with Cognito, then
    forwards to the tasks (sticky sessions: a Voila kernel lives in one task); HTTP redirects."""
    load_balancer = aws.lb.LoadBalancer(
        f"{names.component}-alb",
        name=names.load_balancer,
        load_balancer_type="application",
        internal=False,
        security_groups=[network.load_balancer_group.id],
        subnets=network.subnet_ids,
        drop_invalid_header_fields=True,
        idle_timeout=300,
        opts=opts,
    )
    target_group = aws.lb.TargetGroup(
        f"{names.component}-targets",
        name=names.load_balancer,
        port=config.port,
        protocol="HTTP",
        target_type="ip",
        vpc_id=network.vpc.id,
        deregistration_delay=30,
        health_check={"path": HEALTH_CHECK_PATH, "matcher": "200-399", "interval": 30},
        stickiness={"type": "lb_cookie", "enabled": True, "cookie_duration": 86400},
        opts=opts,
    )
    https_listener = aws.lb.Listener(
        f"{names.component}-https",
        load_balancer_arn=load_balancer.arn,
        port=443,
        protocol="HTTPS",
        ssl_policy=TLS_POLICY,
        certificate_arn=config.certificate_arn,
        default_actions=[
            {
                "type": "authenticate-cognito",
                "order": 1,
                "authenticate_cognito": {
                    "user_pool_arn": login.user_pool_arn,
                    "user_pool_client_id": login.client_id,
                    "user_pool_domain": login.domain,
                    "on_unauthenticated_request": "authenticate",
                    "scope": "openid email",
                    "session_timeout": DASHBOARD_SESSION_S,
                },
            },
            {"type": "forward", "order": 2, "target_group_arn": target_group.arn},
        ],
        opts=opts,
    )
    http_listener = aws.lb.Listener(
        f"{names.component}-http-redirect",
        load_balancer_arn=load_balancer.arn,
        port=80,
        protocol="HTTP",
        default_actions=[
            {
                "type": "redirect",
                "redirect": {"protocol": "HTTPS", "port": "443", "status_code": "HTTP_301"},
            }
        ],
        opts=opts,
    )
    return DashboardEntrance(load_balancer, target_group, https_listener, http_listener)


def build_task(
    names: DashboardNames,
    *,
    config: DashboardConfig,
    region: str,
    image: DashboardImage,
    roles: DashboardRoles,
    environment: Mapping[str, pulumi.Input[str]],
    network: DashboardNetwork,
    entrance: DashboardEntrance,
    opts: pulumi.ResourceOptions,
) -> DashboardTask:
    """The cluster, the task definition and a service keeping one task running behind the
    target group, rolled back if a deployment fails to start.

    The service waits for the HTTPS listener: ECS refuses a target group no listener uses yet.
    """
    cluster = aws.ecs.Cluster(
        f"{names.component}-cluster",
        name=names.base,
        settings=[{"name": "containerInsights", "value": "disabled"}],
        opts=opts,
    )
    task_definition = build_task_definition(
        names,
        config=config,
        region=region,
        image=image,
        roles=roles,
        environment=environment,
        opts=opts,
    )
    service = aws.ecs.Service(
        f"{names.component}-service",
        name=names.base,
        cluster=cluster.arn,
        task_definition=task_definition.arn,
        desired_count=1,
        launch_type="FARGATE",
        network_configuration={
            "subnets": network.subnet_ids,
            "security_groups": [network.task_group.id],
            "assign_public_ip": True,
        },
        load_balancers=[
            {
                "target_group_arn": entrance.target_group.arn,
                "container_name": CONTAINER_NAME,
                "container_port": config.port,
            }
        ],
        health_check_grace_period_seconds=120,
        deployment_circuit_breaker={"enable": True, "rollback": True},
        opts=pulumi.ResourceOptions.merge(
            opts, pulumi.ResourceOptions(depends_on=[entrance.https_listener])
        ),
    )
    return DashboardTask(cluster, task_definition, service)
