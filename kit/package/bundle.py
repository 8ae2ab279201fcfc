"""The edge bundle: one zip holding everything a device needs to run the edge app.

The same bundle goes to every target: it is the artefact of the Greengrass component, the
content of the container image and of the Panorama code node, and what the local device
unpacks. Its layout::

    manifest.json                 what is inside: app version, files with sha256 and size
    edge_app/                     the edge runtime (``python -m edge_app --config ...``)
    kit/__init__.py, kit/core/      the shared core the runtime imports (contracts, settings,
                                  backend description, registry reader, geometry)
    requirements.txt              the edge requirements (``edge_app/requirements.txt``)
    device.yaml                   the device config the bundle was built for (the default)
    bin/write_device_config.py    turns device.yaml + a target's configuration into the
                                  config file the app runs with (see ``kit.package.device_config_writer``)
    models/<name>-<version>.onnx  model files shipped with the app (optional)
    videos/<camera>.mp4           demo camera videos (optional)

Before zipping, every module-level import of the bundled Python files is checked: heavy
training packages (torch, torchvision, ultralytics) are refused anywhere, and whatever a
bundled module needs at import time must be in the bundle, in the standard library, or
installed by the edge requirements — so a device never fails with ``ModuleNotFoundError``.

The zip is reproducible (sorted entries, fixed timestamps): the same inputs give the same
sha256, which names the bundle.

Examples:
    >>> from kit.package import build_bundle
    >>> bundle = build_bundle("build/bundle", device_config={"device_id": "demo-1", "cameras": [
    ...     {"id": "cam-1", "source": "rtsp://10.0.0.5/stream1"}]})   # doctest: +SKIP
    >>> bundle.path.name, len(bundle.sha256)                            # doctest: +SKIP
    ('evk-edge-app.zip', 64)
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.metadata
import json
import re
import shutil
import sys
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
BUNDLE_NAME = "evk-edge-app"
"""The zip's stem: Greengrass unpacks the artefact into a folder of this name."""
MANIFEST_FILE = "manifest.json"
DEVICE_CONFIG_FILE = "device.yaml"
REQUIREMENTS_FILE = "requirements.txt"
CONFIG_WRITER_FILE = "bin/write_device_config.py"
BUNDLE_FORMAT = 1

BUNDLED_SOURCES: tuple[str, ...] = (
    "edge_app",
    "kit/__init__.py",
    "kit/core",
)
"""What of the repository goes into every bundle (folders recursively, ``.py`` and ``.txt`` only)."""

HEAVY_MODULES = frozenset({"torch", "torchvision", "ultralytics"})
"""Never imported by a bundled module: they would not fit a device image."""

PROVIDED_BY_DEVICE = frozenset({"panoramasdk"})
"""Modules a target provides itself (the Panorama appliance's SDK); imported only lazily."""

_IMPORT_NAME_ALIASES: dict[str, tuple[str, ...]] = {
    "opencv-python": ("cv2",),
    "opencv-python-headless": ("cv2",),
    "opencv-contrib-python": ("cv2",),
    "pyyaml": ("yaml",),
    "python-dateutil": ("dateutil",),
}
"""Import names of requirements that are not installed where the bundle is built."""

_FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_SOURCE_SUFFIXES = (".py", ".txt")


class BundleError(ValueError):
    """The bundle cannot be built or is not intact; the message names the file and the problem."""


@dataclass(frozen=True)
class ImportProblem:
    """A bundled module imports something a device would not have."""

    file: str
    module: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}: imports {self.module!r}: {self.reason}"


@dataclass(frozen=True)
class Bundle:
    """A built bundle.

    Attributes:
        path: the zip file.
        sha256: the zip's sha256 (names this exact bundle).
        manifest: the content of ``manifest.json``.
    """

    path: Path
    sha256: str
    manifest: dict[str, Any] = field(repr=False)

    @property
    def name(self) -> str:
        """The zip's stem (the folder Greengrass unpacks it into)."""
        return self.path.stem

    @property
    def app_version(self) -> str:
        return self.manifest["app_version"]

    @property
    def models(self) -> dict[str, str]:
        """Shipped models: ``name:version`` -> path inside the bundle."""
        return dict(self.manifest.get("models", {}))


def sha256_of(path: str | Path) -> str:
    """The hex sha256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def edge_app_version(root: Path = REPO_ROOT) -> str:
    """``edge_app.__version__`` as written in ``edge_app/__init__.py`` (read, not imported)."""
    text = (root / "edge_app" / "__init__.py").read_text()
    match = re.search(r"^__version__\s*=\s*['\"]([^'\"]+)['\"]", text, re.MULTILINE)
    if not match:
        raise BundleError(f"{root / 'edge_app' / '__init__.py'} defines no __version__")
    return match.group(1)


def source_files(root: Path = REPO_ROOT, sources: Iterable[str] = BUNDLED_SOURCES) -> list[str]:
    """The repository files (relative POSIX paths) that :data:`BUNDLED_SOURCES` selects, sorted."""
    files: set[str] = set()
    for source in sources:
        path = root / source
        if path.is_file():
            files.add(source)
        elif path.is_dir():
            for child in path.rglob("*"):
                if (
                    child.is_file()
                    and child.suffix in _SOURCE_SUFFIXES
                    and "__pycache__" not in child.parts
                ):
                    files.add(child.relative_to(root).as_posix())
        else:
            raise BundleError(f"bundled source {source!r} does not exist under {root}")
    return sorted(files)


# -- import checks ---------------------------------------------------------------------------


def _requirement_names(text: str) -> list[str]:
    names = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)", line)
        if match:
            names.append(match.group(1))
    return names


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@functools.cache
def _distribution_import_names() -> dict[str, set[str]]:
    names: dict[str, set[str]] = {}
    for module, distributions in importlib.metadata.packages_distributions().items():
        for distribution in distributions:
            names.setdefault(_normalise(distribution), set()).add(module)
    return names


def importable_modules(requirement_names: Iterable[str]) -> set[str]:
    """Top-level modules that installing ``requirement_names`` provides (dependencies included).

    Installed distributions are looked up with their dependencies (extras left out); others
    fall back to known aliases (``pyyaml`` -> ``yaml``) or their own name.
    """
    by_distribution = _distribution_import_names()
    modules: set[str] = set()
    seen: set[str] = set()
    pending = [_normalise(name) for name in requirement_names]
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        modules |= set(_IMPORT_NAME_ALIASES.get(name, ()))
        modules |= by_distribution.get(name, set())
        try:
            requires = importlib.metadata.distribution(name).requires or []
        except importlib.metadata.PackageNotFoundError:
            modules.add(name.replace("-", "_"))
            continue
        for requirement in requires:
            if "extra ==" in requirement:
                continue
            match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
            if match:
                pending.append(_normalise(match.group(1)))
    return modules


def _module_level_imports(tree: ast.Module) -> list[tuple[str, int]]:
    """Imports a module runs when imported: top level, ``if``/``with`` blocks; not ``if
    TYPE_CHECKING``, not ``try`` blocks that handle ImportError, not inside functions/classes."""
    found: list[tuple[str, int]] = []

    def visit(statements: list[ast.stmt]) -> None:
        for node in statements:
            if isinstance(node, ast.Import):
                found.extend((alias.name, node.lineno) for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.append((node.module, node.lineno))
            elif isinstance(node, ast.If):
                test = ast.unparse(node.test)
                if "TYPE_CHECKING" not in test:
                    visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                handled = {
                    ast.unparse(handler.type) if handler.type else "" for handler in node.handlers
                }
                if not handled & {"ImportError", "ModuleNotFoundError", ""}:
                    visit(node.body)
                visit(node.orelse)
                visit(node.finalbody)
            elif isinstance(node, ast.With):
                visit(node.body)

    visit(tree.body)
    return found


def _all_imports(tree: ast.Module) -> list[tuple[str, int]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.module, node.lineno))
    return found


def _bundled_module_names(files: Iterable[str]) -> set[str]:
    modules = set()
    for file in files:
        path = PurePosixPath(file)
        if path.suffix != ".py":
            continue
        parts = list(path.with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        for depth in range(1, len(parts) + 1):
            modules.add(".".join(parts[:depth]))
    return modules


def check_imports(
    root: Path, files: Iterable[str], requirement_names: Iterable[str]
) -> list[ImportProblem]:
    """What a device could not import: heavy modules anywhere, and module-level imports that are
    neither bundled, nor standard library, nor installed by the requirements.

    Args:
        root: the folder the files are relative to.
        files: the bundled files (POSIX paths relative to ``root``).
        requirement_names: the distributions the device installs.
    """
    files = list(files)
    bundled = _bundled_module_names(files)
    bundled_top = {name.split(".")[0] for name in bundled}
    installed = importable_modules(requirement_names)
    problems: list[ImportProblem] = []
    for file in files:
        if not file.endswith(".py"):
            continue
        tree = ast.parse((root / file).read_text(), filename=file)
        for module, line in _all_imports(tree):
            top = module.split(".")[0]
            if top in HEAVY_MODULES:
                problems.append(
                    ImportProblem(
                        f"{file}:{line}",
                        module,
                        "training packages must never reach a device (move this code out of the "
                        "edge runtime)",
                    )
                )
        for module, line in _module_level_imports(tree):
            top = module.split(".")[0]
            if top in HEAVY_MODULES or top in sys.stdlib_module_names or top == "__future__":
                continue
            if top in bundled_top:
                if module not in bundled:
                    problems.append(
                        ImportProblem(
                            f"{file}:{line}",
                            module,
                            f"not in the bundle; bundled sources are {', '.join(BUNDLED_SOURCES)}",
                        )
                    )
                continue
            if top in installed or top in PROVIDED_BY_DEVICE:
                continue
            problems.append(
                ImportProblem(
                    f"{file}:{line}",
                    module,
                    "not installed on the device: add its distribution (pinned) to "
                    "edge_app/requirements.txt",
                )
            )
    return problems


# -- building ----------------------------------------------------------------------------------


def _zip_write(archive: zipfile.ZipFile, name: str, data: bytes, executable: bool = False) -> None:
    info = zipfile.ZipInfo(name, date_time=_FIXED_ZIP_TIME)
    # Model weights and videos barely compress; deflating them only costs time.
    stored = name.startswith(("models/", "videos/"))
    info.compress_type = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
    info.external_attr = (0o755 if executable else 0o644) << 16
    archive.writestr(info, data, compresslevel=6)


def _model_file_name(key: str, path: Path) -> str:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", key.replace(":", "-"))
    return f"models/{safe}{path.suffix or '.onnx'}"


def build_bundle(
    out_dir: str | Path,
    *,
    device_config: Mapping[str, Any],
    models: Mapping[str, str | Path] | None = None,
    videos: Mapping[str, str | Path] | None = None,
    requirements: str | Path | None = None,
    extra_files: Mapping[str, bytes] | None = None,
    name: str = BUNDLE_NAME,
    root: Path = REPO_ROOT,
    check: bool = True,
) -> Bundle:
    """Build the edge bundle zip (see the module docstring for its layout).

    Args:
        out_dir: where ``<name>.zip`` is written (created if missing).
        device_config: the device config to ship as ``device.yaml`` (a mapping of
            :class:`edge_app.config.DeviceConfig` fields). Camera sources naming a key of
            ``videos`` (``"videos/<key>.mp4"``) point at the shipped videos.
        models: model files to ship, by ``name:version`` (or ``name``); the config's
            ``models`` section is set to their paths in the bundle.
        videos: demo videos to ship, by camera id (``videos/<camera id><suffix>``).
        requirements: the requirements file (default ``edge_app/requirements.txt``).
        extra_files: more files, path in the bundle -> content.
        name: the zip's stem.
        root: the repository root holding ``edge_app/`` and ``kit/``.
        check: check the bundled modules' imports (see :func:`check_imports`).

    Returns:
        The :class:`Bundle`.

    Raises:
        BundleError: a missing source or model file, an invalid device config, or imports a
            device could not satisfy (each listed with file and line).
    """
    out_dir = Path(out_dir)
    requirements_path = (
        Path(requirements) if requirements else root / "edge_app" / REQUIREMENTS_FILE
    )
    if not requirements_path.is_file():
        raise BundleError(f"requirements file {requirements_path} does not exist")
    requirements_text = requirements_path.read_text()
    files = source_files(root)

    config = json.loads(json.dumps(dict(device_config), default=str))
    shipped_models: dict[str, tuple[str, Path]] = {}
    for key, path in (models or {}).items():
        path = Path(path)
        if not path.is_file():
            raise BundleError(f"model file {path} for {key!r} does not exist")
        shipped_models[key] = (_model_file_name(key, path), path)
    if shipped_models:
        config["models"] = {
            **config.get("models", {}),
            **{key: inside for key, (inside, _) in shipped_models.items()},
        }
    shipped_videos: dict[str, tuple[str, Path]] = {}
    for camera_id, path in (videos or {}).items():
        path = Path(path)
        if not path.is_file():
            raise BundleError(f"video {path} for camera {camera_id!r} does not exist")
        shipped_videos[camera_id] = (f"videos/{camera_id}{path.suffix}", path)
    _validate_device_config(config)
    if check:
        problems = check_imports(root, files, _requirement_names(requirements_text))
        if problems:
            listed = "\n  ".join(str(problem) for problem in problems)
            raise BundleError(f"the edge bundle would not import on a device:\n  {listed}")

    from kit.package import device_config_writer

    contents: dict[str, tuple[bytes | Path, bool]] = {}
    for file in files:
        contents[file] = (root / file, False)
    contents[REQUIREMENTS_FILE] = (requirements_text.encode(), False)
    contents[DEVICE_CONFIG_FILE] = (
        yaml.safe_dump(config, sort_keys=False, default_flow_style=False).encode(),
        False,
    )
    contents[CONFIG_WRITER_FILE] = (Path(device_config_writer.__file__), True)
    for inside, path in shipped_models.values():
        contents[inside] = (path, False)
    for inside, path in shipped_videos.values():
        contents[inside] = (path, False)
    for inside, data in (extra_files or {}).items():
        contents[inside] = (data, False)

    manifest_files: dict[str, dict[str, Any]] = {}
    payloads: dict[str, bytes] = {}
    for inside in sorted(contents):
        source, _ = contents[inside]
        data = source.read_bytes() if isinstance(source, Path) else source
        payloads[inside] = data
        manifest_files[inside] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    manifest = {
        "format": BUNDLE_FORMAT,
        "name": name,
        "app": "edge_app",
        "app_version": edge_app_version(root),
        "entry": ["python", "-m", "edge_app", "--config", DEVICE_CONFIG_FILE],
        "device_config": DEVICE_CONFIG_FILE,
        "requirements": REQUIREMENTS_FILE,
        "config_writer": CONFIG_WRITER_FILE,
        "device_id": config.get("device_id"),
        "models": {key: inside for key, (inside, _) in shipped_models.items()},
        "videos": {camera: inside for camera, (inside, _) in shipped_videos.items()},
        "files": manifest_files,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.zip"
    partial = path.with_name(path.name + ".part")
    with zipfile.ZipFile(partial, "w") as archive:
        _zip_write(archive, MANIFEST_FILE, json.dumps(manifest, indent=1, sort_keys=True).encode())
        for inside, data in payloads.items():
            _zip_write(archive, inside, data, executable=contents[inside][1])
    partial.replace(path)
    return Bundle(path=path, sha256=sha256_of(path), manifest=manifest)


def _validate_device_config(config: dict[str, Any]) -> None:
    from pydantic import ValidationError

    from edge_app.config import DeviceConfig
    from kit.core.contracts.base import contract_error

    try:
        DeviceConfig.model_validate(config)
    except ValidationError as error:
        raise BundleError(
            f"invalid device config for the bundle: {contract_error('DeviceConfig', error)}"
        ) from None


# -- reading -----------------------------------------------------------------------------------


def read_manifest(bundle: str | Path) -> dict[str, Any]:
    """The ``manifest.json`` of a bundle zip.

    Raises:
        BundleError: the file is not a zip or has no manifest.
    """
    bundle = Path(bundle)
    try:
        with zipfile.ZipFile(bundle) as archive:
            return json.loads(archive.read(MANIFEST_FILE))
    except (zipfile.BadZipFile, FileNotFoundError) as error:
        raise BundleError(f"{bundle} is not an edge bundle: {error}") from None
    except KeyError:
        raise BundleError(f"{bundle} has no {MANIFEST_FILE}; is it an edge bundle?") from None


def verify_bundle(bundle: str | Path) -> dict[str, Any]:
    """Check every file of a bundle zip against its manifest; return the manifest.

    Raises:
        BundleError: naming each file that is missing, extra or whose sha256 differs.
    """
    bundle = Path(bundle)
    manifest = read_manifest(bundle)
    problems = []
    with zipfile.ZipFile(bundle) as archive:
        names = {info.filename for info in archive.infolist() if not info.is_dir()}
        for inside, facts in manifest["files"].items():
            if inside not in names:
                problems.append(f"{inside}: missing")
                continue
            actual = hashlib.sha256(archive.read(inside)).hexdigest()
            if actual != facts["sha256"]:
                problems.append(f"{inside}: sha256 {actual} != manifest {facts['sha256']}")
        for extra in sorted(names - set(manifest["files"]) - {MANIFEST_FILE}):
            problems.append(f"{extra}: not in the manifest")
    if problems:
        raise BundleError(f"bundle {bundle} is not intact:\n  " + "\n  ".join(problems))
    return manifest


def unpack_bundle(bundle: str | Path, destination: str | Path) -> dict[str, Any]:
    """Verify ``bundle`` and unpack it into ``destination`` (replaced atomically); return its manifest.

    Raises:
        BundleError: the bundle is not intact, or holds a path outside ``destination``.
    """
    bundle, destination = Path(bundle), Path(destination)
    manifest = verify_bundle(bundle)
    staging = destination.with_name(destination.name + ".unpacking")
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    with zipfile.ZipFile(bundle) as archive:
        for info in archive.infolist():
            target = (staging / info.filename).resolve()
            if not target.is_relative_to(staging.resolve()):
                shutil.rmtree(staging)
                raise BundleError(
                    f"bundle {bundle} holds a path outside the bundle: {info.filename}"
                )
            archive.extract(info, staging)
            mode = (info.external_attr >> 16) & 0o777
            if mode and not info.is_dir():
                target.chmod(mode)
    if destination.exists():
        shutil.rmtree(destination)
    staging.replace(destination)
    return manifest
