"""The `kit` command line never dumps a traceback for an expected condition, and explains itself.

Each expected failure (stack down, model missing, bad reference, port taken) is one
``kit: error:`` line that says what and what to do, with a non-zero exit code.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

import pytest

from kit.cli import build_parser, describe_error
from kit.core.settings import load_settings
from kit.local.processes import free_port


def kit(*args, env=None, timeout=180):
    return subprocess.run(
        [sys.executable, "-m", "kit.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def _parsers(parser: argparse.ArgumentParser, path: tuple[str, ...] = ("kit",)):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, (*path, name))


def test_every_command_action_and_option_has_a_help_text():
    missing = []
    for path, parser in _parsers(build_parser()):
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            if isinstance(action, argparse._SubParsersAction):
                helps = {choice.dest: choice.help for choice in action._choices_actions}
                missing += [
                    f"{' '.join(path)} {name}" for name in action.choices if not helps[name]
                ]
            elif not action.help:
                missing.append(f"{' '.join(path)} {action.option_strings or action.dest}")
    assert not missing, f"no help text: {missing}"


@pytest.fixture(scope="module")
def stack_down(tmp_path_factory) -> dict[str, str]:
    """Settings of a local target whose stack is not running (a port nobody listens on)."""
    state = tmp_path_factory.mktemp("down")
    return {
        "EVK_TARGET": "local",
        "EVK_LOCAL_PORT": str(free_port()),
        "EVK_STATE_DIR": str(state),
        "EVK_PREFIX": "evkdown",
    }


@pytest.mark.parametrize(
    "command",
    [
        ("models", "list"),
        ("models", "get", "shelf:production"),
        ("alerts", "tail", "--once"),
        ("devices",),
        ("device", "status", "demo-1"),
    ],
    ids=lambda c: " ".join(c),
)
def test_with_the_stack_down_every_command_answers_in_one_line(stack_down, command):
    result = kit(*command, env=stack_down)

    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.stderr
    errors = [line for line in lines if line.startswith("kit: error:")]
    assert len(errors) == 1, result.stderr
    assert "kit local up" in errors[0]


def test_an_unknown_model_and_a_bad_reference_are_one_line_each(backend_settings):
    env = backend_settings.as_env()

    unknown = kit("models", "get", "nosuch:production", env=env)
    bad = kit("models", "get", "Not A Name", env=env)

    for result, expected in ((unknown, "no model named 'nosuch'"), (bad, "is not allowed")):
        assert result.returncode == 2 and "Traceback" not in result.stderr
        assert result.stderr.startswith("kit: error:") and expected in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_alerts_tail_once_prints_everything_waiting_not_ten(backend_settings):
    sns = backend_settings.client("sns")
    topic = next(
        t["TopicArn"]
        for t in sns.list_topics()["Topics"]
        if t["TopicArn"].endswith(f":{backend_settings.resources.alerts_topic}")
    )
    for number in range(23):
        sns.publish(TopicArn=topic, Subject=f"[EVK] OPEN: cam-{number}", Message=f"alert {number}")

    result = kit("alerts", "tail", "--once", env=backend_settings.as_env())

    assert result.returncode == 0, result.stderr
    assert sorted(line for line in result.stdout.splitlines() if line.startswith("[")) == sorted(
        line for line in result.stdout.splitlines() if "] [EVK] OPEN: cam-" in line
    )
    assert {f"alert {number}" for number in range(23)} <= set(result.stdout.splitlines())


def test_a_bug_is_not_hidden_as_an_expected_error():
    assert describe_error(TypeError("unsupported operand"), load_settings()) is None
    assert describe_error(ValueError("bad value"), load_settings()) == "bad value"
