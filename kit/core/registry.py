"""Reading the model registry: resolve a reference, read metadata, download and verify a model.

This is the half of the registry that devices and Lambda functions need; writing (registering,
moving aliases, deleting) is :mod:`kit.registry`, built on this reader. Layout under
``s3://<bucket>/models/<name>/``::

    models/<name>/<version>/claim.json       the version number is taken (written first)
    models/<name>/<version>/<format files>   model.pt, model.onnx, model_fp16.onnx, ...
    models/<name>/<version>/metadata.json    ModelMetadata; written last: a version is complete
                                             (visible) only once it exists
    models/<name>/aliases/<alias>.json       {"alias": ..., "version": n, "updated_at": ...}

**One alias rule**, here and nowhere else (:meth:`RegistryReader.resolve`): a reference is
``name`` (= ``name:latest``), ``name:<n>`` or ``name:<alias>``. A number must be a complete
version; ``latest`` is the highest complete version (never stored); any other alias must be
stored under ``aliases/`` and point at a version. The control API refuses what a device could
not resolve, because both call this.

A ``metadata.json`` that does not parse, or whose name and version disagree with its path, is
reported (:attr:`ModelListing.problems`) and skipped by listings; asking for that version
raises :class:`RegistryError` naming the file. One bad object never hides the others.

Only the standard library, :mod:`kit.core.contracts` and a boto3 S3 client (passed in, or made
from :class:`kit.core.settings.Settings`) are used.

Examples:
    >>> reader = RegistryReader(s3_client, "my-bucket", cache_dir="/var/cache/models")  # doctest: +SKIP
    >>> str(reader.resolve("shelf:production"))      # doctest: +SKIP
    'shelf:3'
    >>> reader.download("shelf:production", "onnx")  # doctest: +SKIP
    PosixPath('/var/cache/models/shelf/3/model.onnx')
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tarfile
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args

from kit.core.contracts.base import (
    ALIAS_PATTERN,
    MODEL_NAME_PATTERN,
    PATTERN_HELP,
    ContractError,
    parse,
)
from kit.core.contracts.model import ExportFormat, ModelMetadata, ModelRef

if TYPE_CHECKING:
    from kit.core.settings import Settings

MODELS_PREFIX = "models"
"""The registry's top folder in the bucket (keys are ``models/<name>/...``)."""
METADATA_FILE = "metadata.json"
CLAIM_FILE = "claim.json"
ALIASES_FOLDER = "aliases"
LATEST = "latest"
EXPORT_FORMATS: tuple[str, ...] = get_args(ExportFormat)
ARCHIVE_SUFFIX = ".tar"
"""Format files ending in this are folders packed at registration; unpacked on download."""

_METADATA_KEY = re.compile(
    rf"^{MODELS_PREFIX}/(?P<name>[^/]+)/(?P<version>\d+)/{re.escape(METADATA_FILE)}$"
)


class RegistryError(LookupError):
    """A model, version, alias or format is not in the registry (the message lists what is)."""


class ChecksumMismatchError(ValueError):
    """A downloaded file's sha256 differs from the one in ``metadata.json``.

    Attributes:
        key: the object key that was downloaded.
        expected: the sha256 recorded at registration.
        actual: the sha256 of what was downloaded.
    """

    def __init__(self, key: str, expected: str, actual: str):
        self.key, self.expected, self.actual = key, expected, actual
        super().__init__(
            f"checksum mismatch for {key}: expected sha256 {expected}, downloaded {actual}; "
            "the file in the bucket changed after registration (or the transfer was corrupted). "
            "The download was discarded; register the model again if the new file is intended."
        )


def sha256_of(path: str | Path, *, chunk_size: int = 1 << 20) -> str:
    """The hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def parse_model_ref(ref: ModelRef | str, version: int | str | None = None) -> ModelRef:
    """A :class:`ModelRef` from ``"name"``, ``"name:3"``, ``"name:production"`` or a ModelRef.

    Args:
        ref: the model reference.
        version: a version or alias that overrides the one in ``ref``.

    Raises:
        ValueError: the name or alias does not match the allowed pattern.

    Examples:
        >>> str(parse_model_ref("shelf:3"))
        'shelf:3'
        >>> parse_model_ref("shelf").version
        'latest'
    """
    if isinstance(ref, ModelRef):
        name, ref_version = ref.name, ref.version
    else:
        name, _, ref_version = str(ref).partition(":")
        ref_version = ref_version or LATEST
    if version is not None:
        ref_version = version
    if not re.match(MODEL_NAME_PATTERN, name):
        raise ValueError(f"model name {name!r} is not allowed: {PATTERN_HELP[MODEL_NAME_PATTERN]}")
    if isinstance(ref_version, str) and ref_version.isdigit():
        ref_version = int(ref_version)
    if isinstance(ref_version, int):
        if ref_version < 1:
            raise ValueError(f"model version must be 1 or more (got {ref_version})")
    elif not re.match(ALIAS_PATTERN, ref_version):
        raise ValueError(
            f"{ref_version!r} is neither a version number nor {PATTERN_HELP[ALIAS_PATTERN]}"
        )
    return ModelRef(name=name, version=ref_version)


def version_prefix(name: str, version: int) -> str:
    """``models/<name>/<version>/``: where one version's files and metadata live."""
    return f"{MODELS_PREFIX}/{name}/{version}/"


def alias_key(name: str, alias: str) -> str:
    """``models/<name>/aliases/<alias>.json``: where an alias is stored."""
    return f"{MODELS_PREFIX}/{name}/{ALIASES_FOLDER}/{alias}.json"


@dataclass
class ModelListing:
    """The registry's valid model versions, and the metadata files that are not."""

    models: list[ModelMetadata] = field(default_factory=list)
    problems: list[dict[str, str]] = field(default_factory=list)
    """One ``{"key", "problem"}`` per metadata file that was skipped."""

    def versions(self, name: str) -> list[int]:
        return sorted(m.version for m in self.models if m.name == name)

    @property
    def names(self) -> list[str]:
        return sorted({m.name for m in self.models})

    def describe(self) -> str:
        """``name:version`` of every model, for error messages."""
        return ", ".join(str(m.ref) for m in self.models) or "none (the registry is empty)"


class RegistryReader:
    """The registry in one bucket, read through a boto3 S3 client.

    Args:
        s3_client: a boto3 S3 client.
        bucket: the bucket holding ``models/``.
        cache_dir: where :meth:`download` keeps files (default ``.evk/models``).
    """

    def __init__(self, s3_client: Any, bucket: str, *, cache_dir: str | Path | None = None):
        self.s3 = s3_client
        self.bucket = bucket
        self.cache_dir = Path(cache_dir) if cache_dir is not None else Path(".evk") / "models"

    @classmethod
    def from_settings(cls, settings: Settings | None = None, **kwargs: Any):
        """The registry in the settings' bucket, with the cache under ``<state dir>/models``."""
        if settings is None:
            from kit.core.settings import load_settings

            settings = load_settings()
        kwargs.setdefault("cache_dir", settings.state_dir / "models")
        return cls(settings.client("s3"), settings.resources.bucket, **kwargs)

    # -- listing --------------------------------------------------------------------------

    def model_names(self) -> list[str]:
        """Names that have at least one complete version, sorted."""
        names = []
        for prefix in self._common_prefixes(f"{MODELS_PREFIX}/"):
            name = prefix[len(MODELS_PREFIX) + 1 :].rstrip("/")
            if self.versions(name):
                names.append(name)
        return sorted(names)

    def versions(self, name: str) -> list[int]:
        """The complete versions of ``name``, oldest first (empty if the name is unknown)."""
        complete, _ = self._scan_versions(name)
        return complete

    def listing(self, name: str | None = None) -> ModelListing:
        """Every readable version (of ``name``, or of every model), and the unreadable ones.

        One listing of the keys, one read per metadata file.
        """
        prefix = f"{MODELS_PREFIX}/{name}/" if name else f"{MODELS_PREFIX}/"
        listing = ModelListing()
        for key in sorted(self._keys(prefix)):
            match = _METADATA_KEY.match(key)
            if not match:
                continue
            try:
                metadata = self._metadata_at(key, match["name"], int(match["version"]))
            except RegistryError as error:
                listing.problems.append({"key": key, "problem": str(error)})
                continue
            listing.models.append(metadata)
        listing.models.sort(key=lambda m: (m.name, m.version))
        return listing

    def list_models(self, name: str | None = None) -> list[ModelMetadata]:
        """Metadata of every readable version (of ``name``, or of every model), by name and version."""
        return self.listing(name).models

    def aliases(self, name: str) -> dict[str, int]:
        """The aliases of ``name`` and the version each points to (unreadable records skipped)."""
        found = {}
        for key in self._keys(f"{MODELS_PREFIX}/{name}/{ALIASES_FOLDER}/"):
            try:
                record = json.loads(self._get_bytes(key))
                found[str(record["alias"])] = int(record["version"])
            except (ValueError, KeyError, TypeError):
                continue
        return dict(sorted(found.items()))

    # -- resolving ------------------------------------------------------------------------

    def resolve(self, ref: ModelRef | str, version: int | str | None = None) -> ModelRef:
        """The numbered :class:`ModelRef` that ``ref`` (a version, ``latest`` or alias) means.

        Raises:
            RegistryError: the model, version or alias does not exist; the message lists those that do.
            ValueError: ``ref`` is malformed.
        """
        ref = parse_model_ref(ref, version)
        versions = self.versions(ref.name)
        if not versions:
            known = ", ".join(self.model_names()) or "none yet"
            raise RegistryError(
                f"no model named {ref.name!r} in s3://{self.bucket}/{MODELS_PREFIX}/; "
                f"registered models: {known}"
            )
        if isinstance(ref.version, int):
            if ref.version not in versions:
                raise RegistryError(
                    f"model {ref.name!r} has no version {ref.version}; versions: "
                    f"{', '.join(map(str, versions))}"
                )
            return ref
        if ref.version == LATEST:
            return ModelRef(name=ref.name, version=versions[-1])
        aliases = self.aliases(ref.name)
        if ref.version not in aliases:
            listed = ", ".join(f"{a} -> {v}" for a, v in aliases.items()) or "none"
            raise RegistryError(
                f"model {ref.name!r} has no alias {ref.version!r}; aliases: {listed}; "
                f"or use a version number ({', '.join(map(str, versions))}) or 'latest'"
            )
        if aliases[ref.version] not in versions:
            raise RegistryError(
                f"alias {ref.name}:{ref.version} points to version {aliases[ref.version]}, "
                f"which is not a complete version; versions: {', '.join(map(str, versions))}"
            )
        return ModelRef(name=ref.name, version=aliases[ref.version])

    def unresolvable(self, refs: Iterable[tuple[str, ModelRef]]) -> list[dict[str, str]]:
        """The references among ``(where, ref)`` pairs that :meth:`resolve` refuses, as problems.

        Each problem is ``{"field": where, "value": "name:version", "allowed": why}``.
        """
        problems = []
        for where, ref in refs:
            try:
                self.resolve(ref)
            except (RegistryError, ValueError) as error:
                problems.append({"field": where, "value": str(ref), "allowed": str(error)})
        return problems

    def get(self, ref: ModelRef | str, version: int | str | None = None) -> ModelMetadata:
        """The metadata of one version: ``get("shelf")``, ``get("shelf", 3)``, ``get("shelf:production")``.

        Raises:
            RegistryError: the model, version or alias does not exist, or its metadata is unreadable.
        """
        resolved = self.resolve(ref, version)
        return self._read_metadata(resolved.name, int(resolved.version))

    # -- downloading ----------------------------------------------------------------------

    def download(
        self,
        ref: ModelRef | str,
        format: str = "onnx",
        *,
        version: int | str | None = None,
        cache_dir: str | Path | None = None,
    ) -> Path:
        """Fetch one format of a model into the cache, verified; return its local path.

        The file lands in ``<cache_dir>/<name>/<version>/<file>``; a cached file whose sha256
        matches is not downloaded again. Archived folders (OpenVINO) are unpacked and the
        folder is returned.

        Raises:
            RegistryError: unknown model, version, alias or format.
            ChecksumMismatchError: the downloaded bytes do not match the registered sha256.
        """
        metadata = self.get(ref, version)
        return fetch_artifact(
            self.s3,
            self.bucket,
            metadata,
            format,
            Path(cache_dir) if cache_dir is not None else self.cache_dir,
        )

    # -- internals ------------------------------------------------------------------------

    def _scan_versions(self, name: str) -> tuple[list[int], list[int]]:
        complete, claimed = set(), set()
        for key in self._keys(f"{MODELS_PREFIX}/{name}/"):
            parts = key.split("/")
            if len(parts) != 4 or not parts[2].isdigit():
                continue
            version = int(parts[2])
            claimed.add(version)
            if parts[3] == METADATA_FILE:
                complete.add(version)
        return sorted(complete), sorted(claimed)

    def _read_metadata(self, name: str, version: int) -> ModelMetadata:
        return self._metadata_at(version_prefix(name, version) + METADATA_FILE, name, version)

    def _metadata_at(self, key: str, name: str, version: int) -> ModelMetadata:
        try:
            metadata = parse(ModelMetadata, self._get_bytes(key))
        except ContractError as error:
            raise RegistryError(
                f"s3://{self.bucket}/{key} is not valid metadata: {error}"
            ) from None
        if metadata.name != name or metadata.version != version:
            raise RegistryError(
                f"s3://{self.bucket}/{key}: metadata says {metadata.ref}, the path says "
                f"{name}:{version}"
            )
        return metadata

    def _get_bytes(self, key: str) -> bytes:
        return self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def _keys(self, prefix: str) -> list[str]:
        keys = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix
        ):
            keys += [item["Key"] for item in page.get("Contents", [])]
        return keys

    def _common_prefixes(self, prefix: str) -> list[str]:
        found = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix, Delimiter="/"
        ):
            found += [item["Prefix"] for item in page.get("CommonPrefixes", [])]
        return found


def fetch_artifact(
    s3_client: Any, bucket: str, metadata: ModelMetadata, format: str, cache_dir: str | Path
) -> Path:
    """Download one format file of a registered version into ``cache_dir`` and verify its sha256.

    This is the whole download protocol: the object ``models/<name>/<version>/<artifact.file>``
    is fetched to ``<cache_dir>/<name>/<version>/<artifact.file>.part``, its sha256 compared with
    ``metadata.formats[format].sha256``, then renamed into place. A ``.tar`` artefact is
    unpacked into the folder of the same name without ``.tar`` and that folder is returned.
    An existing cached file with the right sha256 is reused.

    Raises:
        RegistryError: the version has no such format.
        ChecksumMismatchError: the download does not match (the partial file is removed).
    """
    artifact = metadata.formats.get(format)  # type: ignore[call-overload]
    if artifact is None:
        available = ", ".join(metadata.formats) or "none"
        raise RegistryError(
            f"model {metadata.name}:{metadata.version} has no {format!r} file; formats: {available}"
        )
    folder = Path(cache_dir) / metadata.name / str(metadata.version)
    folder.mkdir(parents=True, exist_ok=True)
    local = folder / artifact.file
    if not (local.is_file() and sha256_of(local) == artifact.sha256):
        key = version_prefix(metadata.name, metadata.version) + artifact.file
        partial = local.with_name(local.name + ".part")
        s3_client.download_file(bucket, key, str(partial))
        actual = sha256_of(partial)
        if actual != artifact.sha256:
            partial.unlink(missing_ok=True)
            raise ChecksumMismatchError(key, artifact.sha256, actual)
        os.replace(partial, local)
        unpacked = _unpacked_folder(local)
        if unpacked is not None and unpacked.exists():
            shutil.rmtree(unpacked)
    unpacked = _unpacked_folder(local)
    if unpacked is None:
        return local
    if not unpacked.is_dir():
        staging = Path(tempfile.mkdtemp(prefix=unpacked.name + ".", dir=folder))
        with tarfile.open(local) as tar:
            tar.extractall(staging, filter="data")
        os.replace(staging, unpacked)
    return unpacked


def _unpacked_folder(local: Path) -> Path | None:
    if local.name.endswith(ARCHIVE_SUFFIX):
        return local.with_name(local.name[: -len(ARCHIVE_SUFFIX)])
    return None
