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

Reading (resolve, metadata, verified download, the one alias rule) is
:class:`kit.core.registry.RegistryReader`, which devices and Lambda functions use; this module adds
the writing side for the kit, the CLI and the notebooks.

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

import json
import re
import tarfile
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from kit.core.contracts.base import ALIAS_PATTERN, PATTERN_HELP, utc_now
from kit.core.contracts.model import ModelArtifact, ModelMetadata, ModelRef
from kit.core.registry import (
    ARCHIVE_SUFFIX,
    CLAIM_FILE,
    EXPORT_FORMATS,
    LATEST,
    METADATA_FILE,
    MODELS_PREFIX,
    ChecksumMismatchError,
    RegistryError,
    RegistryReader,
    alias_key,
    fetch_artifact,
    parse_model_ref,
    sha256_of,
    version_prefix,
)

if TYPE_CHECKING:
    from kit.core.settings import Settings

FORMAT_FILES: dict[str, str] = {
    "pytorch": "model.pt",
    "onnx": "model.onnx",
    "onnx_fp16": "model_fp16.onnx",
    "onnx_int8": "model_int8.onnx",
    "openvino": "model_openvino_model.tar",
    "neo": "model_neo.tar.gz",
}
"""The file name each format gets inside ``models/<name>/<version>/``."""

_FORMAT_PRECISION = {"onnx_fp16": "fp16", "onnx_int8": "int8"}
_MAX_CLAIM_ATTEMPTS = 50

__all__ = [
    "CLAIM_FILE",
    "EXPORT_FORMATS",
    "FORMAT_FILES",
    "LATEST",
    "METADATA_FILE",
    "MODELS_PREFIX",
    "ChecksumMismatchError",
    "FormatFile",
    "ModelRegistry",
    "RegistryConflictError",
    "RegistryError",
    "fetch_artifact",
    "pack_folder",
    "parse_model_ref",
    "sha256_of",
]


class RegistryConflictError(RuntimeError):
    """The registry refuses a change, e.g. deleting a version an alias points to."""


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


class ModelRegistry(RegistryReader):
    """The registry in one bucket: what :class:`kit.core.registry.RegistryReader` reads, plus
    registering versions, moving aliases and deleting versions.

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
            prefix = version_prefix(ref.name, version)
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
            Key=alias_key(target.name, alias),
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
        self.s3.delete_object(Bucket=self.bucket, Key=alias_key(name, alias))

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
        prefix = version_prefix(name, int(resolved.version))
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

    # -- internals ------------------------------------------------------------------------

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
            key = version_prefix(name, candidate) + CLAIM_FILE
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
