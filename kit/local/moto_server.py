"""The local stack's moto server: moto's own WSGI application, behind a gate, with snapshots.

``python -m kit.local.moto_server --host H --port P --snapshot-dir D`` serves moto exactly as
``python -m moto.server`` does, and adds:

- **a gate** in front of every request. ``POST /_evk/close`` stops admitting requests and waits
  until the admitted ones have finished; a request arriving meanwhile is held (it is not
  answered, so no client is told that something was stored) until ``POST /_evk/open``, or
  answered 503 when the server stops. SQS ``ReceiveMessage`` calls are not waited for: they
  store nothing, and a long poll may last 20 s.
- **snapshots** of the data, taken in this process (:mod:`kit.local.snapshot`):
  ``POST /_evk/snapshot`` saves one (the gate must be closed), ``POST /_evk/restore`` loads the
  newest one (closing the gate meanwhile). Both answer JSON.
- **a prompt stop**: SIGTERM or SIGINT stops serving at once (held requests get 503) and exits.

The backend's names come from the ``EVK_*`` settings in the environment, like the runner's.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from kit.local.moto_state import ACCOUNT_ID

log = logging.getLogger("kit.local.moto_server")

ADMIN_PREFIX = "/_evk/"
DRAIN_TIMEOUT_S = 30.0
"""How long closing the gate waits for admitted requests to finish."""
HOLD_TIMEOUT_S = 120.0
"""How long a request waits at a closed gate before it is answered 503."""

StartResponse = Callable[..., Any]


def _is_receive(environ: dict[str, Any]) -> bool:
    """An SQS ReceiveMessage (JSON protocol): a read that may long-poll."""
    return environ.get("HTTP_X_AMZ_TARGET", "") == "AmazonSQS.ReceiveMessage"


def _unavailable(start_response: StartResponse, reason: str) -> list[bytes]:
    body = json.dumps({"__type": "ServiceUnavailable", "message": reason}).encode()
    start_response(
        "503 Service Unavailable",
        [("Content-Type", "application/x-amz-json-1.0"), ("Content-Length", str(len(body)))],
    )
    return [body]


class Gate:
    """Admits requests while open; closing it waits for the admitted ones to finish."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._open = True
        self._stopping = False
        self._admitted = 0

    def admit(self, *, counted: bool) -> bool:
        """Wait until the gate is open; False when the server stops (or the wait is too long).
        ``counted`` requests are waited for by :meth:`close`."""
        with self._condition:
            if not self._condition.wait_for(
                lambda: self._open or self._stopping, timeout=HOLD_TIMEOUT_S
            ):
                return False
            if self._stopping:
                return False
            if counted:
                self._admitted += 1
            return True

    def done(self) -> None:
        with self._condition:
            self._admitted -= 1
            self._condition.notify_all()

    def close(self, timeout_s: float = DRAIN_TIMEOUT_S) -> bool:
        """Admit no more requests; wait for the admitted ones. False if they did not finish in
        ``timeout_s`` (the gate is closed all the same)."""
        with self._condition:
            self._open = False
            return self._condition.wait_for(lambda: self._admitted == 0, timeout=timeout_s)

    def open(self) -> None:
        with self._condition:
            self._open = True
            self._condition.notify_all()

    def stop(self) -> None:
        """Release every held request (each is answered 503)."""
        with self._condition:
            self._stopping = True
            self._condition.notify_all()

    @property
    def is_open(self) -> bool:
        return self._open


class GatedMoto:
    """The WSGI application: the admin routes, and moto behind the gate."""

    def __init__(self, moto_app: Callable, snapshot_dir: Path, region: str):
        self.moto_app = moto_app
        self.snapshot_dir = snapshot_dir
        self.region = region
        self.gate = Gate()
        self._snapshot_lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith(ADMIN_PREFIX):
            return self._admin(environ, start_response, path.removeprefix(ADMIN_PREFIX))
        counted = not _is_receive(environ)
        if not self.gate.admit(counted=counted):
            return _unavailable(start_response, "the local stack is stopping; try again later")
        try:
            # moto answers with a complete body: it is read here, so that the request counts as
            # admitted until moto has finished with it.
            response = self.moto_app(environ, start_response)
            try:
                return list(response)
            finally:
                if hasattr(response, "close"):
                    response.close()
        finally:
            if counted:
                self.gate.done()

    def _admin(
        self, environ: dict[str, Any], start_response: StartResponse, action: str
    ) -> list[bytes]:
        if environ.get("REQUEST_METHOD") != "POST" and action != "status":
            return self._answer(start_response, 405, {"message": "use POST"})
        try:
            if action == "close":
                return self._answer(start_response, 200, {"closed": self.gate.close()})
            if action == "open":
                self.gate.open()
                return self._answer(start_response, 200, {"open": True})
            if action == "status":
                return self._answer(start_response, 200, {"open": self.gate.is_open})
            if action == "snapshot":
                if self.gate.is_open:
                    return self._answer(
                        start_response, 409, {"message": "close the gate before a snapshot"}
                    )
                with self._snapshot_lock:
                    result = self._save()
                return self._answer(start_response, 200, result)
            if action == "restore":
                with self._snapshot_lock:
                    was_open = self.gate.is_open
                    self.gate.close()
                    try:
                        result = self._restore()
                    finally:
                        if was_open:
                            self.gate.open()
                return self._answer(start_response, 200, result)
        except Exception as error:  # noqa: BLE001 - the client gets the reason, the log the trace
            log.exception("%s failed", action)
            return self._answer(
                start_response,
                500,
                {"message": f"{action} failed: {type(error).__name__}: {error}"},
            )
        return self._answer(start_response, 404, {"message": f"no admin action {action!r}"})

    def _targets(self):
        from kit.core.backend import describe_backend
        from kit.core.settings import load_settings
        from kit.local.snapshot import SnapshotTargets

        return SnapshotTargets.of(describe_backend(load_settings()))

    def _save(self) -> dict[str, Any]:
        from dataclasses import asdict

        from kit.local.moto_state import MotoState
        from kit.local.snapshot import save_snapshot

        return asdict(save_snapshot(MotoState(self.region), self._targets(), self.snapshot_dir))

    def _restore(self) -> dict[str, Any]:
        from kit.local.moto_state import MotoState
        from kit.local.snapshot import restore_snapshot

        report = restore_snapshot(MotoState(self.region), self._targets(), self.snapshot_dir)
        return report.to_json()

    @staticmethod
    def _answer(start_response: StartResponse, status: int, content: dict) -> list[bytes]:
        reasons = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 409: "Conflict"}
        reasons |= {500: "Internal Server Error", 503: "Service Unavailable"}
        body = json.dumps(content).encode()
        start_response(
            f"{status} {reasons[status]}",
            [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
        )
        return [body]


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(
        prog="python -m kit.local.moto_server", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, required=True, help="port to listen on")
    parser.add_argument(
        "--snapshot-dir", type=Path, required=True, help="where snapshots are saved and restored"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    # Every request, whatever its credentials, lands in the one account the snapshot reads.
    os.environ["MOTO_ACCOUNT_ID"] = ACCOUNT_ID
    os.environ.setdefault("MOTO_PORT", str(args.port))

    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    from kit.core.settings import load_settings

    app = GatedMoto(
        DomainDispatcherApplication(create_backend_app),
        args.snapshot_dir,
        load_settings().region,
    )
    server = make_server(
        args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler
    )
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    serving = threading.Thread(target=server.serve_forever, name="moto", daemon=True)
    serving.start()
    log.info("moto serving on %s:%d (snapshots in %s)", args.host, args.port, args.snapshot_dir)
    stop.wait()
    log.info("stopping")
    app.gate.stop()
    server.shutdown()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
