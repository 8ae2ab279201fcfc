"""The model registry: versioned models with their exported formats, in the bucket.

Layout under ``s3://<bucket>/models/<name>/`` (the edge runtime reads the same layout)::

    models/<name>/<version>/claim.json       the version number is taken (written first)
    models/<name>/<version>/<format files>   model.pt, model.onnx, model_fp16.onnx,
                                             model_int8.onnx, model_openvino_model.tar, ...
    models/<name>/<version>/metadata.json    ModelMetadata; written last: a version is complete
                                             (visible) only once it exists
    models/<name>/aliases/<alias>.json       {"alias": ..., "version": n, "updated_at": ...}

Versions are 1, 2, 3 ... per name. A registration claims the next number with a conditional put
(``If-None-Match: *``) of ``claim.json``, so two concurrent registrations never share a number;
numbers are never reused, even after :meth:`ModelRegistry.delete`. ``latest`` is not stored: it
is the highest complete version. Each format file's sha256 is in ``metadata.json`` and
:meth:`ModelRegistry.download` verifies it. A folder format (OpenVINO's ``.xml`` + ``.bin``) is
stored as an uncompressed tar of the folder's files and unpacked next to the archive on download.

Only the standard library, :mod:`kit.contracts` and boto3 (passed in, or made from
:class:`kit.settings.Settings`) are used here: no torch or ultralytics, so the edge runtime can
import this module to fetch and verify models.

Examples:
    >>> from kit import registry
    >>> meta = registry.register(
    ...     "shelf", {"onnx": "best.onnx", "pytorch": "best.pt"},
    ...     classes=["bottle"], input_size=320, metrics={"mAP50": 0.93})
    >>> registry.alias("shelf", "production", meta.version)
    >>> registry.download("shelf:production", "onnx")
    PosixPath('.../.evk/models/shelf/1/model.onnx')
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tarfile
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args

from kit.contracts.base import ALIAS_PATTERN, MODEL_NAME_PATTERN, PATTERN_HELP, utc_now
from kit.contracts.model import ExportFormat, ModelArtifact, ModelMetadata, ModelRef

if TYPE_CHECKING:
    from kit.settings import Settings

MODELS_PREFIX = "models"
METADATA_FILE = "metadata.json"
CLAIM_FILE = "claim.json"
ALIASES_FOLDER = "aliases"
LATEST = "latest"
EXPORT_FORMATS: tuple[str, ...] = get_args(ExportFormat)

FORMAT_FILES: dict[str, str] = {
    "pytorch": "model.pt",
    "onnx": "model.onnx",
    "onnx_fp16": "model_fp16.onnx",
    "onnx_int8": "model_int8.onnx",
    "openvino": "model_openvino_model.tar",
    "neo": "model_neo.tar.gz",
}
"""The file name each format gets inside ``models/<name>/<version>/``."""

ARCHIVE_SUFFIX = ".tar"
"""Format files ending in this are folders packed by :meth:`ModelRegistry.register`."""

_FORMAT_PRECISION = {"onnx_fp16": "fp16", "onnx_int8": "int8"}
_MAX_CLAIM_ATTEMPTS = 50


class RegistryError(LookupError):
    """A model, version, alias or format is not in the registry (the message lists what is)."""


class RegistryConflictError(RuntimeError):
    """The registry refuses a change, e.g. deleting a version an alias points to."""


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


@dataclass(frozen=True)
class FormatFile:
    """A file (or folder) to register in one format, with what :class:`ModelArtifact` records.

    Args:
        path: the file, or a folder (OpenVINO export) that is packed into a tar archive.
        precision: ``fp32``, ``fp16`` or ``int8``; default: from the format (``onnx_fp16``,
            ``onnx_int8``) or from ``fp16``/``int8`` in the path's name, else ``fp32``.
        target: the Neo target device or platform, for ``neo``.
    """

    path: str | Path
    precision: str | None = None
    target: str | None = None


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


class ModelRegistry:
    """The registry in one bucket, through a boto3 S3 client.

    Args:
        s3_client: a boto3 S3 client.
        bucket: the bucket holding ``models/``.
        cache_dir: where :meth:`download` keeps files (default ``.evk/models``).

    Examples:
        >>> import boto3
        >>> reg = ModelRegistry(boto3.client("s3"), "my-bucket", cache_dir="/var/cache/models")
        >>> reg.get("shelf", "production").classes
        ['bottle']
    """

    def __init__(self, s3_client: Any, bucket: str, *, cache_dir: str | Path | None = None):
        self.s3 = s3_client
        self.bucket = bucket
        self.cache_dir = Path(cache_dir) if cache_dir is not None else Path(".evk") / "models"

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> ModelRegistry:
        """The registry in the settings' bucket, with the cache under ``<state dir>/models``."""
        if settings is None:
            from kit.settings import load_settings

            settings = load_settings()
        return cls(
            settings.client("s3"),
            settings.resources.bucket,
            cache_dir=settings.state_dir / "models",
        )

    # -- reading --------------------------------------------------------------------------

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

    def list_models(self, name: str | None = None) -> list[ModelMetadata]:
        """Metadata of every complete version (of ``name``, or of every model), by name and version."""
        names = [name] if name is not None else self.model_names()
        return [self._read_metadata(n, v) for n in names for v in self.versions(n)]

    def aliases(self, name: str) -> dict[str, int]:
        """The aliases of ``name`` and the version each points to."""
        prefix = f"{MODELS_PREFIX}/{name}/{ALIASES_FOLDER}/"
        found = {}
        for key in self._keys(prefix):
            record = json.loads(self._get_bytes(key))
            found[record["alias"]] = int(record["version"])
        return dict(sorted(found.items()))

    def resolve(self, ref: ModelRef | str, version: int | str | None = None) -> ModelRef:
        """The numbered :class:`ModelRef` that ``ref`` (a version, ``latest`` or alias) means.

        Raises:
            RegistryError: the model, version or alias does not exist; the message lists those that do.
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
        return ModelRef(name=ref.name, version=aliases[ref.version])

    def get(self, ref: ModelRef | str, version: int | str | None = None) -> ModelMetadata:
        """The metadata of one version: ``get("shelf")``, ``get("shelf", 3)``, ``get("shelf:production")``.

        Raises:
            RegistryError: the model, version or alias does not exist.
        """
        resolved = self.resolve(ref, version)
        return self._read_metadata(resolved.name, int(resolved.version))

    # -- writing --------------------------------------------------------------------------

    def register(
        self,
        name: str,
        files_by_format: Mapping[str, str | Path | FormatFile],
        *,
        classes: Iterable[str],
        input_size: int,
        metrics: Mapping[str, float] | None = None,
        parent: ModelRef | str | None = None,
        dataset: str | None = None,
        framework: str | None = None,
        description: str = "",
        stride: int = 32,
    ) -> ModelMetadata:
        """Upload a new version of ``name`` with its files; return its metadata.

        Args:
            name: the model name (lower-case letters, digits, ``_``, ``-``).
            files_by_format: format -> file; formats: pytorch, onnx, onnx_fp16, onnx_int8,
                openvino (the export folder), neo (the compiled archive). A :class:`FormatFile`
                sets precision or target explicitly.
            classes: class names, in class-id order.
            input_size: the square input size (imgsz) the exports were made for.
            metrics: e.g. ``{"mAP50": 0.93, "mAP50-95": 0.71}``.
            parent: the registered model this one was fine-tuned from.
            dataset: the dataset prefix it was trained on, e.g. ``datasets/shelf/v2/``.
            framework: e.g. ``ultralytics 8.4.190``.
            description: free text.
            stride: the model's largest stride (input_size must be a multiple of it).

        Returns:
            The stored :class:`ModelMetadata`, with the version number assigned.

        Raises:
            ValueError: an unknown format, a missing file, or metadata that breaks the contract.
            RegistryConflictError: no free version number after many concurrent attempts.
        """
        ref = parse_model_ref(name)
        if not files_by_format:
            raise ValueError(
                f"nothing to register: give at least one of {', '.join(EXPORT_FORMATS)}"
            )
        with tempfile.TemporaryDirectory(prefix="kit-register-") as scratch:
            uploads = self._prepare_files(files_by_format, Path(scratch))
            draft = dict(
                name=ref.name,
                classes=list(classes),
                input_size=input_size,
                stride=stride,
                formats={fmt: artifact for fmt, (_, artifact) in uploads.items()},
                metrics=dict(metrics or {}),
                parent=parse_model_ref(parent) if parent is not None else None,
                dataset=dataset,
                framework=framework,
                description=description,
            )
            ModelMetadata.model_validate({**draft, "version": 1})
            version = self._claim_next_version(ref.name)
            metadata = ModelMetadata.model_validate({**draft, "version": version})
            prefix = self._version_prefix(ref.name, version)
            for local, artifact in uploads.values():
                self.s3.upload_file(str(local), self.bucket, prefix + artifact.file)
            self.s3.put_object(
                Bucket=self.bucket,
                Key=prefix + METADATA_FILE,
                Body=metadata.model_dump_json(indent=1).encode(),
                ContentType="application/json",
            )
        return metadata

    def alias(self, name: str, alias: str, version: int | str) -> ModelRef:
        """Point ``alias`` (e.g. ``production``) of ``name`` at ``version`` (a number, ``latest`` or another alias).

        Raises:
            ValueError: a malformed alias, or ``latest`` (reserved: always the newest version).
            RegistryError: the model or version does not exist.
        """
        if not isinstance(alias, str) or not re.match(ALIAS_PATTERN, alias):
            raise ValueError(f"alias {alias!r} is not allowed: {PATTERN_HELP[ALIAS_PATTERN]}")
        if alias == LATEST:
            raise ValueError("'latest' is reserved: it always means the newest version")
        target = self.resolve(name, version)
        record = {"alias": alias, "version": target.version, "updated_at": utc_now().isoformat()}
        self.s3.put_object(
            Bucket=self.bucket,
            Key=f"{MODELS_PREFIX}/{target.name}/{ALIASES_FOLDER}/{alias}.json",
            Body=json.dumps(record).encode(),
            ContentType="application/json",
        )
        return target

    def remove_alias(self, name: str, alias: str) -> None:
        """Delete an alias of ``name``.

        Raises:
            RegistryError: the alias does not exist.
        """
        aliases = self.aliases(name)
        if alias not in aliases:
            raise RegistryError(
                f"model {name!r} has no alias {alias!r}; aliases: {', '.join(aliases) or 'none'}"
            )
        self.s3.delete_object(
            Bucket=self.bucket, Key=f"{MODELS_PREFIX}/{name}/{ALIASES_FOLDER}/{alias}.json"
        )

    def delete(self, name: str, version: int, *, force: bool = False) -> list[str]:
        """Delete one version's files and metadata; its number stays taken.

        Args:
            name: the model name.
            version: the version number (aliases are not accepted here, on purpose).
            force: also delete the aliases that point to this version.

        Returns:
            The aliases that were deleted with it (only with ``force``).

        Raises:
            RegistryError: the model or version does not exist.
            RegistryConflictError: aliases point to the version and ``force`` is not set.
        """
        if isinstance(version, str) and not version.isdigit():
            raise ValueError(f"delete takes a version number, not {version!r}")
        resolved = self.resolve(name, int(version))
        pointing = [a for a, v in self.aliases(name).items() if v == resolved.version]
        if pointing and not force:
            raise RegistryConflictError(
                f"{resolved} is what alias(es) {', '.join(pointing)} point to; move them first "
                f"(alias(name, alias, other_version)) or pass force=True to delete them too"
            )
        for alias in pointing:
            self.remove_alias(name, alias)
        prefix = self._version_prefix(name, int(resolved.version))
        # metadata.json first, so the version stops being visible before its files go
        self.s3.delete_object(Bucket=self.bucket, Key=prefix + METADATA_FILE)
        for key in self._keys(prefix):
            if not key.endswith("/" + CLAIM_FILE):
                self.s3.delete_object(Bucket=self.bucket, Key=key)
        tombstone = {"claimed": True, "deleted_at": utc_now().isoformat()}
        self.s3.put_object(
            Bucket=self.bucket, Key=prefix + CLAIM_FILE, Body=json.dumps(tombstone).encode()
        )
        return pointing

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

        Args:
            ref: ``"name"``, ``"name:3"``, ``"name:production"`` or a :class:`ModelRef`.
            format: one of the formats the version has (see ``get(ref).formats``).
            version: overrides the version or alias in ``ref``.
            cache_dir: default: the registry's cache dir.

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

    @staticmethod
    def _version_prefix(name: str, version: int) -> str:
        return f"{MODELS_PREFIX}/{name}/{version}/"

    def _prepare_files(
        self, files_by_format: Mapping[str, str | Path | FormatFile], scratch: Path
    ) -> dict[str, tuple[Path, ModelArtifact]]:
        prepared = {}
        for fmt, given in files_by_format.items():
            if fmt not in FORMAT_FILES:
                raise ValueError(f"unknown format {fmt!r}; formats: {', '.join(EXPORT_FORMATS)}")
            spec = given if isinstance(given, FormatFile) else FormatFile(given)
            source = Path(spec.path)
            if not source.exists():
                raise ValueError(f"{fmt}: {source} does not exist")
            target_name = FORMAT_FILES[fmt]
            if source.is_dir():
                if not target_name.endswith(ARCHIVE_SUFFIX):
                    raise ValueError(
                        f"{fmt}: {source} is a folder; only openvino is registered from a folder"
                    )
                local = pack_folder(source, scratch / target_name)
            else:
                if target_name.endswith(ARCHIVE_SUFFIX):
                    raise ValueError(
                        f"{fmt}: expected the export folder (…_openvino_model/), got the file {source}"
                    )
                local = source
            precision = spec.precision or _FORMAT_PRECISION.get(fmt) or _precision_from_name(source)
            artifact = ModelArtifact(
                file=target_name,
                sha256=sha256_of(local),
                size_bytes=local.stat().st_size,
                precision=precision,
                target=spec.target,
            )
            prepared[fmt] = (local, artifact)
        return prepared

    def _claim_next_version(self, name: str) -> int:
        from botocore.exceptions import ClientError

        complete, claimed = self._scan_versions(name)
        candidate = max([0, *complete, *claimed]) + 1
        for _ in range(_MAX_CLAIM_ATTEMPTS):
            key = self._version_prefix(name, candidate) + CLAIM_FILE
            body = json.dumps({"claimed": True, "claimed_at": utc_now().isoformat()}).encode()
            try:
                self.s3.put_object(Bucket=self.bucket, Key=key, Body=body, IfNoneMatch="*")
                return candidate
            except ClientError as error:
                code = error.response.get("Error", {}).get("Code", "")
                if code not in {"PreconditionFailed", "ConditionalRequestConflict", "412", "409"}:
                    raise
                candidate += 1
        raise RegistryConflictError(
            f"could not claim a version of {name!r} after {_MAX_CLAIM_ATTEMPTS} attempts; "
            "too many concurrent registrations, try again"
        )

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
        key = self._version_prefix(name, version) + METADATA_FILE
        return ModelMetadata.model_validate_json(self._get_bytes(key))

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


def _precision_from_name(path: Path) -> str:
    lowered = path.name.lower()
    if "int8" in lowered:
        return "int8"
    if "fp16" in lowered or "half" in lowered:
        return "fp16"
    return "fp32"


def pack_folder(folder: str | Path, archive: str | Path) -> Path:
    """Pack the files of ``folder`` (no sub-folders) into an uncompressed, reproducible tar.

    Members are stored by file name only, sorted, with fixed owner and time, so the same
    files always give the same sha256.
    """
    folder, archive = Path(folder), Path(archive)
    files = sorted(p for p in folder.iterdir() if p.is_file())
    if not files:
        raise ValueError(f"{folder} holds no files to pack")
    with tarfile.open(archive, "w", format=tarfile.PAX_FORMAT) as tar:
        for path in files:
            info = tar.gettarinfo(str(path), arcname=path.name)
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mtime = 0
            info.mode = 0o644
            with open(path, "rb") as stream:
                tar.addfile(info, stream)
    return archive


def fetch_artifact(
    s3_client: Any, bucket: str, metadata: ModelMetadata, format: str, cache_dir: str | Path
) -> Path:
    """Download one format file of a registered version into ``cache_dir`` and verify its sha256.

    This is the whole download protocol (for the edge runtime too): the object
    ``models/<name>/<version>/<artifact.file>`` is fetched to
    ``<cache_dir>/<name>/<version>/<artifact.file>.part``, its sha256 compared with
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
        key = f"{MODELS_PREFIX}/{metadata.name}/{metadata.version}/{artifact.file}"
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


# -- module-level shortcuts on the settings' bucket ----------------------------------------


def register(
    name: str,
    files_by_format: Mapping[str, str | Path | FormatFile],
    *,
    classes: Iterable[str],
    input_size: int,
    metrics: Mapping[str, float] | None = None,
    parent: ModelRef | str | None = None,
    dataset: str | None = None,
    framework: str | None = None,
    description: str = "",
    settings: Settings | None = None,
) -> ModelMetadata:
    """Register a new version of ``name`` in the settings' bucket (see :meth:`ModelRegistry.register`).

    Examples:
        >>> meta = register("shelf", {"onnx": "best.onnx"}, classes=["bottle"], input_size=320)
        >>> meta.version
        1
    """
    return ModelRegistry.from_settings(settings).register(
        name,
        files_by_format,
        classes=classes,
        input_size=input_size,
        metrics=metrics,
        parent=parent,
        dataset=dataset,
        framework=framework,
        description=description,
    )


def list_models(
    name: str | None = None, *, settings: Settings | None = None
) -> list[ModelMetadata]:
    """Every complete version (of ``name``, or of all models), sorted by name and version."""
    return ModelRegistry.from_settings(settings).list_models(name)


def get(
    ref: ModelRef | str, version: int | str | None = None, *, settings: Settings | None = None
) -> ModelMetadata:
    """The metadata of ``ref``: ``get("shelf")``, ``get("shelf", 2)``, ``get("shelf:production")``."""
    return ModelRegistry.from_settings(settings).get(ref, version)


def alias(
    name: str, alias: str, version: int | str, *, settings: Settings | None = None
) -> ModelRef:
    """Point ``alias`` of ``name`` at ``version``; return the numbered reference."""
    return ModelRegistry.from_settings(settings).alias(name, alias, version)


def aliases(name: str, *, settings: Settings | None = None) -> dict[str, int]:
    """The aliases of ``name`` and their versions."""
    return ModelRegistry.from_settings(settings).aliases(name)


def delete(
    name: str, version: int, *, force: bool = False, settings: Settings | None = None
) -> list[str]:
    """Delete a version (refused while an alias points to it, unless ``force``)."""
    return ModelRegistry.from_settings(settings).delete(name, version, force=force)


def download(
    ref: ModelRef | str,
    format: str = "onnx",
    *,
    version: int | str | None = None,
    cache_dir: str | Path | None = None,
    settings: Settings | None = None,
) -> Path:
    """Download and verify one format of ``ref``; return the local path (see :func:`fetch_artifact`)."""
    return ModelRegistry.from_settings(settings).download(
        ref, format, version=version, cache_dir=cache_dir
    )
