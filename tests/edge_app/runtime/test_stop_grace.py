"""A stop never waits on a model download hung on the network.

The hang is a real one: the registry's endpoint accepts connections and never answers, so the
camera's model download waits on botocore's 60 s read timeout (and its retries). The model
loader's thread used to be a `ThreadPoolExecutor`'s, which the interpreter joins at exit: the
process outlived SIGTERM by minutes. The device is a real ``python -m edge_app`` process.

(Were any other thread to hold the exit up, ``stop_grace_s`` ends the process with status 1 and
every thread's stack in its log: `edge_app.__main__`.)
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading

from kit.local.processes import free_port
from tests.support.wait import wait_until


class BlackHole:
    """A TCP server on a loopback port that accepts connections and never answers."""

    def __init__(self) -> None:
        self.port = free_port()
        self.accepted: list[socket.socket] = []
        self._server = socket.create_server(("127.0.0.1", self.port))
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._server.accept()
            except OSError:  # closed
                return
            self.accepted.append(connection)

    def close(self) -> None:
        self._server.close()
        for connection in self.accepted:
            connection.close()


def test_a_stop_while_a_model_download_hangs_ends_cleanly(
    tmp_path, repo_root, make_device_config, scene_video
):
    """GIVEN a device whose only camera's model is downloading from an endpoint that never
    answers, WHEN it is sent SIGTERM, THEN it stops cleanly (status 0, its stop logged) without
    waiting for the download."""
    hole = BlackHole()
    config = make_device_config(
        cameras=[
            {
                "id": "cam-a",
                "source": {"uri": str(scene_video), "loop": True},
                "model": {"name": "fetched", "version": 1},
            }
        ],
        settings={
            "target": "aws",
            "region": "eu-west-1",
            "prefix": "grace",
            "endpoint_url": f"http://127.0.0.1:{hole.port}",
        },
        control_source="none",
        stop_grace_s=40,  # the backstop stays out of the way: the stop must end by itself
    )
    config_file = tmp_path / "device.json"
    config_file.write_text(config.model_dump_json())
    log_file = tmp_path / "app.log"
    try:
        with open(log_file, "w") as log:
            device = subprocess.Popen(
                [sys.executable, "-m", "edge_app", "--config", str(config_file)],
                cwd=repo_root,
                env={
                    **os.environ,
                    "AWS_ACCESS_KEY_ID": "testing",
                    "AWS_SECRET_ACCESS_KEY": "testing",
                },
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_until(lambda: hole.accepted, what="the device asking the endpoint for something")
            device.send_signal(signal.SIGTERM)
            try:
                status = device.wait(timeout=50)  # botocore alone would wait 60 s a try
            except subprocess.TimeoutExpired:
                status = None
        finally:
            if device.poll() is None:
                device.kill()
                device.wait()
        log_text = log_file.read_text()
        assert status == 0, log_text[-4000:]
        assert "Thread 0x" not in log_text, "the stop needed the stop_grace_s backstop"
    finally:
        hole.close()
