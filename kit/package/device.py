"""Device configs for packages and deployments: cameras, the model, the settings a device needs.

Examples:
    >>> from kit.core.settings import load_settings
    >>> cameras = [parse_camera("shelf-1=rtsp://10.0.0.5/stream1")]
    >>> config = device_config("demo-1", cameras, model="shelf:3",
    ...                        settings=device_settings(load_settings(target="aws")))
    >>> config["cameras"][0]["model"]
    {'name': 'shelf', 'version': 3}
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from kit.core.contracts import ModelRef
from kit.core.contracts.base import IDENTIFIER_PATTERN, PATTERN_HELP
from kit.core.settings import Settings

DEMO_SCENARIOS = {"shelf": "bottles_removed", "fish": "fish_arriving", "ppe": "helmet_off"}
"""Model name fragment -> the synthetic scenario its demo camera shows."""
DEFAULT_DEMO_SCENARIO = "bottles_removed"


def model_ref(ref: ModelRef | str | None) -> ModelRef | None:
    """A :class:`ModelRef` from ``name``, ``name:3``, ``name:production`` (None stays None).

    Raises:
        ValueError: a malformed name or version (the message says what is allowed).
    """
    if ref is None or isinstance(ref, ModelRef):
        return ref
    from kit.registry import parse_model_ref

    return parse_model_ref(ref)


def parse_camera(text: str, *, process_fps: float | None = None) -> dict[str, Any]:
    """A camera config from ``<id>=<source>`` (source: file, ``rtsp://``, ``webcam:0``...).

    Raises:
        ValueError: no ``=``, or a malformed camera id.

    Examples:
        >>> parse_camera("dock=rtsp://10.0.0.7/live")
        {'id': 'dock', 'source': 'rtsp://10.0.0.7/live'}
    """
    camera_id, separator, source = text.partition("=")
    if not separator or not source:
        raise ValueError(
            f"camera {text!r} must be written <id>=<source>, e.g. shelf-1=rtsp://10.0.0.5/1"
        )
    if not re.match(IDENTIFIER_PATTERN, camera_id):
        raise ValueError(f"camera id {camera_id!r} must be {PATTERN_HELP[IDENTIFIER_PATTERN]}")
    camera: dict[str, Any] = {"id": camera_id, "source": source}
    if process_fps is not None:
        camera["process_fps"] = process_fps
    return camera


def demo_scenario(model_name: str | None) -> str:
    """The synthetic scenario that suits a model (``shelf`` -> ``bottles_removed`` ...)."""
    for fragment, scenario in DEMO_SCENARIOS.items():
        if model_name and fragment in model_name:
            return scenario
    return DEFAULT_DEMO_SCENARIO


def demo_cameras(
    out_dir: str | Path,
    *,
    count: int = 1,
    model_name: str | None = None,
    seconds: float = 10.0,
    fps: float = 10.0,
    size: tuple[int, int] = (640, 480),
    process_fps: float = 5.0,
) -> tuple[list[dict[str, Any]], dict[str, Path]]:
    """Synthetic demo cameras: a looping scenario video per camera.

    The videos are deterministic (one seed per camera): a video already in ``out_dir`` with the
    same scenario and parameters is reused, so keep ``out_dir`` to make redeployments fast.

    Args:
        out_dir: where the videos are kept (``<scenario>-<w>x<h>-<fps>fps-<s>s-<seed>.mp4``).
        count: how many cameras (1-16).
        model_name: picks the scenario (see :data:`DEMO_SCENARIOS`).
        seconds, fps, size: the videos.
        process_fps: frames a second each camera analyses.

    Returns:
        The camera configs (sources ``videos/<id>.mp4``, as shipped in a bundle) and the video
        files by camera id.

    Raises:
        ValueError: ``count`` outside 1-16.
    """
    if not 1 <= count <= 16:
        raise ValueError(f"demo camera count must be between 1 and 16, got {count}")
    from kit.synthetic import write_scenario_video

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    scenario = demo_scenario(model_name)
    cameras, videos = [], {}
    for index in range(1, count + 1):
        camera_id = f"demo-{index}"
        path = out_dir / f"{scenario}-{size[0]}x{size[1]}-{fps:g}fps-{seconds:g}s-{index}.mp4"
        if not path.is_file():
            partial = path.with_name(".partial-" + path.name)
            write_scenario_video(scenario, partial, seconds=seconds, fps=fps, size=size, seed=index)
            partial.replace(path)
            partial.with_suffix(".json").replace(path.with_suffix(".json"))
        videos[camera_id] = path
        cameras.append(
            {
                "id": camera_id,
                "source": {"uri": f"videos/{camera_id}.mp4", "loop": True},
                "process_fps": process_fps,
            }
        )
    return cameras, videos


def device_settings(settings: Settings, *, target: str | None = None) -> dict[str, Any]:
    """The kit settings a device runs with: target, region, prefix, resource names, endpoints.

    On the local target the moto endpoint and the local control API (with its token) are
    pinned, so the device reaches the stack the kit runs; on aws the device uses AWS's
    endpoints and its own role.
    """
    target = target or settings.target
    values: dict[str, Any] = {
        "target": target,
        "region": settings.region,
        "prefix": settings.prefix,
        "resources": settings.resources.model_dump(),
    }
    if target == "local":
        values["endpoint_url"] = settings.aws_endpoint()
        api_url = settings.control_api_url()
        if api_url:
            values["api_url"] = api_url
        values["api_token"] = settings.api_token
    elif settings.api_url:
        values["api_url"] = settings.api_url
    return values


def device_config(
    device_id: str,
    cameras: Iterable[Mapping[str, Any]],
    *,
    model: ModelRef | str | None = None,
    settings: Mapping[str, Any] | None = None,
    heartbeat_s: float = 10.0,
    control_poll_s: float = 5.0,
    inference: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A device config (``edge_app.config.DeviceConfig`` fields) as a plain mapping.

    Args:
        device_id: the device.
        cameras: camera configs; cameras without a model get ``model``.
        model: the model the cameras start with (the control config may switch it).
        settings: see :func:`device_settings`.
        heartbeat_s: seconds between heartbeats.
        control_poll_s: seconds between control config polls.
        inference: how the device runs its models, the ``inference`` section
            (``{"backend": "openvino", "device": "GPU", "precision": "f16"}``; see
            ``edge_app.detectors.config``); left out: ``auto`` on the CPU.

    Raises:
        ValueError: no camera, a malformed model reference, or an inference section that is
            not valid (naming the field and what is allowed).
    """
    cameras = [dict(camera) for camera in cameras]
    if not cameras:
        raise ValueError("a device needs at least one camera (give <id>=<source> or demo cameras)")
    ref = model_ref(model)
    for camera in cameras:
        if ref is not None and camera.get("model") is None:
            camera["model"] = ref.model_dump()
    config = {
        "device_id": device_id,
        "cameras": cameras,
        "settings": dict(settings or {}),
        "heartbeat_s": heartbeat_s,
        "control_poll_s": control_poll_s,
    }
    if inference is not None:
        config["inference"] = inference_section(inference)
    return config


def inference_section(values: Mapping[str, Any]) -> dict[str, Any]:
    """The ``inference`` section of a device config, validated, as device.yaml holds it.

    The fields given and the backend are kept (normalised: ``device: gpu`` -> ``GPU``); the
    defaults stay out, so a newer edge app's defaults apply. The old flat section
    (``backend``, ``threads``, ``performance_hint``) is the same typed section.

    Raises:
        ValueError: naming the bad field and what is allowed.

    Examples:
        >>> inference_section({"backend": "openvino", "device": "gpu.1"})
        {'backend': 'openvino', 'device': 'GPU.1'}
    """
    from edge_app.detectors.config import inference_config

    config = inference_config(values)
    return {"backend": config.backend, **config.model_dump(mode="json", exclude_unset=True)}
