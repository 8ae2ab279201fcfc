"""The `kit` command line, run as a user runs it (a subprocess), on the commands' own folders."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import yaml

from kit.core.settings import load_settings


def kit(*args, env=None, timeout=120):
    return subprocess.run(
        [sys.executable, "-m", "kit.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def test_settings_prints_the_resolved_settings_and_env():
    shown = kit("settings", env={"EVK_PREFIX": "clishow"})
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["resources"]["bucket"] == "clishow-bucket"
    as_env = kit("settings", "--env", env={"EVK_PREFIX": "clishow"})
    assert "EVK_RESOURCES__DETECTIONS_QUEUE=clishow-detections" in as_env.stdout.splitlines()


def test_a_bad_setting_is_a_clear_error_not_a_traceback():
    result = kit("settings", env={"EVK_TARGET": "mars"})
    assert result.returncode == 2
    assert "Settings.target" in result.stderr and "Traceback" not in result.stderr


def test_aws_outputs_writes_the_settings_file(tmp_path):
    resources = load_settings(prefix="prod").resources.model_dump()
    outputs = {
        "region": "eu-north-1",
        "prefix": "prod",
        "api_url": "https://abc.execute-api.eu-north-1.amazonaws.com",
        "cognito_user_pool_id": "eu-north-1_AbC",
        "cognito_client_id": "client123",
        "resources": resources,
    }
    source = tmp_path / "outputs.json"
    source.write_text(json.dumps(outputs))
    target = tmp_path / "evk.yaml"
    result = kit("aws", "outputs", "--from", str(source), "--write", str(target))
    assert result.returncode == 0, result.stderr
    written = yaml.safe_load(target.read_text())
    assert written["target"] == "aws" and written["api_url"] == outputs["api_url"]
    settings = load_settings(target)
    assert settings.resources.bucket == resources["bucket"] and settings.aws_endpoint() is None


def test_alerts_tail_once_prints_what_the_topic_sent(backend_settings):
    sns = backend_settings.client("sns")
    topic = next(
        t["TopicArn"]
        for t in sns.list_topics()["Topics"]
        if t["TopicArn"].endswith(":evktest-alerts")
    )
    sns.publish(TopicArn=topic, Subject="[EVK] OPEN: shelf-1 count_below", Message="0 bottles vs 1")
    env = backend_settings.as_env()
    result = kit("alerts", "tail", "--once", env=env)
    assert result.returncode == 0, result.stderr
    assert "[EVK] OPEN: shelf-1 count_below" in result.stdout and "0 bottles vs 1" in result.stdout


def test_models_list_alias_get_and_a_clear_error_for_unknown_ones(backend_settings, tmp_path):
    from kit.registry import ModelRegistry

    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(b"not really a model, but bytes with a checksum")
    registry = ModelRegistry.from_settings(backend_settings)
    registry.register(
        "shelf", {"onnx": onnx}, classes=["bottle"], input_size=320, metrics={"mAP50": 0.9}
    )
    env = backend_settings.as_env()
    listed = kit("models", "list", env=env)
    assert listed.returncode == 0, listed.stderr
    assert "shelf:1  ['bottle']  onnx  mAP50 0.900" in listed.stdout
    aliased = kit("models", "alias", "shelf", "production", "1", env=env)
    assert aliased.returncode == 0 and "shelf:production -> shelf:1" in aliased.stdout
    got = kit("models", "get", "shelf:production", env=env)
    assert json.loads(got.stdout)["version"] == 1
    unknown = kit("models", "get", "fish", env=env)
    assert (
        unknown.returncode == 2 and "shelf" in unknown.stderr and "Traceback" not in unknown.stderr
    )
