"""``python -m edge_app --config device.yaml``: run the edge app until SIGINT/SIGTERM.

The same entry point serves a plain process, a container and a Greengrass v2 component.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys

from edge_app.app import EdgeApp
from edge_app.config import DeviceConfigError, load_device_config


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
    app = EdgeApp(config)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: app.stop())
    app.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
