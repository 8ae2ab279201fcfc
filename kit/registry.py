"""The model registry: versioned models with their exported formats, in the bucket.

Layout under ``s3://<bucket>/models/<name>/`` (the edge runtime reads the same layout)::

    models/<name>/<version>/claim.json       the version number is taken (written first)
    models/<name>/<version>/<format files>   model.pt, model.onnx, model_fp16.onnx,
                                             model_int8.onnx, model_openvino_model.tar,
                                             model_int8_openvino_model.tar, ...
    models/<name>/<version>/metadata.json    ModelMetadata; written last: a version is complete
                                             (visible) only once it exists
    models/<name>/aliases/<alias>.json       {"alias": ..., "version": n, "updated_at": ...}

Versions are 1, 2, 3 ... per name. A registration claims the next number with a conditional put
(``If-None-Match: *``) of ``claim.json``, so two concurrent registrations never share a number;
numbers are never reused, even after :meth:`ModelRegistry.delete`. ``latest`` is not stored: it
is the highest complete version. Each format file's sha256 is in ``metadata.json`` and
:meth:`ModelRegistry.download` verifies it. A folder format (OpenVINO's ``.xml`` + ``.bin``) is
stored as an uncompressed tar of the folder's files and unpacked next to the archive on download.
A version's files never change; it may gain a format made from them later
(:meth:`ModelRegistry.add_format`: an INT8 model quantized from its weights, ``kit models
quantize``).

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

A model a customer brings (an ultralytics ``.pt``, an ``.onnx``, an OpenVINO export) is
registered with what the file says about itself (:func:`inspect_model_file`,
:func:`register_model_file`, ``kit models register``)::

    >>> info = inspect_model_file("yolov8n-customer.pt")
    >>> info.classes[:2], info.input_size, info.task
    (['person', 'bicycle'], 640, 'detect')
    >>> register_model_file("customer", "yolov8n-customer.pt", alias="production",
    ...                     export=["onnx"]).formats.keys()
    dict_keys(['pytorch', 'onnx'])
"""

from __future__ import annotations

import ast
import json
import re
import tarfile
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

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
    from kit.compile.parity import ParityReport
    from kit.core.settings import Settings
    from kit.train.result import TrainResult

FORMAT_FILES: dict[str, str] = {
    "pytorch": "model.pt",
    "onnx": "model.onnx",
    "onnx_fp16": "model_fp16.onnx",
    "onnx_int8": "model_int8.onnx",
    "openvino": "model_openvino_model.tar",
    "openvino_int8": "model_int8_openvino_model.tar",
    "neo": "model_neo.tar.gz",
}
"""The file name each format gets inside ``models/<name>/<version>/``."""

_FORMAT_PRECISION = {"onnx_fp16": "fp16", "onnx_int8": "int8", "openvino_int8": "int8"}
_MAX_CLAIM_ATTEMPTS = 50
_CONDITION_FAILED = frozenset({"PreconditionFailed", "ConditionalRequestConflict", "412", "409"})
"""Error codes of a conditional put that lost: the condition failed, or a concurrent write to
the key (S3's 409) was under way."""

__all__ = [
    "CLAIM_FILE",
    "EXPORT_FORMATS",
    "FORMAT_FILES",
    "LATEST",
    "METADATA_FILE",
    "MODELS_PREFIX",
    "ChecksumMismatchError",
    "FormatFile",
    "ModelFileError",
    "ModelFileInfo",
    "ModelRegistry",
    "RegistryConflictError",
    "RegistryError",
    "fetch_artifact",
    "inspect_model_file",
    "pack_folder",
    "register_model_file",
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

    abandoned_upload_after = timedelta(minutes=15)
    """How old a format's file that no metadata lists must be before :meth:`add_format` takes
    it for the leftover of an add that died, and replaces it."""

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
        task: str = "detect",
    ) -> ModelMetadata:
        """Upload a new version of ``name`` with its files; return its metadata.

        Args:
            name: the model name (lower-case letters, digits, ``_``, ``-``).
            files_by_format: format -> file; formats: pytorch, onnx, onnx_fp16, onnx_int8,
                openvino and openvino_int8 (export folders), neo (the compiled archive). A
                :class:`FormatFile` sets precision or target explicitly.
            classes: class names, in class-id order.
            input_size: the square input size (imgsz) the exports were made for.
            metrics: e.g. ``{"mAP50": 0.93, "mAP50-95": 0.71}``.
            parent: the registered model this one was fine-tuned from.
            dataset: the dataset prefix it was trained on, e.g. ``datasets/shelf/v2/``.
            framework: e.g. ``ultralytics 8.4.190``.
            description: free text.
            stride: the model's largest stride (input_size must be a multiple of it).
            task: the model's task; only ``detect`` is accepted (the edge runtime decodes boxes).

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
                task=task,
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

    def add_format(
        self,
        ref: ModelRef | str,
        fmt: str,
        file: str | Path | FormatFile,
        *,
        metrics: Mapping[str, float] | None = None,
    ) -> ModelMetadata:
        """Add one format to a registered version; its files and other metadata stay as they are.

        What a version gains after registration is a file made from its own weights (an INT8
        model quantized from them), so a camera running the version can ask for it by
        precision. ``metadata.json`` is rewritten only if nobody changed it since it was read
        (a conditional put, ``If-Match``), so two additions never lose one another; and the
        format's file is written only where no other add's file is (see `_put_new_file`), so
        the file the metadata lists is the one that was uploaded with it.

        Args:
            ref: the version (a number, ``latest`` or an alias, resolved now).
            fmt: the format to add; the version must not have it yet.
            file: its file, or export folder (see :meth:`register`).
            metrics: measurements to record with it (e.g. ``{"onnx_int8/mAP50": 0.91}``).

        Returns:
            The version's metadata with the new format.

        Raises:
            RegistryError: the model or version does not exist.
            RegistryConflictError: the version has ``fmt`` already, or its metadata changed
                while the format was being added, or another add of ``fmt`` is under way
                (add it again).
            ValueError: an unknown format or a missing file.
        """
        resolved = self.resolve(ref)
        prefix = version_prefix(resolved.name, int(resolved.version))
        stored = self.s3.get_object(Bucket=self.bucket, Key=prefix + METADATA_FILE)
        current = ModelMetadata.model_validate_json(stored["Body"].read())
        if fmt in current.formats:
            raise RegistryConflictError(
                f"{resolved} has a {fmt!r} file already ({current.formats[fmt].file}); a "
                "registered file is never replaced: register a new version to change it"
            )
        with tempfile.TemporaryDirectory(prefix="kit-add-format-") as scratch:
            ((local, artifact),) = self._prepare_files({fmt: file}, Path(scratch)).values()
            updated = current.model_copy(
                update={
                    "formats": {**current.formats, fmt: artifact},
                    "metrics": {**current.metrics, **(metrics or {})},
                }
            )
            self._put_new_file(local, prefix + artifact.file, artifact.sha256, f"{resolved} {fmt}")
        try:
            self.s3.put_object(
                Bucket=self.bucket,
                Key=prefix + METADATA_FILE,
                Body=updated.model_dump_json(indent=1).encode(),
                ContentType="application/json",
                IfMatch=stored["ETag"],
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "PreconditionFailed":
                raise
            raise RegistryConflictError(
                f"the metadata of {resolved} changed while {fmt} was being added; add it again"
            ) from None
        return updated

    def _put_new_file(self, local: Path, key: str, sha256: str, what: str) -> None:
        """Upload the file of a format no metadata lists yet, never over another add's file.

        Two adds of the same format to one version upload to the same key before either writes
        the metadata; the one whose metadata lands would list a file the other then overwrote.
        So the file is written only where there is none (``If-None-Match``); a file already
        there is taken as it is when it holds the same bytes (an earlier attempt that stopped
        before the metadata), replaced when it is older than `abandoned_upload_after` (by the
        S3 clock: an attempt that died) unless it changes meanwhile (``If-Match``), and
        otherwise refused: another add is under way.
        """
        try:
            head = self.s3.head_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") not in {"404", "NoSuchKey", "NotFound"}:
                raise
            head = None
        condition = {"IfNoneMatch": "*"}
        if head is not None:
            if head.get("Metadata", {}).get("sha256") == sha256:
                return
            served = head["ResponseMetadata"].get("HTTPHeaders", {}).get("date")
            now = parsedate_to_datetime(served) if served else utc_now()
            age = now - head["LastModified"]
            if age < self.abandoned_upload_after:
                raise RegistryConflictError(
                    f"{what}: another add of this format uploaded a different file "
                    f"{int(age.total_seconds())} s ago and has not recorded it (yet); if that "
                    f"add failed, add it again once the file is "
                    f"{self.abandoned_upload_after.total_seconds() / 60:g} minutes old"
                )
            condition = {"IfMatch": head["ETag"]}
        try:
            with local.open("rb") as body:
                self.s3.put_object(
                    Bucket=self.bucket, Key=key, Body=body, Metadata={"sha256": sha256}, **condition
                )
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code not in _CONDITION_FAILED:
                raise
            raise RegistryConflictError(
                f"{what}: another add of this format uploaded its file at the same time; "
                "add it again"
            ) from None

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
                        f"{fmt}: {source} is a folder; only openvino is registered from a folder "
                        "(and openvino_int8, its INT8 model)"
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
                if code not in _CONDITION_FAILED:
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
    stride: int = 32,
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
        stride=stride,
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


# -- a model file a customer brings --------------------------------------------------------

MODEL_FILE_FORMATS = ("pytorch", "onnx", "openvino")
"""What :func:`register_model_file` takes: an ultralytics ``.pt``, an ``.onnx``, an OpenVINO export."""
DERIVED_FORMATS: dict[str, dict[str, Any]] = {
    "onnx": {"kind": "onnx"},
    "onnx_fp16": {"kind": "onnx", "half": True},
    "openvino": {"kind": "openvino"},
}
"""Formats ``--export`` derives from PyTorch weights, with the exporter's options."""
_TASK_NAMES = {
    "segment": "a segmentation model",
    "classify": "a classification model",
    "pose": "a pose model",
    "obb": "an oriented-box model",
}


class ModelFileError(ValueError):
    """A model file cannot be registered: not a detector, unreadable, or missing metadata."""


@dataclass(frozen=True)
class ModelFileInfo:
    """What a model file says about itself, as the registry records it.

    Attributes:
        path: the file to register (for OpenVINO, the export folder holding ``.xml`` + ``.bin``).
        format: ``pytorch``, ``onnx`` or ``openvino``.
        classes: class names in class-id order.
        input_size: the square input size (imgsz).
        stride: the largest stride.
        task: ``detect`` (anything else is refused by :func:`inspect_model_file`).
        framework: e.g. ``ultralytics 8.4.190`` when the file says so.
        description: the exporter's description, if any.
    """

    path: Path
    format: str
    classes: list[str]
    input_size: int
    stride: int = 32
    task: str = "detect"
    framework: str | None = None
    description: str = ""
    metadata: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


def inspect_model_file(
    path: str | Path,
    *,
    classes: Sequence[str] | None = None,
    imgsz: int | None = None,
) -> ModelFileInfo:
    """Read classes, input size, task and stride from a model file.

    ultralytics writes them into every export: ONNX ``metadata_props`` (``names``, ``imgsz``,
    ``stride``, ``task``), ``metadata.yaml`` next to an OpenVINO ``.xml``, and the checkpoint of
    a ``.pt`` (read with ultralytics). ``classes`` and ``imgsz`` stand in for metadata the file
    lacks (an ONNX from another exporter) and override what it says.

    Args:
        path: a ``.pt``, an ``.onnx``, an OpenVINO ``.xml`` or its folder.
        classes: class names in class-id order.
        imgsz: the square input size.

    Raises:
        FileNotFoundError: nothing at ``path``.
        ModelFileError: not a detection model (segmentation, classification ...), an unknown
            kind of file, or metadata missing (naming the option that supplies it).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no model file at {path}")
    if path.suffix == ".pt":
        info = _inspect_pytorch(path)
    elif path.suffix == ".onnx":
        info = _inspect_onnx(path)
    elif path.suffix == ".xml" or (path.is_dir() and any(path.glob("*.xml"))):
        info = _inspect_openvino(path if path.is_dir() else path.parent)
    else:
        raise ModelFileError(
            f"{path} is not a model file the registry takes: expected an ultralytics .pt, an "
            ".onnx, or an OpenVINO export (.xml + .bin, or its folder)"
        )
    return _complete(info, path, classes=classes, imgsz=imgsz)


def _complete(
    found: dict[str, Any], path: Path, *, classes: Sequence[str] | None, imgsz: int | None
) -> ModelFileInfo:
    task = str(found.get("task") or "detect")
    if task != "detect":
        kind = _TASK_NAMES.get(task, f"a {task!r} model")
        raise ModelFileError(
            f"{path} is {kind} (task {task!r}), not a detection model; the registry and the edge "
            "runtime take object detectors only (task 'detect')"
        )
    names = list(classes) if classes else found.get("classes")
    size = imgsz or found.get("imgsz")
    missing = []
    if not names:
        missing.append("its class names (--classes a,b,c; classes=[...] in Python)")
    if not size:
        missing.append("its input size (--imgsz 640; imgsz=640 in Python)")
    if missing:
        raise ModelFileError(
            f"{path} does not say {' or '.join(missing)}: pass them, or export it with "
            "ultralytics, which writes them into the file"
        )
    if classes and found.get("classes") and len(classes) != len(found["classes"]):
        raise ModelFileError(
            f"--classes names {len(classes)} classes but {path} has {len(found['classes'])}: "
            f"{', '.join(found['classes'])}"
        )
    outputs = found.get("num_outputs")
    if outputs is not None and outputs != 4 + len(names) and not found.get("end2end"):
        raise ModelFileError(
            f"{path} is not a detection model for {len(names)} classes: its output has "
            f"{outputs} channels per box, a detector's has 4 + classes ({4 + len(names)})"
        )
    if isinstance(size, list | tuple):
        if len(size) != 2 or size[0] != size[1]:
            raise ModelFileError(
                f"{path} has input size {size}; the registry takes square inputs: export with "
                "one imgsz (e.g. 640) or pass --imgsz"
            )
        size = size[0]
    return ModelFileInfo(
        path=found["path"],
        format=found["format"],
        classes=[str(n) for n in names],
        input_size=int(size),
        stride=int(found.get("stride") or 32),
        task=task,
        framework=found.get("framework"),
        description=str(found.get("description") or ""),
        metadata=found,
    )


def _literal(value: Any) -> Any:
    """ultralytics' metadata values: Python literals written as text."""
    if not isinstance(value, str):
        return value
    try:
        return ast.literal_eval(value.strip())
    except (ValueError, SyntaxError):
        return value


def _class_list(names: Any) -> list[str] | None:
    names = _literal(names)
    if isinstance(names, Mapping):
        return [str(names[k]) for k in sorted(names, key=int)]
    if isinstance(names, list | tuple):
        return [str(n) for n in names]
    return None


def _framework(values: Mapping[str, Any]) -> str | None:
    version = values.get("version")
    return f"ultralytics {version}" if version else None


def _from_ultralytics_metadata(values: Mapping[str, Any]) -> dict[str, Any]:
    imgsz = _literal(values.get("imgsz"))
    return {
        "classes": _class_list(values.get("names")),
        "imgsz": list(imgsz) if isinstance(imgsz, list | tuple) else imgsz,
        "stride": _literal(values.get("stride")),
        "task": values.get("task"),
        "end2end": _literal(values.get("end2end")) is True,
        "framework": _framework(values),
        "description": values.get("description", ""),
    }


def _inspect_onnx(path: Path) -> dict[str, Any]:
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as error:  # onnx raises DecodeError and others for a file that is not ONNX
        raise ModelFileError(f"{path} is not a readable ONNX model: {error}") from None
    found = _from_ultralytics_metadata({p.key: p.value for p in model.metadata_props})
    outputs = [
        [d.dim_value or None for d in o.type.tensor_type.shape.dim] for o in model.graph.output
    ]
    if len(outputs) != 1 or len(outputs[0]) != 3:
        shapes = ", ".join(str(o) for o in outputs) or "none"
        raise ModelFileError(
            f"{path} is not a detection model: it has outputs {shapes}; a detector (ultralytics "
            "YOLO export) has one output (1, 4 + classes, boxes). A segmentation model has two"
        )
    if not found["imgsz"] and model.graph.input:
        dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
        if len(dims) == 4 and dims[2] and dims[3]:
            found["imgsz"] = [dims[2], dims[3]]
    found["num_outputs"] = outputs[0][1] if not found["end2end"] else None
    return {**found, "path": path, "format": "onnx"}


def _inspect_openvino(folder: Path) -> dict[str, Any]:
    import yaml

    xml = sorted(folder.glob("*.xml"))
    if len(xml) != 1:
        raise ModelFileError(
            f"{folder} holds {len(xml)} .xml files; an OpenVINO export folder holds one model "
            "(.xml + .bin)"
        )
    if not xml[0].with_suffix(".bin").is_file():
        raise ModelFileError(f"{xml[0]} has no weights file {xml[0].with_suffix('.bin').name}")
    metadata_file = folder / "metadata.yaml"
    values: dict[str, Any] = {}
    if metadata_file.is_file():
        loaded = yaml.safe_load(metadata_file.read_text(encoding="utf-8"))
        if isinstance(loaded, dict):
            values = loaded
    found = _from_ultralytics_metadata(values)
    return {**found, "path": folder, "format": "openvino"}


def _inspect_pytorch(path: Path) -> dict[str, Any]:
    from kit.offline import configure_ultralytics

    configure_ultralytics()
    from ultralytics import YOLO

    try:
        model = YOLO(str(path))
    except Exception as error:  # torch and ultralytics raise many kinds for a foreign file
        raise ModelFileError(
            f"{path} is not an ultralytics checkpoint ({type(error).__name__}: {error}); "
            "register its ONNX export instead, with --classes and --imgsz if it has no metadata"
        ) from None
    stride = getattr(model.model, "stride", None)
    checkpoint = model.ckpt if isinstance(model.ckpt, dict) else {}
    return {
        "path": path,
        "format": "pytorch",
        "task": model.task,
        "classes": _class_list(model.names),
        "imgsz": model.overrides.get("imgsz"),
        "stride": int(max(stride)) if stride is not None else None,
        "framework": _framework(checkpoint),
        "description": "",
    }


def register_model_file(
    name: str,
    path: str | Path,
    *,
    alias: str | None = None,
    export: Iterable[str] = (),
    check: str | Path | Sequence[str | Path] | None = None,
    classes: Sequence[str] | None = None,
    imgsz: int | None = None,
    description: str = "",
    parent: ModelRef | str | None = None,
    dataset: str | None = None,
    settings: Settings | None = None,
    registry: ModelRegistry | None = None,
) -> ModelMetadata:
    """Register a model file as a new version of ``name``, with what it says about itself.

    Weights a kit training run left (``<run>/weights/best.pt`` beside the run's
    ``metrics.json``, or a SageMaker job's ``model.pt``) keep their history: the run's validation
    metrics and the registered model it was fine-tuned from, as ``kit train --register`` records
    them. The parity check of each derived format adds what it measured on ``check``'s val split
    when that is a dataset: ``pytorch/mAP50`` and ``<format>/mAP50``.

    Args:
        name: the registry name.
        path: a ``.pt`` (ultralytics), an ``.onnx`` or an OpenVINO ``.xml`` / export folder.
        alias: point this alias (e.g. ``production``) at the new version.
        export: formats to derive from a ``.pt`` (:data:`DERIVED_FORMATS`), each checked
            against the PyTorch weights (:func:`kit.compile.parity_check`, strict) first.
        check: what the parity check runs on: a data.yaml, an image folder or images (default:
            the sample images ultralytics ships).
        classes: class names, for a file without metadata (or to rename them).
        imgsz: the input size, for a file without metadata.
        description: free text.
        parent: the registered model it was fine-tuned from (default: the training run's).
        dataset: the dataset prefix it was trained on, e.g. ``datasets/site/v2/``.
        settings: the bucket (default :func:`kit.core.settings.load_settings`).
        registry: the registry to write to (default: the settings').

    Raises:
        ModelFileError: not a detection model, missing metadata, or ``export`` from a file that
            is not PyTorch weights.
        kit.compile.ParityError: an export disagrees with the weights (nothing is registered).
        ValueError: an unknown format, a bad name or alias.

    Examples:
        >>> meta = register_model_file("site", "yolov8n-site.pt", alias="production",
        ...                            export=["onnx", "openvino"], check="data/site/data.yaml")
        >>> meta.classes
        ['person', 'helmet']
    """
    info = inspect_model_file(path, classes=classes, imgsz=imgsz)
    wanted = [fmt for fmt in dict.fromkeys(export) if fmt]
    unknown = [fmt for fmt in wanted if fmt not in DERIVED_FORMATS]
    if unknown:
        raise ValueError(
            f"cannot export {', '.join(map(repr, unknown))}; formats: {', '.join(DERIVED_FORMATS)}"
        )
    if wanted and info.format != "pytorch":
        raise ModelFileError(
            f"--export derives formats from PyTorch weights; {info.path} is {info.format}: "
            "register the .pt with --export, or each exported file on its own"
        )
    if alias is not None:
        parse_model_ref(name, alias)  # a malformed alias is refused before anything is written
    registry = registry or ModelRegistry.from_settings(settings)
    run = training_run_of(info.path) if info.format == "pytorch" else None
    metrics = dict(run.metrics) if run is not None else {}
    with tempfile.TemporaryDirectory(prefix="kit-register-exports-") as scratch:
        files: dict[str, str | Path | FormatFile] = {info.format: info.path}
        for fmt in wanted:
            files[fmt], report = _derive(info, fmt, Path(scratch), check)
            if report.reference_map50 is not None and report.candidate_map50 is not None:
                metrics["pytorch/mAP50"] = report.reference_map50
                metrics[f"{fmt}/mAP50"] = report.candidate_map50
        metadata = registry.register(
            name,
            files,
            classes=info.classes,
            input_size=info.input_size,
            metrics=metrics,
            parent=parent or (run.parent if run is not None else None),
            dataset=dataset,
            stride=info.stride,
            task=info.task,
            framework=info.framework or (run.framework if run is not None else None),
            description=description or info.description,
        )
    if alias is not None:
        registry.alias(metadata.name, alias, metadata.version)
    return metadata


def training_run_of(weights: str | Path) -> TrainResult | None:
    """The kit training run that left ``weights``, when its ``metrics.json`` is beside them.

    A local run keeps ``best.pt`` in ``<run>/weights/`` and ``metrics.json`` in ``<run>/``; a
    SageMaker job's extracted output keeps ``model.pt`` and ``metrics.json`` together. The run
    counts only when the weights it names are this very file.
    """
    from kit.sagemaker.train_entry import METRICS_FILE
    from kit.train.result import TrainResult

    weights = Path(weights).resolve()
    for folder in (weights.parent, weights.parent.parent):
        if (folder / METRICS_FILE).is_file():
            try:
                run = TrainResult.from_dir(folder)
            except (KeyError, TypeError, ValueError):
                continue  # a metrics.json some other tool wrote
            if run.weights == weights:
                return run
    return None


def _derive(info: ModelFileInfo, fmt: str, scratch: Path, check: Any) -> tuple[Path, ParityReport]:
    from kit.compile import export_onnx, export_openvino, parity_check

    options = dict(DERIVED_FORMATS[fmt])
    kind = options.pop("kind")
    if kind == "onnx":
        exported = export_onnx(
            info.path, info.input_size, output=scratch / f"model_{fmt}.onnx", **options
        )
    else:
        exported = export_openvino(
            info.path, info.input_size, output=scratch / f"model_{fmt}_openvino_model", **options
        )
    report = parity_check(
        info.path, exported, check or _sample_images(), imgsz=info.input_size, strict=True
    )
    return exported, report


def _sample_images() -> Path:
    """The images ultralytics ships (bus.jpg, zidane.jpg): a parity check needs no dataset."""
    from kit.offline import configure_ultralytics

    configure_ultralytics()
    from ultralytics.utils import ASSETS

    return Path(ASSETS)
