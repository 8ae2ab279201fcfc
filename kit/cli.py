"""The ``kit`` command line: ``kit local up|down|status|snapshot``, ``kit settings``, ``kit schemas``.

Every command reads the same settings as the notebooks (see :mod:`kit.settings`); ``--config``
points at another settings file.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from kit.contracts import export_schemas
from kit.settings import Settings, SettingsError, find_project_root, load_settings

log = logging.getLogger("kit")


def _local(settings: Settings, args: argparse.Namespace) -> int:
    from kit.local import LocalStack

    stack = LocalStack(settings)
    if args.action == "up":
        status = stack.up()
        print(status.describe())
        print(f"\nendpoint: {status.endpoint_url}")
    elif args.action == "down":
        counts = stack.down(snapshot=not args.no_snapshot)
        saved = f"; snapshot saved: {counts}" if counts else ""
        print(f"local stack stopped{saved}")
    elif args.action == "snapshot":
        print(f"snapshot saved: {stack.snapshot()}")
    else:
        status = stack.status()
        if args.json:
            print(json.dumps(status.__dict__, indent=2, default=str))
        else:
            print(status.describe())
        return 0 if status.running else 3
    return 0


def _settings(settings: Settings, args: argparse.Namespace) -> int:
    if args.env:
        for key, value in sorted(settings.as_env().items()):
            print(f"{key}={value}")
    else:
        print(json.dumps(settings.model_dump(mode="json"), indent=2))
    return 0


def _schemas(settings: Settings, args: argparse.Namespace) -> int:
    out = Path(args.out) if args.out else (find_project_root() or Path.cwd()) / "docs" / "schemas"
    for path in export_schemas(out):
        print(path)
    return 0


def _demo(settings: Settings, args: argparse.Namespace) -> int:
    from kit.local import LocalStack

    status = LocalStack(settings).up()
    print(status.describe())
    print(
        "\nThe local backend is up. Try it with plain boto3 or the AWS CLI:\n"
        f"  aws --endpoint-url {status.endpoint_url} s3 ls\n"
        "Stop it with `kit local down` (data is kept for the next `kit local up`)."
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kit", description="Edge Vision Kit")
    parser.add_argument(
        "--config", help="settings file (default: $EVK_CONFIG or <project>/evk.yaml)"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    commands = parser.add_subparsers(dest="command", required=True)

    local = commands.add_parser("local", help="the local AWS target (moto server + runners)")
    local.add_argument("action", choices=["up", "down", "status", "snapshot"])
    local.add_argument("--no-snapshot", action="store_true", help="down: do not save the data")
    local.add_argument("--json", action="store_true", help="status: print JSON")
    local.set_defaults(run=_local)

    show = commands.add_parser("settings", help="print the resolved settings")
    show.add_argument("--env", action="store_true", help="as EVK_* environment variables")
    show.set_defaults(run=_settings)

    schemas = commands.add_parser("schemas", help="export the contracts' JSON Schemas")
    schemas.add_argument("--out", help="folder (default: docs/schemas)")
    schemas.set_defaults(run=_schemas)

    demo = commands.add_parser("demo", help="run the main job on the local target")
    demo.set_defaults(run=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("botocore").setLevel(logging.WARNING)
    run: Callable[[Settings, argparse.Namespace], int] = args.run
    try:
        settings = load_settings(args.config)
        return run(settings, args)
    except (SettingsError, RuntimeError, TimeoutError) as error:
        print(f"kit: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
