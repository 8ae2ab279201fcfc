"""Background processes of the local stack: start detached, record, find again, stop by pid."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

log = logging.getLogger(__name__)


@dataclass
class ServiceRecord:
    """What the state dir remembers of a started process, enough to find and stop it later."""

    name: str
    pid: int
    create_time: float
    argv: list[str]
    log_file: str
    url: str | None = None

    def to_json(self) -> dict:
        return asdict(self)

    def is_alive(self) -> bool:
        """True when the recorded pid still runs the process we started (not a recycled pid)."""
        try:
            process = psutil.Process(self.pid)
            if process.status() == psutil.STATUS_ZOMBIE:
                return False
            return abs(process.create_time() - self.create_time) < 1.0
        except psutil.Error:
            return False


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.settimeout(0.3)
        return sock.connect_ex((host, port)) == 0


def start_service(
    name: str,
    argv: list[str],
    log_file: Path,
    env: dict[str, str] | None = None,
    url: str | None = None,
) -> ServiceRecord:
    """Start ``argv`` detached from this process (own session), output appended to ``log_file``."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as out:
        process = subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
    create_time = psutil.Process(process.pid).create_time()
    log.info("started %s (pid %d): %s", name, process.pid, " ".join(argv))
    return ServiceRecord(name, process.pid, create_time, argv, str(log_file), url)


def _running(processes: list[psutil.Process]) -> list[psutil.Process]:
    """Those of ``processes`` still running. One that exited counts as stopped even before its
    parent reaps it: an orphan's new parent (the init process) may take seconds to."""
    running = []
    for process in processes:
        try:
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                running.append(process)
        except psutil.Error:
            continue
    return running


def _wait_stopped(processes: list[psutil.Process], timeout_s: float) -> list[psutil.Process]:
    """Wait until none of ``processes`` runs or ``timeout_s`` passed; return those still running."""
    deadline = time.monotonic() + timeout_s
    interval = 0.01
    alive = _running(processes)
    while alive and time.monotonic() < deadline:
        time.sleep(interval)
        interval = min(interval * 2, 0.1)
        alive = _running(alive)
    return alive


def stop_service(record: ServiceRecord, timeout_s: float = 10.0) -> bool:
    """Stop the process (and its process group) by pid: SIGTERM, then SIGKILL after ``timeout_s``.

    Returns:
        True when a live process was stopped, False when it was already gone.
    """
    if not record.is_alive():
        return False
    process = psutil.Process(record.pid)
    group = [process, *process.children(recursive=True)]
    try:
        os.killpg(record.pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        process.terminate()
    alive = _wait_stopped(group, timeout_s)
    for straggler in alive:
        log.warning("%s (pid %d) ignored SIGTERM; killing it", record.name, straggler.pid)
        try:
            straggler.kill()
        except psutil.NoSuchProcess:
            continue
    _wait_stopped(alive, 5)
    log.info("stopped %s (pid %d)", record.name, record.pid)
    return True


def wait_until(check, timeout_s: float, interval_s: float = 0.1, what: str = "condition") -> None:
    """Poll ``check()`` until it returns True; raise ``TimeoutError`` naming ``what`` otherwise."""
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception as error:  # noqa: BLE001 - any failure means "not yet"
            last_error = error
        time.sleep(interval_s)
    detail = f" (last error: {last_error})" if last_error else ""
    raise TimeoutError(f"timed out after {timeout_s:.0f} s waiting for {what}{detail}")
