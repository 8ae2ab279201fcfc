"""Uploaded dataset versions back on this machine: ``datasets/<name>/<version>/`` to a data.yaml.

A dataset is named ``name:v<n>`` (one version) or ``name`` (its newest version), as
``kit data import`` and notebook 01 upload it (:mod:`kit.data.upload`).

Examples:
    >>> latest_dataset(settings, "shelf")
    'shelf:v2'
    >>> fetch_dataset(settings, "shelf:v1", "build/datasets")
    PosixPath('build/datasets/shelf/v1/data.yaml')
    >>> local_dataset("shelf", settings=settings).dataset
    'datasets/shelf/v2/'
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import yaml

from kit.data.upload import DATASETS_PREFIX, MANIFEST_NAME, list_dataset_versions

if TYPE_CHECKING:
    from kit.core.settings import Settings

_DATASET_REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}(:v\d+)?$")
"""``name`` or ``name:v<n>``: what :func:`fetch_dataset` takes (the names upload allows)."""


class LocalDataset(NamedTuple):
    """A dataset on this machine, ready to train or measure on.

    Attributes:
        data_yaml: the local data.yaml (or dataset or image folder, as given).
        dataset: the uploaded version's prefix (``datasets/<name>/<version>/``, what the registry
            records as a model's dataset); None for a local path.
    """

    data_yaml: Path
    dataset: str | None


def latest_dataset(settings: Settings, name: str) -> str:
    """``name:v<n>``, the newest uploaded version of dataset ``name``.

    Raises:
        LookupError: no version of ``name`` was uploaded.
    """
    versions = list_dataset_versions(
        s3_client=settings.client("s3"), bucket=settings.resources.bucket, name=name
    )
    if not versions:
        raise LookupError(
            f"no dataset {name!r} in s3://{settings.resources.bucket}/{DATASETS_PREFIX}/: "
            "upload one first (`kit data import`, or notebook 01_label_data), or name another"
        )
    return f"{name}:{versions[-1]}"


def fetch_dataset(settings: Settings, dataset: str, out_dir: str | Path) -> Path:
    """Download an uploaded dataset version; return its ``data.yaml`` (with an absolute ``path``).

    Args:
        dataset: ``name:v<n>``, or ``name`` for the newest version.
        out_dir: where it goes (``<out_dir>/<name>/<version>/``); files already there are reused.

    Raises:
        LookupError: the dataset or version does not exist (the message lists the versions).
    """
    name, _, version = dataset.partition(":")
    if not version:
        name, _, version = latest_dataset(settings, name).partition(":")
    s3, bucket = settings.client("s3"), settings.resources.bucket
    prefix = f"{DATASETS_PREFIX}/{name}/{version}/"
    folder = Path(out_dir) / name / version
    keys = [
        item["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for item in page.get("Contents", [])
    ]
    if prefix + MANIFEST_NAME not in keys:
        raise _not_uploaded(
            name, version, bucket, list_dataset_versions(s3_client=s3, bucket=bucket, name=name)
        )
    for key in keys:
        local = folder / key[len(prefix) :]
        if not local.is_file():
            local.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, key, str(local))
    data_yaml = folder / "data.yaml"
    data = yaml.safe_load(data_yaml.read_text())
    data["path"] = str(folder.resolve())
    data_yaml.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return data_yaml


def uploaded_dataset_prefix(settings: Settings, dataset: str) -> str:
    """``datasets/<name>/<version>/`` of an uploaded version (``name`` alone: the newest), what
    the registry records as a model's dataset.

    Raises:
        ValueError: ``dataset`` is not ``name`` or ``name:v<n>``.
        LookupError: that version was not uploaded (the message lists the versions).
    """
    if not _DATASET_REF.match(dataset):
        raise ValueError(
            f"dataset {dataset!r} is not an uploaded dataset: expected name:v<n> or name"
        )
    name, _, version = dataset.partition(":")
    if not version:
        name, _, version = latest_dataset(settings, name).partition(":")
    versions = list_dataset_versions(
        s3_client=settings.client("s3"), bucket=settings.resources.bucket, name=name
    )
    if version not in versions:
        raise _not_uploaded(name, version, settings.resources.bucket, versions)
    return f"{DATASETS_PREFIX}/{name}/{version}/"


def _not_uploaded(name: str, version: str, bucket: str, versions: list[str]) -> LookupError:
    uploaded = f"its versions: {', '.join(versions)}" if versions else "no version of it"
    return LookupError(
        f"dataset {name}:{version} is not in s3://{bucket}/{DATASETS_PREFIX}/ ({uploaded})"
    )


def local_dataset(
    data: str | Path, *, settings: Settings, out_dir: str | Path | None = None
) -> LocalDataset:
    """A local data.yaml for ``data``: a path that exists here, else an uploaded dataset.

    Args:
        data: a data.yaml or dataset folder on this machine; or ``name:v<n>`` / ``name`` (the
            newest version), downloaded with :func:`fetch_dataset`.
        settings: the bucket.
        out_dir: where a download goes (default ``<state dir>/datasets``).

    Raises:
        FileNotFoundError: ``data`` is neither a path here nor a dataset name.
        LookupError: the dataset or version was not uploaded.
    """
    if Path(data).exists():
        return LocalDataset(Path(data), None)
    text = str(data)
    if not _DATASET_REF.match(text) or text.endswith((".yaml", ".yml")):
        raise FileNotFoundError(
            f"no data.yaml or dataset folder at {text}, and it is not an uploaded dataset "
            "(name or name:v<n>)"
        )
    data_yaml = fetch_dataset(settings, text, out_dir or settings.state_dir / "datasets")
    name, version = data_yaml.parent.parent.name, data_yaml.parent.name
    return LocalDataset(data_yaml, f"{DATASETS_PREFIX}/{name}/{version}/")
