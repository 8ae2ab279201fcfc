"""The hosted dashboard's image, checked without Docker: it serves the notebook ``make dashboard``
serves, with the kit modules and packages the dashboard imports (followed from its code), at
the pins of requirements.txt, and its ignore file sends only what it copies."""

from __future__ import annotations

import ast
import json
import re
import shlex
import sys
from fnmatch import fnmatchcase
from pathlib import Path

from infra.dashboard import DOCKERFILE, REPO_ROOT
from kit.dashboard.client import OIDC_TOKEN_ENV

IGNORE_FILE = DOCKERFILE.with_name(DOCKERFILE.name + ".dockerignore")
IMPORT_NAMES = {"yaml": "pyyaml", "botocore": "boto3"}
"""Top-level modules whose distribution has another name."""


def _instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def _pins() -> dict[str, str]:
    pins = {}
    for line in (REPO_ROOT / "requirements.txt").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==", 1)
            pins[name.strip().lower()] = version.strip()
    return pins


def _installed_packages() -> set[str]:
    [run] = [rest for keyword, rest in _instructions() if keyword == "RUN" and "grep -E" in rest]
    pattern = re.search(r"'\^\(([^)]*)\)=='", run)
    assert pattern, run
    return set(pattern.group(1).split("|"))


def _copied_paths() -> set[str]:
    copied = set()
    for keyword, rest in _instructions():
        if keyword == "COPY":
            *sources, _ = shlex.split(rest)
            copied |= set(sources)
    return copied


def _ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last pattern that matches decides (``!`` re-includes)."""
    ignored = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        body = pattern.lstrip("!").rstrip("/")
        body = body.replace("**/", "*").replace("/**", "/*")
        if fnmatchcase(path, body) or any(
            fnmatchcase("/".join(path.split("/")[:end]), body)
            for end in range(1, path.count("/") + 1)
        ):
            ignored = not negated
    return ignored


def _module_file(module: str) -> Path | None:
    base = REPO_ROOT / Path(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _dashboard_imports() -> tuple[set[Path], set[str]]:
    """The kit files the dashboard reaches (imports anywhere in them, lazy ones included) and
    the third-party modules they import."""
    files: set[Path] = set()
    third_party: set[str] = set()
    pending = ["kit", "kit.dashboard"]
    while pending:
        module = pending.pop()
        path = _module_file(module)
        if path is None or path in files:
            continue
        files.add(path)
        parts = module.split(".")
        pending += [".".join(parts[:end]) for end in range(1, len(parts))]
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            for name in names:
                top = name.split(".")[0]
                if top == "kit":
                    pending.append(name)
                elif top not in sys.stdlib_module_names and top != "__future__":
                    third_party.add(top)
    return files, third_party


def test_the_image_serves_the_notebook_make_dashboard_serves_with_the_load_balancers_token():
    [command] = [rest for keyword, rest in _instructions() if keyword == "CMD"]
    argv = json.loads(command)
    make = (REPO_ROOT / "Makefile").read_text()
    served = re.search(r"^dashboard:.*\n\t\$\(BIN\)/python (-m \S+)", make, re.M).group(1).split()
    # kit.dashboard.server: Voila on notebooks/dashboard.ipynb, closed pages ending their kernels
    assert argv[:3] == ["python", *served] == ["python", "-m", "kit.dashboard.server"]
    assert "--Voila.ip=0.0.0.0" in argv and "--port=8866" in argv
    [headers] = [a for a in argv if a.startswith("--VoilaConfiguration.http_header_envs=")]
    assert "x-amzn-oidc-accesstoken" in headers
    assert OIDC_TOKEN_ENV == "HTTP_X_AMZN_OIDC_ACCESSTOKEN", "how Voila names the header"
    from voila.configuration import VoilaConfiguration

    assert "http_header_envs" in VoilaConfiguration.class_trait_names()
    assert [rest for keyword, rest in _instructions() if keyword == "USER"] == ["10001"]


def test_the_image_holds_every_kit_module_and_package_the_dashboard_imports_at_its_pins():
    files, third_party = _dashboard_imports()
    copied = _copied_paths()
    missing_files = [
        path.relative_to(REPO_ROOT).as_posix()
        for path in files
        if not any(
            path.relative_to(REPO_ROOT).as_posix() == source
            or path.relative_to(REPO_ROOT).as_posix().startswith(source.rstrip("/") + "/")
            for source in copied
        )
    ]
    assert not missing_files, f"the dashboard imports what the image lacks: {missing_files}"
    installed = _installed_packages()
    needed = {IMPORT_NAMES.get(name, name) for name in third_party}
    assert {"ipywidgets", "requests", "matplotlib", "pydantic"} <= needed
    assert needed <= installed, f"imported but not installed: {sorted(needed - installed)}"
    assert {"voila", "ipykernel"} <= installed, "Voila and the kernel it runs the notebook in"
    pins = _pins()
    assert not [name for name in installed if name not in pins], "each one pinned"


def test_the_build_context_sends_only_what_the_image_copies():
    patterns = [
        line.strip()
        for line in IGNORE_FILE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for source in _copied_paths():
        path = source.rstrip("/")
        sample = (
            path
            if (REPO_ROOT / path).is_file()
            else next(p for p in (REPO_ROOT / path).rglob("*.py")).relative_to(REPO_ROOT).as_posix()
        )
        assert not _ignored(sample, patterns), f"{sample} is copied but ignored"
    for left_out in (".venv/bin/python", "models/demo/shelf.onnx", ".git/HEAD", "edge_app/app.py"):
        assert _ignored(left_out, patterns), left_out
    assert _ignored("kit/dashboard/__pycache__/core.cpython-311.pyc", patterns)
