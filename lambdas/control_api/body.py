"""The request body of a control-API call, decoded with a 4xx for anything that is not a small
JSON object.

API Gateway hands the body over as text, or base64 (``isBase64Encoded``) when it is not text.
A body is refused with:

- 413 when it is larger than :data:`MAX_BODY_BYTES` (decoded);
- 400 when its base64 is invalid, its bytes are not UTF-8, it is not JSON, it nests deeper than
  :data:`MAX_JSON_DEPTH` levels, or it is not a JSON object.

``NaN`` and ``Infinity`` parse here (Python's JSON reader takes them, and ``1e309`` overflows to
infinity) so that the contracts can name the field that carries one.

Examples:
    >>> request_json({"body": '{"refresh_s": 5}', "isBase64Encoded": False})
    {'refresh_s': 5}
    >>> request_json({"body": "eyJhIjogMX0=", "isBase64Encoded": True})
    {'a': 1}
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from lambdas.control_api.errors import ApiError

MAX_BODY_BYTES = 1024 * 1024
"""The largest request body the API reads (1 MiB); a config is far smaller
(:data:`lambdas.store.CONFIG_MAX_BYTES`)."""
MAX_JSON_DEPTH = 32
"""The deepest nesting of arrays and objects a body may have; a config nests 8 levels."""


def _too_large(size: int) -> ApiError:
    return ApiError(
        413,
        f"body: the request body is {size:,} bytes; the limit is {MAX_BODY_BYTES:,} bytes",
        field="body",
        allowed=f"at most {MAX_BODY_BYTES:,} bytes",
        value=f"{size:,} bytes",
    )


def body_bytes(event: dict[str, Any]) -> bytes:
    """The event's body as bytes (b"" when it has none).

    Raises:
        ApiError: 413 too large; 400 invalid base64.
    """
    body = event.get("body")
    if not body:
        return b""
    if not isinstance(body, str):
        raise ApiError.bad_field("body", type(body).__name__, "text or base64")
    if not event.get("isBase64Encoded"):
        raw = body.encode("utf-8", "surrogatepass")
    else:
        # Base64 is 4 characters per 3 bytes: a longer text cannot decode to an allowed body.
        if len(body) > (MAX_BODY_BYTES + 2) // 3 * 4 + 4:
            raise _too_large(len(body) * 3 // 4)
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise ApiError.bad_field(
                "body", body[:40], "valid base64, as isBase64Encoded says"
            ) from None
    if len(raw) > MAX_BODY_BYTES:
        raise _too_large(len(raw))
    return raw


def _depth(value: Any) -> int:
    deepest, pending = 0, [(value, 1)]
    while pending:
        node, level = pending.pop()
        if isinstance(node, dict | list):
            deepest = max(deepest, level)
            if level > MAX_JSON_DEPTH:
                break
            children = node.values() if isinstance(node, dict) else node
            pending += [(child, level + 1) for child in children]
    return deepest


def request_json(event: dict[str, Any]) -> dict[str, Any]:
    """The event's body as a JSON object.

    Raises:
        ApiError: 413 when the body is too large, 400 for anything else that is not a JSON object.
    """
    raw = body_bytes(event)
    if not raw:
        raise ApiError.bad_field("body", None, "a JSON object")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ApiError.bad_field(
            "body", f"byte {error.start} is 0x{raw[error.start]:02x}", "UTF-8 text (JSON)"
        ) from None
    try:
        body = json.loads(text)
    except RecursionError:
        raise ApiError.bad_field(
            "body", text[:40], f"JSON nested at most {MAX_JSON_DEPTH} levels deep"
        ) from None
    except ValueError as error:
        raise ApiError.bad_field("body", text[:80], f"valid JSON ({error})") from None
    if not isinstance(body, dict):
        raise ApiError.bad_field("body", text[:80], "a JSON object")
    if _depth(body) > MAX_JSON_DEPTH:
        raise ApiError.bad_field(
            "body", text[:40], f"JSON nested at most {MAX_JSON_DEPTH} levels deep"
        )
    return body
