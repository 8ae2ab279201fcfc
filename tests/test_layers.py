"""The layers: edge_app/ and lambdas/ reach kit only through kit.core, and kit.core nothing else.

import-linter's contracts live in ``pyproject.toml``; ``make lint`` runs them too. These tests run
them, check that they name every kit module, and show that they catch a violation.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _contracts() -> dict[str, dict]:
    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    return {contract["name"]: contract for contract in config["contracts"]}


def _kit_modules_outside_core() -> set[str]:
    names = set()
    for path in (REPO_ROOT / "kit").iterdir():
        if path.name.startswith(("_", ".")) or path.name == "core":
            continue
        if path.suffix == ".py" or (path / "__init__.py").is_file():
            names.add(f"kit.{path.stem}")
    return names


def _lint_imports(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=root,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin", "COLUMNS": "300"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_layer_contracts_hold():
    result = _lint_imports(REPO_ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    "contract",
    [
        "The edge runtime and the Lambda handlers reach kit only through kit.core",
        "kit.core imports nothing else of the project",
    ],
)
def test_the_contracts_forbid_every_kit_module_outside_the_core(contract):
    forbidden = set(_contracts()[contract]["forbidden_modules"])
    missing = _kit_modules_outside_core() - forbidden
    assert not missing, f"add {sorted(missing)} to the forbidden_modules of {contract!r}"


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        ("edge_app/heartbeat.py", "import kit.registry", "reach kit only through kit.core"),
        ("lambdas/rules.py", "import kit.dashboard", "reach kit only through kit.core"),
        ("kit/core/geometry.py", "import kit.registry", "kit.core imports nothing else"),
        ("lambdas/store.py", "import edge_app.spool", "do not import each other"),
        ("kit/core/geometry.py", "import numpy", "import no numpy"),
    ],
)
def test_a_forbidden_import_breaks_a_contract(tmp_path, module, line, broken):
    for top in ("kit", "edge_app", "lambdas", "infra"):
        shutil.copytree(
            REPO_ROOT / top, tmp_path / top, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(REPO_ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / module
    target.write_text(target.read_text() + f"\n{line}  # a layer violation\n")

    result = _lint_imports(tmp_path)

    assert result.returncode != 0
    broken_lines = [ln for ln in result.stdout.splitlines() if ln.rstrip().endswith(" BROKEN")]
    assert any(broken in line for line in broken_lines), result.stdout
    assert f"-> {line.split()[-1]}" in result.stdout, "the report names the offending import"
