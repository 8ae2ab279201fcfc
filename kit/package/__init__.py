"""Packages of the edge app: one bundle, three ways onto a device.

- :func:`build_bundle` — the edge bundle zip (edge_app + the light kit modules + edge
  requirements + device config + optional models and demo videos), with a sha256 manifest;
- :mod:`kit.package.greengrass` — a Greengrass v2 component (recipe, artefact in the bucket);
- :mod:`kit.package.container` — a Dockerfile build context (Linux, Jetson);
- :mod:`kit.package.panorama` — an AWS Panorama application (legacy appliances).

Examples:
    >>> from kit.package import build_bundle, device_config, parse_camera
    >>> config = device_config("demo-1", [parse_camera("cam-1=rtsp://10.0.0.5/1")], model="shelf:3")
    >>> bundle = build_bundle("build/edge", device_config=config)      # doctest: +SKIP
"""

from kit.package.bundle import (
    BUNDLE_NAME,
    BUNDLED_SOURCES,
    Bundle,
    BundleError,
    ImportProblem,
    build_bundle,
    check_imports,
    read_manifest,
    unpack_bundle,
    verify_bundle,
)
from kit.package.container import (
    ContainerContext,
    DockerfileError,
    build_container_context,
    check_dockerfile,
    dockerfile,
    validate_dockerfile,
)
from kit.package.device import (
    demo_cameras,
    device_config,
    device_settings,
    model_ref,
    parse_camera,
)
from kit.package.greengrass import (
    DEFAULT_COMPONENT_NAME,
    PublishedComponent,
    RecipeError,
    RunCommand,
    build_component,
    check_recipe,
    component_recipe,
    default_configuration,
    publish_component,
    validate_recipe,
)
from kit.package.panorama import (
    PanoramaApp,
    PanoramaPackageError,
    build_panorama_app,
    check_panorama_app,
    validate_panorama_app,
)

__all__ = [
    "BUNDLED_SOURCES",
    "BUNDLE_NAME",
    "DEFAULT_COMPONENT_NAME",
    "Bundle",
    "BundleError",
    "ContainerContext",
    "DockerfileError",
    "ImportProblem",
    "PanoramaApp",
    "PanoramaPackageError",
    "PublishedComponent",
    "RecipeError",
    "RunCommand",
    "build_bundle",
    "build_component",
    "build_container_context",
    "build_panorama_app",
    "check_dockerfile",
    "check_imports",
    "check_panorama_app",
    "check_recipe",
    "component_recipe",
    "default_configuration",
    "demo_cameras",
    "device_config",
    "device_settings",
    "dockerfile",
    "model_ref",
    "parse_camera",
    "publish_component",
    "read_manifest",
    "unpack_bundle",
    "validate_dockerfile",
    "validate_panorama_app",
    "validate_recipe",
    "verify_bundle",
]
