"""The local device: a folder that receives the same bundle a Greengrass core device would,
and runs the edge app from it as a detached process, started and stopped by pid.

Everything lives under ``<state_dir>/devices/<device>/``::

    bundle/<bundle>.zip   the bundle received by the last deployment
    current/              the unpacked bundle the app runs from
    previous/             the bundle before it (``rollback`` swaps them)
    work/                 the app's work dir ({work:path}): device.json, spool/, model-cache/
    configuration.json    the component configuration (deviceId, cameras, model, settings ...)
    deployment.json       what is deployed: app version, bundle sha256, model, when
    process.json          the running process (pid + start time) and whether it was stopped
    logs/app.log          the app's output

The app is started exactly as the Greengrass recipe's Run step starts it
(:class:`kit.package.greengrass.RunCommand`): write ``work/device.json`` from the bundle's
device config and the configuration, then ``exec python -m edge_app --config work/device.json``
with the bundle on ``PYTHONPATH``. Locally, the kit's own interpreter stands in for the venv
the recipe's Install step creates (it has the edge requirements).

Examples:
    >>> from kit.deploy import deploy_local
    >>> deployment = deploy_local(settings, "demo-1", model="shelf:production")  # doctest: +SKIP
    >>> LocalDevice(settings, "demo-1").stop()                                     # doctest: +SKIP
    True
"""

from __future__ import annotations

import json
import logging
import re
import shlex
import shutil
import sys
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kit.core.contracts.base import IDENTIFIER_PATTERN, PATTERN_HELP
from kit.core.settings import Settings
from kit.local.processes import ServiceRecord, start_service, stop_service
from kit.package.bundle import Bundle, build_bundle, unpack_bundle
from kit.package.device import demo_cameras, device_config, device_settings, model_ref
from kit.package.greengrass import RunCommand, default_configuration

log = logging.getLogger(__name__)

DEVICES_FOLDER = "devices"
PROCESS_FILE = "process.json"
DEPLOYMENT_FILE = "deployment.json"
CONFIGURATION_FILE = "configuration.json"
STOP_TIMEOUT_S = 15.0


class DeviceError(RuntimeError):
    """A local device cannot be deployed, started or stopped; the message says why."""


def interpolate_configuration(
    configuration: Mapping[str, Any], *, thing_name: str
) -> dict[str, str]:
    """The ``EDGE_*`` values Greengrass would set from ``configuration`` (JSON for lists and
    objects, text for the rest), keyed by configuration key, for :meth:`RunCommand.environment`."""
    values: dict[str, str] = {"thingName": thing_name}
    for key in ("deviceId", "cameras", "model", "settings", "heartbeatS"):
        value = configuration.get(key)
        if value is None:
            continue
        values[key] = value if isinstance(value, str) else json.dumps(value)
    return values


@dataclass(frozen=True)
class LocalDeployment:
    """What :func:`deploy_local` did."""

    device_id: str
    directory: Path
    bundle: Bundle
    model: str | None
    process: ServiceRecord | None


class LocalDevice:
    """One local device folder (see the module docstring).

    Args:
        settings: the kit settings (the folder is under ``settings.state_dir``).
        device_id: the device.
    """

    def __init__(self, settings: Settings, device_id: str):
        if not re.match(IDENTIFIER_PATTERN, device_id):
            raise DeviceError(f"device id {device_id!r} must be {PATTERN_HELP[IDENTIFIER_PATTERN]}")
        self.settings = settings
        self.device_id = device_id
        self.directory = settings.state_dir / DEVICES_FOLDER / device_id

    # -- paths and records ---------------------------------------------------------------------
    @property
    def current(self) -> Path:
        return self.directory / "current"

    @property
    def previous(self) -> Path:
        return self.directory / "previous"

    @property
    def work_dir(self) -> Path:
        return self.directory / "work"

    @property
    def log_file(self) -> Path:
        return self.directory / "logs" / "app.log"

    def _read(self, name: str) -> dict[str, Any] | None:
        path = self.directory / name
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError:
            log.warning("ignoring unreadable %s", path)
            return None

    def _write(self, name: str, data: Mapping[str, Any]) -> None:
        path = self.directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".part")
        partial.write_text(json.dumps(data, indent=1, default=str))
        partial.replace(path)

    @property
    def deployment(self) -> dict[str, Any] | None:
        """``deployment.json``: what is deployed (None before the first deployment)."""
        return self._read(DEPLOYMENT_FILE)

    @property
    def configuration(self) -> dict[str, Any]:
        return self._read(CONFIGURATION_FILE) or {}

    def process_record(self) -> ServiceRecord | None:
        """The last started process (alive or not)."""
        data = self._read(PROCESS_FILE)
        if not data:
            return None
        fields = {k: data[k] for k in ("name", "pid", "create_time", "argv", "log_file", "url")}
        return ServiceRecord(**fields)

    def process_state(self) -> str:
        """``running``, ``stopped`` (by :meth:`stop`), ``exited`` (ended on its own) or ``never started``."""
        data = self._read(PROCESS_FILE)
        if not data:
            return "never started"
        record = self.process_record()
        if record is not None and record.is_alive():
            return "running"
        return "stopped" if data.get("state") == "stopped" else "exited"

    def process_started_at(self) -> datetime | None:
        """When the last process was started (UTC, from the process's own start time)."""
        record = self.process_record()
        return datetime.fromtimestamp(record.create_time, UTC) if record else None

    def log_tail(self, lines: int = 20) -> list[str]:
        """The last ``lines`` lines of the app's log."""
        if not self.log_file.is_file():
            return []
        with open(self.log_file, "rb") as stream:
            stream.seek(0, 2)
            stream.seek(max(0, stream.tell() - 64_000))
            text = stream.read().decode("utf-8", "replace")
        return text.splitlines()[-lines:]

    # -- lifecycle -----------------------------------------------------------------------------
    def install(
        self, bundle: Bundle, configuration: Mapping[str, Any], *, model: str | None
    ) -> None:
        """Receive ``bundle``: unpack it into ``current/`` (the old one becomes ``previous/``)."""
        received = self.directory / "bundle" / bundle.path.name
        received.parent.mkdir(parents=True, exist_ok=True)
        if received.resolve() != bundle.path.resolve():
            shutil.copyfile(bundle.path, received)
        staging = self.directory / "incoming"
        unpack_bundle(received, staging)
        if self.current.exists():
            if self.previous.exists():
                shutil.rmtree(self.previous)
            self.current.replace(self.previous)
        staging.replace(self.current)
        previous = self.deployment
        self._write(CONFIGURATION_FILE, configuration)
        self._write(
            DEPLOYMENT_FILE,
            {
                "device_id": self.device_id,
                "target": "local",
                "app": bundle.manifest["app"],
                "app_version": bundle.app_version,
                "bundle": bundle.path.name,
                "bundle_sha256": bundle.sha256,
                "model": model,
                "deployed_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "previous": {k: v for k, v in (previous or {}).items() if k != "previous"} or None,
            },
        )

    def run_command(self, log_level: str = "INFO") -> RunCommand:
        """The recipe's Run command with this device's paths and the kit's interpreter."""
        return RunCommand(
            python=sys.executable,
            bundle_root=str(self.current),
            work_dir=str(self.work_dir),
            log_level=log_level,
        )

    def start(self) -> ServiceRecord:
        """Start the app from ``current/`` (a running one is kept).

        Raises:
            DeviceError: nothing is deployed yet.
        """
        if not (self.current / "manifest.json").is_file():
            raise DeviceError(
                f"nothing is deployed on {self.device_id}; run `kit deploy --target local "
                f"--device {self.device_id}` first"
            )
        record = self.process_record()
        if record is not None and record.is_alive():
            return record
        configuration = self.configuration
        run = self.run_command(configuration.get("logLevel", "INFO"))
        env = run.environment(interpolate_configuration(configuration, thing_name=self.device_id))
        self.work_dir.mkdir(parents=True, exist_ok=True)
        # Greengrass runs lifecycle scripts in the component's work folder; so does the device.
        script = f"cd {shlex.quote(str(self.work_dir))} && {run.script()}"
        record = start_service(
            f"edge-{self.device_id}", ["sh", "-c", script], self.log_file, env=env
        )
        self._write(
            PROCESS_FILE,
            {
                **record.to_json(),
                "state": "running",
                "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
            },
        )
        return record

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> bool:
        """Stop the app (SIGTERM to its process group, SIGKILL after ``timeout_s``).

        Returns:
            True when a running app was stopped, False when none ran.
        """
        data = self._read(PROCESS_FILE)
        record = self.process_record()
        if record is None or data is None:
            return False
        stopped = stop_service(record, timeout_s=timeout_s)
        self._write(
            PROCESS_FILE,
            {
                **data,
                "state": "stopped",
                "stopped_at": datetime.now(UTC).isoformat(timespec="seconds"),
            },
        )
        return stopped

    def restart(self) -> ServiceRecord:
        """Stop (if running) and start again from ``current/``."""
        self.stop()
        return self.start()

    def rollback(self) -> ServiceRecord:
        """Swap ``current/`` and ``previous/`` and restart: back to the bundle deployed before.

        Raises:
            DeviceError: there is no previous bundle.
        """
        deployment = self.deployment or {}
        if not (self.previous / "manifest.json").is_file() or not deployment.get("previous"):
            raise DeviceError(f"{self.device_id} has no previous bundle to roll back to")
        self.stop()
        swap = self.directory / "swap"
        self.current.replace(swap)
        self.previous.replace(self.current)
        swap.replace(self.previous)
        previous = dict(deployment["previous"])
        previous["previous"] = {k: v for k, v in deployment.items() if k != "previous"}
        previous["rolled_back_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        self._write(DEPLOYMENT_FILE, previous)
        return self.start()

    def remove(self) -> None:
        """Stop the app and delete the device folder."""
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


def local_devices(settings: Settings) -> list[LocalDevice]:
    """Every local device that has been deployed, by id."""
    root = settings.state_dir / DEVICES_FOLDER
    if not root.is_dir():
        return []
    return [
        LocalDevice(settings, folder.name)
        for folder in sorted(root.iterdir())
        if (folder / DEPLOYMENT_FILE).is_file()
    ]


def bundle_cameras(bundle: Bundle) -> list[dict[str, Any]]:
    """The cameras of a bundle's own device config."""
    import zipfile

    import yaml

    with zipfile.ZipFile(bundle.path) as archive:
        config = yaml.safe_load(archive.read("device.yaml")) or {}
    return list(config.get("cameras", []))


def resolve_model(
    settings: Settings, model: str, cache_dir: Path | None = None
) -> tuple[str, Path]:
    """The numbered reference and the verified local ONNX file of a registered model.

    Raises:
        LookupError: the model, version, alias or ONNX format is not in the registry.
    """
    from kit.registry import ModelRegistry

    registry = ModelRegistry.from_settings(settings)
    resolved = registry.resolve(model_ref(model))
    path = registry.download(resolved, "onnx", cache_dir=cache_dir)
    return str(resolved), Path(path)


def deploy_local(
    settings: Settings,
    device_id: str,
    *,
    model: str | None = None,
    cameras: Iterable[Mapping[str, Any]] | None = None,
    demo_camera_count: int = 1,
    ship_model: bool = True,
    heartbeat_s: float = 10.0,
    log_level: str = "INFO",
    bundle: Bundle | None = None,
    start: bool = True,
) -> LocalDeployment:
    """Deploy the edge app to a local device: build the bundle, install it, (re)start the app.

    Args:
        settings: the kit settings (local target: the device talks to the local stack).
        device_id: the device.
        model: a registered model (``name``, ``name:3``, ``name:production``); None: the
            cameras wait for the control config to name one.
        cameras: camera configs (``parse_camera``); None: ``demo_camera_count`` synthetic
            cameras playing a scenario video that suits the model.
        demo_camera_count: how many demo cameras when ``cameras`` is None.
        ship_model: put the model file in the bundle (the app starts without downloading it).
        heartbeat_s: seconds between heartbeats.
        log_level: the app's log level.
        bundle: deploy this prebuilt bundle instead of building one (its device config is the
            default; ``model`` and ``cameras`` still override it through the configuration).
        start: start the app after installing.

    Raises:
        DeviceError: the device id is invalid.
        LookupError: the model is not in the registry.
        kit.package.BundleError: the bundle cannot be built.
    """
    device = LocalDevice(settings, device_id)
    resolved, model_file = (None, None)
    if model is not None:
        resolved, model_file = resolve_model(settings, model)
    device_values = device_settings(settings)
    with tempfile.TemporaryDirectory(prefix="kit-deploy-") as scratch:
        videos: dict[str, Path] = {}
        bundled_cameras = cameras is None
        if cameras is None and bundle is not None:
            cameras = bundle_cameras(bundle)
        elif cameras is None:
            cameras, videos = demo_cameras(
                settings.state_dir / "demo-videos",
                count=demo_camera_count,
                model_name=resolved.split(":")[0] if resolved else None,
            )
        cameras = [dict(camera) for camera in cameras]
        if bundle is None:
            config = device_config(
                device_id, cameras, model=resolved, settings=device_values, heartbeat_s=heartbeat_s
            )
            bundle = build_bundle(
                Path(scratch) / "bundle",
                device_config=config,
                models={resolved: model_file} if ship_model and model_file else None,
                videos=videos,
            )
        configuration = default_configuration(
            device_id=device_id,
            # cameras of the bundle (demo videos inside it) stay the bundle's
            cameras=[] if bundled_cameras else cameras,
            model=resolved or "",
            settings=device_values,
            heartbeat_s=heartbeat_s,
            log_level=log_level,
        )
        was_running = device.process_state() == "running"
        if was_running:
            device.stop()
        device.install(bundle, configuration, model=resolved)
    installed = Bundle(
        path=device.directory / "bundle" / bundle.path.name,
        sha256=bundle.sha256,
        manifest=bundle.manifest,
    )
    record = device.start() if start else None
    return LocalDeployment(device_id, device.directory, installed, resolved, record)
