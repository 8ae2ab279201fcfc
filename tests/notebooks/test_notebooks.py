"""The numbered notebooks run top to bottom, headless, with quick parameters on the local target.

papermill executes each one in a fresh kernel (the venv's python3) against a local stack of the
test session's own (EVK_STATE_DIR is the session's temp dir, ports are free ones); the stack is
stopped when the module ends. nbval (lax) then runs the executed notebook again — with papermill's
injected parameters — and compares the outputs of the cells tagged ``nbval-check-output``.

Before the first notebook the registry already holds a customer's state (the demo models with an
extra alias of the customer's); after the last one it must be exactly as it was, and no demo device
or camera may be left in the backend."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import papermill
import pytest

from kit.core.settings import load_settings
from kit.demo_models import register_demo_models
from kit.deploy.local import DEVICES_FOLDER
from kit.local import LocalStack
from kit.notebook import DEMO_PREFIX
from kit.registry import ModelRegistry

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("[0-9][0-9]_*.ipynb"))
QUICK = {"target": "local", "quick": True, "interactive": False}
NOISE = re.compile(r"Warning|WARNING|it/s|%\|")
"""What a warning, a log line or a text progress bar leaves in an executed notebook's output."""
WIDGET = "application/vnd.jupyter.widget-view+json"
"""A live widget: empty in a saved notebook and in its HTML or GitHub rendering."""
PICTURES = {
    "02_train": ("image/png", "BoxPR curve"),
    "03_compile": ("image/png", "pytorch"),
    "05_provision_backend": ("text/html", "data:image/jpeg;base64,"),
    "06_control_panel": ("text/markdown", "**Dashboard at"),
}
"""Per notebook, a picture its executed output must hold: its kind and a text that comes with
it (a title, or a piece of the card)."""
RERUN_TIMEOUT_S = 900
"""Ends nbval's rerun of a notebook that hangs; generous, so that a loaded machine is not taken
for a hang (quick, a notebook takes about 2 minutes on an idle 2-core machine)."""


@pytest.fixture(scope="module")
def notebook_stack():
    """The local stack the notebooks use (already up, so they find it); stopped at the end."""
    stack = LocalStack(load_settings())
    stack.up()
    yield stack
    stack.down(snapshot=False)


@pytest.fixture(scope="module")
def aliases_before(notebook_stack):
    """A customer's registry before the notebooks run: every alias of every model."""
    settings = load_settings()
    registry = ModelRegistry.from_settings(settings)
    register_demo_models(settings)
    registry.alias("shelf", "customer-pinned", registry.aliases("shelf")["production"])
    return {name: registry.aliases(name) for name in registry.model_names()}


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
def test_notebook_runs_headless_with_quick_parameters(
    notebook, notebook_stack, aliases_before, tmp_path
):
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
    outputs = [
        o for c in json.loads((tmp_path / notebook.name).read_text())["cells"]
        if c["cell_type"] == "code" for o in c.get("outputs", [])
    ]  # fmt: skip
    texts = [
        "".join(o.get("text", ""))
        + "".join("".join(v) for k, v in o.get("data", {}).items() if k.startswith("text/"))
        for o in outputs
    ]
    noise = [line for text in texts for line in text.splitlines() if NOISE.search(line)]
    assert not noise, f"warnings, log lines or progress bars in the output: {noise[:5]}"
    assert not [o for o in outputs if o.get("name") == "stderr"]
    assert not [o for o in outputs if WIDGET in o.get("data", {})], "a widget that stays empty"
    if notebook.stem in PICTURES:
        kind, text = PICTURES[notebook.stem]
        assert any(kind in o.get("data", {}) for o in outputs), f"no {kind} in {notebook.stem}"
        assert any(text in t for t in texts), f"{text!r} not in {notebook.stem}'s output"
    result = subprocess.run(
        [
            sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax",
            "--nbval-current-env", "--nbval-cell-timeout=300", str(tmp_path / notebook.name),
        ],
        capture_output=True, text=True, timeout=RERUN_TIMEOUT_S, cwd=notebook.parent,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_aws_without_the_stacks_outputs_stops_in_the_first_cell_with_one_line(
    notebook, tmp_path, monkeypatch
):
    monkeypatch.setenv("EVK_CONFIG", str(tmp_path / "evk.yaml"))
    (tmp_path / "evk.yaml").write_text("# no stack outputs: `kit aws outputs` never ran\n")
    with pytest.raises(papermill.PapermillExecutionError):
        papermill.execute_notebook(
            str(notebook), str(tmp_path / notebook.name), parameters={"target": "aws"},
            cwd=str(notebook.parent), kernel_name="python3", progress_bar=False,
        )  # fmt: skip
    cells = [c for c in json.loads((tmp_path / notebook.name).read_text())["cells"]]
    ran = [c for c in cells if c["cell_type"] == "code" and c.get("execution_count")]
    first = next(
        c for c in cells
        if c["cell_type"] == "code" and not {"parameters", "injected-parameters"}
        & set(c["metadata"].get("tags", []))
    )  # fmt: skip
    assert ran[-1] is first, "it stops in the first cell after the parameters"
    errors = [o for o in first["outputs"] if o["output_type"] == "error"]
    assert len(errors) == 1 and len(errors[0]["traceback"]) == 1
    assert errors[0]["traceback"][0].endswith("run 05 / `kit aws outputs` first")


def test_notebooks_leave_the_aliases_and_no_demo_artefacts(notebook_stack, aliases_before):
    settings = load_settings()
    registry = ModelRegistry.from_settings(settings)
    assert {name: registry.aliases(name) for name in aliases_before} == aliases_before
    dynamodb, names = settings.client("dynamodb"), settings.resources
    for table, key in ((names.devices_table, "device_id"), (names.cameras_table, "camera_id")):
        ids = [item[key]["S"] for item in dynamodb.scan(TableName=table)["Items"]]
        assert not [i for i in ids if i.startswith(DEMO_PREFIX)], (table, ids)
    alerts = dynamodb.scan(TableName=names.alerts_table)["Items"]
    assert not [a for a in alerts if a["camera_id"]["S"].startswith(DEMO_PREFIX)]
    devices_folder = settings.state_dir / DEVICES_FOLDER
    left = sorted(p.name for p in devices_folder.glob(DEMO_PREFIX + "*"))
    assert not left, f"local demo devices left installed: {left}"
