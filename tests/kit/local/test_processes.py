"""Stopping the stack's processes by pid (issue 18 item 5: a stop waited 10 s for each process
whose parent had not reaped it yet, then claimed it "ignored SIGTERM")."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import psutil

from kit.local.processes import ServiceRecord, stop_service

PARENT = textwrap.dedent(
    """
    import json, signal, sys
    from pathlib import Path
    from kit.local.processes import start_service
    record = start_service("sleeper", ["sleep", "600"], Path(sys.argv[1]))
    print(json.dumps(record.to_json()), flush=True)
    signal.pause()  # alive until the test kills it, and never reaps its child
    """
)


def test_a_stopped_process_its_parent_has_not_reaped_counts_as_stopped(tmp_path, caplog):
    """GIVEN a service started by a process that stays alive and never reaps it (a notebook
    kernel that ran `kit local up`), WHEN another process stops it, THEN the stop returns once
    the service has exited, without waiting for the reaping or killing anything."""
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, str(tmp_path / "sleeper.log")],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        record = ServiceRecord(**json.loads(parent.stdout.readline()))
        service = psutil.Process(record.pid)

        with caplog.at_level("WARNING", logger="kit.local.processes"):
            assert stop_service(record) is True

        assert service.status() == psutil.STATUS_ZOMBIE  # exited; the parent still holds it
        assert "ignored SIGTERM" not in caplog.text
        assert not record.is_alive()
    finally:
        parent.kill()
        parent.wait()
