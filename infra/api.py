"""The control API: an HTTP API with the control_api function's routes behind a JWT authorizer.

Every route but the health route requires a Cognito token (``Authorization: Bearer <token>``);
the stage throttles requests and writes access logs; CORS lets the dashboard call it from its
origin.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

PUBLIC_ROUTES = frozenset({"GET /health"})
"""Routes reachable without a token: load balancers and monitors probe them."""
ACCESS_LOG_FORMAT = json.dumps(
    {
        "requestId": "$context.requestId",
        "ip": "$context.identity.sourceIp",
        "requestTime": "$context.requestTime",
        "routeKey": "$context.routeKey",
        "status": "$context.status",
        "latencyMs": "$context.responseLatency",
        "user": "$context.authorizer.claims.sub",
        "error": "$context.error.message",
        "integrationError": "$context.integrationErrorMessage",
    },
    sort_keys=True,
)


def route_slug(route_key: str) -> str:
    """A resource-name-safe form of a route key: ``GET /config/{camera}`` → ``get-config-camera``."""
    return re.sub(r"[^a-z0-9]+", "-", route_key.lower()).strip("-")


@dataclass
class ApiArgs:
    """Args of :class:`Api`.

    Attributes:
        name: the API's name.
        function: the control_api Lambda function.
        routes: route keys (``METHOD /path``) from the backend description.
        issuer: the JWT issuer URL (the Cognito user pool).
        audiences: client ids whose tokens are accepted.
        cors_origins: origins allowed to call the API from a browser.
        throttle_burst: requests the stage accepts in a burst.
        throttle_rate: steady requests per second.
        log_retention_days: how long access logs are kept.
    """

    name: str
    function: aws.lambda_.Function
    routes: Sequence[str]
    issuer: pulumi.Input[str]
    audiences: Sequence[pulumi.Input[str]]
    cors_origins: Sequence[str]
    throttle_burst: int
    throttle_rate: float
    log_retention_days: int


class Api(pulumi.ComponentResource):
    """API Gateway HTTP API → Lambda, JWT-authorized, throttled, CORS-enabled, access-logged."""

    def __init__(self, name: str, args: ApiArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("kit:backend:Api", name, {}, opts)
        child = pulumi.ResourceOptions(parent=self)
        methods = sorted({route.split(" ", 1)[0] for route in args.routes} | {"OPTIONS"})
        self.api = aws.apigatewayv2.Api(
            f"{name}-http",
            name=args.name,
            protocol_type="HTTP",
            description="Edge Vision Kit control API",
            cors_configuration={
                "allow_origins": list(args.cors_origins),
                "allow_methods": methods,
                "allow_headers": ["authorization", "content-type"],
                "max_age": 3600,
            },
            opts=child,
        )
        self.authorizer = aws.apigatewayv2.Authorizer(
            f"{name}-jwt",
            api_id=self.api.id,
            name="cognito-jwt",
            authorizer_type="JWT",
            identity_sources=["$request.header.Authorization"],
            jwt_configuration={"issuer": args.issuer, "audiences": list(args.audiences)},
            opts=child,
        )
        self.integration = aws.apigatewayv2.Integration(
            f"{name}-lambda",
            api_id=self.api.id,
            integration_type="AWS_PROXY",
            integration_uri=args.function.arn,
            integration_method="POST",
            payload_format_version="2.0",
            timeout_milliseconds=29_000,
            opts=child,
        )
        self.routes: dict[str, aws.apigatewayv2.Route] = {}
        for route_key in args.routes:
            protected = route_key not in PUBLIC_ROUTES
            self.routes[route_key] = aws.apigatewayv2.Route(
                f"{name}-route-{route_slug(route_key)}",
                api_id=self.api.id,
                route_key=route_key,
                target=self.integration.id.apply(lambda i: f"integrations/{i}"),
                authorization_type="JWT" if protected else "NONE",
                authorizer_id=self.authorizer.id if protected else None,
                opts=child,
            )
        self.access_logs = aws.cloudwatch.LogGroup(
            f"{name}-access-logs",
            name=f"/aws/apigateway/{args.name}",
            retention_in_days=args.log_retention_days,
            opts=child,
        )
        self.stage = aws.apigatewayv2.Stage(
            f"{name}-stage",
            api_id=self.api.id,
            name="$default",
            auto_deploy=True,
            default_route_settings={
                "throttling_burst_limit": args.throttle_burst,
                "throttling_rate_limit": args.throttle_rate,
            },
            access_log_settings={
                "destination_arn": self.access_logs.arn,
                "format": ACCESS_LOG_FORMAT,
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(self.routes.values())),
        )
        self.permission = aws.lambda_.Permission(
            f"{name}-invoke",
            action="lambda:InvokeFunction",
            function=args.function.name,
            principal="apigateway.amazonaws.com",
            source_arn=self.api.execution_arn.apply(lambda arn: f"{arn}/*/*"),
            opts=child,
        )
        self.url = self.stage.invoke_url
        self.register_outputs({"url": self.url, "api_id": self.api.id})
