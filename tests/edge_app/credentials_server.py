"""A container credentials endpoint, as the Greengrass token-exchange service (or ECS) serves it.

botocore's container provider reads ``AWS_CONTAINER_CREDENTIALS_FULL_URI`` and sends
``AWS_CONTAINER_AUTHORIZATION_TOKEN`` as the ``Authorization`` header; the answer is JSON with
``AccessKeyId``, ``SecretAccessKey``, ``Token`` and ``Expiration``. This one is the standard
library's HTTP server on a loopback port (the only plain-HTTP hosts botocore accepts), so a test
can point a device at it before it runs, as a core's token-exchange service that is not up yet.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PATH = "/2016-11-01/credentialprovider/"
"""Where Greengrass's token-exchange service answers."""


class CredentialsServer:
    """Serves container credentials on ``127.0.0.1:port`` to requests carrying ``token``.

    Attributes:
        requests: the ``Authorization`` header of every request received.
    """

    def __init__(self, port: int, token: str):
        self.port = port
        self.token = token
        self.requests: list[str | None] = []
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{PATH}"

    def start(self) -> CredentialsServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server hook's name
                server.requests.append(self.headers.get("Authorization"))
                if self.path != PATH or self.headers.get("Authorization") != server.token:
                    self.send_error(403)
                    return
                body = json.dumps(
                    {
                        "AccessKeyId": "ASIATESTEDGEDEVICE",
                        "SecretAccessKey": "test-secret",
                        "Token": "test-session-token",
                        "Expiration": (datetime.now(UTC) + timedelta(hours=1)).strftime(
                            "%Y-%m-%dT%H:%M:%SZ"
                        ),
                    }
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                """Quiet: the test reads `requests`."""

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def isolated_aws_environment(environ: dict[str, str], credentials_url: str, token: str) -> dict:
    """``environ`` with every other source of AWS credentials removed, and the container
    provider pointed at ``credentials_url``: what a Greengrass component's process sees."""
    env = {
        key: value
        for key, value in environ.items()
        if not key.startswith(("AWS_ACCESS_KEY", "AWS_SECRET", "AWS_SESSION", "AWS_PROFILE"))
        and not key.startswith("AWS_CONTAINER_")
        and key not in {"AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN"}
    }
    env.update(
        AWS_CONTAINER_CREDENTIALS_FULL_URI=credentials_url,
        AWS_CONTAINER_AUTHORIZATION_TOKEN=token,
        AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE="/nonexistent/aws-config",
        AWS_SHARED_CREDENTIALS_FILE="/nonexistent/aws-credentials",
    )
    return env
