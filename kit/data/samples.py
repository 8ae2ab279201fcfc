"""Field data back into training: the frames devices sampled for labelling, listed and pulled.

A camera with sampling on (its control settings' ``sampling``) uploads, rate-limited, the frames
its model hesitates on, where a count jumps, and a random share, as
``samples/<device>/<camera>/<yyyy-mm-dd>/<id>.{jpg,txt,json}``: the frame (privacy classes
blurred), the model's own boxes as YOLO pre-labels, and a
:class:`~kit.core.contracts.sampling.SampleRecord`. Here they are listed (`list_samples`),
downloaded as a labelled folder the labelling widget opens pre-labelled (`download_samples`),
and pulled into the next version of a dataset (`pull_samples`), merged into its training split.

Examples:
    >>> from kit.data.samples import list_samples, pull_samples
    >>> samples = list_samples(settings, device="demo-1", since="24h")     # doctest: +SKIP
    >>> pulled = pull_samples(settings, name="shelf", device="demo-1")      # doctest: +SKIP
    >>> pulled.prefix                                                       # doctest: +SKIP
    'datasets/shelf/v3/'
"""

from __future__ import annotations

import logging
import re
import tempfile
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import yaml

from kit.core.contracts import ContractError, parse
from kit.core.contracts.sampling import SampleRecord, sample_prefix
from kit.core.settings import Settings
from kit.data.core import DetectionDataset, LabelledImage
from kit.data.fetch import fetch_dataset
from kit.data.formats.yolo import (
    boxes_to_yolo_lines,
    load_yolo,
    parse_yolo_lines,
    read_yolo_classes,
)
from kit.data.split import DatasetSplits
from kit.data.upload import list_dataset_versions, upload_dataset

log = logging.getLogger(__name__)

_RELATIVE = re.compile(r"^(\d+)([mhd])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}
SINCE_HELP = "an ISO date or time (2026-01-31, 2026-01-31T12:00:00Z) or an age (30m, 24h, 7d)"


@dataclass(frozen=True)
class StoredSample:
    """A sample in the bucket: its record, and where the record is."""

    record: SampleRecord
    record_key: str

    @property
    def file_stem(self) -> str:
        """The sample's file name without suffix in a dataset: unique across devices and cameras."""
        record = self.record
        return f"{record.device_id}__{record.camera_id}__{record.sample_id}"


@dataclass(frozen=True)
class PulledSamples:
    """What `pull_samples` uploaded.

    Attributes:
        prefix: the new dataset version's key prefix (``datasets/<name>/<version>/``).
        samples: the samples added to its training split.
        skipped: samples left out because the base version already holds them.
        base: the version merged with (``None``: the new version holds the samples alone).
    """

    prefix: str
    samples: list[StoredSample]
    skipped: int
    base: str | None

    @property
    def version(self) -> str:
        return self.prefix.rstrip("/").rsplit("/", 1)[-1]


def parse_since(text: str | datetime | None, *, now: datetime | None = None) -> datetime | None:
    """The moment ``--since`` names: an ISO date or time (UTC when it has no zone), or an age.

    Raises:
        ValueError: naming the text and what is allowed.

    Examples:
        >>> parse_since("2026-01-31")
        datetime.datetime(2026, 1, 31, 0, 0, tzinfo=datetime.timezone.utc)
        >>> now = datetime(2026, 1, 31, 12, tzinfo=UTC)
        >>> parse_since("2h", now=now).hour
        10
    """
    if text is None or isinstance(text, datetime):
        return _utc(text) if text is not None else None
    match = _RELATIVE.match(text.strip())
    if match:
        amount, unit = int(match.group(1)), _UNITS[match.group(2)]
        return (now or datetime.now(UTC)) - timedelta(**{unit: amount})
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"since {text!r} is not {SINCE_HELP}") from None
    return _utc(moment)


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def list_samples(
    settings: Settings,
    *,
    device: str | None = None,
    camera: str | None = None,
    since: str | datetime | None = None,
) -> list[StoredSample]:
    """The complete samples in the bucket (those whose record was written), oldest first.

    Args:
        settings: which bucket (and target).
        device: only this device's samples.
        camera: only this camera's (needs ``device``).
        since: only samples captured at or after this moment (:func:`parse_since`).

    Raises:
        ValueError: a camera without its device, or a bad ``since``.
    """
    moment = parse_since(since)
    prefix = sample_prefix(device, camera)
    s3, bucket = settings.client("s3"), settings.resources.bucket
    samples = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            key = item["Key"]
            if not key.endswith(".json") or not _on_or_after(key, moment):
                continue
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            try:
                record = parse(SampleRecord, body)
            except ContractError as error:
                log.warning("skipping sample record s3://%s/%s: %s", bucket, key, error)
                continue
            owner = sample_prefix(record.device_id, record.camera_id)
            if not key.startswith(owner):
                # a record stored under another camera's prefix (every device may write
                # samples/): its claim to be this camera's is not believed
                log.warning(
                    "skipping sample record s3://%s/%s: it names %s/%s but lies outside %s",
                    bucket,
                    key,
                    record.device_id,
                    record.camera_id,
                    owner,
                )
                continue
            if moment is None or record.captured_at >= moment:
                samples.append(StoredSample(record, key))
    return sorted(samples, key=lambda sample: (sample.record.captured_at, sample.record_key))


def _on_or_after(key: str, moment: datetime | None) -> bool:
    """Whether the key's date folder may hold samples at or after ``moment`` (skips reading
    records of older days)."""
    if moment is None:
        return True
    parts = key.split("/")
    try:
        day = date.fromisoformat(parts[-2])
    except (IndexError, ValueError):
        return True  # not the usual layout: the record's own time decides
    return day >= moment.date()


def download_samples(
    settings: Settings,
    samples: list[StoredSample],
    out_dir: str | Path,
    *,
    classes: list[str] | None = None,
) -> DetectionDataset:
    """Download samples as a labelled folder: ``images/<stem>.jpg``, ``labels/<stem>.txt`` (the
    pre-labels, class ids of the returned dataset's classes) and ``classes.txt``.

    The labelling widget opens the folder pre-labelled
    (``LabellingSession(out/"images", dataset.classes, out/"labels")``).

    Args:
        classes: the classes to start from (e.g. a dataset's); the samples' other classes are
            appended in the order met. Default: the samples' classes in the order met.

    Raises:
        kit.data.DatasetFormatError: a sample's pre-label file is malformed (names its key).
    """
    out = Path(out_dir)
    images_dir, labels_dir = out / "images", out / "labels"
    images_dir.mkdir(parents=True, exist_ok=True)
    labels_dir.mkdir(parents=True, exist_ok=True)
    names = list(classes or [])
    s3, bucket = settings.client("s3"), settings.resources.bucket
    items = []
    for sample in samples:
        record = sample.record
        image_path = images_dir / f"{sample.file_stem}.jpg"
        s3.download_file(bucket, record.image_key, str(image_path))
        text = s3.get_object(Bucket=bucket, Key=record.labels_key)["Body"].read().decode()
        boxes, class_ids = parse_yolo_lines(
            text.splitlines(),
            width=record.frame.width,
            height=record.frame.height,
            classes=record.classes,
            file=f"s3://{bucket}/{record.labels_key}",
        )
        for name in record.classes:
            if name not in names:
                names.append(name)
        merged_ids = [names.index(record.classes[int(class_id)]) for class_id in class_ids]
        item = LabelledImage(image_path, record.frame.width, record.frame.height, boxes, merged_ids)
        lines = boxes_to_yolo_lines(
            item.boxes, item.class_ids, width=item.width, height=item.height
        )
        (labels_dir / f"{sample.file_stem}.txt").write_text("".join(f"{line}\n" for line in lines))
        items.append(item)
    (out / "classes.txt").write_text("".join(f"{name}\n" for name in names))
    return DetectionDataset(classes=names, items=items)


def pull_samples(
    settings: Settings,
    *,
    name: str,
    device: str | None = None,
    camera: str | None = None,
    since: str | datetime | None = None,
    merge: bool = True,
    work_dir: str | Path | None = None,
) -> PulledSamples:
    """Pull samples, with their pre-labels, into the next version of dataset ``name``.

    With ``merge`` and an existing version, the new version is the newest one with the samples
    added to its training split (its val and test splits unchanged, so models stay comparable);
    samples it already holds (pulled before, maybe corrected since) are left out. Otherwise the
    new version holds the samples alone.

    Args:
        name: the dataset (``datasets/<name>/``).
        device, camera, since: which samples (:func:`list_samples`).
        merge: merge with the newest version of ``name`` when there is one.
        work_dir: where to download (default: a temporary folder, removed after).

    Raises:
        LookupError: no sample matches, or every one is in the newest version already.
        ValueError: a bad dataset name, camera without device, or ``since``.
    """
    samples = list_samples(settings, device=device, camera=camera, since=since)
    where = f"s3://{settings.resources.bucket}/{sample_prefix(device, camera)}"
    if not samples:
        after = f" captured since {parse_since(since).isoformat()}" if since is not None else ""
        raise LookupError(
            f"no samples under {where}{after}: turn sampling on for the camera (its control "
            "settings' sampling.enabled) and let it run"
        )
    s3, bucket = settings.client("s3"), settings.resources.bucket
    versions = list_dataset_versions(s3_client=s3, bucket=bucket, name=name) if merge else []
    with tempfile.TemporaryDirectory(prefix="kit-samples-") as scratch:
        folder = Path(work_dir) if work_dir is not None else Path(scratch)
        base = versions[-1] if versions else None
        splits = _base_splits(settings, name, base, folder / "base") if base else None
        if splits is not None:
            held = {item.path.stem for split in splits for item in split}
            new = [sample for sample in samples if sample.file_stem not in held]
        else:
            new = samples
        if not new:
            raise LookupError(
                f"the {len(samples)} sample(s) under {where} are all in {name}:{base} already"
            )
        pulled = download_samples(
            settings,
            new,
            folder / "samples",
            classes=splits.train.classes if splits is not None else None,
        )
        if splits is None:
            upload = pulled
        else:
            # the samples' classes start with the base's: the base's class ids hold as they are
            upload = DatasetSplits(
                DetectionDataset(pulled.classes, [*splits.train.items, *pulled.items]),
                DetectionDataset(pulled.classes, splits.val.items),
                DetectionDataset(pulled.classes, splits.test.items),
            )
        prefix = upload_dataset(upload, s3_client=s3, bucket=bucket, name=name)
    return PulledSamples(prefix, new, len(samples) - len(new), base)


def _base_splits(settings: Settings, name: str, version: str, folder: Path) -> DatasetSplits:
    """The splits of dataset version ``name:version``, downloaded into ``folder`` (a split the
    version does not have, or a val split that is the train images again, is empty)."""
    data_yaml = fetch_dataset(settings, f"{name}:{version}", folder)
    data = yaml.safe_load(data_yaml.read_text())
    classes = read_yolo_classes(data_yaml)

    def split(which: str) -> DetectionDataset:
        if not data.get(which) or (which != "train" and data[which] == data.get("train")):
            return DetectionDataset(classes=classes, items=[])
        return load_yolo(data_yaml=data_yaml, split=which)

    return DatasetSplits(split("train"), split("val"), split("test"))
