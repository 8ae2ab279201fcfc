"""The ``kit package``, ``kit deploy``, ``kit devices`` and ``kit device`` commands.

Wire them into ``kit.cli.build_parser`` with :func:`add_commands` (each parser sets
``run=<function(settings, args) -> exit code>``, as the other kit commands do)::

    kit package bundle|greengrass|container|panorama [--model shelf:production] [--camera id=src ...]
    kit deploy --target local --device demo-1 --model shelf:production
    kit deploy --model shop:1 --camera door=images/ --camera-option door.loop=true [--cameras cams.yaml]
    kit deploy --target greengrass --thing-group evk-edge [--model ...]
    kit deploy --target panorama --device device-abc --app-dir build/edge/panorama/evk_edge_app --role-arn ...
    kit devices [--json] [--greengrass] [--panorama]
    kit device status|stop|restart|rollback|logs|remove demo-1
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kit.core.settings import Settings, find_project_root

Command = Callable[[Settings, argparse.Namespace], int]


SOURCE_OPTIONS = ("loop", "fps", "fastest", "decode_threads", "kind")
"""Camera options that belong to its source (``edge_app.sources.SourceSpec``)."""

CAMERA_OPTIONS = ("process_fps",)
"""Camera options that belong to the camera itself (``edge_app.config.CameraConfig``)."""

OPTION_HELP = (
    "loop (true: a file or folder starts again at its end), fps (frames a second a file or "
    "folder is played at, or a live source thinned to), fastest (true: no pacing), "
    "decode_threads (FFmpeg threads, 0-64), kind (file, images, webcam, stream), process_fps "
    "(most frames a second analysed)"
)


def _cameras(args: argparse.Namespace, *, local_paths: bool = False) -> list[dict[str, Any]] | None:
    """The cameras ``--cameras``, ``--camera`` and ``--camera-option`` give, each checked as the
    device will check it; None when none is given (demo cameras).

    Args:
        args: the parsed command line.
        local_paths: the device is this machine: relative file and folder sources are made
            absolute (from the current folder, or the cameras file's folder); otherwise they
            are paths on the device, kept as written.

    Raises:
        ValueError: one line naming the camera, the option and what is allowed.
    """
    from kit.package.device import parse_camera

    cameras: list[dict[str, Any]] = []
    if args.cameras:
        cameras += read_cameras_file(Path(args.cameras), local_paths=local_paths)
    for text in args.camera or []:
        camera = parse_camera(text)
        if local_paths:
            camera["source"] = _absolute_source(camera["source"], Path.cwd())
        cameras.append(camera)
    if not cameras:
        if args.camera_option:
            raise ValueError("--camera-option needs the camera it names from --camera or --cameras")
        return None
    by_id: dict[str, dict[str, Any]] = {}
    for camera in cameras:
        if camera["id"] in by_id:
            raise ValueError(f"camera {camera['id']!r} is given twice; camera ids must be unique")
        by_id[camera["id"]] = camera
    for text in args.camera_option or []:
        camera_id, key, value = _parse_camera_option(text, by_id)
        _set_option(by_id[camera_id], key, value)
    for camera in cameras:
        if args.process_fps is not None:
            camera.setdefault("process_fps", args.process_fps)
        _check_camera(camera)
    return cameras


def read_cameras_file(path: Path, *, local_paths: bool = False) -> list[dict[str, Any]]:
    """The cameras of a YAML file: a list of cameras, or a map from camera id to a source or a
    camera (optionally under a top-level ``cameras`` key)::

        - {id: door, source: images/door/, loop: true, process_fps: 2}
        - {id: dock, source: rtsp://10.0.0.7/live}

        door: {source: images/door/, loop: true, fps: 5}
        dock: rtsp://10.0.0.7/live

    A camera holds ``source`` and any device-config camera field (``process_fps``, ``model``,
    ``privacy``, ``crops``); the source options (``loop``, ``fps``, ``fastest``,
    ``decode_threads``, ``kind``) may stand next to ``source`` or inside it as in device.yaml.

    Args:
        path: the file.
        local_paths: make relative file and folder sources absolute from the file's folder.

    Raises:
        ValueError: the file is missing, not YAML, or not cameras (naming the entry).
    """
    import yaml

    try:
        document = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"cameras file {path} does not exist") from None
    except (OSError, yaml.YAMLError) as error:
        raise ValueError(f"cannot read cameras file {path}: {error}") from None
    if isinstance(document, dict) and set(document) == {"cameras"}:
        document = document["cameras"]
    if isinstance(document, dict):
        entries = [
            {"id": camera_id, **(value if isinstance(value, dict) else {"source": value})}
            for camera_id, value in document.items()
        ]
    elif isinstance(document, list) and all(isinstance(entry, dict) for entry in document):
        entries = [dict(entry) for entry in document]
    else:
        raise ValueError(
            f"cameras file {path} must hold a list of cameras ({{id, source, options}}) or a "
            f"map from camera id to a source or camera, not {type(document).__name__}"
        )
    if not entries:
        raise ValueError(f"cameras file {path} holds no camera")
    cameras = []
    for position, entry in enumerate(entries):
        camera_id = entry.pop("id", None)
        if not isinstance(camera_id, str) or "source" not in entry:
            raise ValueError(
                f"cameras file {path}, camera {camera_id or position + 1}: needs an id and a "
                f"source (got {sorted(entry)} besides the id)"
            )
        source = entry.pop("source")
        camera: dict[str, Any] = {"id": camera_id, "source": source}
        for key, value in entry.items():
            _set_option(camera, key, value)
        if local_paths:
            camera["source"] = _absolute_source(camera["source"], path.resolve().parent)
        cameras.append(camera)
    return cameras


def _parse_camera_option(text: str, cameras: dict[str, Any]) -> tuple[str, str, Any]:
    """``(camera id, key, value)`` of ``<camera>.<key>=<value>``; the value read as YAML
    (``true``, ``5``, ``2.5``, text)."""
    import yaml

    target, separator, raw = text.partition("=")
    camera_id, dot, key = target.rpartition(".")
    if not separator or not dot or not camera_id or not key:
        raise ValueError(
            f"camera option {text!r} must be written <camera>.<key>=<value>, e.g. door.loop=true"
        )
    if camera_id not in cameras:
        raise ValueError(
            f"camera option {text!r} names camera {camera_id!r}, which no --camera or --cameras "
            f"gives; cameras: {', '.join(cameras)}"
        )
    if key not in (*SOURCE_OPTIONS, *CAMERA_OPTIONS):
        raise ValueError(
            f"camera {camera_id!r}: unknown option {key!r}; allowed: "
            f"{', '.join(sorted((*SOURCE_OPTIONS, *CAMERA_OPTIONS)))}"
        )
    try:
        value = yaml.safe_load(raw) if raw.strip() else raw
    except yaml.YAMLError:
        value = raw
    return camera_id, key, value


def _set_option(camera: dict[str, Any], key: str, value: Any) -> None:
    """Set ``key`` on ``camera``: a source option goes into its source (made a mapping)."""
    if key not in SOURCE_OPTIONS:
        camera[key] = value
        return
    source = camera["source"]
    if not isinstance(source, dict):
        source = {"uri": source}
    camera["source"] = {**source, key: value}


def _absolute_source(source: Any, base: Path) -> Any:
    """``source`` with a relative file or folder path made absolute from ``base`` (a trailing
    slash, which makes a folder an image folder, kept); anything else unchanged."""
    if isinstance(source, dict):
        return {**source, "uri": _absolute_source(source.get("uri"), base)}
    if not isinstance(source, str) or "://" in source or ":" in source.split("/", 1)[0]:
        return source  # URLs, webcam:N, images:/..., file:/...
    if source.isdigit() or Path(source).expanduser().is_absolute():
        return source
    folder = source.endswith(("/", "\\"))
    absolute = str((base / source).resolve())
    return absolute + "/" if folder else absolute


def _check_camera(camera: dict[str, Any]) -> None:
    """Check ``camera`` as the device will (its source, then the camera's fields).

    Raises:
        ValueError: ``camera '<id>': <what is wrong and what is allowed>``.
    """
    from pydantic import ValidationError

    from edge_app.config import CameraConfig
    from edge_app.sources import SourceSpec
    from kit.core.contracts.base import contract_error

    try:
        SourceSpec.parse(camera["source"])
    except ValueError as error:
        raise ValueError(f"camera {camera['id']!r}: {error}") from None
    try:
        CameraConfig.model_validate(camera)
    except ValidationError as error:
        problems = contract_error("CameraConfig", error).problems
        raise ValueError(
            f"camera {camera['id']!r}: "
            + "; ".join(f"{p['field']}: {p['allowed']} (got {p['value']})" for p in problems)
        ) from None


def _default_out(kind: str) -> Path:
    return (find_project_root() or Path.cwd()) / "build" / "edge" / kind


def _build_bundle(settings: Settings, args: argparse.Namespace, out: Path, target: str):
    """The bundle for ``kit package``: model from the registry, given or demo cameras."""
    from kit.deploy.local import resolve_model
    from kit.package import build_bundle, demo_cameras, device_config, device_settings

    resolved, model_file = None, None
    if args.model:
        resolved, model_file = resolve_model(settings, args.model)
    cameras, videos = _cameras(args), {}
    if cameras is None:
        cameras, videos = demo_cameras(
            settings.state_dir / "demo-videos",
            count=args.demo_cameras,
            model_name=resolved.split(":")[0] if resolved else None,
        )
    config = device_config(
        args.device or settings.device_id,
        cameras,
        model=resolved,
        settings=device_settings(settings, target=target),
        heartbeat_s=args.heartbeat_s,
    )
    bundle = build_bundle(
        out,
        device_config=config,
        models={resolved: model_file} if model_file and not args.no_ship_model else None,
        videos=videos,
    )
    return bundle, resolved, cameras if not videos else [], model_file


def _panorama_model(settings: Settings, resolved: str, scratch: Path) -> tuple[Path, int]:
    """The Neo archive of a registered model for Panorama's model node (TorchScript, the
    framework Panorama documents) and its input size."""
    from kit.compile.neo import package_for_neo
    from kit.registry import ModelRegistry

    registry = ModelRegistry.from_settings(settings)
    metadata = registry.get(resolved)
    if "pytorch" not in metadata.formats:
        raise LookupError(
            f"model {resolved} has no pytorch format ({', '.join(metadata.formats)}): Panorama's "
            "model node needs the PyTorch weights (register the .pt), or pass --no-model-node to "
            "run the shipped ONNX with ONNX Runtime on the appliance's CPU"
        )
    weights = registry.download(resolved, "pytorch", cache_dir=scratch / "models")
    archive = package_for_neo(
        weights, metadata.input_size, framework="PYTORCH", output=scratch / "model.tar.gz"
    )
    return archive, metadata.input_size


def package_command(settings: Settings, args: argparse.Namespace) -> int:
    """``kit package bundle|greengrass|container|panorama``."""
    from kit.package import (
        build_component,
        build_container_context,
        build_panorama_app,
        default_configuration,
        device_settings,
    )

    out = Path(args.out) if args.out else _default_out(args.kind)
    target = {"bundle": settings.target, "container": settings.target}.get(args.kind, "aws")
    if args.kind == "panorama":
        with tempfile.TemporaryDirectory(prefix="kit-panorama-") as scratch:
            bundle, resolved, _, model_file = _build_bundle(settings, args, Path(scratch), target)
            neo_archive, input_size = None, None
            if model_file is not None and not args.no_model_node:
                neo_archive, input_size = _panorama_model(settings, resolved, Path(scratch))
            app = build_panorama_app(
                out,
                bundle,
                model_file=neo_archive,
                input_size=input_size,
                app_name=args.app_name,
                account_id=args.account_id or _account_id(settings),
                package_version=args.package_version,
                threshold=args.threshold,
                refresh_s=args.refresh_s,
                **({"base_image": args.base_image} if args.base_image else {}),
            )
        print(
            "note: AWS Panorama reached end of support on 2026-05-31; this application is for "
            "appliances that still run it. Living targets: `kit package greengrass|container`."
        )
        print(f"Panorama application: {app.path} (validated)")
        print(f"  graph:   {app.graph_file}")
        print(f"  code:    {app.code_package}")
        if app.model_package:
            print(f"  model:   {app.model_package}")
        print(
            "Register it with `panorama-cli package-application` (needs Docker), then deploy with"
        )
        print(f"  kit deploy --target panorama --device <appliance id> --app-dir {app.path}")
        return 0
    bundle, resolved, cameras, _ = _build_bundle(settings, args, out, target)
    print(f"bundle: {bundle.path} (sha256 {bundle.sha256}, app {bundle.app_version})")
    if args.kind == "greengrass":
        from kit.package.greengrass import component_arn, next_component_version

        greengrass = settings.client("greengrassv2") if args.publish else None
        if args.component_version:
            version = args.component_version
        elif greengrass is not None:
            account = settings.client("sts").get_caller_identity()["Account"]
            arn = component_arn(greengrass, account, args.component_name)
            version = next_component_version(greengrass, arn, bundle.app_version)
        else:
            version = ".".join(bundle.app_version.split(".")[:2] + ["0"])
        configuration = default_configuration(
            device_id="",
            cameras=cameras,
            model=resolved or "",
            settings=device_settings(settings, target="aws"),
            heartbeat_s=args.heartbeat_s,
        )
        component = build_component(
            bundle,
            bucket=settings.resources.bucket,
            component_version=version,
            configuration=configuration,
            component_name=args.component_name,
            out_dir=out,
        )
        print(f"recipe: {component.recipe_file} ({component.component_name} {version}, validated)")
        if args.publish:
            from kit.package import publish_component

            component = publish_component(
                component, bundle, s3=settings.client("s3"), greengrass=greengrass
            )
            print(
                f"published {component.arn} ({component.status}); artefact {component.artifact_uri}"
            )
    elif args.kind == "container":
        context = build_container_context(
            out, bundle, platform=args.platform, base_image=args.base_image
        )
        print(f"Dockerfile: {context.dockerfile} (validated)")
        print(f"build it with: {context.build_command}")
    return 0


def _account_id(settings: Settings) -> str:
    if settings.target == "local":
        from kit.package.panorama import PLACEHOLDER_ACCOUNT

        return PLACEHOLDER_ACCOUNT
    return settings.client("sts").get_caller_identity()["Account"]


def deploy_command(settings: Settings, args: argparse.Namespace) -> int:
    """``kit deploy --target local|greengrass|panorama``."""
    if args.target == "local":
        from kit.deploy.local import deploy_local

        device = args.device or settings.device_id
        deployment = deploy_local(
            settings,
            device,
            model=args.model,
            cameras=_cameras(args, local_paths=True),
            demo_camera_count=args.demo_cameras,
            ship_model=not args.no_ship_model,
            heartbeat_s=args.heartbeat_s,
            log_level=args.log_level,
            start=not args.no_start,
        )
        print(
            f"deployed bundle {deployment.bundle.sha256[:12]} (app {deployment.bundle.app_version}"
            f", model {deployment.model or 'from the control config'}) to {deployment.directory}"
        )
        if deployment.process:
            print(
                f"started the edge app: pid {deployment.process.pid}, log {deployment.process.log_file}"
            )
            if args.wait:
                return _wait_running(settings, device, args.wait)
        return 0
    if args.target == "greengrass":
        from kit.deploy.greengrass import deploy_greengrass, wait_for_deployment

        result = deploy_greengrass(
            settings,
            thing=args.thing,
            thing_group=args.thing_group,
            model=args.model,
            cameras=_cameras(args),
            device_id=args.device or "",
            component_name=args.component_name,
            component_version=args.component_version,
            ship_model=not args.no_ship_model,
            heartbeat_s=args.heartbeat_s,
        )
        component = result.component
        print(
            f"component {component.component_name} {component.component_version}: {component.arn}"
        )
        print(f"deployment {result.deployment_id} to {result.target_arn}")
        if args.wait:
            state = wait_for_deployment(
                settings.client("greengrassv2"), result.deployment_id, timeout_s=args.wait
            )
            print(f"deployment {state.deployment_id}: {state.status}")
            return 0 if state.status in ("ACTIVE", "COMPLETED") else 3
        return 0
    from kit.deploy.panorama import deploy_application, panorama_client

    if not args.app_dir or not args.device:
        raise ValueError(
            "--target panorama needs --app-dir (from `kit package panorama`) and --device "
            "(the appliance id, see `kit devices --panorama`)"
        )
    instance = deploy_application(
        panorama_client(settings),
        Path(args.app_dir),
        device_id=args.device,
        role_arn=args.role_arn,
        replace=args.replace,
    )
    print(f"Panorama application instance {instance} on {args.device}")
    return 0


def _wait_running(settings: Settings, device_id: str, timeout_s: float) -> int:
    from kit.deploy.status import device_status, format_devices

    deadline = time.monotonic() + timeout_s
    while True:
        statuses = [s for s in device_status(settings) if s.device_id == device_id]
        cameras = statuses[0].cameras if statuses else []
        if (
            statuses
            and statuses[0].health == "RUNNING"
            and cameras
            and all(c.state == "running" and c.fps > 0 for c in cameras)
        ):
            print(format_devices(statuses))
            return 0
        if time.monotonic() > deadline:
            print(format_devices(statuses))
            print(f"kit: {device_id} is not RUNNING after {timeout_s:.0f} s", file=sys.stderr)
            return 3
        time.sleep(1.0)


def devices_command(settings: Settings, args: argparse.Namespace) -> int:
    """``kit devices``: every device with health, heartbeat, app, cameras and fps."""
    from kit.deploy.status import device_status, format_devices

    greengrass = settings.client("greengrassv2") if args.greengrass else None
    statuses = device_status(settings, greengrass=greengrass)
    panorama = []
    if args.panorama:
        from kit.deploy.panorama import panorama_client, panorama_devices

        panorama = panorama_devices(panorama_client(settings))
    if args.json:
        document: dict[str, Any] = {"devices": [s.to_json() for s in statuses]}
        if args.panorama:
            document["panorama"] = [d.__dict__ for d in panorama]
        print(json.dumps(document, indent=2, default=str))
        return 0
    print(format_devices(statuses))
    for device in panorama:
        print(
            f"panorama {device.device_id} {device.name or ''}: {device.provisioning_status}, "
            f"{device.connection_status}, software {device.current_software}"
        )
    return 0


def device_command(settings: Settings, args: argparse.Namespace) -> int:
    """``kit device status|stop|restart|rollback|logs|remove <device>`` (local devices)."""
    from kit.deploy.local import LocalDevice
    from kit.deploy.status import device_status, format_devices

    device = LocalDevice(settings, args.device)
    if args.action != "status" and device.deployment is None:
        raise LookupError(f"no local device {args.device!r} under {device.directory.parent}")
    if args.action == "stop":
        print(f"{args.device}: {'stopped' if device.stop() else 'was not running'}")
    elif args.action == "restart":
        print(f"{args.device}: restarted, pid {device.restart().pid}")
    elif args.action == "rollback":
        print(f"{args.device}: rolled back, pid {device.rollback().pid}")
    elif args.action == "logs":
        print("\n".join(device.log_tail(args.lines)))
    elif args.action == "remove":
        device.remove()
        print(f"{args.device}: removed")
    else:
        statuses = [s for s in device_status(settings) if s.device_id == args.device]
        if args.json:
            print(json.dumps([s.to_json() for s in statuses], indent=2, default=str))
        else:
            print(format_devices(statuses))
        return 0 if statuses and statuses[0].health == "RUNNING" else 3
    return 0


def _add_device_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="a registered model: name, name:<version> or name:<alias>")
    parser.add_argument(
        "--camera",
        action="append",
        metavar="ID=SOURCE",
        help="a camera (repeat): a video file, an image folder (folder/), rtsp://..., webcam:0; "
        "default: synthetic demo cameras",
    )
    parser.add_argument(
        "--camera-option",
        action="append",
        metavar="ID.KEY=VALUE",
        help=f"an option of a camera given by --camera or --cameras (repeat), e.g. "
        f"door.loop=true: {OPTION_HELP}",
    )
    parser.add_argument(
        "--cameras",
        metavar="FILE.yaml",
        help="cameras from a YAML file: a list of {id, source, options} or a map from id to a "
        "source or {source, options}; options as --camera-option's, and privacy, crops, model; "
        "relative paths are relative to the file",
    )
    parser.add_argument("--demo-cameras", type=int, default=1, help="how many demo cameras")
    parser.add_argument(
        "--process-fps",
        type=float,
        help="frames a second each camera analyses (a camera's process_fps option wins)",
    )
    parser.add_argument(
        "--heartbeat-s", type=float, default=10.0, help="seconds between heartbeats"
    )
    parser.add_argument(
        "--no-ship-model", action="store_true", help="let the device download the model instead"
    )


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Add ``package``, ``deploy``, ``devices`` and ``device`` to the kit's subcommands."""
    package = commands.add_parser(
        "package",
        help="build the edge bundle, a Greengrass component, a container or a Panorama app",
    )
    package.add_argument(
        "kind",
        choices=["bundle", "greengrass", "container", "panorama"],
        help="bundle: the zip every target runs; greengrass: a component (recipe + artefact); "
        "container: a Dockerfile context; panorama: an application (legacy: Panorama ended "
        "2026-05-31)",
    )
    package.add_argument("--out", help="output folder (default: build/edge/<kind>)")
    package.add_argument("--device", help="the device id in the bundle's config")
    _add_device_options(package)
    package.add_argument(
        "--component-name",
        default="com.edgevisionkit.EdgeApp",
        help="greengrass: the component's name",
    )
    package.add_argument("--component-version", help="greengrass: major.minor.patch")
    package.add_argument(
        "--publish",
        action="store_true",
        help="greengrass: upload the artefact and create the component version",
    )
    package.add_argument(
        "--platform", choices=["linux", "jetson"], default="linux", help="container base"
    )
    package.add_argument(
        "--base-image",
        help="container: another tag of the platform's base image; panorama: a code-node base "
        "image with Python 3.11+ and the Panorama SDK",
    )
    package.add_argument(
        "--app-name", default="evk_edge_app", help="panorama: the application name"
    )
    package.add_argument("--account-id", help="panorama: the package owner (default: your account)")
    package.add_argument("--package-version", default="1.0", help="panorama: major.minor")
    package.add_argument(
        "--threshold", type=float, default=0.25, help="panorama: default confidence"
    )
    package.add_argument("--refresh-s", type=int, default=5, help="panorama: default refresh rate")
    package.add_argument(
        "--no-model-node", action="store_true", help="panorama: run ONNX Runtime in the code node"
    )
    package.set_defaults(run=package_command)

    deploy = commands.add_parser("deploy", help="deploy the edge app to a device")
    deploy.add_argument(
        "--target",
        choices=["local", "greengrass", "panorama"],
        default="local",
        help="local: a process on this machine; greengrass: core devices; panorama: a legacy "
        "appliance (default local)",
    )
    deploy.add_argument("--device", help="local: the device id; panorama: the appliance id")
    _add_device_options(deploy)
    deploy.add_argument("--thing", help="greengrass: a core device's thing name")
    deploy.add_argument("--thing-group", help="greengrass: a thing group")
    deploy.add_argument(
        "--component-name",
        default="com.edgevisionkit.EdgeApp",
        help="greengrass: the component's name",
    )
    deploy.add_argument("--component-version", help="greengrass: default the next patch version")
    deploy.add_argument("--app-dir", help="panorama: the application from `kit package panorama`")
    deploy.add_argument("--role-arn", help="panorama: the application's runtime role")
    deploy.add_argument("--replace", help="panorama: the application instance to replace")
    deploy.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="the edge app's log level (default INFO)",
    )
    deploy.add_argument("--no-start", action="store_true", help="local: install without starting")
    deploy.add_argument(
        "--wait",
        type=float,
        metavar="SECONDS",
        help="wait until RUNNING (local) or the deployment is done",
    )
    deploy.set_defaults(run=deploy_command)

    devices = commands.add_parser(
        "devices", help="devices: health, heartbeats, apps, cameras and fps"
    )
    devices.add_argument("--json", action="store_true", help="print JSON")
    devices.add_argument(
        "--greengrass", action="store_true", help="include Greengrass core devices"
    )
    devices.add_argument("--panorama", action="store_true", help="include Panorama appliances")
    devices.set_defaults(run=devices_command)

    device = commands.add_parser(
        "device", help="one local device: status, stop, restart, rollback, logs"
    )
    device.add_argument(
        "action",
        choices=["status", "stop", "restart", "rollback", "logs", "remove"],
        help="status: process and backend health; stop/restart: the local app; rollback: the "
        "previous bundle; logs: the app's log; remove: uninstall the local device",
    )
    device.add_argument("device", help="the device id")
    device.add_argument("--lines", type=int, default=40, help="logs: how many lines")
    device.add_argument("--json", action="store_true", help="status: print JSON")
    device.set_defaults(run=device_command)
