"""The ``kit`` command line: ``kit local up|down|status|snapshot``, ``kit settings``, ``kit schemas``.

Every command reads the same settings as the notebooks (see :mod:`kit.core.settings`); ``--config``
points at another settings file.

An expected failure (the local stack is down, a port is taken, a model or alias does not exist, a
bad value, no AWS credentials, a resource that is not provisioned) prints one ``kit: error:``
line on stderr saying what and what to do, and exits with 2 (130 for Ctrl-C); only a bug in the
kit shows a traceback (:func:`describe_error`).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from kit.core.contracts import export_schemas
from kit.core.contracts.model import ModelMetadata
from kit.core.settings import Settings, SettingsError, find_project_root, load_settings

if TYPE_CHECKING:
    from kit.registry import ModelRegistry

log = logging.getLogger("kit")

NOT_PROVISIONED = {
    "ResourceNotFoundException",
    "NoSuchBucket",
    "AWS.SimpleQueueService.NonExistentQueue",
    "QueueDoesNotExist",
    "NotFound",
    "NotFoundException",
}
"""Error codes meaning a backend resource does not exist (yet)."""
DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "ExpiredToken"}


def describe_error(error: BaseException, settings: Settings | None) -> str | None:
    """One line for an expected failure; None for anything else (a bug: let it raise)."""
    import requests
    from botocore.exceptions import (
        ClientError,
        ConnectionClosedError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
        PartialCredentialsError,
        ReadTimeoutError,
    )

    local = settings is not None and settings.target == "local"
    hint = (
        "the local stack is not running; start it with `kit local up` (see `kit local status`)"
        if local
        else f"check the network and the region ({_region(settings)})"
    )
    if isinstance(error, requests.ConnectionError):
        where = error.request.url if error.request is not None else "the control API"
        return f"cannot reach {where}: {hint}"
    if isinstance(error, EndpointConnectionError | ConnectionClosedError | ReadTimeoutError):
        where = error.kwargs.get("endpoint_url") or "the AWS endpoint"
        return f"cannot reach {where}: {hint}"
    if isinstance(error, NoCredentialsError | PartialCredentialsError):
        return (
            "no AWS credentials: configure a profile (AWS_PROFILE) or a role for the aws target, "
            "or use the local target (`target: local`)"
        )
    if isinstance(error, NoRegionError):
        return "no AWS region: set `region` in evk.yaml or EVK_REGION"
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "")
        message = error.response.get("Error", {}).get("Message", "") or str(error)
        operation = getattr(error, "operation_name", "the request")
        if code in NOT_PROVISIONED:
            hint = (
                "start (or restart) the local stack with `kit local up`"
                if local
                else "deploy the backend (`pulumi up`) and run `kit aws outputs`"
            )
            return f"{operation}: {message} ({code}): the backend is not provisioned; {hint}"
        if code in DENIED:
            return f"{operation}: access denied ({code}): {message}"
        return f"{operation} failed ({code}): {message}"
    # the control API's refusals and outages; only a command that imported its client can
    # raise one, so an error of any other command does not import the dashboard package
    client = sys.modules.get("kit.dashboard.client")
    if client is not None and isinstance(error, client.ControlApiError):
        return _one_line(str(error))
    if isinstance(
        error, SettingsError | LookupError | ValueError | RuntimeError | TimeoutError | OSError
    ):
        return str(error) or type(error).__name__
    return None


def _one_line(message: str) -> str:
    """``message`` folded into one line: its first line, then the others joined by ``; ``."""
    head, *rest = [line.strip() for line in message.splitlines() if line.strip()] or [""]
    return " ".join([head, "; ".join(rest)]).strip()


def _region(settings: Settings | None) -> str:
    return settings.region if settings is not None else "unknown"


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


def _alerts(settings: Settings, args: argparse.Namespace) -> int:
    from kit.local.runner import read_alert_inbox

    if args.once:
        # everything waiting now: batches of up to 10 until the inbox is empty
        wait_s = 1
        while notices := read_alert_inbox(settings, wait_s=wait_s):
            for notice in notices:
                print(f"\n[{notice.sent_at}] {notice.subject}\n{notice.body}", flush=True)
            wait_s = 0
        return 0
    print(f"waiting for alerts on {settings.resources.alerts_inbox_queue} (Ctrl-C to stop)")
    try:
        while True:
            for notice in read_alert_inbox(settings, wait_s=20):
                print(f"\n[{notice.sent_at}] {notice.subject}\n{notice.body}", flush=True)
    except KeyboardInterrupt:
        return 0


def _aws(settings: Settings, args: argparse.Namespace) -> int:
    from kit import aws

    if args.action == "outputs":
        path, values = aws.aws_outputs(args.source, write=args.write, stack=args.stack)
        print(f"wrote {path} ({len(values)} settings from the stack outputs)")
    else:
        user = aws.create_cognito_user(
            settings,
            args.email,
            temporary_password=args.temporary_password,
            send_invitation=not args.no_invitation,
        )
        print(f"created Cognito user {args.email}: {user}")
    return 0


def _train(settings: Settings, args: argparse.Namespace) -> int:
    from kit.compile import export_onnx
    from kit.data.fetch import local_dataset
    from kit.train import train_local

    data = local_dataset(args.data, settings=settings)
    if data.dataset:
        print(f"dataset {data.dataset} -> {data.data_yaml}")
    result = train_local(
        data.data_yaml,
        base=args.base,
        epochs=args.epochs,
        imgsz=args.imgsz,
        batch=args.batch,
        settings=settings,
    )
    print(result)
    if args.register:
        metadata = result.register(
            args.register,
            {"onnx": export_onnx(result.weights, args.imgsz)},
            dataset=data.dataset,
            settings=settings,
        )
        print(f"registered {metadata.name}:{metadata.version} ({', '.join(metadata.formats)})")
    return 0


EXPORTS = {
    "onnx": ("onnx", {}),
    "onnx_fp16": ("onnx", {"half": True}),
    "onnx_int8": ("onnx", {"int8": True}),
    "openvino": ("openvino", {}),
    "openvino_fp16": ("openvino", {"half": True}),
}


def _export(settings: Settings, args: argparse.Namespace) -> int:
    from kit.compile import export_onnx, export_openvino, parity_check

    kind, options = EXPORTS[args.format]
    exporter = export_onnx if kind == "onnx" else export_openvino
    exported = exporter(args.weights, args.imgsz, data=args.data, **options)
    print(f"exported {exported}")
    if args.check:
        report = parity_check(args.weights, exported, args.check, imgsz=args.imgsz, strict=True)
        print(report)
    return 0


def _models(settings: Settings, args: argparse.Namespace) -> int:
    from kit.registry import ModelRegistry

    registry = ModelRegistry.from_settings(settings)
    if args.action == "register":
        return _register(settings, registry, args)
    if args.action == "promote":
        return _promote(registry, args)
    if args.action == "quantize":
        return _quantize(settings, registry, args)
    if args.action != "list" and not args.ref:
        raise ValueError(f"models {args.action} needs a model: a name, name:version or name:alias")
    if args.action == "list":
        for metadata in registry.list_models(args.ref):
            metrics = ", ".join(f"{k} {v:.3f}" for k, v in metadata.metrics.items() if "/" not in k)
            print(
                f"{metadata.name}:{metadata.version}  {metadata.classes}  {', '.join(metadata.formats)}  {metrics}"
            )
        for name in [args.ref] if args.ref else registry.model_names():
            for alias, version in registry.aliases(name).items():
                print(f"{name}:{alias} -> {version}")
    elif args.action == "get":
        print(registry.get(args.ref).model_dump_json(indent=2))
    elif args.action == "show":
        metadata = registry.get(args.ref)
        print(describe_model(metadata, registry.aliases(metadata.name)))
    elif args.action == "alias":
        name, alias, version = args.ref, args.alias, args.version
        print(f"{name}:{alias} -> {registry.alias(name, alias, version)}")
    elif args.action == "delete":
        print("\n".join(registry.delete(args.ref, int(args.version), force=args.force)))
    elif args.action == "download":
        print(registry.download(args.ref, args.format))
    return 0


def _promote(registry: ModelRegistry, args: argparse.Namespace) -> int:
    """``kit models promote CANDIDATE --data D``: prints both models' scores and the decision;
    0 whether or not the alias moved (not moving it is an answer, not a failure)."""
    from kit.promote import compare_and_promote

    if not args.ref or not args.data:
        raise ValueError(
            "models promote needs a candidate (name:version) and --data (the data.yaml whose val "
            "split both models are measured on)"
        )
    decision = compare_and_promote(
        args.ref,
        args.data,
        alias=args.alias_option or "production",
        fmt=args.format,
        min_gain=args.min_gain,
        force=args.force,
        promote=not args.dry_run,
        registry=registry,
    )
    for row in decision.rows():
        print(
            "  ".join(
                f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()
            )
        )
    print(decision.reason)
    return 0


def _quantize(settings: Settings, registry: ModelRegistry, args: argparse.Namespace) -> int:
    """``kit models quantize NAME:VERSION --backend B``: INT8, gated, added to the version; a
    refusal is an expected failure (exit 2, one line with the measured mAP50 drop)."""
    from kit.compile.quantize import quantize_registered

    if not args.ref or not args.backend:
        raise ValueError(
            "models quantize needs a model version (name:version) and --backend (onnxruntime "
            "or openvino)"
        )
    accepted, metadata = quantize_registered(
        args.ref, backend=args.backend, data=args.data, registry=registry, settings=settings
    )
    report = accepted.report
    print(
        f"{metadata.ref}: added {accepted.format} (mAP50 {report.candidate_map50:.4f} vs "
        f"{report.reference_map50:.4f} for FP32 on {len(report.images)} held-out images, a "
        f"drop of {accepted.map50_drop:.4f})"
    )
    return 0


def _register(settings: Settings, registry: ModelRegistry, args: argparse.Namespace) -> int:
    from kit.data.fetch import local_dataset, uploaded_dataset_prefix
    from kit.registry import register_model_file

    if not args.ref:
        raise ValueError(
            "models register needs the model file: kit models register FILE --name NAME"
        )
    if not args.name:
        raise ValueError("models register needs --name NAME: the registry name of the model")
    metadata = register_model_file(
        args.name,
        args.ref,
        alias=args.alias_option,
        export=_comma_list(args.export),
        check=local_dataset(args.check, settings=settings).data_yaml if args.check else None,
        classes=_comma_list(args.classes) or None,
        imgsz=args.imgsz,
        description=args.description,
        parent=registry.get(args.parent).ref if args.parent else None,
        dataset=uploaded_dataset_prefix(settings, args.dataset) if args.dataset else None,
        registry=registry,
    )
    aliases = {args.alias_option: metadata.version} if args.alias_option else {}
    print(f"registered {metadata.name}:{metadata.version}")
    print(describe_model(metadata, aliases))
    return 0


def _comma_list(text: str | None) -> list[str]:
    return [item.strip() for item in (text or "").split(",") if item.strip()]


def describe_model(metadata: ModelMetadata, aliases: dict[str, int]) -> str:
    """A registered version for people: classes, input, formats with checksums, metrics, aliases."""
    pointing = [a for a, v in aliases.items() if v == metadata.version]
    lines = [
        f"{metadata.name}:{metadata.version}"
        + (f"  (aliases: {', '.join(pointing)})" if pointing else ""),
        f"  task: {metadata.task}",
        f"  classes ({len(metadata.classes)}): {', '.join(metadata.classes)}",
        f"  input size: {metadata.input_size} px, stride {metadata.stride}",
    ]
    for fmt, artifact in metadata.formats.items():
        lines.append(
            f"  {fmt}: {artifact.file} ({artifact.size_bytes:,} bytes, {artifact.precision}, "
            f"sha256 {artifact.sha256[:16]}…)"
        )
    if metadata.metrics:
        shown = ", ".join(f"{k} {v:.3f}" for k, v in metadata.metrics.items() if "/" not in k)
        lines.append(f"  metrics: {shown}")
    for label, value in (
        ("parent", metadata.parent),
        ("dataset", metadata.dataset),
        ("framework", metadata.framework),
        ("description", metadata.description),
    ):
        if value:
            lines.append(f"  {label}: {value}")
    lines.append(f"  registered: {metadata.created_at.isoformat(timespec='seconds')}")
    return "\n".join(lines)


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
    from kit.demo import run_demo, stop_demo

    if args.stop:
        stop_demo(settings)
        return 0
    return run_demo(settings, port=args.port, detach=args.detach, dashboard=not args.no_dashboard)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kit", description="Edge Vision Kit")
    parser.add_argument(
        "--config", help="settings file (default: $EVK_CONFIG or <project>/evk.yaml)"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    commands = parser.add_subparsers(dest="command", required=True)

    local = commands.add_parser("local", help="the local AWS target (moto server + runners)")
    local.add_argument(
        "action",
        choices=["up", "down", "status", "snapshot"],
        help="up: start (or reuse) the stack and restore its data; down: save a snapshot and stop; "
        "status: is it running, where; snapshot: save the data now",
    )
    local.add_argument("--no-snapshot", action="store_true", help="down: do not save the data")
    local.add_argument("--json", action="store_true", help="status: print JSON")
    local.set_defaults(run=_local)

    alerts = commands.add_parser("alerts", help="alerts sent by the backend (local target)")
    alerts.add_argument(
        "action", choices=["tail"], help="tail: print the alert e-mails as the topic sends them"
    )
    alerts.add_argument("--once", action="store_true", help="print what is waiting, then exit")
    alerts.set_defaults(run=_alerts)

    aws_cmd = commands.add_parser("aws", help="the aws target: stack outputs, Cognito users")
    aws_actions = aws_cmd.add_subparsers(dest="action", required=True)
    outputs = aws_actions.add_parser("outputs", help="write settings from the Pulumi stack outputs")
    outputs.add_argument(
        "--from", dest="source", help="a JSON file of `pulumi stack output --json`"
    )
    outputs.add_argument("--stack", help="the Pulumi stack (when asking the Pulumi CLI)")
    outputs.add_argument("--write", help="the settings file to write (default: <project>/evk.yaml)")
    create_user = aws_actions.add_parser("create-user", help="create a dashboard user in Cognito")
    create_user.add_argument("email", help="the user's e-mail address (their login)")
    create_user.add_argument(
        "--temporary-password", help="the first password (default: Cognito generates one)"
    )
    create_user.add_argument(
        "--no-invitation", action="store_true", help="do not e-mail the invitation"
    )
    aws_cmd.set_defaults(run=_aws)

    train = commands.add_parser("train", help="train a YOLO detector locally (ultralytics, CPU)")
    train.add_argument(
        "--data",
        required=True,
        help="a YOLO dataset's data.yaml (or its folder) on this machine, or an uploaded dataset: "
        "name:v<n>, or name for its newest version (downloaded to <state dir>/datasets)",
    )
    train.add_argument(
        "--base",
        default=None,
        help="what to fine-tune: a registered model (shelf:production), a local .pt, a hub "
        "checkpoint (yolo11s.pt: needs it locally or allow_downloads), or yolo11n.yaml (from "
        "scratch); default: the COCO-pretrained yolo11n.pt when available, else from scratch",
    )
    train.add_argument("--epochs", type=int, default=30, help="training epochs (default 30)")
    train.add_argument(
        "--imgsz", type=int, default=320, help="square input size in pixels (default 320)"
    )
    train.add_argument("--batch", type=int, default=16, help="images per batch (default 16)")
    train.add_argument("--register", metavar="NAME", help="register the weights + ONNX as NAME")
    train.set_defaults(run=_train)

    export = commands.add_parser(
        "export", help="export weights (ONNX / OpenVINO) with a parity check"
    )
    export.add_argument("weights", help="a .pt file")
    export.add_argument(
        "--format", choices=sorted(EXPORTS), default="onnx", help="the export format (default onnx)"
    )
    export.add_argument("--imgsz", type=int, default=None, help="default: the training size")
    export.add_argument("--data", help="calibration data.yaml (INT8)")
    export.add_argument(
        "--check", metavar="DATA", help="a data.yaml: fail unless the export agrees"
    )
    export.set_defaults(run=_export)

    models = commands.add_parser("models", help="the model registry (models/<name>/<version>/)")
    models.add_argument(
        "action",
        choices=[
            "list",
            "show",
            "get",
            "register",
            "alias",
            "promote",
            "quantize",
            "delete",
            "download",
        ],
        help="list: versions (with classes) and aliases; show: one version for people; get: its "
        "metadata as JSON; register: a model FILE (.pt, .onnx, OpenVINO .xml or folder) as a new "
        "version of --name (a `kit train` run's best.pt keeps the run's metrics and parent); "
        "alias: point NAME:ALIAS at VERSION; promote: measure a candidate version and the "
        "--alias model (default production) on --data's held-out images and move the alias "
        "only when the candidate is better (or --force); quantize: add an INT8 format to a "
        "version (--backend), calibrated and judged on --data (default: its dataset), refused "
        "when its mAP50 drops more than 0.01; delete: one version; download: one format into "
        "the cache",
    )
    models.add_argument(
        "ref", nargs="?", help="a name, name:version or name:alias; register: the model file"
    )
    models.add_argument("alias", nargs="?", help="alias: the alias name")
    models.add_argument("version", nargs="?", help="alias/delete: the version")
    models.add_argument(
        "--format", default="onnx", help="download, promote: the format (default onnx)"
    )
    models.add_argument(
        "--force",
        action="store_true",
        help="delete: even if an alias points to it; promote: move the alias even if not better",
    )
    models.add_argument(
        "--data",
        help="promote: the data.yaml whose val (held-out) split both models are scored on; "
        "quantize: the data.yaml (or uploaded dataset name:v<n>) that calibrates and judges",
    )
    models.add_argument(
        "--backend",
        choices=["onnxruntime", "openvino"],
        help="quantize: the backend the INT8 model is for (onnx_int8 / openvino_int8)",
    )
    models.add_argument(
        "--min-gain",
        type=float,
        default=0.0,
        help="promote: how much better (mAP50-95) the candidate must be (default 0)",
    )
    models.add_argument(
        "--dry-run", action="store_true", help="promote: measure and say, move nothing"
    )
    models.add_argument("--name", help="register: the registry name (lower-case, digits, _ and -)")
    models.add_argument(
        "--alias",
        dest="alias_option",
        metavar="ALIAS",
        help="register: point this alias (e.g. production) at the new version; promote: the "
        "alias to move (default production)",
    )
    models.add_argument(
        "--export",
        metavar="FORMATS",
        help="register a .pt: also derive these formats (comma separated: onnx, onnx_fp16, "
        "openvino), each parity-checked against the weights",
    )
    models.add_argument(
        "--check",
        metavar="DATA",
        help="register --export: the parity check's data.yaml, uploaded dataset (name:v<n>) or "
        "image folder (default: the sample images ultralytics ships); a dataset's val-split mAP50 of the weights and of "
        "each export are recorded (pytorch/mAP50, onnx/mAP50 ...)",
    )
    models.add_argument(
        "--classes",
        metavar="NAMES",
        help="register: class names in class-id order, comma separated (for a file without "
        "ultralytics metadata)",
    )
    models.add_argument(
        "--imgsz",
        type=int,
        help="register: the square input size in pixels (for a file without metadata)",
    )
    models.add_argument("--description", default="", help="register: free text for the registry")
    models.add_argument(
        "--parent",
        metavar="NAME:VER",
        help="register: the registered model it was fine-tuned from (default: the one its kit "
        "training run recorded)",
    )
    models.add_argument(
        "--dataset",
        metavar="NAME:vN",
        help="register: the uploaded dataset version it was trained on (name alone: the newest)",
    )
    models.set_defaults(run=_models)

    show = commands.add_parser("settings", help="print the resolved settings")
    show.add_argument("--env", action="store_true", help="as EVK_* environment variables")
    show.set_defaults(run=_settings)

    schemas = commands.add_parser("schemas", help="export the contracts' JSON Schemas")
    schemas.add_argument("--out", help="folder (default: docs/schemas)")
    schemas.set_defaults(run=_schemas)

    from kit.deploy.commands import add_commands

    add_commands(commands)

    from kit.data.commands import add_commands as add_data_commands

    add_data_commands(commands)

    from kit.cameras_cli import add_commands as add_camera_commands

    add_camera_commands(commands)

    demo = commands.add_parser(
        "demo", help="run the main job on the local target (three use cases, live)"
    )
    demo.add_argument("--port", type=int, default=8866, help="the dashboard's port on 127.0.0.1")
    demo.add_argument("--detach", action="store_true", help="return once everything runs")
    demo.add_argument("--stop", action="store_true", help="stop what `kit demo --detach` started")
    demo.add_argument("--no-dashboard", action="store_true", help="do not serve the dashboard")
    demo.set_defaults(run=_demo)
    return parser


def run_command(args: argparse.Namespace, settings: Settings | None = None) -> int:
    """Run a parsed command (with ``settings``, default: loaded from ``args.config``).

    Returns:
        The command's exit code; 2 with one ``kit: error:`` line on stderr for an expected
        failure (:func:`describe_error`), 130 for Ctrl-C. Anything else (a bug) raises.
    """
    run: Callable[[Settings, argparse.Namespace], int] = args.run
    try:
        if settings is None:
            settings = load_settings(args.config)
        return run(settings, args)
    except KeyboardInterrupt:
        return 130
    except Exception as error:
        line = describe_error(error, settings)
        if line is None:
            raise
        print(f"kit: error: {line}", file=sys.stderr)
        return 2


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("botocore").setLevel(logging.WARNING)
    return run_command(args)


if __name__ == "__main__":
    sys.exit(main())
