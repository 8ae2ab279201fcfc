"""The component's Install step run as a core device runs it: the recipe's script in a shell, its
recipe variables filled in, in a temporary work folder. With the machine's ``python3`` (3.11 or
newer) it makes the venv once and keeps it while the requirements do not change; an interpreter
that is too old, or missing, fails saying what was found and what to install.

The requirements file stands in for the bundle's: ``pip``, which every new venv already has, so
pip never needs the network (``PIP_NO_INDEX`` makes sure of it)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from kit.package import build_component, default_configuration
from kit.package.greengrass import INSTALL_STAMP, MIN_PYTHON

RECIPE_VARIABLE = re.compile(r"\{([A-Za-z.]+):([^{}]*)\}")


def interpolate(text: str, *, work: Path, artifacts: Path, configuration: Mapping[str, Any]) -> str:
    """Fill in recipe variables as the Greengrass nucleus does (the ones the recipe uses)."""

    def value(match: re.Match) -> str:
        namespace, key = match.groups()
        if namespace == "work" and key == "path":
            return str(work)
        if namespace == "artifacts" and key == "decompressedPath":
            return str(artifacts)
        if namespace == "configuration":
            return str(configuration[key.lstrip("/")])
        raise AssertionError(f"the Install step uses a variable the test does not fill: {match[0]}")

    return RECIPE_VARIABLE.sub(value, text)


class Device:
    """A core device's folders for the component, and its Install step."""

    def __init__(self, root: Path, recipe: Mapping[str, Any], bundle_name: str):
        self.work = root / "work" / "com.edgevisionkit.EdgeApp"
        self.artifacts = root / "artifacts-unarchived" / "com.edgevisionkit.EdgeApp" / "0.1.0"
        self.requirements = self.artifacts / bundle_name / "requirements.txt"
        self.requirements.parent.mkdir(parents=True)
        self.work.mkdir(parents=True)
        self.requirements.write_text("pip\n")
        self.step = recipe["Manifests"][0]["Lifecycle"]["Install"]
        self.configuration = dict(recipe["ComponentConfiguration"]["DefaultConfiguration"])

    @property
    def venv(self) -> Path:
        return self.work / "venv"

    def install(self, **configuration: Any) -> subprocess.CompletedProcess:
        values = {**self.configuration, **configuration}
        fill = {"work": self.work, "artifacts": self.artifacts, "configuration": values}
        env = {
            **os.environ,
            **{name: interpolate(v, **fill) for name, v in self.step["Setenv"].items()},
            "PIP_NO_INDEX": "1",
        }
        return subprocess.run(
            ["sh", "-c", interpolate(self.step["Script"], **fill)],
            cwd=self.work,
            env=env,
            capture_output=True,
            text=True,
            timeout=self.step["Timeout"],
            check=False,
        )


@pytest.fixture
def device(tmp_path, bundle) -> Device:
    component = build_component(
        bundle,
        bucket="evk-bucket",
        component_version="0.1.0",
        configuration=default_configuration(model="shelf:3"),
    )
    return Device(tmp_path, component.recipe, bundle.name)


def _machine_python3() -> tuple[int, ...]:
    found = shutil.which("python3")
    assert found, "the tests run the Install step with the machine's python3: none on PATH"
    version = subprocess.run(
        [found, "-c", "import sys; print(*sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return tuple(int(part) for part in version)


def test_install_makes_the_venv_once_and_keeps_it_while_the_requirements_stay(device):
    assert _machine_python3() >= MIN_PYTHON, "this machine's python3 must be 3.11 or newer"

    first = device.install()
    assert first.returncode == 0, first.stderr
    assert "evk install: made" in first.stdout
    python = device.venv / "bin" / "python"
    assert python.exists() and (device.venv / INSTALL_STAMP).is_file()
    listed = subprocess.run(
        [str(python), "-m", "pip", "--version"], capture_output=True, text=True, check=True
    )
    assert str(device.venv) in listed.stdout, "pip runs from the component's venv"
    marker = device.venv / "made-by-the-first-install"
    marker.touch()
    config = (device.venv / "pyvenv.cfg").stat()

    again = device.install()
    assert again.returncode == 0, again.stderr
    assert "is up to date" in again.stdout and "requirements unchanged" in again.stdout
    assert marker.exists(), "an unchanged install keeps the venv"
    assert (device.venv / "pyvenv.cfg").stat().st_ino == config.st_ino

    device.requirements.write_text("pip\n# a new pin would go here\n")
    changed = device.install()
    assert changed.returncode == 0, changed.stderr
    assert "evk install: made" in changed.stdout
    assert not marker.exists(), "new requirements make a new venv"


def test_a_too_old_interpreter_fails_saying_what_was_found_and_what_to_install(device, tmp_path):
    old = tmp_path / "bin" / "python3"
    old.parent.mkdir()
    old.write_text('#!/bin/sh\necho "3.8.10"\n')  # stands in for Ubuntu 20.04's python3
    old.chmod(0o755)

    result = device.install(python=str(old))

    assert result.returncode != 0
    assert f"evk install: {old} ({old}) is Python 3.8.10" in result.stderr
    assert "needs Python 3.11 or newer with its venv module" in result.stderr
    assert "apt-get install python3.11 python3.11-venv" in result.stderr
    assert "dnf install python3.11" in result.stderr
    assert not device.venv.exists(), "nothing is made with the wrong interpreter"


def test_a_missing_interpreter_fails_naming_the_configuration(device):
    result = device.install(python="python3.99")

    assert result.returncode != 0
    assert "no Python interpreter 'python3.99' on this device (component configuration python)" in (
        result.stderr
    )
    assert "set the component configuration python to python3.11" in result.stderr
