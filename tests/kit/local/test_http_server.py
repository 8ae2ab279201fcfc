"""The local control API as an HTTP server, probed over real sockets (issue 14, item 10).

Against the session's running stack (``local_stack``): many connections at once all get answers,
a request with a bad ``Content-Length`` gets a 4xx or a closed connection (never a hang), a body
over the limit is refused before it is sent, and one kept-alive connection carries many requests.
Socket timeouts here only bound a failure; nothing waits on them to synchronise.
"""

from __future__ import annotations

import http.client
import json
import socket

import pytest

from kit.core.contracts import ControlConfig, parse
from kit.local.http_api import API_GATEWAY_MAX_BODY_BYTES
from lambdas.control_api.body import MAX_BODY_BYTES

FAILURE_BOUND_S = 60.0
"""How long a socket read may block before the probe counts as a hang."""


def connect(control_api) -> socket.socket:
    host, port, _ = control_api
    return socket.create_connection((host, port), timeout=FAILURE_BOUND_S)


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (a reset counts as a close)."""
    received = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return received
        if not chunk:
            return received
        received += chunk


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One response (status, lower-cased headers, body) read from ``sock``, which stays open."""
    response = http.client.HTTPResponse(sock)
    response.begin()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()


def request_head(method: str, path: str, control_api, **headers: str) -> bytes:
    host, port, token = control_api
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}", f"Authorization: Bearer {token}"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def assert_still_serving(control_api) -> None:
    host, port, token = control_api
    connection = http.client.HTTPConnection(host, port, timeout=FAILURE_BOUND_S)
    try:
        connection.request("GET", "/config", headers={"Authorization": f"Bearer {token}"})
        response = connection.getresponse()
        assert response.status == 200
        parse(ControlConfig, json.loads(response.read()))
    finally:
        connection.close()


def test_fifty_connections_open_at_once_all_get_answers(control_api):
    host, port, _ = control_api
    sockets = [connect(control_api) for _ in range(50)]
    try:
        for sock in sockets:
            sock.sendall(
                f"GET /health HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n".encode()
            )
        answers = []
        for sock in sockets:
            status, _, body = read_response(sock)
            answers.append((status, json.loads(body)["status"]))
    finally:
        for sock in sockets:
            sock.close()

    assert answers == [(200, "ok")] * 50


@pytest.mark.parametrize(
    ("content_length", "sent"),
    [
        ("100", b'{"refresh_s":'),
        ("abc", b'{"refresh_s": 5}'),
        ("-5", b'{"refresh_s": 5}'),
        ("5, 6", b'{"refresh_s": 5}'),
        ("0x10", b'{"refresh_s": 5}'),
        ("99999999999999999999999999", b""),
    ],
    ids=["longer-than-sent", "not-a-number", "negative", "two-values", "hex", "absurd"],
)
def test_a_bad_content_length_gets_a_4xx_or_a_closed_connection_and_the_server_serves_on(
    control_api, content_length, sent
):
    sock = connect(control_api)
    try:
        sock.sendall(
            request_head("PUT", "/config/dock-1", control_api, Content_Length=content_length) + sent
        )
        sock.shutdown(socket.SHUT_WR)
        answer = read_until_closed(sock)
    finally:
        sock.close()

    status_line = answer.split(b"\r\n", 1)[0]
    assert answer == b"" or status_line.startswith((b"HTTP/1.1 400 ", b"HTTP/1.1 413 ")), answer
    assert_still_serving(control_api)


@pytest.mark.parametrize("expect_continue", [False, True], ids=["plain", "expect-100-continue"])
def test_a_body_over_the_limit_is_refused_before_it_is_sent(control_api, expect_continue):
    announced = 100 * 1024 * 1024
    extra = {"Expect": "100-continue"} if expect_continue else {}
    sock = connect(control_api)
    try:
        sock.sendall(
            request_head(
                "PUT",
                "/config",
                control_api,
                Content_Type="application/json",
                Content_Length=str(announced),
                **extra,
            )
        )
        status, headers, body = read_response(sock)
        rest = read_until_closed(sock)
    finally:
        sock.close()

    assert status == 413 and headers["content-type"] == "application/json"
    assert f"{API_GATEWAY_MAX_BODY_BYTES:,} bytes" in json.loads(body)["message"]
    assert rest == b"", "the connection closes instead of reading the body"
    assert_still_serving(control_api)


def test_a_client_that_sends_the_whole_oversized_body_first_still_reads_the_413(control_api):
    host, port, token = control_api
    connection = http.client.HTTPConnection(host, port, timeout=FAILURE_BOUND_S)
    try:
        connection.request(
            "PUT",
            "/config",
            body=b" " * (API_GATEWAY_MAX_BODY_BYTES + 1024 * 1024),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        response = connection.getresponse()
        answer = json.loads(response.read())
    finally:
        connection.close()

    assert response.status == 413 and "Request Entity Too Large" in answer["message"]
    assert_still_serving(control_api)


def test_a_body_over_the_documented_api_limit_gets_413_naming_the_limit(control_api):
    host, port, token = control_api
    body = b'{"refresh_s": 5, "pad": "' + b"x" * MAX_BODY_BYTES + b'"}'
    connection = http.client.HTTPConnection(host, port, timeout=FAILURE_BOUND_S)
    try:
        connection.request(
            "PUT",
            "/config",
            body=body,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        response = connection.getresponse()
        answer = json.loads(response.read())
    finally:
        connection.close()

    assert response.status == 413
    assert answer["field"] == "body" and f"{MAX_BODY_BYTES:,} bytes" in answer["message"]
    assert_still_serving(control_api)


@pytest.mark.parametrize(
    "raw",
    [b"GARBAGE\r\n\r\n", b"GET /health HTTP/1.1\r\nNo colon here\r\n\r\n", b"\x00\xff\r\n\r\n"],
    ids=["request-line", "header-line", "binary"],
)
def test_a_malformed_request_gets_400_or_a_closed_connection(control_api, raw):
    sock = connect(control_api)
    try:
        sock.sendall(raw)
        answer = read_until_closed(sock)
    finally:
        sock.close()

    assert answer == b"" or answer.startswith(b"HTTP/1.1 400 "), answer
    assert_still_serving(control_api)


def test_one_kept_alive_connection_answers_every_request_in_turn(control_api):
    host, port, token = control_api
    auth = {"Authorization": f"Bearer {token}"}
    connection = http.client.HTTPConnection(host, port, timeout=FAILURE_BOUND_S)
    exchanges = [
        ("GET", "/health", None, {}),
        (
            "PUT",
            "/config/dock-1",
            b'{"refresh_s": 17}',
            {**auth, "Content-Type": "application/json"},
        ),
        ("GET", "/config/dock-1", None, auth),
        ("GET", "/config", None, {}),
        ("PUT", "/config/dock-1", b"{oops", {**auth, "Content-Type": "application/json"}),
        ("GET", "/no/such/route", None, auth),
        ("GET", "/detections?camera=dock-1&limit=0", None, auth),
        ("GET", "/config/dock-1", None, auth),
    ]
    answers = []
    try:
        connection.connect()
        first = connection.sock
        for method, path, body, headers in exchanges:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            answers.append((response.status, json.loads(response.read())))
            assert connection.sock is first, f"{method} {path} did not keep the connection"
    finally:
        connection.close()

    statuses = [status for status, _ in answers]
    assert statuses == [200, 200, 200, 401, 400, 404, 400, 200]
    assert answers[0][1]["status"] == "ok"
    assert answers[1][1]["settings"]["refresh_s"] == 17 and answers[2][1] == answers[1][1]
    assert answers[4][1]["field"] == "body" and answers[6][1]["field"] == "limit"
    assert answers[7][1]["settings"]["refresh_s"] == 17
