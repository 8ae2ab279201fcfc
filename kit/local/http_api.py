"""A local API Gateway HTTP API: real HTTP requests in, payload-format-2.0 Lambda events out.

:func:`http_api_event` builds the event API Gateway sends for a request that matched one of the
API's routes (``routeKey``, ``rawPath``, ``rawQueryString``, lower-cased ``headers``,
``queryStringParameters`` with repeated keys joined by commas, ``pathParameters``, ``cookies``,
``requestContext.http``, ``body`` + ``isBase64Encoded``); :func:`http_response` turns the
function's result back into status, headers and body the way API Gateway does (a dict without
``statusCode`` becomes a 200 JSON body). A request that matches no route gets API Gateway's
``404 {"message":"Not Found"}`` without invoking the function.

Examples:
    >>> match_route("GET", "/config/shelf-1", ["GET /config", "GET /config/{camera}"])
    ('GET /config/{camera}', {'camera': 'shelf-1'})
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote

from kit.local.lambda_events import LOCAL_ACCOUNT_ID

log = logging.getLogger(__name__)

TEXT_TYPES = ("text/", "application/json", "application/xml", "application/x-www-form-urlencoded")


def match_route(method: str, path: str, routes: Iterable[str]) -> tuple[str, dict[str, str]] | None:
    """The route key (``"GET /config/{camera}"``) and path parameters ``path`` matches, if any."""
    segments = path.strip("/").split("/") if path.strip("/") else []
    for route in routes:
        route_method, route_path = route.split(" ", 1)
        if route_method not in (method, "ANY"):
            continue
        pattern = route_path.strip("/").split("/") if route_path.strip("/") else []
        if len(pattern) != len(segments):
            continue
        parameters = {}
        for expected, actual in zip(pattern, segments, strict=True):
            if expected.startswith("{") and expected.endswith("}"):
                if not actual:
                    break
                parameters[expected[1:-1]] = unquote(actual)
            elif expected != actual:
                break
        else:
            return route, parameters
    return None


def _is_text(content_type: str | None) -> bool:
    if not content_type:
        return True
    kind = content_type.split(";", 1)[0].strip().lower()
    return kind.startswith(TEXT_TYPES) or kind.endswith("+json")


def http_api_event(
    *,
    method: str,
    target: str,
    headers: Iterable[tuple[str, str]],
    body: bytes,
    route_key: str,
    path_parameters: dict[str, str],
    source_ip: str = "127.0.0.1",
    domain_name: str = "localhost",
) -> dict[str, Any]:
    """The HTTP API (payload format 2.0) event for one request.

    Args:
        target: the request target as sent (path and query string, percent-encoded).
        headers: the request's header lines, names in any case, repeats allowed.
    """
    raw_path, _, raw_query = target.partition("?")
    merged: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in headers:
        name = name.lower()
        if name == "cookie":
            cookies += [c.strip() for c in value.split(";") if c.strip()]
            continue
        merged[name] = f"{merged[name]},{value}" if name in merged else value
    query: dict[str, str] = {}
    for name, value in parse_qsl(raw_query, keep_blank_values=True):
        query[name] = f"{query[name]},{value}" if name in query else value
    now = datetime.now(UTC)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": raw_path,
        "rawQueryString": raw_query,
        "headers": merged,
        "requestContext": {
            "accountId": LOCAL_ACCOUNT_ID,
            "apiId": "local",
            "domainName": domain_name,
            "domainPrefix": domain_name.split(".", 1)[0],
            "http": {
                "method": method,
                "path": raw_path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": merged.get("user-agent", ""),
            },
            "requestId": uuid.uuid4().hex[:16],
            "routeKey": route_key,
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = cookies
    if query:
        event["queryStringParameters"] = query
    if path_parameters:
        event["pathParameters"] = path_parameters
    if body:
        if _is_text(merged.get("content-type")):
            try:
                event["body"] = body.decode("utf-8")
            except UnicodeDecodeError:
                event["body"] = base64.b64encode(body).decode()
                event["isBase64Encoded"] = True
        else:
            event["body"] = base64.b64encode(body).decode()
            event["isBase64Encoded"] = True
    return event


def http_response(result: Any) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, header lines and body for a function's result, as API Gateway (format 2.0) makes them."""
    if not (isinstance(result, dict) and "statusCode" in result):
        body = result if isinstance(result, str) else json.dumps(result)
        return 200, [("Content-Type", "application/json")], body.encode()
    headers: list[tuple[str, str]] = []
    for name, value in (result.get("headers") or {}).items():
        headers.append((name, str(value)))
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers += [(name, str(v)) for v in values]
    headers += [("Set-Cookie", cookie) for cookie in result.get("cookies") or []]
    raw = result.get("body") or ""
    body = base64.b64decode(raw) if result.get("isBase64Encoded") else str(raw).encode()
    return int(result["statusCode"]), headers, body


Invoke = Callable[[dict[str, Any]], Any]


class HttpApiServer:
    """Serves ``routes`` on ``host:port`` by invoking ``invoke(event)`` (one request at a time,
    like one Lambda instance).

    Examples:
        >>> server = HttpApiServer(lambda e: {"ok": True}, ["GET /health"], port=0)  # doctest: +SKIP
        >>> server.start(); server.url                                              # doctest: +SKIP
        'http://127.0.0.1:40123'
    """

    def __init__(
        self,
        invoke: Invoke,
        routes: Iterable[str],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
    ):
        self.invoke = invoke
        self.routes = tuple(routes)
        self._invoke_lock = threading.Lock()
        self._server = ThreadingHTTPServer((host, port), self._request_handler())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="http-api", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread:
            self._thread.join(timeout=5)

    def handle(
        self, method: str, target: str, headers: list[tuple[str, str]], body: bytes, client: str
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """One request through routing, the function and back."""
        path = target.partition("?")[0]
        matched = match_route(method, path, self.routes)
        if matched is None:
            return 404, [("Content-Type", "application/json")], b'{"message":"Not Found"}'
        route_key, path_parameters = matched
        host = dict((k.lower(), v) for k, v in headers).get("host", "localhost")
        event = http_api_event(
            method=method,
            target=target,
            headers=headers,
            body=body,
            route_key=route_key,
            path_parameters=path_parameters,
            source_ip=client,
            domain_name=host,
        )
        started = time.perf_counter()
        try:
            with self._invoke_lock:
                result = self.invoke(event)
        except Exception:
            log.exception("the control API function failed on %s %s", method, path)
            return (
                500,
                [("Content-Type", "application/json")],
                b'{"message":"Internal Server Error"}',
            )
        status, response_headers, response_body = http_response(result)
        log.info(
            "%s %s -> %d (%.1f ms)", method, path, status, (time.perf_counter() - started) * 1000
        )
        return status, response_headers, response_body

    def _request_handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, headers, payload = server.handle(
                    self.command,
                    self.path,
                    list(self.headers.items()),
                    body,
                    self.client_address[0],
                )
                self.send_response(status)
                for name, value in headers:
                    if name.lower() not in ("content-length", "connection"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = _serve

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                log.debug("http: " + format, *args)

        return Handler
