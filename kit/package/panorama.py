"""The edge app as an AWS Panorama application (legacy: Panorama reached end of support on
2026-05-31; existing appliances keep running what they have).

The application follows the documented layout of ``panorama-cli`` projects::

    <app>/graphs/<app>/graph.json                        the application manifest
    <app>/packages/<account>-<app>_code-<version>/       the code node
        package.json  descriptor.json  Dockerfile
        src/app.py                                       runs edge_app.panorama on the streams
        src/<bundle>.zip                                 the edge bundle (same as everywhere)
    <app>/packages/<account>-<app>_model-<version>/      the model node
        package.json  descriptor.json
    <app>/assets/<sha256>.tar.gz, <sha256>.json          the model archive and its descriptor

The graph: a camera node (``panorama::abstract_rtsp_media_source``, chosen at deployment), the
code node, the model node, parameters ``threshold`` (confidence, 0-1), ``refresh_rate`` (seconds
between published frames) and ``device_id``, and the HDMI output. Edges connect camera -> code ->
output and each parameter to the code node's input of the same name.

Panorama compiles the model package with SageMaker Neo when the package is registered. Its
model descriptor's framework must be one Panorama documents: ``PYTORCH`` (a TorchScript
``model.pth`` in ``model.tar.gz``, what :func:`kit.compile.neo.package_for_neo` makes from
ultralytics weights; the kit builds this one), ``MXNET`` or ``TENSORFLOW``. An ONNX file is
refused for the model node: Neo reads ONNX, Panorama's model packages do not document it. The
code node calls the compiled model through the SDK (``node.call``); the ONNX file ships in the
bundle for the class names and input size, and runs with ONNX Runtime where no model node is used.

The code image must run the edge runtime's Python (3.11 or newer): its Dockerfile checks the
interpreter the code descriptor names (``python3`` unless told otherwise) and fails the build
with a message naming the version it found, rather than producing an image whose code node
cannot start. The Panorama base image's own Python is older (3.7/3.8 on the images AWS
published), so a working code image needs a base image carrying Python 3.11 with the Panorama SDK
built for it (``--base-image``); see docs/edge.md.

:func:`validate_panorama_app` checks an application against the documented manifest shapes:
envelope versions, names, every referenced package, interface, asset and file present, edges
between existing ports of matching types, each code input fed exactly once.

Examples:
    >>> app = build_panorama_app("build/panorama", bundle, model_file="best.onnx",
    ...                          input_size=320)                 # doctest: +SKIP
    >>> validate_panorama_app(app.path)                          # doctest: +SKIP
    []
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kit.package.bundle import REQUIREMENTS_FILE, Bundle

ENVELOPE_VERSION = "2021-01-01"
PLACEHOLDER_ACCOUNT = "123456789012"
CAMERA_PACKAGE = "panorama::abstract_rtsp_media_source"
CAMERA_INTERFACE = f"{CAMERA_PACKAGE}.rtsp_v1_interface"
HDMI_PACKAGE = "panorama::hdmi_data_sink"
HDMI_INTERFACE = f"{HDMI_PACKAGE}.hdmi0"
BUILTIN_INTERFACES: dict[str, dict[str, dict[str, str]]] = {
    CAMERA_INTERFACE: {"inputs": {}, "outputs": {"video_out": "media"}},
    HDMI_INTERFACE: {"inputs": {"video_in": "media"}, "outputs": {}},
}
"""Interfaces of the packages Panorama provides, as far as graphs use them."""
PARAMETER_TYPES: dict[str, tuple[type, ...]] = {
    "float32": (int, float),
    "int32": (int,),
    "string": (str,),
    "boolean": (bool,),
}
MODEL_FRAMEWORKS = ("PYTORCH", "MXNET", "TENSORFLOW")
"""The model frameworks Panorama's model packages document."""
MODEL_FILES = {"PYTORCH": "model.pth"}
"""The one file the kit's model archives hold, by framework."""
RUNTIME_PYTHON = (3, 11)
"""The Python the edge runtime needs (datetime.UTC, enum.StrEnum, the pinned numpy)."""
MODEL_INPUT_NAMES = {"PYTORCH": "input0"}
CODE_NODE, MODEL_NODE, CAMERA_NODE, OUTPUT_NODE = (
    "code_node",
    "model_node",
    "camera_node",
    "output_node",
)
CODE_ROOT = "/panorama"
STORAGE_DIR = "/opt/aws/panorama/storage"
BASE_IMAGE = "public.ecr.aws/panorama/panorama-application"

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_PACKAGE_VERSION = re.compile(r"^\d+\.\d+$")
_ACCOUNT = re.compile(r"^\d{12}$")
_PACKAGE_REF = re.compile(r"^(panorama|\d{12})::([A-Za-z0-9_-]+)$")
_CATEGORIES = ("business_logic", "ml_model")


class PanoramaPackageError(ValueError):
    """A Panorama application is invalid or cannot be built; the message lists every problem."""


@dataclass(frozen=True)
class PanoramaApp:
    """A built Panorama application."""

    path: Path
    app_name: str
    account_id: str
    package_version: str
    graph_file: Path
    code_package: Path
    model_package: Path | None

    @property
    def manifest(self) -> dict[str, Any]:
        """The application manifest (``graph.json``) as a dict."""
        return json.loads(self.graph_file.read_text())


def package_folder_name(account_id: str, name: str, version: str) -> str:
    """``<account>-<name>-<version>``, as panorama-cli names package folders."""
    return f"{account_id}-{name}-{version}"


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=4) + "\n")


def _reproducible_tar_gz(files: Mapping[str, Path]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(files):
            data = files[name].read_bytes()
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    import gzip

    return gzip.compress(raw.getvalue(), compresslevel=6, mtime=0)


def _model_archive(model_file: Path) -> tuple[bytes, str]:
    """The model archive Panorama registers (``model.tar.gz``) and its framework."""
    if model_file.suffix == ".onnx":
        raise PanoramaPackageError(
            f"{model_file}: Panorama's model node takes {', '.join(MODEL_FRAMEWORKS)} models, not "
            "ONNX; make a TorchScript archive from the ultralytics weights with "
            "kit.compile.neo.package_for_neo(weights) (`kit package panorama --model` does, from "
            "the registered model's pytorch format), or build without a model node"
        )
    if model_file.name.endswith(".tar.gz"):
        with tarfile.open(model_file) as tar:
            names = [m.name.lstrip("./") for m in tar.getmembers() if m.isfile()]
        for framework, inside in MODEL_FILES.items():
            if names == [inside]:
                return model_file.read_bytes(), framework
        raise PanoramaPackageError(
            f"{model_file} must hold exactly one of {sorted(MODEL_FILES.values())} "
            f"(found {names}); kit.compile.neo.package_for_neo makes such archives"
        )
    raise PanoramaPackageError(
        f"model file {model_file} must be a Neo model.tar.gz archive holding "
        f"{sorted(MODEL_FILES.values())} (kit.compile.neo.package_for_neo makes one)"
    )


def _code_app_py(model_node: str | None, input_name: str, bundle_dir: str) -> str:
    model_arg = repr(model_node)
    return f'''"""Panorama code node: the Edge Vision Kit edge pipeline on the appliance's camera streams.

Generated by `kit package panorama`. The edge runtime is the bundle unpacked in {bundle_dir}
(see its manifest.json); state (spool, model cache) goes to {STORAGE_DIR}.
"""

import sys

sys.path.insert(0, "{bundle_dir}")

from edge_app.panorama import run_application  # noqa: E402

if __name__ == "__main__":
    sys.exit(
        run_application(
            "{bundle_dir}/device.yaml",
            model_node={model_arg},
            model_input={input_name!r},
            state_dir="{STORAGE_DIR}",
        )
    )
'''


def _python_check(python: str) -> str:
    """A RUN line that fails the image build unless ``python`` is the runtime's Python."""
    major, minor = RUNTIME_PYTHON
    script = (
        "import sys; v = sys.version_info; "
        f"sys.exit(0 if v >= ({major}, {minor}) else "
        f"'the edge runtime needs Python {major}.{minor} or newer; this image has %d.%d at "
        f"{python}: build the code node from a base image with Python {major}.{minor} and the "
        "Panorama SDK built for it (kit package panorama --base-image)' % v[:2])"
    )
    return f'RUN {python} -c "{script}"'


def _code_dockerfile(bundle_file: str, bundle_dir: str, base_image: str, python: str) -> str:
    return "\n".join(
        [
            "# The Panorama code node (AWS Panorama reached end of support on 2026-05-31). The base",
            "# image carries the SDK (panoramasdk); the code runs on the edge runtime's Python,",
            f"# checked here: {python} must be {RUNTIME_PYTHON[0]}.{RUNTIME_PYTHON[1]}+.",
            f"FROM {base_image}",
            _python_check(python),
            f"COPY src {CODE_ROOT}",
            f"RUN {python} -m zipfile -e {CODE_ROOT}/{bundle_file} {bundle_dir} \\",
            f"    && rm {CODE_ROOT}/{bundle_file} \\",
            f"    && {python} -m pip install --no-cache-dir -r {bundle_dir}/{REQUIREMENTS_FILE}",
            "",
        ]
    )


def build_panorama_app(
    out_dir: str | Path,
    bundle: Bundle,
    *,
    model_file: str | Path | None = None,
    input_size: int | None = None,
    app_name: str = "evk_edge_app",
    account_id: str = PLACEHOLDER_ACCOUNT,
    package_version: str = "1.0",
    threshold: float = 0.25,
    refresh_s: int = 5,
    device_id: str | None = None,
    base_image: str = BASE_IMAGE,
    python: str = "python3",
) -> PanoramaApp:
    """Write a Panorama application for ``bundle`` under ``<out_dir>/<app_name>`` and validate it.

    Args:
        out_dir: the parent folder (the application folder is replaced).
        bundle: the edge bundle the code node runs.
        model_file: a Neo ``model.tar.gz`` holding a TorchScript ``model.pth``
            (:func:`kit.compile.neo.package_for_neo`); None: no model node, the code node runs
            the bundle's ONNX model with ONNX Runtime.
        input_size: the model's square input size (required with ``model_file``).
        app_name: letters, digits, ``_`` and ``-``.
        account_id: the AWS account owning the packages (12 digits).
        package_version: ``major.minor``.
        threshold: the default confidence (graph parameter, 0-1).
        refresh_s: the default seconds between published frames (graph parameter).
        device_id: the default device id (graph parameter); default: the bundle's.
        base_image: the code node's base image (it needs Python 3.11+ with the Panorama SDK).
        python: the interpreter the code node runs (checked when the image is built).

    Raises:
        PanoramaPackageError: a bad name, account, version or model, or an application that
            fails :func:`validate_panorama_app`.
    """
    problems = []
    if not _NAME.match(app_name):
        problems.append(f"app name {app_name!r}: use 1-128 letters, digits, '_' or '-'")
    if not _ACCOUNT.match(account_id):
        problems.append(f"account id {account_id!r} must be 12 digits")
    if not _PACKAGE_VERSION.match(package_version):
        problems.append(f"package version {package_version!r} must be major.minor, e.g. 1.0")
    if not 0.0 <= threshold <= 1.0:
        problems.append(f"threshold {threshold} must be between 0 and 1")
    if not 1 <= refresh_s <= 3600:
        problems.append(f"refresh rate {refresh_s} s must be between 1 and 3600")
    if model_file is not None and not input_size:
        problems.append("input_size is required with a model file (the model's imgsz)")
    if problems:
        raise PanoramaPackageError(
            "cannot build the Panorama application:\n  " + "\n  ".join(problems)
        )

    root = Path(out_dir) / app_name
    if root.exists():
        shutil.rmtree(root)
    code_name, model_name = f"{app_name}_code", f"{app_name}_model"
    code_dir = root / "packages" / package_folder_name(account_id, code_name, package_version)
    model_dir = root / "packages" / package_folder_name(account_id, model_name, package_version)
    bundle_dir = f"{CODE_ROOT}/bundle"
    framework = None

    packages = [{"name": f"{account_id}::{code_name}", "version": package_version}]
    if model_file is not None:
        archive, framework = _model_archive(Path(model_file))
        descriptor = {
            "mlModelDescriptor": {
                "envelopeVersion": ENVELOPE_VERSION,
                "framework": framework,
                "inputs": [
                    {
                        "name": MODEL_INPUT_NAMES.get(framework, "input0"),
                        "shape": [1, 3, int(input_size), int(input_size)],
                    }
                ],
            }
        }
        descriptor_bytes = (json.dumps(descriptor, indent=4) + "\n").encode()
        archive_sha = hashlib.sha256(archive).hexdigest()
        descriptor_sha = hashlib.sha256(descriptor_bytes).hexdigest()
        (root / "assets").mkdir(parents=True)
        (root / "assets" / f"{archive_sha}.tar.gz").write_bytes(archive)
        (root / "assets" / f"{descriptor_sha}.json").write_bytes(descriptor_bytes)
        model_dir.mkdir(parents=True)
        (model_dir / "descriptor.json").write_bytes(descriptor_bytes)
        _write_json(
            model_dir / "package.json",
            {
                "nodePackage": {
                    "envelopeVersion": ENVELOPE_VERSION,
                    "name": model_name,
                    "version": package_version,
                    "description": f"Detector for {app_name} ({framework}, compiled by Neo)",
                    "assets": [
                        {
                            "name": "model_asset",
                            "implementations": [
                                {
                                    "type": "model",
                                    "assetUri": f"{archive_sha}.tar.gz",
                                    "descriptorUri": f"{descriptor_sha}.json",
                                }
                            ],
                        }
                    ],
                    "interfaces": [
                        {
                            "name": "interface",
                            "category": "ml_model",
                            "asset": "model_asset",
                            "inputs": [{"name": "video_in", "type": "media"}],
                            "outputs": [{"name": "video_out", "type": "media"}],
                        }
                    ],
                }
            },
        )
        packages.append({"name": f"{account_id}::{model_name}", "version": package_version})

    (code_dir / "src").mkdir(parents=True)
    shutil.copyfile(bundle.path, code_dir / "src" / bundle.path.name)
    input_name = MODEL_INPUT_NAMES.get(framework, "images") if framework else "images"
    (code_dir / "src" / "app.py").write_text(
        _code_app_py(MODEL_NODE if model_file is not None else None, input_name, bundle_dir)
    )
    (code_dir / "Dockerfile").write_text(
        _code_dockerfile(bundle.path.name, bundle_dir, base_image, python)
    )
    _write_json(
        code_dir / "descriptor.json",
        {
            "runtimeDescriptor": {
                "envelopeVersion": ENVELOPE_VERSION,
                "entry": {"path": python, "name": f"{CODE_ROOT}/app.py"},
            }
        },
    )
    _write_json(
        code_dir / "package.json",
        {
            "nodePackage": {
                "envelopeVersion": ENVELOPE_VERSION,
                "name": code_name,
                "version": package_version,
                "description": "Edge Vision Kit edge pipeline (detect, track, count, publish)",
                "assets": [],
                "interfaces": [
                    {
                        "name": "interface",
                        "category": "business_logic",
                        "asset": "code_asset",
                        "inputs": [
                            {"name": "video_in", "type": "media"},
                            {"name": "threshold", "type": "float32"},
                            {"name": "refresh_rate", "type": "int32"},
                            {"name": "device_id", "type": "string"},
                        ],
                        "outputs": [
                            {"name": "video_out", "type": "media", "description": "annotated video"}
                        ],
                    }
                ],
            }
        },
    )
    packages += [
        {"name": CAMERA_PACKAGE, "version": "1.0"},
        {"name": HDMI_PACKAGE, "version": "1.0"},
    ]
    nodes: list[dict[str, Any]] = [
        {
            "name": CAMERA_NODE,
            "interface": CAMERA_INTERFACE,
            "overridable": True,
            "overrideMandatory": True,
            "launch": "onAppStart",
            "decorator": {"title": "Camera", "description": "The camera stream(s) to analyse."},
        },
        {
            "name": CODE_NODE,
            "interface": f"{account_id}::{code_name}.interface",
            "overridable": False,
            "launch": "onAppStart",
        },
        {
            "name": OUTPUT_NODE,
            "interface": HDMI_INTERFACE,
            "overridable": True,
            "launch": "onAppStart",
        },
        {
            "name": "threshold",
            "interface": "float32",
            "value": float(threshold),
            "overridable": True,
            "decorator": {
                "title": "Confidence threshold",
                "description": "Detections below this confidence (0-1) are ignored.",
            },
        },
        {
            "name": "refresh_rate",
            "interface": "int32",
            "value": int(refresh_s),
            "overridable": True,
            "decorator": {
                "title": "Refresh rate (s)",
                "description": "Seconds between frames and counts published to the backend.",
            },
        },
        {
            "name": "device_id",
            "interface": "string",
            "value": device_id or bundle.manifest.get("device_id") or app_name,
            "overridable": True,
            "decorator": {
                "title": "Device id",
                "description": "The device id in heartbeats, payloads and frame keys.",
            },
        },
    ]
    if model_file is not None:
        nodes.insert(
            2,
            {
                "name": MODEL_NODE,
                "interface": f"{account_id}::{model_name}.interface",
                "overridable": False,
                "launch": "onAppStart",
            },
        )
    graph = {
        "nodeGraph": {
            "envelopeVersion": ENVELOPE_VERSION,
            "packages": packages,
            "nodes": nodes,
            "edges": [
                {"producer": f"{CAMERA_NODE}.video_out", "consumer": f"{CODE_NODE}.video_in"},
                {"producer": f"{CODE_NODE}.video_out", "consumer": f"{OUTPUT_NODE}.video_in"},
                {"producer": "threshold", "consumer": f"{CODE_NODE}.threshold"},
                {"producer": "refresh_rate", "consumer": f"{CODE_NODE}.refresh_rate"},
                {"producer": "device_id", "consumer": f"{CODE_NODE}.device_id"},
            ],
        }
    }
    graph_file = root / "graphs" / app_name / "graph.json"
    _write_json(graph_file, graph)
    app = PanoramaApp(
        path=root,
        app_name=app_name,
        account_id=account_id,
        package_version=package_version,
        graph_file=graph_file,
        code_package=code_dir,
        model_package=model_dir if model_file is not None else None,
    )
    check_panorama_app(root)
    return app


# -- validation ----------------------------------------------------------------------------------


def _load_json(path: Path, problems: list[str], root: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        problems.append(f"{path.relative_to(root)}: missing")
    except json.JSONDecodeError as error:
        problems.append(f"{path.relative_to(root)}: not valid JSON ({error})")
    return None


def _require(
    mapping: Any, keys: Mapping[str, type | tuple[type, ...]], where: str, problems: list[str]
) -> bool:
    if not isinstance(mapping, dict):
        problems.append(f"{where}: must be an object")
        return False
    ok = True
    for key, kind in keys.items():
        if key not in mapping:
            problems.append(f"{where}: missing required key {key!r}")
            ok = False
        elif not isinstance(mapping[key], kind):
            names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
            problems.append(f"{where}.{key}: must be {names}, not {type(mapping[key]).__name__}")
            ok = False
    return ok


def _ports(items: Any, where: str, problems: list[str]) -> dict[str, str]:
    ports: dict[str, str] = {}
    if not isinstance(items, list):
        problems.append(f"{where}: must be a list")
        return ports
    for index, item in enumerate(items):
        if _require(item, {"name": str, "type": str}, f"{where}[{index}]", problems):
            if item["name"] in ports:
                problems.append(f"{where}: port {item['name']!r} is declared twice")
            ports[item["name"]] = item["type"]
    return ports


def _check_package(
    root: Path, account: str, name: str, version: str, problems: list[str]
) -> dict[str, dict[str, Any]]:
    """Validate one local package; return its interfaces (name -> category, inputs, outputs)."""
    folder = root / "packages" / package_folder_name(account, name, version)
    where = folder.relative_to(root).as_posix()
    if not folder.is_dir():
        problems.append(
            f"graph.json names package {account}::{name} {version}, but {where}/ does not exist"
        )
        return {}
    package = _load_json(folder / "package.json", problems, root)
    body = package.get("nodePackage") if isinstance(package, dict) else None
    keys = {"envelopeVersion": str, "name": str, "version": str, "assets": list, "interfaces": list}
    if not _require(body, keys, f"{where}/package.json: nodePackage", problems):
        return {}
    if body["envelopeVersion"] != ENVELOPE_VERSION:
        problems.append(f"{where}/package.json: envelopeVersion must be {ENVELOPE_VERSION!r}")
    if body["name"] != name or str(body["version"]) != version:
        problems.append(
            f"{where}/package.json: name/version {body['name']}/{body['version']} do not match "
            f"the folder ({name}/{version})"
        )
    assets: dict[str, list[dict[str, Any]]] = {}
    for index, asset in enumerate(body["assets"]):
        asset_where = f"{where}/package.json: assets[{index}]"
        if not _require(asset, {"name": str, "implementations": list}, asset_where, problems):
            continue
        assets[asset["name"]] = asset["implementations"]
        for number, implementation in enumerate(asset["implementations"]):
            impl_where = f"{asset_where}.implementations[{number}]"
            keys = {"type": str, "assetUri": str, "descriptorUri": str}
            if not _require(implementation, keys, impl_where, problems):
                continue
            for key in ("assetUri", "descriptorUri"):
                file = root / "assets" / implementation[key]
                if not file.is_file():
                    problems.append(f"{impl_where}.{key}: assets/{implementation[key]} is missing")
                    continue
                digest = implementation[key].split(".", 1)[0]
                if re.fullmatch(r"[0-9a-f]{64}", digest):
                    actual = hashlib.sha256(file.read_bytes()).hexdigest()
                    if actual != digest:
                        problems.append(
                            f"{impl_where}.{key}: assets/{implementation[key]} has sha256 {actual}"
                        )
    descriptor = _load_json(folder / "descriptor.json", problems, root)
    interfaces: dict[str, dict[str, Any]] = {}
    for index, interface in enumerate(body["interfaces"]):
        iface_where = f"{where}/package.json: interfaces[{index}]"
        keys = {"name": str, "category": str, "asset": str, "inputs": list, "outputs": list}
        if not _require(interface, keys, iface_where, problems):
            continue
        category = interface["category"]
        if category not in _CATEGORIES:
            problems.append(f"{iface_where}.category {category!r} must be one of {_CATEGORIES}")
        built_later = category == "business_logic" and (folder / "Dockerfile").is_file()
        if interface["asset"] not in assets and not built_later:
            problems.append(
                f"{iface_where}.asset {interface['asset']!r} is not among the package's assets "
                f"({sorted(assets) or 'none'})"
            )
        interfaces[interface["name"]] = {
            "category": category,
            "inputs": _ports(interface["inputs"], f"{iface_where}.inputs", problems),
            "outputs": _ports(interface["outputs"], f"{iface_where}.outputs", problems),
        }
        if category == "business_logic":
            _check_code_package(folder, where, descriptor, problems)
        elif category == "ml_model":
            _check_model_descriptor(where, descriptor, problems)
    return interfaces


def _check_code_package(folder: Path, where: str, descriptor: Any, problems: list[str]) -> None:
    runtime = descriptor.get("runtimeDescriptor") if isinstance(descriptor, dict) else None
    keys = {"envelopeVersion": str, "entry": dict}
    if not _require(runtime, keys, f"{where}/descriptor.json: runtimeDescriptor", problems):
        return
    entry = runtime["entry"]
    if not _require(entry, {"path": str, "name": str}, f"{where}/descriptor.json: entry", problems):
        return
    dockerfile = folder / "Dockerfile"
    if not dockerfile.is_file():
        problems.append(f"{where}/Dockerfile: missing (the code node's container image)")
        return
    text = dockerfile.read_text()
    if not re.search(rf"^COPY\s+src\s+{CODE_ROOT}/?\s*$", text, re.MULTILINE):
        problems.append(
            f"{where}/Dockerfile: must COPY src {CODE_ROOT} (where the entry point lives)"
        )
    if not entry["name"].startswith(CODE_ROOT + "/"):
        problems.append(
            f"{where}/descriptor.json: entry {entry['name']!r} is not under {CODE_ROOT}/"
        )
        return
    source = folder / "src" / entry["name"][len(CODE_ROOT) + 1 :]
    if not source.is_file():
        problems.append(
            f"{where}/descriptor.json: entry {entry['name']} has no file "
            f"src/{source.relative_to(folder / 'src').as_posix()}"
        )
    if _python_check(entry["path"]) not in text:
        problems.append(
            f"{where}/Dockerfile: must check that {entry['path']} (the entry's interpreter) is "
            f"Python {RUNTIME_PYTHON[0]}.{RUNTIME_PYTHON[1]}+, the edge runtime's"
        )
    for zipped in re.findall(rf"-m zipfile -e {CODE_ROOT}/(\S+)", text):
        if not (folder / "src" / zipped).is_file():
            problems.append(f"{where}/Dockerfile unpacks {zipped}, which is not in src/")


def _check_model_descriptor(where: str, descriptor: Any, problems: list[str]) -> None:
    model = descriptor.get("mlModelDescriptor") if isinstance(descriptor, dict) else None
    keys = {"envelopeVersion": str, "framework": str, "inputs": list}
    if not _require(model, keys, f"{where}/descriptor.json: mlModelDescriptor", problems):
        return
    if model["framework"] not in MODEL_FRAMEWORKS:
        problems.append(
            f"{where}/descriptor.json: framework {model['framework']!r} must be one of {MODEL_FRAMEWORKS}"
        )
    if not model["inputs"]:
        problems.append(f"{where}/descriptor.json: inputs must name the model's input")
    for index, item in enumerate(model["inputs"]):
        if _require(
            item,
            {"name": str, "shape": list},
            f"{where}/descriptor.json: inputs[{index}]",
            problems,
        ):
            shape = item["shape"]
            if not (len(shape) == 4 and all(isinstance(v, int) and v > 0 for v in shape)):
                problems.append(
                    f"{where}/descriptor.json: inputs[{index}].shape {shape} must be 4 positive "
                    "integers (N, C, H, W)"
                )


def validate_panorama_app(app_dir: str | Path) -> list[str]:
    """Every problem of the Panorama application in ``app_dir`` (empty: valid).

    ``app_dir`` holds ``graphs/<app>/graph.json`` and ``packages/``. A code package may have
    no asset yet (``panorama-cli build-container`` adds it) when its Dockerfile is present.
    """
    root = Path(app_dir)
    problems: list[str] = []
    graphs = sorted((root / "graphs").glob("*/graph.json"))
    if len(graphs) != 1:
        return [f"{root}: expected one graphs/<app>/graph.json, found {len(graphs)}"]
    graph_where = graphs[0].relative_to(root).as_posix()
    document = _load_json(graphs[0], problems, root)
    graph = document.get("nodeGraph") if isinstance(document, dict) else None
    keys = {"envelopeVersion": str, "packages": list, "nodes": list, "edges": list}
    if not _require(graph, keys, f"{graph_where}: nodeGraph", problems):
        return problems
    if graph["envelopeVersion"] != ENVELOPE_VERSION:
        problems.append(f"{graph_where}: envelopeVersion must be {ENVELOPE_VERSION!r}")

    interfaces: dict[str, dict[str, Any]] = dict(BUILTIN_INTERFACES)
    declared: set[str] = set()
    for index, package in enumerate(graph["packages"]):
        where = f"{graph_where}: packages[{index}]"
        if not _require(package, {"name": str, "version": str}, where, problems):
            continue
        match = _PACKAGE_REF.match(package["name"])
        if not match:
            problems.append(
                f"{where}.name {package['name']!r} must be '<account>::<name>' or 'panorama::<name>'"
            )
            continue
        if not _PACKAGE_VERSION.match(package["version"]):
            problems.append(f"{where}.version {package['version']!r} must be major.minor")
            continue
        declared.add(package["name"])
        account, name = match.groups()
        if account == "panorama":
            continue
        for iface, spec in _check_package(
            root, account, name, package["version"], problems
        ).items():
            interfaces[f"{package['name']}.{iface}"] = spec

    nodes: dict[str, dict[str, Any]] = {}
    for index, node in enumerate(graph["nodes"]):
        where = f"{graph_where}: nodes[{index}]"
        if not _require(node, {"name": str, "interface": str}, where, problems):
            continue
        name, interface = node["name"], node["interface"]
        if name in nodes:
            problems.append(f"{where}: node name {name!r} is used twice")
        if not _NAME.match(name):
            problems.append(f"{where}: node name {name!r}: use letters, digits, '_' or '-'")
        if interface in PARAMETER_TYPES:
            if "value" not in node:
                problems.append(f"{where}: parameter {name!r} needs a value")
            elif (
                isinstance(node["value"], bool)
                and interface != "boolean"
                or not isinstance(node["value"], PARAMETER_TYPES[interface])
            ):
                problems.append(
                    f"{where}: parameter {name!r} value {node['value']!r} is not a {interface}"
                )
            nodes[name] = {"inputs": {}, "outputs": {"": interface}, "category": "parameter"}
            continue
        package_name = interface.rsplit(".", 1)[0] if "." in interface else ""
        if package_name not in declared:
            problems.append(
                f"{where}: interface {interface!r} belongs to package {package_name!r}, which "
                "graph.json does not list in packages"
            )
        elif interface not in interfaces:
            known = sorted(k for k in interfaces if k.startswith(package_name + "."))
            problems.append(
                f"{where}: interface {interface!r} does not exist (known: {known or 'none'})"
            )
        for key in ("overridable", "overrideMandatory"):
            if key in node and not isinstance(node[key], bool):
                problems.append(f"{where}.{key} must be true or false")
        if "launch" in node and node["launch"] != "onAppStart":
            problems.append(f"{where}.launch must be 'onAppStart'")
        nodes[name] = interfaces.get(interface, {"inputs": {}, "outputs": {}, "category": None})

    fed: dict[str, int] = {}
    for index, edge in enumerate(graph["edges"]):
        where = f"{graph_where}: edges[{index}]"
        if not _require(edge, {"producer": str, "consumer": str}, where, problems):
            continue
        producer_node, _, producer_port = edge["producer"].partition(".")
        consumer_node, _, consumer_port = edge["consumer"].partition(".")
        kinds = []
        for role, node_name, port, side in (
            ("producer", producer_node, producer_port, "outputs"),
            ("consumer", consumer_node, consumer_port, "inputs"),
        ):
            if node_name not in nodes:
                problems.append(
                    f"{where}: {role} {edge[role]!r} names no node (nodes: {sorted(nodes)})"
                )
                kinds.append(None)
                continue
            ports = nodes[node_name][side]
            if port not in ports:
                listed = ", ".join(p or "<the parameter itself>" for p in ports) or "none"
                problems.append(
                    f"{where}: {role} {edge[role]!r}: node {node_name!r} has no "
                    f"{side[:-1]} {port or '<none>'!r} ({side}: {listed})"
                )
                kinds.append(None)
                continue
            kinds.append(ports[port])
        if None not in kinds and kinds[0] != kinds[1]:
            problems.append(
                f"{where}: {edge['producer']} ({kinds[0]}) cannot feed {edge['consumer']} ({kinds[1]})"
            )
        fed[edge["consumer"]] = fed.get(edge["consumer"], 0) + 1
    for name, node in nodes.items():
        if node.get("category") != "business_logic":
            continue
        for port in node["inputs"]:
            count = fed.get(f"{name}.{port}", 0)
            if count != 1:
                problems.append(
                    f"{graph_where}: input {name}.{port} is fed by {count} edges; it needs exactly one"
                )
    return problems


def check_panorama_app(app_dir: str | Path) -> None:
    """Raise :class:`PanoramaPackageError` listing every problem (see :func:`validate_panorama_app`)."""
    problems = validate_panorama_app(app_dir)
    if problems:
        raise PanoramaPackageError(
            f"invalid Panorama application {app_dir}:\n  " + "\n  ".join(problems)
        )
