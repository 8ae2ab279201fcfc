"""Write the config file the edge app runs with: the bundle's ``device.yaml`` + a target's configuration.

Shipped in every bundle as ``bin/write_device_config.py`` and run before the app by the
Greengrass component's Run step and by the local device (the same command)::

    python bin/write_device_config.py --out <work dir>/device.json
    python -m edge_app --config <work dir>/device.json

It needs only the standard library and PyYAML (and validates with the bundle's own
``edge_app.config``). The configuration comes from environment variables, which Greengrass
fills from the component configuration (``Setenv`` with ``{configuration:/...}``):

=================  =====================================================================
``EDGE_DEVICE_ID``  the device id; empty: ``EDGE_THING_NAME`` (the Greengrass thing), else
                    the bundle's
``EDGE_CAMERAS``    JSON list of cameras (``edge_app.config.CameraConfig``); empty or ``[]``
                    keeps the bundle's
``EDGE_MODEL``      ``name:version`` for every camera without a model; empty keeps the bundle's
``EDGE_SETTINGS``   JSON object of kit settings (target, region, prefix, endpoint_url,
                    api_url, resources …), merged over the bundle's
``EDGE_HEARTBEAT_S`` seconds between heartbeats; empty keeps the bundle's
=================  =====================================================================

Paths: shipped model files and camera videos are made absolute (inside the bundle); the
spool and the model cache stay relative to the work dir (``base_dir``), so they survive a new
bundle version. The bundle's ``inference`` section (backend, device, precision, execution
providers, threads: ``edge_app.detectors.config``) is kept as it is and validated with the rest;
a device that needs other inference settings gets its own ``device.yaml``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ENVIRONMENT_KEYS = {
    "deviceId": "EDGE_DEVICE_ID",
    "thingName": "EDGE_THING_NAME",
    "cameras": "EDGE_CAMERAS",
    "model": "EDGE_MODEL",
    "settings": "EDGE_SETTINGS",
    "heartbeatS": "EDGE_HEARTBEAT_S",
}
"""Component configuration key -> the environment variable that carries it to this script."""

_JSON_KEYS = {"cameras": list, "settings": dict}


class ConfigurationError(ValueError):
    """A configuration value is malformed; the message names the variable and the value."""


def configuration_from_environ(environ: Mapping[str, str]) -> dict[str, Any]:
    """The configuration values set in ``environ`` (empty values are left out).

    Raises:
        ConfigurationError: a JSON value that does not parse or has the wrong type.
    """
    configuration: dict[str, Any] = {}
    for key, variable in ENVIRONMENT_KEYS.items():
        raw = environ.get(variable, "").strip()
        if not raw:
            continue
        if key in _JSON_KEYS:
            try:
                value = json.loads(raw)
            except json.JSONDecodeError as error:
                raise ConfigurationError(
                    f"{variable} must be JSON ({_JSON_KEYS[key].__name__}); got {raw[:200]!r}: {error}"
                ) from None
            if not isinstance(value, _JSON_KEYS[key]):
                raise ConfigurationError(
                    f"{variable} must be a JSON {_JSON_KEYS[key].__name__}, not {type(value).__name__}"
                )
            configuration[key] = value
        elif key == "heartbeatS":
            try:
                configuration[key] = float(raw)
            except ValueError:
                raise ConfigurationError(f"{variable} must be a number, got {raw!r}") from None
        else:
            configuration[key] = raw
    return configuration


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _model_ref(text: str) -> dict[str, Any]:
    name, _, version = text.partition(":")
    if not name:
        raise ConfigurationError(f"EDGE_MODEL must be 'name' or 'name:version', got {text!r}")
    version = version or "latest"
    return {"name": name, "version": int(version) if version.isdigit() else version}


def _in_bundle(value: str, bundle_root: Path) -> str:
    """``value`` made absolute when it is a relative path of a file or folder in the bundle."""
    if "://" in value or value.isdigit() or value.startswith("webcam:"):
        return value
    path = Path(value)
    if path.is_absolute() or not (bundle_root / path).exists():
        return value
    return str((bundle_root / path).resolve())


def compose_device_config(
    base: Mapping[str, Any],
    configuration: Mapping[str, Any],
    *,
    bundle_root: Path,
    work_dir: Path,
) -> dict[str, Any]:
    """The device config: ``base`` (the bundle's) with ``configuration`` applied, paths resolved.

    Args:
        base: the bundle's ``device.yaml`` content.
        configuration: keys of :data:`ENVIRONMENT_KEYS` (as :func:`configuration_from_environ`
            returns them).
        bundle_root: where the bundle is unpacked (shipped files are resolved against it).
        work_dir: where the app keeps its state (``base_dir``: spool, model cache).

    Examples:
        >>> compose_device_config(
        ...     {"device_id": "demo-1", "cameras": [{"id": "c1", "source": "rtsp://cam/1"}]},
        ...     {"thingName": "line-7-core", "model": "shelf:3"},
        ...     bundle_root=Path("/b"), work_dir=Path("/w"))["cameras"][0]["model"]
        {'name': 'shelf', 'version': 3}
    """
    config = json.loads(json.dumps(dict(base)))
    device_id = configuration.get("deviceId") or configuration.get("thingName")
    if device_id:
        config["device_id"] = device_id
    if configuration.get("cameras"):
        config["cameras"] = [dict(camera) for camera in configuration["cameras"]]
    if configuration.get("model"):
        model = _model_ref(configuration["model"])
        for camera in config.get("cameras", []):
            camera.setdefault("model", model)
            if camera["model"] is None:
                camera["model"] = model
    if configuration.get("settings"):
        config["settings"] = _merge(config.get("settings", {}), configuration["settings"])
    if configuration.get("heartbeatS"):
        config["heartbeat_s"] = configuration["heartbeatS"]
    config["models"] = {
        key: _in_bundle(str(path), bundle_root) for key, path in config.get("models", {}).items()
    }
    for camera in config.get("cameras", []):
        source = camera.get("source")
        if isinstance(source, str):
            camera["source"] = _in_bundle(source, bundle_root)
        elif isinstance(source, dict) and isinstance(source.get("uri"), str):
            camera["source"] = {**source, "uri": _in_bundle(source["uri"], bundle_root)}
    config["base_dir"] = str(work_dir.resolve())
    return config


def _validate(config: dict[str, Any], bundle_root: Path) -> str | None:
    """The validation error of ``config`` under the bundle's own edge_app (one line), or None."""
    if str(bundle_root) not in sys.path:
        sys.path.insert(0, str(bundle_root))
    from pydantic import ValidationError

    from edge_app.config import DeviceConfig
    from kit.core.contracts.base import contract_error

    try:
        DeviceConfig.model_validate(config)
    except ValidationError as error:
        problems = contract_error("DeviceConfig", error).problems
        return "; ".join(f"{p['field']}: {p['allowed']} (got {p['value']})" for p in problems)
    return None


def main(argv: list[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Write the config; exit 2 with a message on a bad configuration."""
    import yaml

    script_bundle = Path(__file__).resolve().parent.parent
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="the config file to write (JSON)")
    parser.add_argument("--bundle-root", default=str(script_bundle), help="the unpacked bundle")
    parser.add_argument("--work-dir", help="base_dir of the app's state (default: --out's folder)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    bundle_root = Path(args.bundle_root).resolve()
    work_dir = Path(args.work_dir) if args.work_dir else out.parent
    try:
        base = yaml.safe_load((bundle_root / "device.yaml").read_text()) or {}
        configuration = configuration_from_environ(os.environ if environ is None else environ)
        config = compose_device_config(
            base, configuration, bundle_root=bundle_root, work_dir=work_dir
        )
    except (OSError, ConfigurationError, yaml.YAMLError) as error:
        print(f"write_device_config: {error}", file=sys.stderr)
        return 2
    problem = _validate(config, bundle_root)
    if problem:
        print(f"write_device_config: the device config is invalid: {problem}", file=sys.stderr)
        return 2
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".part")
    partial.write_text(json.dumps(config, indent=1))
    partial.replace(out)
    print(f"write_device_config: wrote {out} for device {config['device_id']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
