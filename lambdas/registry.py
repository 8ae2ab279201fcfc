"""Read the model registry: ``models/<name>/<version>/metadata.json`` objects in the bucket.

The registry is written by the kit (training/registration); the backend only reads this layout.
A metadata file that does not parse as :class:`kit.contracts.ModelMetadata`, or whose name and
version disagree with its path, is reported and skipped.

Examples:
    >>> listing = list_models(s3, "evk-bucket")          # doctest: +SKIP
    >>> [str(m.ref) for m in listing.models]             # doctest: +SKIP
    ['shelf:1', 'shelf:2']
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from kit.contracts import ContractError, ControlConfig, ModelMetadata, ModelRef, parse

MODELS_PREFIX = "models/"
METADATA_KEY = re.compile(r"^models/(?P<name>[^/]+)/(?P<version>\d+)/metadata\.json$")


@dataclass
class ModelListing:
    """The registry's valid model versions, and the metadata files that are not."""

    models: list[ModelMetadata] = field(default_factory=list)
    problems: list[dict[str, str]] = field(default_factory=list)
    all_names: list[str] | None = None
    """Every model name in the registry, when listed apart (see :func:`list_model_names`)."""

    def versions(self, name: str) -> list[int]:
        return sorted(m.version for m in self.models if m.name == name)

    @property
    def names(self) -> list[str]:
        if self.all_names is not None:
            return self.all_names
        return sorted({m.name for m in self.models})

    def describe(self) -> str:
        """``name:version`` of every model, for error messages."""
        return ", ".join(str(m.ref) for m in self.models) or "none (the registry is empty)"


def list_models(s3: Any, bucket: str, *, name: str | None = None) -> ModelListing:
    """Every model version in the registry (of ``name`` only, when given), sorted."""
    prefix = f"{MODELS_PREFIX}{name}/" if name else MODELS_PREFIX
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [entry["Key"] for entry in page.get("Contents", [])]
    listing = ModelListing()
    for key in sorted(keys):
        match = METADATA_KEY.match(key)
        if not match:
            continue
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        try:
            metadata = parse(ModelMetadata, body)
        except ContractError as error:
            listing.problems.append({"key": key, "problem": str(error)})
            continue
        if metadata.name != match["name"] or metadata.version != int(match["version"]):
            listing.problems.append(
                {
                    "key": key,
                    "problem": f"metadata says {metadata.ref}, the path says "
                    f"{match['name']}:{match['version']}",
                }
            )
            continue
        listing.models.append(metadata)
    listing.models.sort(key=lambda m: (m.name, m.version))
    return listing


def list_model_names(s3: Any, bucket: str) -> list[str]:
    """The names under ``models/`` (one listing, no metadata read)."""
    names = []
    for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=MODELS_PREFIX, Delimiter="/"
    ):
        names += [
            p["Prefix"][len(MODELS_PREFIX) :].rstrip("/") for p in page.get("CommonPrefixes", [])
        ]
    return sorted(names)


def config_model_refs(config: ControlConfig) -> list[tuple[str, ModelRef]]:
    """Every model a config names, with where: ``defaults.model`` or ``cameras.<id>.model``."""
    refs = []
    if config.defaults.model is not None:
        refs.append(("defaults.model", config.defaults.model))
    for camera_id, overrides in sorted(config.cameras.items()):
        if overrides.model is not None:
            refs.append((f"cameras.{camera_id}.model", overrides.model))
    return refs


def unknown_models(config: ControlConfig, listing: ModelListing) -> list[dict[str, str]]:
    """The config's model references that the registry cannot serve, as problems.

    A numeric version must exist; an alias (``latest``, ``production`` …) needs at least one
    version of the model.
    """
    problems = []
    for where, ref in config_model_refs(config):
        versions = listing.versions(ref.name)
        if not versions:
            allowed = f"a registered model; models: {', '.join(listing.names) or 'none'}"
        elif isinstance(ref.version, int) and ref.version not in versions:
            allowed = f"a registered version of {ref.name}: {', '.join(map(str, versions))}"
        else:
            continue
        problems.append({"field": where, "value": str(ref), "allowed": allowed})
    return problems
