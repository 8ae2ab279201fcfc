"""The local target: a moto server on 127.0.0.1 holding the kit's backend, started and stopped by pid.

``up`` is idempotent: a running stack is reused (and its resources completed if any are missing);
``down`` snapshots the data and stops every process it started; the next ``up`` restores the
snapshot. Everything lives under ``<state_dir>/local/``:

    stack.json      endpoint, control API URL, the processes started (pid, start time, command,
                    log): the moto server (:mod:`kit.local.moto_server`) and the local Lambda
                    runner, and what the restore of the snapshot found
    logs/*.log      each process's output
    snapshot/       the data saved by ``down`` and ``snapshot``, in generations
                    (see :mod:`kit.local.snapshot`)
    lock            serialises concurrent up/down calls

``down`` loses nothing a client was told is stored: it stops the runner, closes the moto
server's gate (requests that arrive from then on are not answered, and a device keeps their
data to send again), waits for the requests already admitted, saves the snapshot inside the
server, and stops it.

Examples:
    >>> from kit.local.stack import LocalStack
    >>> stack = LocalStack()          # doctest: +SKIP
    >>> stack.up().endpoint_url       # doctest: +SKIP
    'http://127.0.0.1:5055'
"""

from __future__ import annotations

import fcntl
import json
import logging
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kit.core.backend import BackendSpec, describe_backend
from kit.core.settings import Settings, load_settings
from kit.local.processes import (
    ServiceRecord,
    free_port,
    port_in_use,
    start_service,
    stop_service,
    wait_until,
)
from kit.local.provision import ProvisionReport, provision
from kit.local.snapshot import snapshot_summary

log = logging.getLogger(__name__)

MOTO_START_TIMEOUT_S = 60.0
RUNNER_START_TIMEOUT_S = 60.0
SNAPSHOT_TIMEOUT_S = 600.0
"""Failure bound of a snapshot's save or restore (an hour of demo data takes seconds)."""


def _answers(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as response:
        return response.status == 200


class LocalStackError(RuntimeError):
    """The local stack cannot start or stop; the message says why and what to do."""


@dataclass
class StackStatus:
    """What runs and where."""

    running: bool
    endpoint_url: str | None = None
    services: dict[str, dict] = field(default_factory=dict)
    resources: dict[str, list[str]] = field(default_factory=dict)
    started_at: str | None = None
    snapshot: dict | None = None
    restored: dict | None = None
    """What ``up`` restored (generation, counts) and the damaged files it found."""

    def describe(self) -> str:
        """A few readable lines for the CLI."""
        if not self.running:
            lines = ["local stack: stopped"]
        else:
            lines = [f"local stack: running at {self.endpoint_url} (since {self.started_at})"]
        for name, info in self.services.items():
            state = "alive" if info["alive"] else "DEAD"
            where = f" {info['url']}" if info.get("url") else ""
            lines.append(
                f"  {name:<10} pid {info['pid']:<8} {state}{where}  log: {info['log_file']}"
            )
        for kind, names in self.resources.items():
            lines.append(f"  {kind:<10} {', '.join(names)}")
        if self.snapshot and self.snapshot.get("saved_at"):
            lines.append(
                f"  snapshot   saved {self.snapshot['saved_at']}: {self.snapshot['counts']}"
            )
        for problem in (self.snapshot or {}).get("problems", []):
            lines.append(f"  snapshot   DAMAGED {problem}")
        for damage in (self.restored or {}).get("damaged", []):
            lines.append(
                f"  restore    error: {damage['file']} is damaged ({damage['problem']}): "
                f"{damage['instead']}"
            )
        return "\n".join(lines)


class LocalStack:
    """The local AWS target for ``settings`` (default: :func:`kit.core.settings.load_settings`)."""

    def __init__(self, settings: Settings | None = None):
        self.settings = settings or load_settings()
        if self.settings.target != "local":
            raise LocalStackError(
                f"the local stack needs target 'local' (settings say {self.settings.target!r}); "
                "set EVK_TARGET=local"
            )
        self.directory = self.settings.local_dir
        self.state_file = self.directory / "stack.json"
        self.snapshot_dir = self.directory / "snapshot"

    # -- state -------------------------------------------------------------------------------
    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.directory / "lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _read_state(self) -> dict | None:
        if not self.state_file.is_file():
            return None
        try:
            return json.loads(self.state_file.read_text())
        except json.JSONDecodeError:
            log.warning("ignoring unreadable %s", self.state_file)
            return None

    def _write_state(self, state: dict) -> None:
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(self.state_file)

    def _records(self, state: dict | None) -> dict[str, ServiceRecord]:
        if not state:
            return {}
        return {name: ServiceRecord(**info) for name, info in state.get("services", {}).items()}

    def _settings_at(self, endpoint_url: str) -> Settings:
        return self.settings.model_copy(update={"endpoint_url": endpoint_url})

    @property
    def spec(self) -> BackendSpec:
        return describe_backend(self.settings)

    # -- lifecycle ---------------------------------------------------------------------------
    def up(self, *, runner: bool = True) -> StackStatus:
        """Start (or reuse) the moto server, provision the backend, restore the last snapshot.

        Args:
            runner: also start (or reuse) the local Lambda runner (:mod:`kit.local.runner`):
                the processor on the detections queue, the control API on
                ``settings.api_port`` and the scheduled health check. Without it, messages sent
                to the queue stay there.
        """
        with self._locked():
            state = self._read_state()
            records = self._records(state)
            moto = records.get("moto")
            fresh = moto is None or not moto.is_alive()
            if fresh:
                for record in records.values():
                    stop_service(record)
                endpoint_url, moto = self._start_moto()
                state = {
                    "endpoint_url": endpoint_url,
                    "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
                    "services": {"moto": moto.to_json()},
                }
                self._write_state(state)
            settings = self._settings_at(state["endpoint_url"])
            report = provision(self.spec, settings)
            if fresh:
                state["restored"] = self._restore(state, moto)
                self._write_state(state)
            self._log_report(report)
            if runner:
                self._ensure_runner(state, settings)
        return self.status()

    def down(self, *, snapshot: bool = True) -> dict[str, int]:
        """Snapshot the data (unless ``snapshot=False``) and stop every process ``up`` started.

        Returns:
            The snapshot's counts per resource (empty when nothing ran or no snapshot was taken).
        """
        with self._locked():
            state = self._read_state()
            records = self._records(state)
            counts: dict[str, int] = {}
            # The runner consumes the queues: stop it before their messages are saved.
            runner = records.pop("runner", None)
            if runner is not None:
                stop_service(runner)
            moto = records.get("moto")
            if snapshot and moto is not None and moto.is_alive():
                counts = self._save(state["endpoint_url"], reopen=False)
            for record in reversed(list(records.values())):
                stop_service(record)
            self.state_file.unlink(missing_ok=True)
        return counts

    def snapshot(self) -> dict[str, int]:
        """Save a snapshot of the running stack without stopping it (queued messages stay queued)."""
        with self._locked():
            state = self._read_state()
            moto = self._records(state).get("moto")
            if moto is None or not moto.is_alive():
                raise LocalStackError(
                    "the local stack is not running; start it with `kit local up`"
                )
            return self._save(state["endpoint_url"], reopen=True)

    def status(self) -> StackStatus:
        """Whether the stack runs, its endpoint, processes and resources."""
        state = self._read_state()
        records = self._records(state)
        snapshot = snapshot_summary(self.snapshot_dir)
        moto = records.get("moto")
        if state is None or moto is None or not moto.is_alive():
            return StackStatus(running=False, snapshot=snapshot)
        services = {
            name: {"pid": r.pid, "alive": r.is_alive(), "url": r.url, "log_file": r.log_file}
            for name, r in records.items()
        }
        settings = self._settings_at(state["endpoint_url"])
        return StackStatus(
            running=True,
            endpoint_url=state["endpoint_url"],
            services=services,
            resources=list_resources(settings),
            started_at=state.get("started_at"),
            snapshot=snapshot,
            restored=state.get("restored"),
        )

    @property
    def endpoint_url(self) -> str | None:
        state = self._read_state()
        return state["endpoint_url"] if state else None

    # -- internals ---------------------------------------------------------------------------
    def _start_moto(self) -> tuple[str, ServiceRecord]:
        host = self.settings.local_host
        port = self.settings.local_port or free_port(host)
        if port_in_use(host, port):
            raise LocalStackError(
                f"port {port} on {host} is already in use by another program; free it, or choose "
                "another port with EVK_LOCAL_PORT=<port> (0 picks a free one)"
            )
        url_host = f"[{host}]" if ":" in host else host
        endpoint_url = f"http://{url_host}:{port}"
        record = start_service(
            "moto",
            [
                sys.executable,
                "-m",
                "kit.local.moto_server",
                "--host",
                host,
                "--port",
                str(port),
                "--snapshot-dir",
                str(self.snapshot_dir),
            ],
            self.directory / "logs" / "moto.log",
            env=self.settings.as_env(),
            url=endpoint_url,
        )
        settings = self._settings_at(endpoint_url)
        s3 = settings.client("s3")
        try:
            wait_until(
                lambda: record.is_alive() and s3.list_buckets() is not None,
                MOTO_START_TIMEOUT_S,
                interval_s=0.2,
                what=f"the moto server at {endpoint_url}",
            )
        except TimeoutError as error:
            stop_service(record)
            raise LocalStackError(f"{error}; see {record.log_file}") from None
        except BaseException:
            stop_service(record)  # interrupted (Ctrl-C): leave no unrecorded process behind
            raise
        return endpoint_url, record

    def _ensure_runner(self, state: dict, settings: Settings) -> None:
        """Start the local Lambda runner unless it runs; record it (and its URL) in stack.json."""
        record = self._records(state).get("runner")
        if record is not None and record.is_alive():
            return
        host = self.settings.local_host
        port = self.settings.api_port or free_port(host)
        if port_in_use(host, port):
            raise LocalStackError(
                f"port {port} on {host} (the local control API) is already in use by another "
                "program; free it, or choose another port with EVK_API_PORT=<port> (0 picks a "
                "free one)"
            )
        url_host = f"[{host}]" if ":" in host else host
        api_url = f"http://{url_host}:{port}"
        runner_settings = settings.model_copy(update={"api_url": api_url, "api_port": port})
        record = start_service(
            "runner",
            [sys.executable, "-m", "kit.local.runner", "--port", str(port)],
            self.directory / "logs" / "runner.log",
            env=runner_settings.as_env(),
            url=api_url,
        )
        try:
            wait_until(
                lambda: record.is_alive() and _answers(f"{api_url}/health"),
                RUNNER_START_TIMEOUT_S,
                interval_s=0.2,
                what=f"the local Lambda runner at {api_url}",
            )
        except TimeoutError as error:
            stop_service(record)
            raise LocalStackError(f"{error}; see {record.log_file}") from None
        except BaseException:
            stop_service(record)  # interrupted (Ctrl-C): leave no unrecorded process behind
            raise
        state["services"]["runner"] = record.to_json()
        state["api_url"] = api_url
        self._write_state(state)

    def _admin(self, endpoint_url: str, action: str, timeout_s: float) -> dict[str, Any]:
        """POST ``/_evk/<action>`` to the moto server (:mod:`kit.local.moto_server`)."""
        import requests

        try:
            response = requests.post(f"{endpoint_url}/_evk/{action}", timeout=timeout_s)
        except requests.RequestException as error:
            raise LocalStackError(
                f"the moto server at {endpoint_url} did not answer {action}: {error}"
            ) from None
        try:
            content = response.json()
        except ValueError:
            content = {"message": response.text[:200]}
        if response.status_code >= 400:
            raise LocalStackError(
                f"the moto server refused {action} ({response.status_code}): "
                f"{content.get('message', content)}"
            )
        return content

    def _restore(self, state: dict, moto: ServiceRecord) -> dict[str, Any]:
        """Load the newest snapshot into the fresh server; stop it if that fails."""
        try:
            restored = self._admin(state["endpoint_url"], "restore", SNAPSHOT_TIMEOUT_S)
        except Exception as error:
            stop_service(moto)
            self.state_file.unlink(missing_ok=True)
            raise LocalStackError(
                f"restoring the snapshot in {self.snapshot_dir} failed, so the stack was stopped "
                f"(the snapshot is unchanged): {error}; see {moto.log_file}"
            ) from None
        for damage in restored.get("damaged", []):
            log.error(
                "snapshot: %s is damaged (%s): %s",
                damage["file"],
                damage["problem"],
                damage["instead"],
            )
        if restored.get("generation"):
            log.info("restored snapshot %s: %s", restored["generation"], restored["counts"])
        return restored

    def _save(self, endpoint_url: str, *, reopen: bool) -> dict[str, int]:
        """Close the server's gate, save a snapshot in it; open the gate again if ``reopen`` or
        if the save failed (so that a failed ``down`` stops nothing and loses nothing)."""
        closed = self._admin(endpoint_url, "close", SNAPSHOT_TIMEOUT_S)
        if not closed.get("closed"):
            log.warning("requests still running after the gate closed; saving anyway")
        try:
            saved = self._admin(endpoint_url, "snapshot", SNAPSHOT_TIMEOUT_S)
        except Exception as error:
            self._admin(endpoint_url, "open", 30)
            raise LocalStackError(
                f"the snapshot into {self.snapshot_dir} failed; the moto server keeps running "
                f"with its data: {error}"
            ) from None
        if reopen:
            self._admin(endpoint_url, "open", 30)
        return saved["counts"]

    @staticmethod
    def _log_report(report: ProvisionReport) -> None:
        if report.created:
            log.info("created: %s", ", ".join(report.created))


def list_resources(settings: Settings) -> dict[str, list[str]]:
    """The buckets, queues, tables and topics the endpoint holds (kit's and any others)."""
    buckets = [b["Name"] for b in settings.client("s3").list_buckets().get("Buckets", [])]
    queues = [
        u.rsplit("/", 1)[-1] for u in settings.client("sqs").list_queues().get("QueueUrls", [])
    ]
    tables = settings.client("dynamodb").list_tables().get("TableNames", [])
    topics = [
        t["TopicArn"].rsplit(":", 1)[-1]
        for t in settings.client("sns").list_topics().get("Topics", [])
    ]
    return {
        "buckets": sorted(buckets),
        "queues": sorted(queues),
        "tables": sorted(tables),
        "topics": sorted(topics),
    }
