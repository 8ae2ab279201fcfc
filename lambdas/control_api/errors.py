"""Errors the control API answers with: a status code and a JSON body that says what to fix."""

from __future__ import annotations

import math
from typing import Any

from kit.core.contracts import ContractError

ERROR_CODES = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    409: "conflict",
    413: "too_large",
    422: "unprocessable",
}


class ApiError(Exception):
    """An answer other than 2xx.

    The body is ``{"error": <code>, "message": ..., "field"?, "allowed"?, "value"?, "problems"?}``.

    Examples:
        >>> ApiError.bad_field("limit", "x", "an integer from 1 to 1000").body()["message"]
        "limit: an integer from 1 to 1000 (got 'x')"
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        field: str | None = None,
        allowed: str | None = None,
        value: Any = None,
        problems: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.allowed = allowed
        self.value = value
        self.problems = problems
        self.headers = headers or {}

    @classmethod
    def bad_field(cls, field: str, value: Any, allowed: str) -> ApiError:
        """400 for one bad field: names it, what is allowed and what came."""
        shown = "nothing" if value is None else repr(value)
        return cls(
            400, f"{field}: {allowed} (got {shown})", field=field, allowed=allowed, value=value
        )

    @classmethod
    def from_contract(cls, error: ContractError, status: int = 400) -> ApiError:
        """A rejected body: every problem with its field, value and what is allowed."""
        return cls(status, str(error), problems=error.problems)

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "error": ERROR_CODES.get(self.status, "error"),
            "message": self.message,
        }
        for name in ("field", "allowed", "value", "problems"):
            value = getattr(self, name)
            if value is not None:
                body[name] = _json_safe(value)
        return body


def _json_safe(value: Any) -> Any:
    # A bad value may be NaN or infinity, which strict JSON cannot carry: show it as text.
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    return value
