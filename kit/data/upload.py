"""Versioned dataset uploads to S3: ``datasets/<name>/<version>/`` with a manifest."""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from kit.data.core import DetectionDataset
from kit.data.formats.yolo import load_yolo, read_yolo_classes
from kit.data.images import file_sha256
from kit.data.split import SPLIT_NAMES, DatasetSplits

DATASETS_PREFIX = "datasets"
MANIFEST_NAME = "manifest.json"
_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_VERSION_PATTERN = re.compile(r"^v(\d+)$")


def upload_dataset(
    dataset: DetectionDataset | DatasetSplits | str | Path,
    *,
    s3_client: Any,
    bucket: str,
    name: str,
    version: str | None = None,
) -> str:
    """Upload a YOLO dataset under ``datasets/<name>/<version>/`` with a ``manifest.json``.

    The files go up first and ``manifest.json`` last, so a version with a manifest is
    complete. The manifest lists the classes, images and boxes per split and the sha256
    and size of every file. The uploaded ``data.yaml`` has paths relative to itself
    (no ``path`` key), which ultralytics resolves against the folder it is downloaded to.

    Args:
        dataset: A `DetectionDataset` (uploaded as the train split), `DatasetSplits`, or a
            folder in the YOLO layout with a ``data.yaml`` at its root (as
            `DetectionDataset.as_yolo` writes).
        s3_client: A boto3 S3 client.
        bucket: The bucket to upload to.
        name: Dataset name: letters, digits, ``.``, ``_``, ``-``.
        version: Version folder, e.g. ``"v3"``; default: one above the highest ``v<n>``
            already under ``datasets/<name>/`` (``v1`` for the first upload).

    Returns:
        The key prefix of the upload, e.g. ``"datasets/shelf/v2/"``.

    Raises:
        ValueError: A bad name or version, a version that already exists, or a folder
            whose data.yaml points outside it.
        FileNotFoundError: The folder has no ``data.yaml``.

    Examples:
        >>> import boto3
        >>> prefix = upload_dataset(
        ...     splits, s3_client=boto3.client("s3"), bucket="kit-data", name="shelf")
        >>> prefix
        'datasets/shelf/v1/'
    """
    if not isinstance(name, str) or not _NAME_PATTERN.match(name):
        raise ValueError(
            f"dataset name {name!r} is not allowed; expected letters, digits, '.', '_' or '-' "
            "(starting with a letter or digit, at most 128 characters)"
        )
    if isinstance(dataset, DetectionDataset | DatasetSplits):
        with tempfile.TemporaryDirectory(prefix="kit-dataset-") as folder:
            dataset.as_yolo(folder)
            return _upload_folder(Path(folder), s3_client, bucket, name, version)
    return _upload_folder(Path(dataset), s3_client, bucket, name, version)


def list_dataset_versions(*, s3_client: Any, bucket: str, name: str) -> list[str]:
    """The ``v<n>`` versions under ``datasets/<name>/``, oldest first.

    Examples:
        >>> list_dataset_versions(s3_client=s3, bucket="kit-data", name="shelf")
        ['v1', 'v2']
    """
    paginator = s3_client.get_paginator("list_objects_v2")
    parent = f"{DATASETS_PREFIX}/{name}/"
    numbers = []
    for page in paginator.paginate(Bucket=bucket, Prefix=parent, Delimiter="/"):
        for common in page.get("CommonPrefixes", []):
            folder = common["Prefix"][len(parent) :].rstrip("/")
            if match := _VERSION_PATTERN.match(folder):
                numbers.append(int(match.group(1)))
    return [f"v{number}" for number in sorted(numbers)]


def _upload_folder(
    folder: Path, s3_client: Any, bucket: str, name: str, version: str | None
) -> str:
    data_yaml = folder / "data.yaml"
    if not data_yaml.is_file():
        raise FileNotFoundError(
            f"{folder} has no data.yaml; expected a YOLO dataset folder "
            "(DetectionDataset.as_yolo writes one)"
        )
    classes = read_yolo_classes(data_yaml)
    split_dirs = _split_dirs(folder.resolve(), data_yaml)

    if version is None:
        existing = list_dataset_versions(s3_client=s3_client, bucket=bucket, name=name)
        version = f"v{int(existing[-1][1:]) + 1}" if existing else "v1"
    elif not isinstance(version, str) or not _NAME_PATTERN.match(version):
        raise ValueError(
            f"version {version!r} is not allowed; expected e.g. 'v3' (letters, digits, '.', "
            "'_', '-')"
        )
    prefix = f"{DATASETS_PREFIX}/{name}/{version}/"
    taken = s3_client.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1)
    if taken.get("KeyCount", 0):
        raise ValueError(
            f"s3://{bucket}/{prefix} already exists; pass another version or None for the next"
        )

    portable_yaml = _portable_data_yaml(data_yaml, folder.resolve(), split_dirs)
    files = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        relative = path.relative_to(folder).as_posix()
        if relative == MANIFEST_NAME:
            continue
        if relative == "data.yaml":
            body = portable_yaml.encode()
            s3_client.put_object(Bucket=bucket, Key=prefix + relative, Body=body)
            digest, size = hashlib.sha256(body).hexdigest(), len(body)
        else:
            s3_client.upload_file(str(path), bucket, prefix + relative)
            digest, size = file_sha256(path), path.stat().st_size
        files.append({"path": relative, "size": size, "sha256": digest})

    images, boxes = {}, {}
    for split, images_dir in split_dirs.items():
        split_dataset = load_yolo(images_dir=images_dir, classes=classes)
        images[split] = len(split_dataset)
        boxes[split] = split_dataset.class_counts()
    manifest = {
        "name": name,
        "version": version,
        "format": "yolo",
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "classes": classes,
        "counts": {"images": images, "boxes": boxes},
        "files": files,
    }
    s3_client.put_object(
        Bucket=bucket,
        Key=prefix + MANIFEST_NAME,
        Body=json.dumps(manifest, indent=1).encode(),
        ContentType="application/json",
    )
    return prefix


def _split_dirs(folder: Path, data_yaml: Path) -> dict[str, Path]:
    data = yaml.safe_load(data_yaml.read_text())
    base = Path(data.get("path") or data_yaml.parent)
    if not base.is_absolute():
        base = data_yaml.parent / base
    dirs = {}
    for split in SPLIT_NAMES:
        entry = data.get(split)
        if not entry:
            continue
        images_dir = (base / str(entry)).resolve()
        if not images_dir.is_relative_to(folder):
            raise ValueError(
                f"{data_yaml}: split {split!r} points to {images_dir}, outside {folder}; "
                "expected a self-contained folder (DetectionDataset.as_yolo writes one)"
            )
        dirs[split] = images_dir
    return dirs


def _portable_data_yaml(data_yaml: Path, folder: Path, split_dirs: dict[str, Path]) -> str:
    data = yaml.safe_load(data_yaml.read_text())
    data.pop("path", None)
    for split, images_dir in split_dirs.items():
        data[split] = images_dir.relative_to(folder).as_posix()
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
