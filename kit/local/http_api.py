"""A local API Gateway HTTP API: real HTTP requests in, payload-format-2.0 Lambda events out.

:func:`http_api_event` builds the event API Gateway sends for a request that matched one of the
API's routes (``routeKey``, ``rawPath``, ``rawQueryString``, lower-cased ``headers``,
``queryStringParameters`` with repeated keys joined by commas, ``pathParameters``, ``cookies``,
``requestContext.http``, ``body`` + ``isBase64Encoded``); :func:`http_response` turns the
function's result back into status, headers and body the way API Gateway does (a dict without
``statusCode`` becomes a 200 JSON body). A request that matches no route gets API Gateway's
``404 {"message":"Not Found"}`` without invoking the function.

:class:`HttpApiServer` serves it over HTTP/1.1 with Tornado's server: concurrent connections,
keep-alive, 400 for a malformed request, 413 for a body over API Gateway's 10 MB quota (never
held in memory: answered before it is read when ``Content-Length`` announces it, read and dropped
when it comes chunked).

Examples:
    >>> match_route("GET", "/config/shelf-1", ["GET /config", "GET /config/{camera}"])
    ('GET /config/{camera}', {'camera': 'shelf-1'})
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import socket
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, unquote

from tornado import httputil
from tornado.http1connection import HTTP1Connection
from tornado.httpserver import HTTPServer
from tornado.iostream import StreamClosedError
from tornado.netutil import bind_sockets

from kit.local.lambda_events import LOCAL_ACCOUNT_ID

log = logging.getLogger(__name__)

LISTEN_BACKLOG = 1024
"""Connections the kernel queues before the server accepts them."""
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

API_GATEWAY_MAX_BODY_BYTES = 10 * 1024 * 1024
"""The largest request body API Gateway HTTP APIs take (their 10 MB payload quota); a larger one
gets 413 here too and is never held in memory: one announced by ``Content-Length`` is answered
before it is read, a chunked one is read and dropped as it comes."""
DISCARD_LIMIT_BYTES = 1024**3
"""A chunked body longer than this is not read to its end: the connection gets 400 and closes."""
BODY_TIMEOUT_S = 60.0
"""A request whose body takes longer to arrive is dropped (its connection closed)."""
LINGER_S = 30.0
"""After refusing a body announced too large, the longest time what the client still sends is
read and dropped before the connection closes."""
LINGER_IDLE_S = 5.0
"""... and the connection closes sooner once the client sends nothing for this long."""
IDLE_CONNECTION_TIMEOUT_S = 75.0
"""A kept-alive connection idle this long is closed."""
_JSON = [("Content-Type", "application/json")]


def _problem(status: int, message: str) -> tuple[int, list[tuple[str, str]], bytes]:
    return status, list(_JSON), json.dumps({"message": message}).encode()


class _Exchange(httputil.HTTPMessageDelegate):
    """One request on one connection: collects the body (up to the limit), then answers."""

    def __init__(self, server: HttpApiServer, connection: httputil.HTTPConnection, client: str):
        self.server = server
        self.connection = connection
        self.client = client
        self.start_line: httputil.RequestStartLine | None = None
        self.headers: httputil.HTTPHeaders | None = None
        self.chunks: list[bytes] = []
        self.received = 0
        self.too_large = False
        self.responding: asyncio.Future | None = None

    def headers_received(
        self,
        start_line: httputil.RequestStartLine | httputil.ResponseStartLine,
        headers: httputil.HTTPHeaders,
    ) -> Awaitable[None] | None:
        assert isinstance(start_line, httputil.RequestStartLine)
        self.start_line = start_line
        self.headers = headers
        declared = headers.get("Content-Length", "").strip()
        if declared.isdigit() and int(declared) > self.server.max_body_bytes:
            return self._refuse_unread(int(declared))
        return None

    async def _refuse_unread(self, declared: int) -> None:
        """Answer 413 to a body announced too large before any of it is read, then close.

        The connection is taken over from Tornado, which would otherwise read the body first.
        Before closing, what the client still sends is read and dropped (until it stops for
        :data:`LINGER_IDLE_S`, for :data:`LINGER_S` at most): closing with unread bytes resets
        the connection, and a client that sends its whole body before it reads the answer would
        get the reset instead of the 413.
        """
        assert self.start_line is not None
        assert isinstance(self.connection, HTTP1Connection)
        method, target = self.start_line.method, self.start_line.path
        stream = self.connection.detach()
        limit = self.server.max_body_bytes
        log.info("%s %s -> 413 (announced a body of %d bytes)", method, target, declared)
        _, _, payload = _problem(413, f"Request Entity Too Large: the limit is {limit:,} bytes")
        head = (
            "HTTP/1.1 413 Request Entity Too Large\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\n"
            "Connection: close\r\n\r\n"
        )
        try:
            await stream.write(head.encode() + payload)
            if stream.socket is not None:
                stream.socket.shutdown(socket.SHUT_WR)
            async with asyncio.timeout(LINGER_S):
                while True:
                    await asyncio.wait_for(
                        stream.read_bytes(65536, partial=True), timeout=LINGER_IDLE_S
                    )
        except (StreamClosedError, OSError, TimeoutError):
            pass
        finally:
            stream.close()

    def data_received(self, chunk: bytes) -> None:
        self.received += len(chunk)
        if self.received > self.server.max_body_bytes:
            self.too_large = True
            self.chunks.clear()
        if not self.too_large:
            self.chunks.append(chunk)

    def finish(self) -> None:
        # Kept referenced until done: the event loop holds tasks weakly.
        self.responding = asyncio.ensure_future(self._respond())

    def on_connection_close(self) -> None:
        self.chunks.clear()

    async def _respond(self) -> None:
        assert self.start_line is not None and self.headers is not None
        method, target = self.start_line.method, self.start_line.path
        if self.too_large:
            limit = self.server.max_body_bytes
            log.info("%s %s -> 413 (body of %d bytes)", method, target, self.received)
            answer = _problem(413, f"Request Entity Too Large: the limit is {limit:,} bytes")
        else:
            body = b"".join(self.chunks)
            self.chunks.clear()
            answer = await asyncio.get_running_loop().run_in_executor(
                self.server.executor,
                self.server.handle,
                method,
                target,
                list(self.headers.get_all()),
                body,
                self.client,
            )
        try:
            self._write(method, *answer)
        except StreamClosedError:
            return
        except (ValueError, UnicodeEncodeError):
            log.exception("the response to %s %s has an invalid header", method, target)
            self._write(method, *_problem(500, "Internal Server Error"))

    def _write(
        self, method: str, status: int, headers: list[tuple[str, str]], payload: bytes
    ) -> None:
        response_headers = httputil.HTTPHeaders()
        for name, value in headers:
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                response_headers.add(name, value)
        if status not in (204, 304):
            response_headers["Content-Length"] = str(len(payload))
        bodiless = method == "HEAD" or status in (204, 304)
        self.connection.write_headers(
            httputil.ResponseStartLine("HTTP/1.1", status, httputil.responses.get(status, "")),
            response_headers,
            None if bodiless or not payload else payload,
        )
        self.connection.finish()


class HttpApiServer:
    """Serves ``routes`` on ``host:port`` by invoking ``invoke(event)``, as API Gateway does.

    The server is Tornado's HTTP/1.1 server on its own thread: connections are accepted and
    read concurrently (keep-alive, a listen backlog of :data:`LISTEN_BACKLOG`), a malformed
    request (bad ``Content-Length``, bad request line or header) gets 400, a body over
    ``max_body_bytes`` gets 413 without being kept in memory (before it is sent, when its
    ``Content-Length`` announces it). The function itself runs one invocation at a time, like
    one Lambda instance.

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
        max_body_bytes: int = API_GATEWAY_MAX_BODY_BYTES,
    ):
        self.invoke = invoke
        self.routes = tuple(routes)
        self.max_body_bytes = max_body_bytes
        self._invoke_lock = threading.Lock()
        self.executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="http-api")
        self._sockets = bind_sockets(port, host, backlog=LISTEN_BACKLOG)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: HTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._sockets[0].getsockname()[:2]
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{port}"

    def start(self) -> None:
        """Serve on a thread of its own (returns once the server accepts connections)."""
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()

        def serve() -> None:
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(self._listen())
            ready.set()
            self._loop.run_forever()
            self._loop.close()

        self._thread = threading.Thread(target=serve, name="http-api", daemon=True)
        self._thread.start()
        ready.wait()

    async def _listen(self) -> None:
        server = self

        class Connections(httputil.HTTPServerConnectionDelegate):
            def start_request(
                self, server_conn: object, request_conn: httputil.HTTPConnection
            ) -> httputil.HTTPMessageDelegate:
                context = getattr(request_conn, "context", None)
                client = getattr(context, "remote_ip", None) or "127.0.0.1"
                return _Exchange(server, request_conn, client)

        self._server = HTTPServer(
            Connections(),
            max_body_size=DISCARD_LIMIT_BYTES,
            body_timeout=BODY_TIMEOUT_S,
            idle_connection_timeout=IDLE_CONNECTION_TIMEOUT_S,
        )
        self._server.add_sockets(self._sockets)

    async def _close(self) -> None:
        assert self._server is not None
        self._server.stop()
        await self._server.close_all_connections()

    def stop(self) -> None:
        """Stop listening, close every connection, and end the server's thread."""
        if self._loop is None or self._thread is None:
            for sock in self._sockets:
                sock.close()
            return
        try:
            asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(timeout=10)
        except (TimeoutError, RuntimeError) as error:
            log.warning("closing the HTTP connections: %s", error)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self.executor.shutdown(wait=False, cancel_futures=True)

    def handle(
        self, method: str, target: str, headers: list[tuple[str, str]], body: bytes, client: str
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """One request through routing, the function and back."""
        path = target.partition("?")[0]
        matched = match_route(method, path, self.routes)
        if matched is None:
            return 404, list(_JSON), b'{"message":"Not Found"}'
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
            status, response_headers, response_body = http_response(result)
        except Exception:
            log.exception("the control API function failed on %s %s", method, path)
            return _problem(500, "Internal Server Error")
        log.info(
            "%s %s -> %d (%.1f ms)", method, path, status, (time.perf_counter() - started) * 1000
        )
        return status, response_headers, response_body
