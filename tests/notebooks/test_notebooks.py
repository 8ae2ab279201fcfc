"""The numbered notebooks run top to bottom, headless, with quick parameters on the local target.

papermill executes each one in a fresh kernel (the venv's python3) against a local stack of the
test session's own (EVK_STATE_DIR is the session's temp dir, ports are free ones); the stack is
stopped when the module ends. nbval (lax) then runs the executed notebook again — with papermill's
injected parameters — and compares the outputs of the cells tagged ``nbval-check-output``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import papermill
import pytest

from kit.core.settings import load_settings
from kit.local import LocalStack

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("[0-9][0-9]_*.ipynb"))
QUICK = {"target": "local", "quick": True, "interactive": False}
RERUN_TIMEOUT_S = 900
"""Ends nbval's rerun of a notebook that hangs; generous, so that a loaded machine is not taken
for a hang (quick, a notebook takes about 2 minutes on an idle 2-core machine)."""


@pytest.fixture(scope="module")
def notebook_stack():
    """The local stack the notebooks start (they call kit.notebook.setup); stopped at the end."""
    stack = LocalStack(load_settings())
    yield stack
    stack.down(snapshot=False)


def test_every_numbered_notebook_exists():
    names = [p.stem for p in NOTEBOOKS]
    assert names == [
        "01_label_data",
        "02_train",
        "03_compile",
        "04_package_edge_app",
        "05_provision_backend",
        "06_control_panel",
    ]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_committed_without_outputs_and_with_a_parameters_cell(notebook):
    cells = json.loads(notebook.read_text())["cells"]
    assert not [
        c
        for c in cells
        if c["cell_type"] == "code" and (c.get("outputs") or c.get("execution_count"))
    ]
    tagged = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1 and "target" in "".join(tagged[0]["source"])


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_headless_with_quick_parameters(notebook, notebook_stack, tmp_path):
    source = "".join(
        "".join(c["source"])
        for c in json.loads(notebook.read_text())["cells"]
        if "parameters" in c.get("metadata", {}).get("tags", [])
    )
    parameters = {k: v for k, v in QUICK.items() if f"{k} =" in source}
    if "work_dir =" in source:
        parameters["work_dir"] = str(tmp_path)
    papermill.execute_notebook(
        str(notebook),
        str(tmp_path / notebook.name),
        parameters=parameters,
        cwd=str(notebook.parent),
        kernel_name="python3",
        progress_bar=False,
    )
    result = subprocess.run(
        [
            sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax",
            "--nbval-current-env", "--nbval-cell-timeout=300", str(tmp_path / notebook.name),
        ],
        capture_output=True, text=True, timeout=RERUN_TIMEOUT_S, cwd=notebook.parent,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
