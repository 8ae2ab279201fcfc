"""The control panel's form for one camera, and the ``PUT /config/{camera}`` body it makes.

The form is read from ``GET /config/{camera}`` (the settings the camera runs with, and its own
overrides). Applying it writes the camera's overrides back, changing only what the user changed:

- model: the camera's own model override (None: use the defaults' model);
- confidence, NMS IoU, max detections, refresh rate and precision (``fp32`` or ``int8``, which
  the control API accepts only for a model version with an INT8 format): overridden when they
  differ from what the camera runs with;
- rules: one row per rule type (the first rule of that type on the camera); an edited row updates
  that rule in place (other fields such as its name, zone and cooldown stay), an enabled row of a
  type the camera lacks adds the rule, a disabled one sets ``enabled: false``. When the rules
  differ from what the camera runs with, the whole list becomes the camera's override. Every
  row edits its rule's ``min_duration_s`` (seconds a breach must hold before an alert opens),
  the count rows their ``hysteresis`` too.

The server validates the body; the panel shows its message when it refuses a value.

Examples:
    >>> camera = {"camera_id": "shelf-1", "revision": 3, "overrides": None,
    ...           "settings": {"model": None, "confidence": 0.25, "refresh_s": 5, "rules": []}}
    >>> form = camera_form(camera, classes=["bottle"])
    >>> form.rules["count_below"].enabled, form.rules["count_below"].params["class_name"]
    (False, 'bottle')
    >>> form.rules["count_below"].enabled = True
    >>> form.rules["count_below"].params["threshold"] = 3
    >>> overrides_body(camera, form)["rules"]
    [{'type': 'count_below', 'class_name': 'bottle', 'threshold': 3, 'hysteresis': 1, 'min_duration_s': 0}]
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any

from kit.core.contracts import (
    CameraSettings,
    CameraSilentRule,
    CountAboveRule,
    CountBelowRule,
    PpeViolationRule,
    RisingTrendRule,
)

EDITABLE_RULE_FIELDS: dict[str, tuple[str, ...]] = {
    "count_below": ("class_name", "threshold", "hysteresis", "min_duration_s"),
    "count_above": ("class_name", "threshold", "hysteresis", "min_duration_s"),
    "rising_trend": ("class_name", "min_slope_per_min", "window", "min_duration_s"),
    "ppe_violation": ("min_confidence", "min_overlap", "min_duration_s"),
    "camera_silent": ("factor", "min_duration_s"),
}
"""Per rule type, the parameters the panel edits (the rule's other fields are kept)."""


def _default(contract: Any, name: str) -> Any:
    return contract.model_fields[name].default


_MIN_DURATION = {"min_duration_s": _default(CameraSilentRule, "min_duration_s")}
NEW_RULE_DEFAULTS: dict[str, dict[str, Any]] = {
    "count_below": {
        "threshold": 1,
        "hysteresis": _default(CountBelowRule, "hysteresis"),
        **_MIN_DURATION,
    },
    "count_above": {
        "threshold": 10,
        "hysteresis": _default(CountAboveRule, "hysteresis"),
        **_MIN_DURATION,
    },
    "rising_trend": {
        "min_slope_per_min": _default(RisingTrendRule, "min_slope_per_min"),
        "window": _default(RisingTrendRule, "window"),
        **_MIN_DURATION,
    },
    "ppe_violation": {
        "min_confidence": _default(PpeViolationRule, "min_confidence"),
        "min_overlap": _default(PpeViolationRule, "min_overlap"),
        **_MIN_DURATION,
    },
    "camera_silent": {"factor": _default(CameraSilentRule, "factor"), **_MIN_DURATION},
}
"""What a rule row starts with when the camera has no rule of its type."""


def model_label(ref: dict[str, Any] | None) -> str | None:
    """``{"name": "shelf", "version": 2}`` → ``"shelf:2"`` (None stays None)."""
    if not ref:
        return None
    return f"{ref['name']}:{ref.get('version', 'latest')}"


def model_ref(label: str | None) -> dict[str, Any] | None:
    """``"shelf:2"`` → ``{"name": "shelf", "version": 2}``; ``"shelf"`` means ``shelf:latest``."""
    if not label:
        return None
    name, _, version = label.partition(":")
    version = version or "latest"
    return {"name": name, "version": int(version) if version.isdigit() else version}


def model_options(
    models: list[dict[str, Any]], *, current: str | None, inherited: str | None
) -> list[tuple[str, str | None]]:
    """The model dropdown's ``(label, value)`` pairs.

    Args:
        models: ``GET /models`` items (``name``, ``version``).
        current: the camera's own model override, kept in the list even if the registry lacks it.
        inherited: the model the camera gets without an override (for the first option's label).

    Returns:
        ``("default (<inherited>)", "")`` first (``""``: no override of its own), then per model
        ``name:latest`` and its versions, newest first.
    """
    versions: dict[str, set[int]] = {}
    for item in models:
        versions.setdefault(item["name"], set()).add(int(item["version"]))
    labels: list[str] = []
    for name in sorted(versions):
        labels.append(f"{name}:latest")
        labels += [f"{name}:{v}" for v in sorted(versions[name], reverse=True)]
    if current and current not in labels:
        labels.append(current)
    return [(f"default ({inherited or 'none'})", "")] + [(label, label) for label in labels]


def model_classes(models: list[dict[str, Any]], label: str | None) -> list[str]:
    """The class names of the registry model ``label`` names (its newest version for an alias)."""
    ref = model_ref(label)
    if ref is None:
        return []
    candidates = [m for m in models if m["name"] == ref["name"]]
    if isinstance(ref["version"], int):
        candidates = [m for m in candidates if int(m["version"]) == ref["version"]]
    if not candidates:
        return []
    return list(max(candidates, key=lambda m: int(m["version"]))["classes"])


@dataclass
class RuleRow:
    """One rule type's row: whether it is on, and the parameters the panel edits."""

    type: str
    enabled: bool
    params: dict[str, Any]


@dataclass
class CameraForm:
    """What the control panel edits for one camera.

    ``iou`` (NMS IoU threshold), ``max_detections`` and ``precision`` left at None keep what the
    camera runs with.
    """

    camera_id: str
    revision: int
    model: str | None
    confidence: float
    refresh_s: int
    rules: dict[str, RuleRow] = field(default_factory=dict)
    iou: float | None = None
    max_detections: int | None = None
    precision: str | None = None


def _first_rule(rules: list[dict[str, Any]], rule_type: str) -> dict[str, Any] | None:
    return next((rule for rule in rules if rule.get("type") == rule_type), None)


def camera_form(camera_config: dict[str, Any], classes: list[str] | None = None) -> CameraForm:
    """The form for a ``GET /config/{camera}`` answer.

    Args:
        camera_config: ``{camera_id, revision, settings, overrides}``.
        classes: class names to suggest for a new count or trend rule (the first is used).
    """
    settings = camera_config["settings"]
    overrides = camera_config.get("overrides") or {}
    rules = settings.get("rules") or []
    first_class = (classes or [""])[0]
    rows = {}
    for rule_type, names in EDITABLE_RULE_FIELDS.items():
        rule = _first_rule(rules, rule_type)
        if rule is None:
            params = dict(NEW_RULE_DEFAULTS[rule_type])
            if "class_name" in names:
                params["class_name"] = first_class
            rows[rule_type] = RuleRow(rule_type, False, {n: params[n] for n in names})
        else:
            rows[rule_type] = RuleRow(
                rule_type, bool(rule.get("enabled", True)), {n: rule.get(n) for n in names}
            )
    return CameraForm(
        camera_id=camera_config["camera_id"],
        revision=int(camera_config["revision"]),
        model=model_label(overrides.get("model")),
        confidence=float(settings["confidence"]),
        refresh_s=int(settings["refresh_s"]),
        rules=rows,
        iou=float(settings.get("iou", _default(CameraSettings, "iou"))),
        max_detections=int(
            settings.get("max_detections", _default(CameraSettings, "max_detections"))
        ),
        precision=str(_running(settings, "precision")),
    )


def apply_rule_row(rules: list[dict[str, Any]], row: RuleRow) -> list[dict[str, Any]]:
    """``rules`` with ``row`` applied to the first rule of its type (added when enabled and absent)."""
    edited = copy.deepcopy(rules)
    for index, rule in enumerate(edited):
        if rule.get("type") == row.type:
            edited[index] = {**rule, **row.params, "enabled": row.enabled}
            return edited
    if row.enabled:
        edited.append({"type": row.type, **row.params})
    return edited


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        try:
            return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9)
        except (TypeError, ValueError):
            return False
    return a == b


def edited_rules(settings: dict[str, Any], form: CameraForm) -> list[dict[str, Any]]:
    """The camera's rules with every row of ``form`` applied."""
    rules = list(settings.get("rules") or [])
    for row in form.rules.values():
        rules = apply_rule_row(rules, row)
    return rules


def _rules_equal(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> bool:
    if len(a) != len(b):
        return False
    for left, right in zip(a, b, strict=True):
        if set(left) - set(right) or any(
            not _same(value, right.get(key)) for key, value in left.items()
        ):
            return False
    return True


def overrides_body(camera_config: dict[str, Any], form: CameraForm) -> dict[str, Any]:
    """The ``PUT /config/{camera}`` body: the camera's overrides with the form's changes."""
    settings = camera_config["settings"]
    body = copy.deepcopy(camera_config.get("overrides") or {})
    if form.model != model_label(body.get("model")):
        if form.model is None:
            body.pop("model", None)
        else:
            body["model"] = model_ref(form.model)
    if not _same(form.confidence, settings["confidence"]):
        body["confidence"] = form.confidence
    for name, value in _detection_limits(form).items():
        if not _same(value, _running(settings, name)):
            body[name] = value
    if not _same(form.refresh_s, settings["refresh_s"]):
        body["refresh_s"] = form.refresh_s
    if form.precision is not None and form.precision != _running(settings, "precision"):
        body["precision"] = form.precision
    rules = edited_rules(settings, form)
    if not _rules_equal(rules, settings.get("rules") or []):
        body["rules"] = rules
    return body


def changes(camera_config: dict[str, Any], form: CameraForm) -> list[str]:
    """What applying ``form`` would change, one readable line each ([] when nothing)."""
    settings = camera_config["settings"]
    lines = []
    if form.model != model_label((camera_config.get("overrides") or {}).get("model")):
        lines.append(f"model → {form.model or 'default'}")
    if not _same(form.confidence, settings["confidence"]):
        lines.append(f"confidence {settings['confidence']} → {form.confidence}")
    for name, value in _detection_limits(form).items():
        if not _same(value, _running(settings, name)):
            label = "IoU" if name == "iou" else "max detections"
            lines.append(f"{label} {_running(settings, name)} → {value}")
    if not _same(form.refresh_s, settings["refresh_s"]):
        lines.append(f"refresh {settings['refresh_s']} s → {form.refresh_s} s")
    if form.precision is not None and form.precision != _running(settings, "precision"):
        lines.append(f"precision {_running(settings, 'precision')} → {form.precision}")
    before = settings.get("rules") or []
    for row in form.rules.values():
        old = _first_rule(before, row.type)
        new = _first_rule(apply_rule_row(before, row), row.type)
        if old is None and new is None:
            continue
        if old is None:
            lines.append(f"{row.type}: added {_params_text(row.params)}")
        elif not _rules_equal([new], [old]):
            state = "" if row.enabled else " (disabled)"
            lines.append(f"{row.type}: {_params_text(row.params)}{state}")
    return lines


def _detection_limits(form: CameraForm) -> dict[str, Any]:
    """The form's NMS settings that it sets (None: keep the camera's)."""
    limits = {"iou": form.iou, "max_detections": form.max_detections}
    return {name: value for name, value in limits.items() if value is not None}


def _running(settings: dict[str, Any], name: str) -> Any:
    """What the camera runs with for ``name`` (a config written before the field existed: its
    default)."""
    return settings.get(name, _default(CameraSettings, name))


def _params_text(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items())
