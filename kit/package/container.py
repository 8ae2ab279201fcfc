"""The edge app as a container image: a Dockerfile around the edge bundle, for Linux and Jetson.

The image holds the unpacked bundle in ``/app`` and the edge requirements only (no torch, no
ultralytics); its entry point is ``python -m edge_app --config /config/device.yaml``. The
default ``/config/device.yaml`` is written at build time from the bundle's device config;
mount your own over it (``-v ./device.yaml:/config/device.yaml:ro``). The spool and the model
cache live in the ``/data`` volume.

Two bases:

- ``linux`` (default): ``python:3.11-slim-bookworm`` (amd64 and arm64);
- ``jetson``: NVIDIA's L4T JetPack image (``nvcr.io/nvidia/l4t-jetpack``, Ubuntu 22.04), with
  Python 3.11 from the deadsnakes PPA since the runtime needs 3.11. ONNX Runtime from PyPI runs
  on the CPU there; for the GPU install NVIDIA's Jetson build of onnxruntime-gpu on top.

No Docker engine is needed to *write* the build context; :func:`validate_dockerfile` checks its
text (base image, bundle copied, only the bundle's requirements installed, entry point).

Examples:
    >>> context = build_container_context("build/container", bundle)          # doctest: +SKIP
    >>> context.build_command                                                  # doctest: +SKIP
    'docker build -t evk-edge-app:0.1.0 build/container'
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from kit.package.bundle import CONFIG_WRITER_FILE, HEAVY_MODULES, REQUIREMENTS_FILE, Bundle

BASE_IMAGES = {
    "linux": "python:3.11-slim-bookworm",
    "jetson": "nvcr.io/nvidia/l4t-jetpack:r36.4.0",
}
PYTHON = {"linux": "python", "jetson": "python3.11"}
APP_DIR = "/app"
CONFIG_PATH = "/config/device.yaml"
DATA_DIR = "/data"


class DockerfileError(ValueError):
    """A Dockerfile does not build the edge image as the kit expects; lists every problem."""


def entrypoint(platform: str = "linux") -> list[str]:
    """The image's ENTRYPOINT (exec form)."""
    return [PYTHON[platform], "-m", "edge_app", "--config", CONFIG_PATH]


def dockerfile(bundle_file: str, *, platform: str = "linux", base_image: str | None = None) -> str:
    """The Dockerfile text for ``bundle_file`` (the zip's name in the build context).

    Args:
        bundle_file: e.g. ``evk-edge-app.zip``.
        platform: ``linux`` or ``jetson``.
        base_image: overrides the platform's base image (same family, e.g. another tag).

    Raises:
        ValueError: an unknown platform.
    """
    if platform not in BASE_IMAGES:
        raise ValueError(f"platform {platform!r} is not one of {', '.join(BASE_IMAGES)}")
    base = base_image or BASE_IMAGES[platform]
    python = PYTHON[platform]
    lines = [
        "# Edge Vision Kit edge app. Built by `kit package container`; the same bundle as the",
        "# Greengrass component and the local device. Run:",
        "#   docker run -v ./device.yaml:/config/device.yaml:ro -v evk-data:/data <image>",
        f"FROM {base}",
        "ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PIP_DISABLE_PIP_VERSION_CHECK=1",
    ]
    if platform == "jetson":
        lines += [
            "# JetPack 6 ships Python 3.10; the edge runtime needs 3.11.",
            "RUN apt-get update \\",
            "    && apt-get install -y --no-install-recommends software-properties-common \\",
            "    && add-apt-repository -y ppa:deadsnakes/ppa \\",
            "    && apt-get update \\",
            "    && apt-get install -y --no-install-recommends python3.11 python3.11-venv \\",
            "    && python3.11 -m ensurepip \\",
            "    && rm -rf /var/lib/apt/lists/*",
        ]
    lines += [
        f"WORKDIR {APP_DIR}",
        f"COPY {bundle_file} /tmp/{bundle_file}",
        f"RUN {python} -m zipfile -e /tmp/{bundle_file} {APP_DIR} \\",
        f"    && rm /tmp/{bundle_file} \\",
        f"    && {python} -m pip install --no-cache-dir -r {APP_DIR}/{REQUIREMENTS_FILE} \\",
        f"    && {python} {APP_DIR}/{CONFIG_WRITER_FILE} --out {CONFIG_PATH} --work-dir {DATA_DIR} \\",
        f"    && useradd --system --uid 10001 edge && mkdir -p {DATA_DIR} && chown edge {DATA_DIR}",
        f"ENV PYTHONPATH={APP_DIR}",
        "USER edge",
        f'VOLUME ["{DATA_DIR}"]',
        f"ENTRYPOINT {json.dumps(entrypoint(platform))}",
        "",
    ]
    return "\n".join(lines)


def _instructions(text: str) -> list[tuple[str, str]]:
    logical, current = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        keyword, _, rest = current.partition(" ")
        logical.append((keyword.upper(), rest.strip()))
        current = ""
    if current:
        keyword, _, rest = current.partition(" ")
        logical.append((keyword.upper(), rest.strip()))
    return logical


def validate_dockerfile(text: str, *, bundle_file: str, platform: str | None = None) -> list[str]:
    """Every problem of a Dockerfile for the edge image (empty: as expected).

    Checks: the base image (Python 3.11 slim, or NVIDIA L4T for Jetson); the bundle zip is
    copied and unpacked; pip installs only the bundle's requirements file; no training package
    is mentioned; the entry point is ``python -m edge_app --config /config/device.yaml``.

    Args:
        text: the Dockerfile.
        bundle_file: the bundle zip's name in the build context.
        platform: ``linux`` or ``jetson`` to require that family; None accepts either.
    """
    problems: list[str] = []
    instructions = _instructions(text)
    froms = [rest for keyword, rest in instructions if keyword == "FROM"]
    if not instructions or instructions[0][0] not in ("FROM", "ARG"):
        problems.append("the Dockerfile must start with FROM (ARG lines may precede it)")
    if len(froms) != 1:
        problems.append(f"expected exactly one FROM (a single-stage image), found {len(froms)}")
    base = froms[-1].split()[0] if froms else ""
    families = {
        "linux": re.compile(r"^(docker\.io/(library/)?)?python:3\.11[.\d]*-slim"),
        "jetson": re.compile(r"^nvcr\.io/nvidia/l4t-[a-z-]+:r\d+"),
    }
    wanted = [platform] if platform else list(families)
    if not any(families[name].match(base) for name in wanted):
        allowed = " or ".join(
            {"linux": "python:3.11-*slim*", "jetson": "nvcr.io/nvidia/l4t-*:r<release>"}[n]
            for n in wanted
        )
        problems.append(f"base image {base!r} is not {allowed}")
    copies = [rest for keyword, rest in instructions if keyword in ("COPY", "ADD")]
    if not any(rest.split()[0:1] == [bundle_file] for rest in copies):
        problems.append(
            f"the bundle {bundle_file} is never copied into the image (COPY {bundle_file} ...)"
        )
    for rest in copies:
        source = rest.split()[0] if rest.split() else ""
        if source != bundle_file and not source.startswith("--"):
            problems.append(
                f"COPY {source}: only the bundle goes into the image (its manifest lists every file)"
            )
    runs = " && ".join(rest for keyword, rest in instructions if keyword == "RUN")
    if f"-m zipfile -e /tmp/{bundle_file}" not in runs and "unzip" not in runs:
        problems.append(f"the bundle {bundle_file} is never unpacked (python -m zipfile -e ...)")
    for install in re.findall(r"pip3?(?:\.\d+)? install ([^&;|]*)", runs):
        args = [a for a in install.split() if not a.startswith("--")]
        if args != ["-r", f"{APP_DIR}/{REQUIREMENTS_FILE}"]:
            problems.append(
                f"pip install {install.strip()!r}: install the bundle's edge requirements only "
                f"(pip install -r {APP_DIR}/{REQUIREMENTS_FILE})"
            )
    if "pip install" not in runs.replace("pip3 install", "pip install"):
        problems.append(
            f"the edge requirements are never installed (pip install -r {APP_DIR}/{REQUIREMENTS_FILE})"
        )
    lowered = text.lower()
    for heavy in sorted(HEAVY_MODULES):
        if re.search(rf"\b{heavy}\b", lowered):
            problems.append(
                f"{heavy!r} appears in the Dockerfile; training packages never go on a device"
            )
    entrypoints = [rest for keyword, rest in instructions if keyword == "ENTRYPOINT"]
    if len(entrypoints) != 1:
        problems.append(f"expected one ENTRYPOINT, found {len(entrypoints)}")
    else:
        try:
            argv = json.loads(entrypoints[0])
        except json.JSONDecodeError:
            argv = None
        expected_tail = ["-m", "edge_app", "--config", CONFIG_PATH]
        if not (
            isinstance(argv, list)
            and len(argv) == 5
            and re.match(r"^python(3(\.11)?)?$", str(argv[0]))
            and argv[1:] == expected_tail
        ):
            problems.append(
                f"ENTRYPOINT {entrypoints[0]} must be the exec form "
                f'["python", "-m", "edge_app", "--config", "{CONFIG_PATH}"]'
            )
    return problems


def check_dockerfile(text: str, *, bundle_file: str, platform: str | None = None) -> None:
    """Raise :class:`DockerfileError` listing every problem (see :func:`validate_dockerfile`)."""
    problems = validate_dockerfile(text, bundle_file=bundle_file, platform=platform)
    if problems:
        raise DockerfileError("invalid edge Dockerfile:\n  " + "\n  ".join(problems))


@dataclass(frozen=True)
class ContainerContext:
    """A Docker build context: the Dockerfile and the bundle next to it."""

    path: Path
    dockerfile: Path
    bundle: Path
    image: str
    platform: str

    @property
    def build_command(self) -> str:
        """How to build it (``docker buildx build --platform linux/arm64`` for Jetson)."""
        if self.platform == "jetson":
            return f"docker buildx build --platform linux/arm64 -t {self.image} {self.path}"
        return f"docker build -t {self.image} {self.path}"


def build_container_context(
    out_dir: str | Path,
    bundle: Bundle,
    *,
    platform: str = "linux",
    base_image: str | None = None,
    image: str | None = None,
) -> ContainerContext:
    """Write ``Dockerfile`` and copy the bundle into ``out_dir``; validate the Dockerfile.

    Raises:
        ValueError: an unknown platform.
        DockerfileError: the Dockerfile does not pass :func:`validate_dockerfile`.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    text = dockerfile(bundle.path.name, platform=platform, base_image=base_image)
    check_dockerfile(text, bundle_file=bundle.path.name, platform=platform)
    target = out_dir / bundle.path.name
    if target.resolve() != bundle.path.resolve():
        shutil.copyfile(bundle.path, target)
    (out_dir / "Dockerfile").write_text(text)
    (out_dir / ".dockerignore").write_text("*\n!" + bundle.path.name + "\n")
    tag = "-jetson" if platform == "jetson" else ""
    return ContainerContext(
        path=out_dir,
        dockerfile=out_dir / "Dockerfile",
        bundle=target,
        image=image or f"{bundle.name}:{bundle.app_version}{tag}",
        platform=platform,
    )
