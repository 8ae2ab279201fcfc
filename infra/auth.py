"""Cognito: the user pool the control API and the dashboard log users in with.

Users are created by an administrator only (``kit.aws.create_cognito_user`` or the console). The
``api`` client (no secret) is what notebooks and the dashboard use to get tokens (ID and access
tokens last an hour; the client renews them with the refresh token, which lasts 30 days); when
the dashboard is hosted, a second client with a secret and the hosted-UI domain serve the load
balancer's ``authenticate-cognito`` login. The load balancer hands the dashboard's kernel that
client's access token once, when the page opens, and the kernel cannot renew it: its tokens
last as long as the login session (:data:`DASHBOARD_SESSION_S`).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

TOKEN_VALIDITY = {"access_token": "minutes", "id_token": "minutes", "refresh_token": "days"}
DASHBOARD_SESSION_S = 8 * 3600
"""How long the hosted dashboard's login lasts (the load balancer's session) and, so that a
page open that long keeps working, its tokens."""


@dataclass
class AuthArgs:
    """Args of :class:`Auth`.

    Attributes:
        name_prefix: the pool is ``<prefix>-users``.
        deletion_protection: refuse to delete the pool (its users) with the stack.
        dashboard_domain: the hosted dashboard's host name; empty builds no dashboard client.
        hosted_ui_domain_prefix: the Cognito hosted-UI domain prefix (dashboard only).
    """

    name_prefix: str
    deletion_protection: bool = False
    dashboard_domain: str = ""
    hosted_ui_domain_prefix: str = ""


class Auth(pulumi.ComponentResource):
    """A Cognito user pool, its API client and, for the hosted dashboard, its login client."""

    def __init__(self, name: str, args: AuthArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("kit:backend:Auth", name, {}, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.user_pool = aws.cognito.UserPool(
            f"{name}-users",
            name=f"{args.name_prefix}-users",
            username_attributes=["email"],
            auto_verified_attributes=["email"],
            admin_create_user_config={"allow_admin_create_user_only": True},
            password_policy={
                "minimum_length": 12,
                "require_lowercase": True,
                "require_uppercase": True,
                "require_numbers": True,
                "require_symbols": False,
                "temporary_password_validity_days": 7,
            },
            mfa_configuration="OPTIONAL",
            software_token_mfa_configuration={"enabled": True},
            account_recovery_setting={
                "recovery_mechanisms": [{"name": "verified_email", "priority": 1}]
            },
            deletion_protection="ACTIVE" if args.deletion_protection else "INACTIVE",
            opts=child,
        )
        self.api_client = aws.cognito.UserPoolClient(
            f"{name}-api-client",
            name=f"{args.name_prefix}-api",
            user_pool_id=self.user_pool.id,
            generate_secret=False,
            explicit_auth_flows=[
                "ALLOW_USER_SRP_AUTH",
                "ALLOW_USER_PASSWORD_AUTH",
                "ALLOW_REFRESH_TOKEN_AUTH",
            ],
            prevent_user_existence_errors="ENABLED",
            enable_token_revocation=True,
            access_token_validity=60,
            id_token_validity=60,
            refresh_token_validity=30,
            token_validity_units=TOKEN_VALIDITY,
            opts=child,
        )
        self.issuer = self.user_pool.endpoint.apply(lambda endpoint: f"https://{endpoint}")
        self.domain: aws.cognito.UserPoolDomain | None = None
        self.dashboard_client: aws.cognito.UserPoolClient | None = None
        if args.dashboard_domain:
            self.domain = aws.cognito.UserPoolDomain(
                f"{name}-hosted-ui",
                domain=args.hosted_ui_domain_prefix,
                user_pool_id=self.user_pool.id,
                opts=child,
            )
            self.dashboard_client = aws.cognito.UserPoolClient(
                f"{name}-dashboard-client",
                name=f"{args.name_prefix}-dashboard",
                user_pool_id=self.user_pool.id,
                generate_secret=True,
                allowed_oauth_flows=["code"],
                allowed_oauth_flows_user_pool_client=True,
                allowed_oauth_scopes=["openid", "email"],
                callback_urls=[f"https://{args.dashboard_domain}/oauth2/idpresponse"],
                logout_urls=[f"https://{args.dashboard_domain}/"],
                supported_identity_providers=["COGNITO"],
                explicit_auth_flows=["ALLOW_REFRESH_TOKEN_AUTH"],
                prevent_user_existence_errors="ENABLED",
                access_token_validity=DASHBOARD_SESSION_S // 60,
                id_token_validity=DASHBOARD_SESSION_S // 60,
                refresh_token_validity=1,
                token_validity_units=TOKEN_VALIDITY,
                opts=child,
            )
        self.register_outputs({"user_pool_id": self.user_pool.id, "client_id": self.api_client.id})

    @property
    def audiences(self) -> list[pulumi.Output[str]]:
        """Client ids whose tokens the control API accepts."""
        clients = [self.api_client, self.dashboard_client]
        return [client.id for client in clients if client is not None]
