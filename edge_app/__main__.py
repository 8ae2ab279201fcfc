"""``python -m edge_app --config device.yaml``: run the edge app until SIGINT/SIGTERM.

The same entry point serves a plain process, a container and a Greengrass v2 component. What a
user can get wrong before the app runs (the config, a ``settings`` value, a spool directory
another process holds) ends it with one line naming the problem and exit status 2; what can go
wrong once it runs (a camera, a model, the disk, the network, AWS credentials) is reported in its
heartbeats while the rest keeps running.
"""

from __future__ import annotations

import argparse
import faulthandler
import logging
import signal
import sys

from edge_app.app import EdgeApp
from edge_app.config import DeviceConfigError, load_device_config
from edge_app.spool import SpoolInUseError
from kit.core.settings import SettingsError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m edge_app", description="Edge Vision Kit edge app"
    )
    parser.add_argument("--config", required=True, help="device config YAML")
    parser.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"]
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level,
        format="%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s",
    )
    logging.getLogger("botocore").setLevel(logging.WARNING)
    try:
        config = load_device_config(args.config)
    except DeviceConfigError as error:
        print(f"edge_app: {error}", file=sys.stderr)
        return 2
    try:
        app = EdgeApp(config)
    except (SettingsError, SpoolInUseError) as error:
        print(f"edge_app: {args.config}: {error}", file=sys.stderr)
        return 2

    def stop(*_) -> None:
        # Closing is bounded step by step (cameras, the last heartbeat, the spool's flush), but
        # a thread the interpreter waits for at exit (a model download on a hung connection)
        # is not: past `stop_grace_s` every thread's stack goes to the log and the process
        # exits with status 1.
        faulthandler.dump_traceback_later(config.stop_grace_s, exit=True)
        app.stop()

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, stop)
    app.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
