"""The edge app as an AWS IoT Greengrass v2 component: recipe, artefact upload, component version.

The component's only artefact is the edge bundle zip (:mod:`kit.package.bundle`), stored in
the backend's bucket at ``packages/greengrass/<component>/<version>/<bundle>.zip`` and
unpacked by the core device (``Unarchive: ZIP``) into ``{artifacts:decompressedPath}/<bundle>/``.
Its lifecycle:

- **Install** (:data:`INSTALL_SCRIPT`): a virtual environment in the component's work folder,
  made by the interpreter the component configuration names (``python``, default ``python3``),
  with the edge requirements of the bundle (``pip install -r requirements.txt``; the device needs
  PyPI). The interpreter must be Python 3.11 or newer (:data:`MIN_PYTHON`); otherwise the step
  fails saying what it found and what to install. It is idempotent: a stamp in the venv holds the
  sha256 of the requirements and the interpreter, and an unchanged stamp keeps the venv as it is.
- **Run**: :class:`RunCommand` — write the device config from the bundle's ``device.yaml`` and
  the component configuration (``bin/write_device_config.py``), then
  ``exec python -m edge_app --config {work:path}/device.json``. The local device runs the very
  same command with local paths.

The component configuration (``DefaultConfiguration``, merged with each deployment's
``configurationUpdate``) carries what differs per device or fleet: ``deviceId`` (empty: the
core device's thing name), ``cameras``, ``model``, ``settings`` (region, prefix, resource
names, endpoints), ``heartbeatS``, ``logLevel`` and ``python`` (the interpreter, e.g.
``python3.11`` on Ubuntu 22.04). AWS credentials come from the token
exchange service (a hard dependency), whose role ``infra/edge.py`` defines.

Examples:
    >>> recipe = component_recipe(
    ...     component_name="com.edgevisionkit.EdgeApp", component_version="0.1.0",
    ...     artifact_uri="s3://my-bucket/packages/greengrass/com.edgevisionkit.EdgeApp/0.1.0/evk-edge-app.zip",
    ...     default_configuration=default_configuration(model="shelf:production"))
    >>> validate_recipe(recipe)
    []
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kit.package.bundle import BUNDLE_NAME, CONFIG_WRITER_FILE, REQUIREMENTS_FILE, Bundle
from kit.package.device_config_writer import ENVIRONMENT_KEYS

RECIPE_FORMAT_VERSION = "2020-01-25"
DEFAULT_COMPONENT_NAME = "com.edgevisionkit.EdgeApp"
PACKAGES_PREFIX = "packages/greengrass"
TOKEN_EXCHANGE_SERVICE = "aws.greengrass.TokenExchangeService"
RUN_CONFIG_FILE = "device.json"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
DEFAULT_PYTHON = "python3"
MIN_PYTHON = (3, 11)
"""The oldest Python the edge runtime runs on: edge_app and kit.core use ``datetime.UTC`` and
``enum.StrEnum`` (3.11), and its pinned numpy needs 3.11."""
INSTALL_STAMP = ".evk-requirements.sha256"
"""In the venv: the sha256 of the requirements and the interpreter it was made for."""
INSTALL_HINT = (
    "Ubuntu 22.04 or JetPack 6: sudo apt-get install python3.11 python3.11-venv, then set the "
    "component configuration python to python3.11; Ubuntu 24.04: sudo apt-get install "
    "python3-venv; Amazon Linux 2023: sudo dnf install python3.11, then set python to python3.11"
)
"""How to get a suitable interpreter on the common core device OSes (docs/deploy-aws.md)."""
INSTALL_SCRIPT = f"""set -eu
minimum={MIN_PYTHON[0]}.{MIN_PYTHON[1]}
fail() {{
  echo "evk install: $1" >&2
  echo "evk install: the edge app needs Python $minimum or newer with its venv module." >&2
  echo "evk install: {INSTALL_HINT}." >&2
  exit 1
}}
if ! command -v "$EVK_PYTHON" >/dev/null 2>&1; then
  fail "no Python interpreter '$EVK_PYTHON' on this device (component configuration python)"
fi
where=$(command -v "$EVK_PYTHON")
found=$("$EVK_PYTHON" -c 'import sys; print("%d.%d.%d" % tuple(sys.version_info[:3]))' || true)
major=$(echo "$found" | cut -d. -f1)
minor=$(echo "$found" | cut -d. -f2)
case "$major.$minor" in
  *[!0-9.]* | .* | *.) fail "$EVK_PYTHON ($where) did not say its version" ;;
esac
too_old=no
if [ "$major" -lt {MIN_PYTHON[0]} ]; then too_old=yes; fi
if [ "$major" -eq {MIN_PYTHON[0]} ] && [ "$minor" -lt {MIN_PYTHON[1]} ]; then too_old=yes; fi
if [ "$too_old" = yes ]; then
  fail "$EVK_PYTHON ($where) is Python $found"
fi
stamp=$("$EVK_PYTHON" -c 'import hashlib, sys
digest = hashlib.sha256(open(sys.argv[1], "rb").read())
digest.update(sys.version.encode())
digest.update(sys.argv[2].encode())
print(digest.hexdigest())' "$EVK_REQUIREMENTS" "$where")
if [ -x "$EVK_VENV/bin/python" ] && [ "$(cat "$EVK_VENV/{INSTALL_STAMP}" 2>/dev/null)" = "$stamp" ]
then
  echo "evk install: $EVK_VENV is up to date (Python $found, requirements unchanged)"
  exit 0
fi
rm -rf "$EVK_VENV"
if ! "$EVK_PYTHON" -m venv "$EVK_VENV"; then
  rm -rf "$EVK_VENV"
  fail "$EVK_PYTHON ($where, Python $found) cannot make a virtual environment: install its venv package (python$major.$minor-venv on Debian, Ubuntu and JetPack)"
fi
"$EVK_VENV/bin/python" -m pip install --disable-pip-version-check --no-cache-dir -q -r "$EVK_REQUIREMENTS"
echo "$stamp" > "$EVK_VENV/{INSTALL_STAMP}"
echo "evk install: made $EVK_VENV with Python $found ($where)"
"""
"""The Install step's script (``sh``), parameterised by its environment (recipe ``Setenv``):
``EVK_PYTHON`` (the interpreter), ``EVK_VENV`` (the venv to make) and ``EVK_REQUIREMENTS``
(the bundle's requirements file). No ``{{namespace:key}}`` in it: Greengrass would read that as
a recipe variable."""

_COMPONENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_COMPONENT_VERSION = re.compile(r"^(\d{1,6})\.(\d{1,6})\.(\d{1,6})$")
_LIFECYCLE_STEPS = {"Setenv", "Bootstrap", "Install", "Startup", "Run", "Shutdown", "Recover"}
_STEP_KEYS = {"Script", "Setenv", "Timeout", "RequiresPrivilege", "Skipif"}
_RECIPE_VARIABLE = re.compile(r"\{([A-Za-z_.]+:[^{}]*)\}")
_PLAIN_VARIABLES = {
    "artifacts:path",
    "artifacts:decompressedPath",
    "work:path",
    "kernel:rootPath",
    "iot:thingName",
}


class RecipeError(ValueError):
    """A component recipe breaks the recipe format; the message lists every problem."""


@dataclass(frozen=True)
class RunCommand:
    """How the edge app is started from an unpacked bundle — on a core device and locally alike.

    Args:
        python: the interpreter (Greengrass: the venv the Install step made).
        bundle_root: the unpacked bundle.
        work_dir: where the config file, spool and model cache live.
        log_level: ``DEBUG``, ``INFO``, ``WARNING`` or ``ERROR`` (or a recipe variable).

    Examples:
        >>> RunCommand("/venv/bin/python", "/b", "/w").script()
        '/venv/bin/python /b/bin/write_device_config.py --out /w/device.json && exec /venv/bin/python -m edge_app --config /w/device.json --log-level INFO'
    """

    python: str
    bundle_root: str
    work_dir: str
    log_level: str = "INFO"

    @property
    def config_file(self) -> str:
        return f"{self.work_dir}/{RUN_CONFIG_FILE}"

    def script(self) -> str:
        """The shell command line (``sh -c``): write the config, then exec the app."""
        quote = shlex.quote
        python = quote(self.python)
        writer = quote(f"{self.bundle_root}/{CONFIG_WRITER_FILE}")
        config = quote(self.config_file)
        return (
            f"{python} {writer} --out {config} && "
            f"exec {python} -m edge_app --config {config} --log-level {quote(self.log_level)}"
        )

    def environment(self, configuration: Mapping[str, str]) -> dict[str, str]:
        """The process environment: the bundle on ``PYTHONPATH`` and the configuration's
        ``EDGE_*`` variables (``configuration`` maps configuration keys to their values)."""
        env = {"PYTHONPATH": self.bundle_root, "PYTHONUNBUFFERED": "1"}
        for key, value in configuration.items():
            if key not in ENVIRONMENT_KEYS:
                raise ValueError(
                    f"unknown configuration key {key!r}; known: {', '.join(ENVIRONMENT_KEYS)}"
                )
            env[ENVIRONMENT_KEYS[key]] = value
        return env


VENV_PATH = "{work:path}/venv"
"""Where the Install step makes the venv the Run step's interpreter lives in."""


def greengrass_run_command(bundle_name: str = BUNDLE_NAME) -> RunCommand:
    """The :class:`RunCommand` in Greengrass recipe variables."""
    return RunCommand(
        python=f"{VENV_PATH}/bin/python",
        bundle_root=f"{{artifacts:decompressedPath}}/{bundle_name}",
        work_dir="{work:path}",
        log_level="{configuration:/logLevel}",
    )


def configuration_environment() -> dict[str, str]:
    """Configuration key -> the recipe variable that fills it (``{configuration:/<key>}``)."""
    return {
        key: "{iot:thingName}" if key == "thingName" else f"{{configuration:/{key}}}"
        for key in ENVIRONMENT_KEYS
    }


def default_configuration(
    *,
    device_id: str = "",
    cameras: list[dict[str, Any]] | None = None,
    model: str = "",
    settings: Mapping[str, Any] | None = None,
    heartbeat_s: float = 10.0,
    log_level: str = "INFO",
    python: str = DEFAULT_PYTHON,
) -> dict[str, Any]:
    """The component's ``DefaultConfiguration``.

    Args:
        device_id: empty: each core device uses its thing name.
        cameras: camera configs (``edge_app.config.CameraConfig`` fields); empty: the bundle's.
        model: ``name:version`` for cameras without a model; empty: the bundle's.
        settings: kit settings the device runs with (target, region, prefix, resources, api_url).
        heartbeat_s: seconds between heartbeats.
        log_level: the app's log level.
        python: the interpreter the Install step makes the venv with (a name on the device's
            PATH or an absolute path; Python 3.11 or newer).

    Raises:
        ValueError: an unknown log level, or an interpreter name with a space or quote.
    """
    if log_level not in LOG_LEVELS:
        raise ValueError(f"log level {log_level!r} is not one of {', '.join(LOG_LEVELS)}")
    if not python or not re.fullmatch(r"[A-Za-z0-9._/+-]+", python):
        raise ValueError(
            f"python {python!r} is not an interpreter name or path (letters, digits, '.', '_', "
            "'/', '+', '-'), e.g. python3 or /usr/bin/python3.11"
        )
    return {
        "deviceId": device_id,
        "cameras": list(cameras or []),
        "model": model,
        "settings": dict(settings or {}),
        "heartbeatS": heartbeat_s,
        "logLevel": log_level,
        "python": python,
    }


def component_recipe(
    *,
    component_name: str,
    component_version: str,
    artifact_uri: str,
    default_configuration: Mapping[str, Any],
    bundle_name: str = BUNDLE_NAME,
    description: str = "Edge Vision Kit edge app: cameras -> detector -> tracker -> zones -> backend",
    publisher: str = "Edge Vision Kit",
    install_timeout_s: int = 1800,
) -> dict[str, Any]:
    """The component recipe (as a dict; ``json.dumps`` it for ``inlineRecipe``).

    Args:
        component_name: e.g. ``com.edgevisionkit.EdgeApp``.
        component_version: ``major.minor.patch``.
        artifact_uri: ``s3://<bucket>/packages/greengrass/<name>/<version>/<bundle>.zip``.
        default_configuration: see :func:`default_configuration`.
        bundle_name: the zip's stem (the folder it unpacks into).
        description: the component's description.
        publisher: the component's publisher.
        install_timeout_s: how long the Install step (pip) may take.
    """
    run = greengrass_run_command(bundle_name)
    requirements = f"{{artifacts:decompressedPath}}/{bundle_name}/{REQUIREMENTS_FILE}"
    return {
        "RecipeFormatVersion": RECIPE_FORMAT_VERSION,
        "ComponentName": component_name,
        "ComponentVersion": component_version,
        "ComponentDescription": description,
        "ComponentPublisher": publisher,
        "ComponentDependencies": {
            TOKEN_EXCHANGE_SERVICE: {
                "VersionRequirement": ">=2.0.0 <3.0.0",
                "DependencyType": "HARD",
            }
        },
        "ComponentConfiguration": {"DefaultConfiguration": dict(default_configuration)},
        "Manifests": [
            {
                "Platform": {"os": "linux"},
                "Lifecycle": {
                    "Install": {
                        "Script": INSTALL_SCRIPT,
                        "Setenv": {
                            "EVK_PYTHON": "{configuration:/python}",
                            "EVK_VENV": VENV_PATH,
                            "EVK_REQUIREMENTS": requirements,
                        },
                        "Timeout": install_timeout_s,
                    },
                    "Run": {
                        "Script": run.script(),
                        "Setenv": run.environment(configuration_environment()),
                    },
                },
                "Artifacts": [
                    {
                        "URI": artifact_uri,
                        "Unarchive": "ZIP",
                        "Permission": {"Read": "OWNER", "Execute": "NONE"},
                    }
                ],
            }
        ],
    }


def _json_pointer_exists(document: Any, pointer: str) -> bool:
    if pointer in ("", "/"):
        return True
    node = document
    for part in pointer.lstrip("/").split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return False
    return True


def _check_variables(text: str, where: str, configuration: Any, problems: list[str]) -> None:
    for variable in _RECIPE_VARIABLE.findall(text):
        if variable in _PLAIN_VARIABLES:
            continue
        if variable.startswith("configuration:"):
            pointer = variable[len("configuration:") :]
            if not _json_pointer_exists(configuration, pointer):
                problems.append(
                    f"{where}: {{{variable}}} names no key of DefaultConfiguration "
                    f"(keys: {', '.join(configuration) if isinstance(configuration, dict) else 'none'})"
                )
            continue
        problems.append(
            f"{where}: unknown recipe variable {{{variable}}}; known: "
            f"{', '.join(sorted(_PLAIN_VARIABLES))}, configuration:/<pointer>"
        )


def validate_recipe(recipe: Mapping[str, Any]) -> list[str]:
    """Every problem of ``recipe`` against the recipe format (empty: valid).

    Checks the required keys and their types, the name and semantic version, lifecycle steps
    and their keys, that every recipe variable is known and every ``{configuration:/...}``
    names a key of ``DefaultConfiguration``, artefact URIs, and that the folder the scripts
    use under ``{artifacts:decompressedPath}`` is the one the ZIP artefact unpacks into.
    """
    problems: list[str] = []
    if not isinstance(recipe, Mapping):
        return [f"a recipe must be a mapping, not {type(recipe).__name__}"]
    if recipe.get("RecipeFormatVersion") != RECIPE_FORMAT_VERSION:
        problems.append(
            f"RecipeFormatVersion must be {RECIPE_FORMAT_VERSION!r}, "
            f"got {recipe.get('RecipeFormatVersion')!r}"
        )
    name = recipe.get("ComponentName")
    if not isinstance(name, str) or not _COMPONENT_NAME.match(name):
        problems.append(
            f"ComponentName {name!r} must be 1-128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    elif name.startswith("aws.greengrass."):
        problems.append(f"ComponentName {name!r}: the aws.greengrass. prefix is reserved for AWS")
    version = recipe.get("ComponentVersion")
    if not isinstance(version, str) or not _COMPONENT_VERSION.match(version):
        problems.append(f"ComponentVersion {version!r} must be major.minor.patch, e.g. 1.0.0")
    configuration = (recipe.get("ComponentConfiguration") or {}).get("DefaultConfiguration")
    if "ComponentConfiguration" in recipe and not isinstance(configuration, dict):
        problems.append("ComponentConfiguration.DefaultConfiguration must be a mapping")
        configuration = {}
    configuration = configuration or {}
    for dependency, spec in (recipe.get("ComponentDependencies") or {}).items():
        if not isinstance(spec, dict) or not isinstance(spec.get("VersionRequirement"), str):
            problems.append(f"ComponentDependencies.{dependency}: needs a VersionRequirement")
        elif spec.get("DependencyType", "HARD") not in ("HARD", "SOFT"):
            problems.append(
                f"ComponentDependencies.{dependency}: DependencyType must be HARD or SOFT"
            )
    manifests = recipe.get("Manifests")
    if not isinstance(manifests, list) or not manifests:
        problems.append("Manifests must be a non-empty list")
        manifests = []
    for index, manifest in enumerate(manifests):
        where = f"Manifests[{index}]"
        if not isinstance(manifest, dict):
            problems.append(f"{where} must be a mapping")
            continue
        platform = manifest.get("Platform", {})
        if not isinstance(platform, dict):
            problems.append(f"{where}.Platform must be a mapping such as {{os: linux}}")
        lifecycle = manifest.get("Lifecycle")
        if not isinstance(lifecycle, dict) or not lifecycle:
            problems.append(f"{where}.Lifecycle must be a non-empty mapping")
            lifecycle = {}
        if not ({"Run", "Startup"} & set(lifecycle)):
            problems.append(f"{where}.Lifecycle needs a Run (or Startup) step to start the app")
        unpacked: set[str] = set()
        artifacts = manifest.get("Artifacts", [])
        if not isinstance(artifacts, list):
            problems.append(f"{where}.Artifacts must be a list")
            artifacts = []
        for number, artifact in enumerate(artifacts):
            uri = artifact.get("URI") if isinstance(artifact, dict) else None
            if not isinstance(uri, str) or not re.match(
                r"^(s3://[^/]+/.+|docker:.+|greengrass:.+)$", uri
            ):
                problems.append(
                    f"{where}.Artifacts[{number}].URI must be s3://<bucket>/<key> (got {uri!r})"
                )
                continue
            unarchive = artifact.get("Unarchive", "NONE")
            if unarchive not in ("NONE", "ZIP"):
                problems.append(f"{where}.Artifacts[{number}].Unarchive must be NONE or ZIP")
            if unarchive == "ZIP":
                if not uri.endswith(".zip"):
                    problems.append(f"{where}.Artifacts[{number}]: Unarchive ZIP needs a .zip URI")
                unpacked.add(Path(uri.rsplit("/", 1)[-1]).stem)
        for step, spec in lifecycle.items():
            step_where = f"{where}.Lifecycle.{step}"
            if step not in _LIFECYCLE_STEPS:
                problems.append(
                    f"{step_where}: unknown lifecycle step; known: {', '.join(sorted(_LIFECYCLE_STEPS))}"
                )
                continue
            if step == "Setenv":
                spec = {"Setenv": spec}
            elif isinstance(spec, str):
                spec = {"Script": spec}
            if not isinstance(spec, dict):
                problems.append(f"{step_where} must be a script or a mapping with Script")
                continue
            unknown = set(spec) - _STEP_KEYS
            if unknown:
                problems.append(f"{step_where}: unknown keys {sorted(unknown)}")
            if step != "Setenv" and not isinstance(spec.get("Script"), str):
                problems.append(f"{step_where}.Script must be a command line")
            if "Timeout" in spec and not (isinstance(spec["Timeout"], int) and spec["Timeout"] > 0):
                problems.append(f"{step_where}.Timeout must be a positive number of seconds")
            texts = [spec.get("Script", "") or ""]
            setenv = spec.get("Setenv", {})
            if not isinstance(setenv, dict) or not all(isinstance(v, str) for v in setenv.values()):
                problems.append(f"{step_where}.Setenv must map names to strings")
                setenv = {}
            texts += list(setenv.values())
            for text in texts:
                _check_variables(text, step_where, configuration, problems)
                for folder in re.findall(r"\{artifacts:decompressedPath\}/([^/\s'\"]+)", text):
                    if folder not in unpacked:
                        problems.append(
                            f"{step_where}: uses {{artifacts:decompressedPath}}/{folder}, but no ZIP "
                            f"artefact unpacks into it (ZIP artefacts: {sorted(unpacked) or 'none'})"
                        )
    return problems


def check_recipe(recipe: Mapping[str, Any]) -> None:
    """Raise :class:`RecipeError` listing every problem of ``recipe`` (see :func:`validate_recipe`)."""
    problems = validate_recipe(recipe)
    if problems:
        raise RecipeError("invalid component recipe:\n  " + "\n  ".join(problems))


# -- publishing ----------------------------------------------------------------------------------


def artifact_key(component_name: str, component_version: str, bundle: Bundle) -> str:
    """``packages/greengrass/<component>/<version>/<bundle>.zip``."""
    return f"{PACKAGES_PREFIX}/{component_name}/{component_version}/{bundle.path.name}"


def component_arn(greengrass: Any, account_id: str, component_name: str) -> str:
    """``arn:<partition>:greengrass:<region>:<account>:components:<name>``."""
    region = greengrass.meta.region_name
    return f"arn:{greengrass.meta.partition}:greengrass:{region}:{account_id}:components:{component_name}"


def next_component_version(greengrass: Any, arn: str, app_version: str) -> str:
    """The next free version of the component ``arn``: the app's ``major.minor`` with the patch
    after the newest published one of that ``major.minor`` (``<major.minor>.0`` when none is).

    Only ``list_component_versions`` is called (the deploy role of ``infra/pipeline.py`` may).
    """
    from botocore.exceptions import ClientError

    match = re.match(r"^(\d+)\.(\d+)", app_version)
    major, minor = (int(match.group(1)), int(match.group(2))) if match else (0, 1)
    newest_patch = -1
    try:
        for page in greengrass.get_paginator("list_component_versions").paginate(arn=arn):
            for item in page.get("componentVersions", []):
                found = _COMPONENT_VERSION.match(item.get("componentVersion", ""))
                if found and (int(found.group(1)), int(found.group(2))) == (major, minor):
                    newest_patch = max(newest_patch, int(found.group(3)))
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
            raise
    return f"{major}.{minor}.{newest_patch + 1}"


@dataclass(frozen=True)
class PublishedComponent:
    """A component version created in Greengrass (or, with ``arn`` None, only written locally)."""

    component_name: str
    component_version: str
    artifact_uri: str
    recipe: dict[str, Any] = field(repr=False)
    arn: str | None = None
    status: str | None = None
    recipe_file: Path | None = None


def upload_artifact(s3: Any, bucket: str, key: str, bundle: Bundle) -> str:
    """Upload the bundle to ``s3://bucket/key`` (once: an existing identical object is kept).

    Raises:
        RuntimeError: a different object already holds that key (component versions are
            immutable: publish a new version instead).
    """
    from botocore.exceptions import ClientError

    try:
        existing = s3.head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
            raise
        existing = None
    if existing is not None:
        if existing.get("Metadata", {}).get("sha256") != bundle.sha256:
            raise RuntimeError(
                f"s3://{bucket}/{key} already holds another bundle; component versions are "
                "immutable, publish a new component version"
            )
        return f"s3://{bucket}/{key}"
    s3.upload_file(
        str(bundle.path),
        bucket,
        key,
        ExtraArgs={"Metadata": {"sha256": bundle.sha256}, "ContentType": "application/zip"},
    )
    return f"s3://{bucket}/{key}"


def build_component(
    bundle: Bundle,
    *,
    bucket: str,
    component_version: str,
    configuration: Mapping[str, Any],
    component_name: str = DEFAULT_COMPONENT_NAME,
    out_dir: str | Path | None = None,
) -> PublishedComponent:
    """The recipe for ``bundle`` (validated), written to ``<out_dir>/recipe.json`` if given.

    Raises:
        RecipeError: the recipe is invalid (e.g. a bad name or version).
    """
    uri = f"s3://{bucket}/{artifact_key(component_name, component_version, bundle)}"
    recipe = component_recipe(
        component_name=component_name,
        component_version=component_version,
        artifact_uri=uri,
        default_configuration=configuration,
        bundle_name=bundle.name,
    )
    check_recipe(recipe)
    recipe_file = None
    if out_dir is not None:
        recipe_file = Path(out_dir) / "recipe.json"
        recipe_file.parent.mkdir(parents=True, exist_ok=True)
        recipe_file.write_text(json.dumps(recipe, indent=2) + "\n")
    return PublishedComponent(
        component_name, component_version, uri, recipe, recipe_file=recipe_file
    )


def publish_component(
    component: PublishedComponent, bundle: Bundle, *, s3: Any, greengrass: Any
) -> PublishedComponent:
    """Upload the artefact and create the component version (``create_component_version``).

    Returns:
        ``component`` with the new version's ARN and status.

    Raises:
        RuntimeError: the artefact key holds another bundle, or Greengrass rejected the recipe
            (its message is included).
    """
    bucket, _, key = component.artifact_uri[len("s3://") :].partition("/")
    upload_artifact(s3, bucket, key, bundle)
    response = greengrass.create_component_version(
        inlineRecipe=json.dumps(component.recipe).encode()
    )
    status = response.get("status", {})
    if status.get("componentState") == "FAILED":
        raise RuntimeError(
            f"Greengrass rejected {component.component_name} {component.component_version}: "
            f"{status.get('message')} {status.get('errors') or ''}".strip()
        )
    return PublishedComponent(
        component.component_name,
        component.component_version,
        component.artifact_uri,
        component.recipe,
        arn=response["arn"],
        status=status.get("componentState"),
        recipe_file=component.recipe_file,
    )
