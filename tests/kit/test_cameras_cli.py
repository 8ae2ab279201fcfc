"""`kit cameras list|show|set`: a camera's model, thresholds and rules from the command line,
through the real control API (the local runner over the session's moto server); what the API
refuses is one ``kit: error:`` line with its message."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from kit.cli import build_parser, run_command
from kit.core.settings import Settings
from kit.local.runner import LocalRunner
from kit.registry import ModelRegistry

CRATES_ABOVE_2 = json.dumps({"type": "count_above", "class_name": "crate", "threshold": 2})


@pytest.fixture
def served(backend_settings, tmp_path) -> Iterator[Settings]:
    """A clean backend with its control API served, and ``crate:1`` (classes crate, pallet)
    registered and aliased ``production``."""
    onnx = tmp_path / "crate.onnx"
    onnx.write_bytes(b"bytes standing for a model: the API reads only its metadata")
    registry = ModelRegistry.from_settings(backend_settings)
    registry.register("crate", {"onnx": onnx}, classes=["crate", "pallet"], input_size=320)
    registry.alias("crate", "production", 1)
    runner = LocalRunner(backend_settings, port=0, health_interval_s=3600, poll_wait_s=1).start()
    yield backend_settings.model_copy(update={"api_url": runner.url})
    runner.stop()


def kit(settings: Settings, capsys, *argv: str) -> tuple[int, str, str]:
    """Run ``kit ARGV`` in this process: (exit code, stdout, stderr)."""
    capsys.readouterr()
    code = run_command(build_parser().parse_args(list(argv)), settings)
    out, err = capsys.readouterr()
    return code, out, err


def show(settings: Settings, capsys, camera: str) -> dict:
    code, out, err = kit(settings, capsys, "cameras", "show", camera)
    assert code == 0, err
    return json.loads(out)


def test_set_then_show_and_list_a_cameras_model_thresholds_and_rule(served, capsys):
    code, out, err = kit(
        served, capsys, "cameras", "set", "dock-1", "--model", "crate:production",
        "--rule", CRATES_ABOVE_2, "--refresh", "2", "--confidence", "0.4", "--iou", "0.6",
        "--max-detections", "50",
    )  # fmt: skip

    assert code == 0, err
    assert "model crate:production" in out and "count_above crate > 2" in out
    shown = show(served, capsys, "dock-1")
    assert shown["overrides"]["model"] == {"name": "crate", "version": "production"}
    settings = shown["settings"]
    assert (settings["refresh_s"], settings["confidence"], settings["iou"]) == (2, 0.4, 0.6)
    assert settings["max_detections"] == 50 and settings["precision"] == "fp32"
    assert [(r["type"], r["class_name"], r["threshold"]) for r in settings["rules"]] == [
        ("count_above", "crate", 2)
    ]
    code, out, _ = kit(served, capsys, "cameras", "list")
    assert code == 0
    assert "dock-1: model crate:production, fp32, confidence 0.4, refresh 2 s" in out
    assert "    count_above crate > 2" in out
    code, out, _ = kit(served, capsys, "cameras", "list", "--json")
    (row,) = json.loads(out)
    assert (row["camera_id"], row["model"], row["rules"]) == (
        "dock-1",
        "crate:production",
        ["count_above crate > 2"],
    )


def test_a_rule_replaces_the_one_of_its_key_others_are_kept_and_clear_rules_empties(served, capsys):
    pallets = json.dumps(
        {"type": "count_below", "class_name": "pallet", "threshold": 1, "name": "pallets"}
    )
    assert kit(served, capsys, "cameras", "set", "dock-2", "--model", "crate:1",
               "--rule", CRATES_ABOVE_2, "--rule", pallets)[0] == 0  # fmt: skip
    raised = json.dumps({"type": "count_above", "class_name": "crate", "threshold": 5})

    assert kit(served, capsys, "cameras", "set", "dock-2", "--rule", raised)[0] == 0
    rules = show(served, capsys, "dock-2")["settings"]["rules"]
    assert [(r.get("name"), r["type"], r["threshold"]) for r in rules] == [
        ("pallets", "count_below", 1),
        (None, "count_above", 5),
    ]

    assert kit(served, capsys, "cameras", "set", "dock-2", "--confidence", "0.5")[0] == 0
    assert len(show(served, capsys, "dock-2")["settings"]["rules"]) == 2  # untouched

    assert kit(served, capsys, "cameras", "set", "dock-2", "--clear-rules")[0] == 0
    shown = show(served, capsys, "dock-2")
    assert shown["settings"]["rules"] == [] and shown["settings"]["confidence"] == 0.5
    assert shown["overrides"]["model"] == {"name": "crate", "version": 1}


def test_sampling_keys_given_are_set_and_the_others_kept(served, capsys):
    assert kit(served, capsys, "cameras", "set", "dock-3", "--model", "crate:1",
               "--sampling", '{"random_share": 0.05}')[0] == 0  # fmt: skip
    assert (
        kit(served, capsys, "cameras", "set", "dock-3", "--sampling", '{"enabled": true}')[0] == 0
    )

    sampling = show(served, capsys, "dock-3")["settings"]["sampling"]
    assert sampling["enabled"] is True and sampling["random_share"] == 0.05


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (["--rule", '{"type": "count_above", "class_name": "Crate", "threshold": 2}'],
         ["class not in the camera's model", "'Crate'", "crate, pallet"]),
        (["--model", "crate:typo"], ["unknown model", "crate:typo"]),
        (["--confidence", "1.5"], ["confidence", "1.5"]),
        (["--rule", '{"type": "count_sideways", "class_name": "crate"}'], ["count_sideways"]),
        (["--rule", "count_above crate 2"], ["--rule", "is not JSON"]),
        (["--model", "Not A Name"], ["model name 'Not A Name' is not allowed"]),
        ([], ["cameras set needs a change"]),
    ],
    ids=["misspelt class", "unknown alias", "confidence", "rule type", "not json", "bad ref",
         "nothing"],
)  # fmt: skip
def test_what_is_refused_is_one_error_line_with_the_reason_and_nothing_changes(
    served, capsys, change, expected
):
    assert kit(served, capsys, "cameras", "set", "dock-4", "--model", "crate:1",
               "--rule", CRATES_ABOVE_2)[0] == 0  # fmt: skip
    before = show(served, capsys, "dock-4")

    code, out, err = kit(served, capsys, "cameras", "set", "dock-4", *change)

    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and err.startswith("kit: error:"), err
    for text in expected:
        assert text in err, err
    assert show(served, capsys, "dock-4") == before


def test_as_a_user_runs_it_a_refusal_has_no_traceback(served):
    env = {**os.environ, **served.as_env()}
    rule = json.dumps({"type": "count_below", "class_name": "Falll", "threshold": 1})
    done = subprocess.run(
        [sys.executable, "-m", "kit.cli", "cameras", "set", "dock-5", "--model", "crate:1",
         "--rule", rule],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip

    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("kit: error:") and "Traceback" not in done.stderr
    assert "'Falll'" in done.stderr and "crate, pallet" in done.stderr
    shown = subprocess.run(
        [sys.executable, "-m", "kit.cli", "cameras", "show", "dock-5"],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert shown.returncode == 2 and "unknown camera 'dock-5'" in shown.stderr
