"""Dashboard hosting (optional): the Voila dashboard on ECS Fargate behind an HTTPS load balancer.

The load balancer's HTTPS listener logs users in through the Cognito user pool
(``authenticate-cognito``) before any request reaches the container, and passes the user's
access token in the ``x-amzn-oidc-accesstoken`` header: the dashboard calls the control API
with it (the API's JWT authorizer accepts the dashboard client's tokens). The task role may only
invoke the control API; it has no access to the bucket, queues or tables.

Networking is a small VPC of its own: two public subnets, no NAT gateway (the task has a public
IP for pulling its image and reaching AWS APIs; its security group admits only the load balancer).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.auth import Auth
from infra.config import DashboardConfig
from infra.iam import assume_role_policy, document, statement

VPC_CIDR = "10.60.0.0/16"
SUBNET_CIDRS = ("10.60.0.0/24", "10.60.1.0/24")
AVAILABILITY_ZONE_SUFFIXES = ("a", "b")
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
        force_delete: let ``pulumi destroy`` delete the image repository with its images.
    """

    config: DashboardConfig
    name_prefix: str
    region: str
    auth: Auth
    api_execution_arn: pulumi.Input[str]
    environment: Mapping[str, pulumi.Input[str]]
    log_retention_days: int
    force_delete: bool = True


class DashboardHosting(pulumi.ComponentResource):
    """VPC, load balancer with Cognito login, ECS Fargate service running the Voila dashboard."""

    def __init__(
        self, name: str, args: DashboardHostingArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("kit:backend:DashboardHosting", name, {}, opts)
        if args.auth.dashboard_client is None or args.auth.domain is None:
            raise ValueError(
                "dashboard hosting needs the Cognito dashboard client and hosted-UI domain: "
                "build Auth with dashboard_domain set"
            )
        child = pulumi.ResourceOptions(parent=self)
        config = args.config
        base = f"{args.name_prefix}-dashboard"

        self.vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=VPC_CIDR,
            enable_dns_hostnames=True,
            enable_dns_support=True,
            tags={"Name": base},
            opts=child,
        )
        gateway = aws.ec2.InternetGateway(
            f"{name}-igw", vpc_id=self.vpc.id, tags={"Name": base}, opts=child
        )
        route_table = aws.ec2.RouteTable(
            f"{name}-public-routes",
            vpc_id=self.vpc.id,
            routes=[{"cidr_block": "0.0.0.0/0", "gateway_id": gateway.id}],
            tags={"Name": f"{base}-public"},
            opts=child,
        )
        self.subnets = []
        for suffix, cidr in zip(AVAILABILITY_ZONE_SUFFIXES, SUBNET_CIDRS, strict=True):
            subnet = aws.ec2.Subnet(
                f"{name}-public-{suffix}",
                vpc_id=self.vpc.id,
                cidr_block=cidr,
                availability_zone=f"{args.region}{suffix}",
                map_public_ip_on_launch=False,
                tags={"Name": f"{base}-public-{suffix}"},
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-public-{suffix}-routes",
                subnet_id=subnet.id,
                route_table_id=route_table.id,
                opts=child,
            )
            self.subnets.append(subnet)
        subnet_ids = [subnet.id for subnet in self.subnets]

        self.load_balancer_group = aws.ec2.SecurityGroup(
            f"{name}-alb-sg",
            name=f"{base}-alb",
            description="dashboard load balancer: HTTPS (and HTTP redirect) from anywhere",
            vpc_id=self.vpc.id,
            ingress=[
                {"protocol": "tcp", "from_port": 443, "to_port": 443, "cidr_blocks": ["0.0.0.0/0"]},
                {"protocol": "tcp", "from_port": 80, "to_port": 80, "cidr_blocks": ["0.0.0.0/0"]},
            ],
            egress=[
                {
                    "description": "to the dashboard tasks",
                    "protocol": "tcp",
                    "from_port": config.port,
                    "to_port": config.port,
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
            opts=child,
        )
        self.task_group = aws.ec2.SecurityGroup(
            f"{name}-task-sg",
            name=f"{base}-task",
            description="dashboard task: only the load balancer reaches it",
            vpc_id=self.vpc.id,
            ingress=[
                {
                    "protocol": "tcp",
                    "from_port": config.port,
                    "to_port": config.port,
                    "security_groups": [self.load_balancer_group.id],
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
            opts=child,
        )

        self.repository = aws.ecr.Repository(
            f"{name}-images",
            name=base,
            image_scanning_configuration={"scan_on_push": True},
            encryption_configurations=[{"encryption_type": "AES256"}],
            force_delete=args.force_delete,
            opts=child,
        )
        image = config.image or self.repository.repository_url.apply(lambda url: f"{url}:latest")
        self.log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=f"/ecs/{base}",
            retention_in_days=args.log_retention_days,
            opts=child,
        )

        self.execution_role = aws.iam.Role(
            f"{name}-execution-role",
            name=f"{base}-execution",
            description="lets ECS pull the dashboard image and write its logs",
            assume_role_policy=assume_role_policy("ecs-tasks.amazonaws.com"),
            opts=child,
        )
        self.execution_policy_document = pulumi.Output.all(
            self.repository.arn, self.log_group.arn
        ).apply(
            lambda arns: document(
                [
                    statement(["ecr:GetAuthorizationToken"], ["*"], sid="RegistryLogin"),
                    statement(ECR_PULL_ACTIONS, [arns[0]], sid="PullDashboardImage"),
                    statement(
                        ["logs:CreateLogStream", "logs:PutLogEvents"],
                        [f"{arns[1]}:*"],
                        sid="WriteContainerLogs",
                    ),
                ]
            )
        )
        aws.iam.RolePolicy(
            f"{name}-execution-policy",
            name=f"{base}-execution",
            role=self.execution_role.id,
            policy=self.execution_policy_document,
            opts=child,
        )
        self.task_role = aws.iam.Role(
            f"{name}-task-role",
            name=f"{base}-task",
            description="the dashboard container: may call the control API, nothing else",
            assume_role_policy=assume_role_policy("ecs-tasks.amazonaws.com"),
            opts=child,
        )
        self.task_policy_document = pulumi.Output.from_input(args.api_execution_arn).apply(
            lambda arn: document(
                [statement(["execute-api:Invoke"], [f"{arn}/*"], sid="InvokeControlApi")]
            )
        )
        aws.iam.RolePolicy(
            f"{name}-task-policy",
            name=f"{base}-control-api-only",
            role=self.task_role.id,
            policy=self.task_policy_document,
            opts=child,
        )

        self.cluster = aws.ecs.Cluster(
            f"{name}-cluster",
            name=base,
            settings=[{"name": "containerInsights", "value": "disabled"}],
            opts=child,
        )
        container_definitions = pulumi.Output.all(
            image, self.log_group.name, dict(args.environment)
        ).apply(
            lambda values: json.dumps(
                [
                    {
                        "name": CONTAINER_NAME,
                        "image": values[0],
                        "essential": True,
                        "portMappings": [{"containerPort": config.port, "protocol": "tcp"}],
                        "environment": [
                            {"name": key, "value": str(value)}
                            for key, value in sorted(values[2].items())
                        ],
                        "logConfiguration": {
                            "logDriver": "awslogs",
                            "options": {
                                "awslogs-group": values[1],
                                "awslogs-region": args.region,
                                "awslogs-stream-prefix": CONTAINER_NAME,
                            },
                        },
                    }
                ],
                sort_keys=True,
            )
        )
        self.task_definition = aws.ecs.TaskDefinition(
            f"{name}-task",
            family=base,
            cpu=str(config.cpu),
            memory=str(config.memory),
            network_mode="awsvpc",
            requires_compatibilities=["FARGATE"],
            runtime_platform={"operating_system_family": "LINUX", "cpu_architecture": "X86_64"},
            execution_role_arn=self.execution_role.arn,
            task_role_arn=self.task_role.arn,
            container_definitions=container_definitions,
            opts=child,
        )

        self.load_balancer = aws.lb.LoadBalancer(
            f"{name}-alb",
            name=f"{args.name_prefix}-dash",
            load_balancer_type="application",
            internal=False,
            security_groups=[self.load_balancer_group.id],
            subnets=subnet_ids,
            drop_invalid_header_fields=True,
            idle_timeout=300,
            opts=child,
        )
        self.target_group = aws.lb.TargetGroup(
            f"{name}-targets",
            name=f"{args.name_prefix}-dash",
            port=config.port,
            protocol="HTTP",
            target_type="ip",
            vpc_id=self.vpc.id,
            deregistration_delay=30,
            health_check={"path": "/", "matcher": "200-399", "interval": 30},
            stickiness={"type": "lb_cookie", "enabled": True, "cookie_duration": 86400},
            opts=child,
        )
        domain = args.auth.domain
        self.https_listener = aws.lb.Listener(
            f"{name}-https",
            load_balancer_arn=self.load_balancer.arn,
            port=443,
            protocol="HTTPS",
            ssl_policy=TLS_POLICY,
            certificate_arn=config.certificate_arn,
            default_actions=[
                {
                    "type": "authenticate-cognito",
                    "order": 1,
                    "authenticate_cognito": {
                        "user_pool_arn": args.auth.user_pool.arn,
                        "user_pool_client_id": args.auth.dashboard_client.id,
                        "user_pool_domain": domain.domain,
                        "on_unauthenticated_request": "authenticate",
                        "scope": "openid email",
                        "session_timeout": 28800,
                    },
                },
                {"type": "forward", "order": 2, "target_group_arn": self.target_group.arn},
            ],
            opts=child,
        )
        self.http_listener = aws.lb.Listener(
            f"{name}-http-redirect",
            load_balancer_arn=self.load_balancer.arn,
            port=80,
            protocol="HTTP",
            default_actions=[
                {
                    "type": "redirect",
                    "redirect": {"protocol": "HTTPS", "port": "443", "status_code": "HTTP_301"},
                }
            ],
            opts=child,
        )
        self.service = aws.ecs.Service(
            f"{name}-service",
            name=base,
            cluster=self.cluster.arn,
            task_definition=self.task_definition.arn,
            desired_count=1,
            launch_type="FARGATE",
            network_configuration={
                "subnets": subnet_ids,
                "security_groups": [self.task_group.id],
                "assign_public_ip": True,
            },
            load_balancers=[
                {
                    "target_group_arn": self.target_group.arn,
                    "container_name": CONTAINER_NAME,
                    "container_port": config.port,
                }
            ],
            health_check_grace_period_seconds=120,
            deployment_circuit_breaker={"enable": True, "rollback": True},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.https_listener]),
        )
        self.url = config.url
        self.register_outputs(
            {
                "url": self.url,
                "load_balancer_dns": self.load_balancer.dns_name,
                "repository_url": self.repository.repository_url,
            }
        )
