"""Who is calling the control API.

- aws: API Gateway's JWT authorizer (Cognito user pool) has already validated the token; the
  Lambda reads its claims from ``requestContext.authorizer.jwt.claims``. No claims -> 401.
- local: ``Authorization: Bearer <settings.api_token>``; a missing or wrong token -> 401.
"""

from __future__ import annotations

import hmac
from typing import Any

from kit.core.settings import Settings
from lambdas.control_api.errors import ApiError

LOCAL_USER = "local-token"
"""The user name audit records show for calls made with the local bearer token."""


def _unauthorized(reason: str) -> ApiError:
    return ApiError(401, reason, headers={"WWW-Authenticate": 'Bearer realm="evk"'})


def user_from_event(event: dict[str, Any], settings: Settings) -> str:
    """The caller's name for the audit log.

    Raises:
        ApiError: 401 when the request carries no valid identity.
    """
    if settings.target == "aws":
        claims = (
            (event.get("requestContext") or {}).get("authorizer", {}).get("jwt", {}).get("claims")
        )
        if not claims:
            raise _unauthorized("no verified identity: sign in and send the Cognito ID token")
        for name in ("email", "cognito:username", "username", "sub"):
            if claims.get(name):
                return str(claims[name])
        raise _unauthorized("the token's claims name no user (email, cognito:username or sub)")
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    header = headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if not header:
        raise _unauthorized(
            "missing Authorization header; send 'Authorization: Bearer <api_token>'"
        )
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        token.strip().encode(), settings.api_token.encode()
    ):
        raise _unauthorized(
            "wrong token; send 'Authorization: Bearer <api_token>' from the settings"
        )
    return LOCAL_USER
