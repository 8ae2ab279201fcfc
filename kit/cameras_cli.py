"""The ``kit cameras`` commands: each camera's model, thresholds and rules, through the control API.

What the dashboard's control panel sets, from the command line (the control API checks every
change as it checks the dashboard's: a rule's class must be one of the camera's model, a model
or alias must exist, a value must be in range; its refusal is one ``kit: error:`` line)::

    kit cameras list [--json]
    kit cameras show dock-1
    kit cameras set dock-1 --model crate:production --confidence 0.4 --refresh 2
    kit cameras set dock-1 --rule '{"type": "count_above", "class_name": "crate", "threshold": 2}'
    kit cameras set dock-1 --clear-rules --sampling '{"enabled": true}'

Wire them into ``kit.cli.build_parser`` with :func:`add_commands`.
"""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from kit.core.contracts import ControlConfig, parse
from kit.core.contracts.control import REFRESH_MAX_S, REFRESH_MIN_S, RULE_TYPES
from kit.core.registry import parse_model_ref
from kit.core.settings import Settings

if TYPE_CHECKING:
    from kit.dashboard import ControlApiClient

CONFLICT_RETRIES = 3
"""How often ``set`` reads the config again when someone else changed it in between (409)."""


def _client(settings: Settings) -> ControlApiClient:
    from kit.dashboard import ControlApiClient

    return ControlApiClient.from_settings(settings)


def describe_rule(rule: dict[str, Any]) -> str:
    """A rule for people: ``count_above crate > 2``, ``ppe_violation person/helmet``."""
    kind = rule["type"]
    named = f"{rule['name']}: " if rule.get("name") else ""
    zone = f" in {rule['zone']}" if rule.get("zone") else ""
    off = " (disabled)" if rule.get("enabled") is False else ""
    if kind == "count_below":
        what = f"{kind} {rule['class_name']}{zone} < {rule['threshold']}"
    elif kind == "count_above":
        what = f"{kind} {rule['class_name']}{zone} > {rule['threshold']}"
    elif kind == "rising_trend":
        what = f"{kind} {rule['class_name']}{zone}"
    elif kind == "ppe_violation":
        what = f"{kind} {rule.get('person_class', 'person')}/{rule.get('helmet_class', 'helmet')}"
    else:
        what = kind
    return f"{named}{what}{off}"


def _list(settings: Settings, args: argparse.Namespace) -> int:
    client = _client(settings)
    config = parse(ControlConfig, client.config())
    seen = {camera["camera_id"]: camera for camera in client.cameras()}
    rows = []
    for camera_id in sorted(set(seen) | set(config.cameras)):
        effective = config.for_camera(camera_id).model_dump(mode="json", exclude_none=True)
        record = seen.get(camera_id, {})
        rows.append(
            {
                "camera_id": camera_id,
                "device_id": record.get("device_id"),
                "model": _ref_text(effective.get("model")),
                "running": record.get("model"),
                "precision": effective["precision"],
                "confidence": effective["confidence"],
                "refresh_s": effective["refresh_s"],
                "rules": [describe_rule(rule) for rule in effective["rules"]],
                "configured": camera_id in config.cameras,
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no cameras configured or seen yet (`kit cameras set CAMERA ...` configures one)")
        return 0
    for row in rows:
        running = f" (running {row['running']})" if row["running"] else ""
        where = f" on {row['device_id']}" if row["device_id"] else ""
        print(
            f"{row['camera_id']}{where}: model {row['model'] or 'none'}{running}, "
            f"{row['precision']}, confidence {row['confidence']}, refresh {row['refresh_s']} s"
        )
        for rule in row["rules"] or ["no rules"]:
            print(f"    {rule}")
    print(f"config revision {config.revision}")
    return 0


def _ref_text(ref: dict[str, Any] | None) -> str | None:
    return f"{ref['name']}:{ref['version']}" if ref else None


def _show(settings: Settings, args: argparse.Namespace) -> int:
    print(json.dumps(_client(settings).camera_config(args.camera), indent=2))
    return 0


def _json_object(text: str, option: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"{option} {text!r} is not JSON: {error}") from None
    if not isinstance(value, dict):
        raise ValueError(f"{option} {text!r} must be a JSON object ({{...}})")
    return value


def camera_overrides(config: ControlConfig, camera_id: str, args: argparse.Namespace) -> dict:
    """The camera's overrides in ``config`` with the changes ``args`` ask for.

    A ``--rule`` replaces the camera's rule with the same key (its ``name``, else its ``type``)
    and is added otherwise; ``--clear-rules`` starts from none. ``--sampling`` keys are set on
    the camera's sampling settings, the others kept.

    Raises:
        ValueError: no change asked for, a bad model reference, or JSON that is not an object.
    """
    changes = ("model", "confidence", "iou", "max_detections", "refresh", "precision", "rule")
    if not any(getattr(args, name) is not None for name in changes) and not (
        args.clear_rules or args.sampling is not None
    ):
        raise ValueError(
            "cameras set needs a change: --model, --confidence, --iou, --max-detections, "
            "--refresh, --precision, --rule, --clear-rules or --sampling"
        )
    current = config.cameras.get(camera_id)
    overrides = current.model_dump(mode="json", exclude_none=True) if current else {}
    effective = config.for_camera(camera_id).model_dump(mode="json", exclude_none=True)
    if args.model is not None:
        ref = parse_model_ref(args.model)
        overrides["model"] = {"name": ref.name, "version": ref.version}
    for option, key in (
        ("confidence", "confidence"),
        ("iou", "iou"),
        ("max_detections", "max_detections"),
        ("refresh", "refresh_s"),
        ("precision", "precision"),
    ):
        if getattr(args, option) is not None:
            overrides[key] = getattr(args, option)
    new_rules = [_json_object(text, "--rule") for text in args.rule or []]
    if args.clear_rules or new_rules:
        rules = [] if args.clear_rules else list(effective["rules"])
        for rule in new_rules:
            key = rule.get("name") or rule.get("type")
            rules = [r for r in rules if (r.get("name") or r.get("type")) != key] + [rule]
        overrides["rules"] = rules
    if args.sampling is not None:
        sampling = _json_object(args.sampling, "--sampling")
        overrides["sampling"] = {**effective["sampling"], **sampling}
    return overrides


def _set(settings: Settings, args: argparse.Namespace) -> int:
    from kit.dashboard import ControlApiError

    client = _client(settings)
    for attempt in range(CONFLICT_RETRIES):
        config = parse(ControlConfig, client.config())
        overrides = camera_overrides(config, args.camera, args)
        try:
            answer = client.put_camera_config(args.camera, overrides, revision=config.revision)
            break
        except ControlApiError as error:
            if error.status != 409 or attempt == CONFLICT_RETRIES - 1:
                raise
    effective = answer["settings"]
    rules = "; ".join(describe_rule(rule) for rule in effective["rules"]) or "no rules"
    print(
        f"{args.camera}: config revision {answer['revision']}: model "
        f"{_ref_text(effective.get('model')) or 'none'}, {effective['precision']}, confidence "
        f"{effective['confidence']}, refresh {effective['refresh_s']} s; rules: {rules}"
    )
    return 0


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Add ``cameras`` (``list``, ``show``, ``set``) to the kit's subcommands."""
    cameras = commands.add_parser(
        "cameras", help="cameras' model, thresholds and rules (the control config, via its API)"
    )
    actions = cameras.add_subparsers(dest="cameras_command", required=True)

    listed = actions.add_parser(
        "list", help="every camera configured or seen: its model, precision, thresholds, rules"
    )
    listed.add_argument("--json", action="store_true", help="print JSON (one object a camera)")
    listed.set_defaults(run=_list)

    show = actions.add_parser(
        "show", help="one camera's effective settings and its own overrides, as JSON"
    )
    show.add_argument("camera", help="the camera id")
    show.set_defaults(run=_show)

    change = actions.add_parser(
        "set",
        help="change a camera's settings (others kept); the control API refuses a model or "
        "alias that does not exist and a rule on a class the camera's model lacks",
    )
    change.add_argument("camera", help="the camera id (a new id adds the camera to the config)")
    change.add_argument(
        "--model", metavar="NAME:VER", help="the model: name:version or name:alias (production)"
    )
    change.add_argument(
        "--confidence", type=float, metavar="X", help="lowest detection confidence, 0 to 1"
    )
    change.add_argument("--iou", type=float, metavar="X", help="NMS IoU threshold, 0 to 1")
    change.add_argument(
        "--max-detections", type=int, metavar="N", help="most detections kept per frame"
    )
    change.add_argument(
        "--refresh",
        type=int,
        metavar="S",
        help=f"seconds between payloads ({REFRESH_MIN_S} to {REFRESH_MAX_S})",
    )
    change.add_argument(
        "--precision",
        choices=["fp32", "int8"],
        help="int8 runs the model version's INT8 format (`kit models quantize` adds one)",
    )
    change.add_argument(
        "--rule",
        action="append",
        metavar="JSON",
        help='a rule as JSON, e.g. \'{"type": "count_above", "class_name": "crate", '
        f"\"threshold\": 2}}' (types: {', '.join(RULE_TYPES)}); replaces the camera's rule of the "
        "same name (or type), else is added; repeatable",
    )
    change.add_argument(
        "--clear-rules", action="store_true", help="remove the camera's rules (before any --rule)"
    )
    change.add_argument(
        "--sampling",
        metavar="JSON",
        help='frames kept for labelling, e.g. \'{"enabled": true, "random_share": 0.01}\' '
        "(keys: enabled, confidence_band, count_jump, random_share, max_per_hour); keys not "
        "given are kept",
    )
    change.set_defaults(run=_set)
