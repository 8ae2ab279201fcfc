"""`kit data samples` and `kit data import`: samples a device sent through its spool are listed,
filtered and pulled into dataset versions whose labels are the samples' pre-labels; labelled
images are imported as a dataset version; expected failures are one line."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from edge_app.detections import Detections
from edge_app.publisher import Publisher
from edge_app.sampling import build_sample
from edge_app.spool import Spool
from kit.core.contracts import ModelRef
from kit.data import DetectionDataset
from kit.data.formats.yolo import parse_yolo_lines
from kit.data.samples import list_samples, parse_since, pull_samples
from kit.notebook import fetch_dataset
from tests.support.wait import DEFAULT_TIMEOUT_S

CLASSES = ["bottle", "person"]
START = datetime(2026, 11, 26, 10, tzinfo=UTC)


def kit(settings, *args):
    return subprocess.run(
        [sys.executable, "-m", "kit.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **settings.as_env()},
    )


def send_samples(settings, spool_dir, specs) -> list:
    """Send one sample per ``(device, camera, captured_at, boxes, class_ids)`` through a device's
    spool and publisher; the records sent."""
    rng = np.random.default_rng(0)
    spool = Spool(spool_dir, max_bytes=50_000_000, fsync=False)
    publisher = Publisher(settings, spool)
    records = []
    try:
        for device, camera, captured_at, boxes, class_ids in specs:
            image = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
            detections = Detections(
                xyxy=np.array(boxes, float).reshape(-1, 4),
                confidence=np.full(len(class_ids), 0.5),
                class_id=np.array(class_ids),
            )
            sample = build_sample(
                image,
                detections,
                CLASSES,
                reasons=["uncertain"],
                model=ModelRef(name="shelf", version=2),
                device_id=device,
                camera_id=camera,
                captured_at=captured_at,
            )
            publisher.publish_sample(sample)
            records.append(sample.record)
        publisher.start()
        assert publisher.flush(DEFAULT_TIMEOUT_S), "the samples left the spool"
    finally:
        publisher.stop()
        spool.close()
    return records


SPECS = [
    ("dev-1", "cam-1", START, [[2, 3, 30, 40], [33, 4, 60, 44]], [0, 1]),
    ("dev-1", "cam-1", START + timedelta(days=1), [[10, 12, 50, 47]], [0]),
    ("dev-1", "cam-2", START + timedelta(days=2), [], []),
    ("dev-2", "cam-1", START + timedelta(days=3), [[0, 0, 20, 30]], [1]),
]


def _version_labels(settings, dataset: str, tmp_path) -> dict[str, tuple]:
    """Boxes (pixels) and class names per image stem in an uploaded version's train split."""
    loaded = DetectionDataset.from_yolo(data_yaml=fetch_dataset(settings, dataset, tmp_path))
    return {
        item.path.stem: (
            item.boxes.round(3).tolist(),
            [loaded.classes[i] for i in item.class_ids.tolist()],
        )
        for item in loaded
    }


def _prelabels(settings, record) -> tuple:
    s3 = settings.client("s3")
    text = s3.get_object(Bucket=settings.resources.bucket, Key=record.labels_key)["Body"].read()
    boxes, ids = parse_yolo_lines(
        text.decode().splitlines(),
        width=record.frame.width,
        height=record.frame.height,
        classes=record.classes,
    )
    return boxes.round(3).tolist(), [record.classes[i] for i in ids.tolist()]


def test_samples_are_listed_filtered_and_pulled_with_their_prelabels(backend_settings, tmp_path):
    records = send_samples(backend_settings, tmp_path / "spool", SPECS)

    everything = list_samples(backend_settings)
    assert [s.record for s in everything] == records, "oldest first, every field as sent"
    assert [s.record.sample_id for s in list_samples(backend_settings, device="dev-1")] == [
        r.sample_id for r in records[:3]
    ]
    only = list_samples(backend_settings, device="dev-1", camera="cam-2")
    assert [s.record.camera_id for s in only] == ["cam-2"]
    later = list_samples(backend_settings, since=START + timedelta(days=1))
    assert [s.record.captured_at for s in later] == [r.captured_at for r in records[1:]]

    listed = kit(backend_settings, "data", "samples", "list", "--device", "dev-1")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.strip().splitlines()[-1] == "3 sample(s)"
    assert records[0].image_key in listed.stdout and "uncertain" in listed.stdout

    pulled = kit(
        backend_settings, "data", "samples", "pull", "--name", "field", "--device", "dev-1"
    )
    assert pulled.returncode == 0, pulled.stderr
    assert "as field:v1" in pulled.stdout
    labels = _version_labels(backend_settings, "field:v1", tmp_path / "v1")
    expected = {
        f"{r.device_id}__{r.camera_id}__{r.sample_id}": _prelabels(backend_settings, r)
        for r in records[:3]
    }
    assert labels == expected
    assert expected[f"dev-1__cam-1__{records[0].sample_id}"] == (
        [[2.0, 3.0, 30.0, 40.0], [33.0, 4.0, 60.0, 44.0]],
        ["bottle", "person"],
    )

    # a second pull merges into the newest version and leaves out what it holds already
    again = pull_samples(backend_settings, name="field")
    assert again.version == "v2" and again.base == "v1" and again.skipped == 3
    assert [s.record for s in again.samples] == [records[3]]
    merged = _version_labels(backend_settings, "field:v2", tmp_path / "v2")
    assert merged == {
        **expected,
        f"dev-2__cam-1__{records[3].sample_id}": _prelabels(backend_settings, records[3]),
    }

    alone = pull_samples(backend_settings, name="field", device="dev-2", merge=False)
    assert alone.version == "v3" and alone.base is None
    assert set(_version_labels(backend_settings, "field:v3", tmp_path / "v3")) == {
        f"dev-2__cam-1__{records[3].sample_id}"
    }


def test_pull_failures_are_one_line_errors(backend_settings, tmp_path):
    none = kit(backend_settings, "data", "samples", "pull", "--name", "field")
    assert none.returncode == 2 and none.stdout == ""
    assert none.stderr.count("\n") == 1 and "no samples under s3://" in none.stderr
    assert "sampling.enabled" in none.stderr

    send_samples(backend_settings, tmp_path / "spool", SPECS[:1])
    assert kit(backend_settings, "data", "samples", "pull", "--name", "field").returncode == 0
    repeated = kit(backend_settings, "data", "samples", "pull", "--name", "field")
    assert repeated.returncode == 2 and "are all in field:v1 already" in repeated.stderr

    for args, message in (
        (("--camera", "cam-1"), "a camera ('cam-1') is only found under its device"),
        (("--since", "yesterday"), "since 'yesterday' is not an ISO date or time"),
    ):
        failed = kit(backend_settings, "data", "samples", "list", *args)
        assert failed.returncode == 2 and failed.stderr.count("\n") == 1, failed.stderr
        assert message in failed.stderr
    no_name = kit(backend_settings, "data", "samples", "pull")
    assert no_name.returncode == 2 and "needs --name DATASET" in no_name.stderr


def test_since_takes_dates_times_and_ages():
    now = datetime(2026, 1, 31, 12, tzinfo=UTC)
    assert parse_since("2026-01-30") == datetime(2026, 1, 30, tzinfo=UTC)
    assert parse_since("2026-01-30T08:00:00+02:00") == datetime(2026, 1, 30, 6, tzinfo=UTC)
    assert parse_since("90m", now=now) == now - timedelta(minutes=90)
    assert parse_since("7d", now=now) == now - timedelta(days=7)
    with pytest.raises(ValueError, match="since '7 days' is not"):
        parse_since("7 days")


def test_import_uploads_labelled_images_as_a_dataset_version(
    backend_settings, sample_dataset, tmp_path
):
    annotations = sample_dataset.as_coco(annotations_path=tmp_path / "coco" / "labels.json")
    imported = kit(
        backend_settings,
        "data",
        "import",
        str(tmp_path / "source"),
        "--labels",
        str(annotations),
        "--format",
        "coco",
        "--name",
        "customer",
    )
    assert imported.returncode == 0, imported.stderr
    assert "as s3://" in imported.stdout and "datasets/customer/v1/" in imported.stdout
    data_yaml = fetch_dataset(backend_settings, "customer:v1", tmp_path / "down")
    train = DetectionDataset.from_yolo(data_yaml=data_yaml, split="train")
    val = DetectionDataset.from_yolo(data_yaml=data_yaml, split="val")
    assert train.classes == sample_dataset.classes
    assert len(train) + len(val) == len(sample_dataset)
    boxes = {i.path.stem: i.boxes.round(2).tolist() for i in [*train, *val]}
    assert boxes == {i.path.stem: i.boxes.round(2).tolist() for i in sample_dataset}

    bad = kit(
        backend_settings,
        "data",
        "import",
        str(tmp_path / "source"),
        "--labels",
        str(tmp_path / "missing.json"),
        "--format",
        "coco",
        "--name",
        "customer",
    )
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
    assert "labels" in bad.stderr and "does not exist" in bad.stderr


def test_a_broken_or_misplaced_record_is_skipped_and_the_others_listed(backend_settings, tmp_path):
    """A record that is not JSON, and one of dev-1's stored under dev-2's prefix, are left out
    (and logged); the good samples are still listed."""
    records = send_samples(backend_settings, tmp_path / "spool", SPECS[:1])
    s3, bucket = backend_settings.client("s3"), backend_settings.resources.bucket
    good = records[0]
    day = f"{good.captured_at:%Y-%m-%d}"
    s3.put_object(Bucket=bucket, Key=f"samples/dev-1/cam-1/{day}/broken.json", Body=b"{not json")
    s3.put_object(
        Bucket=bucket,
        Key=f"samples/dev-2/cam-1/{day}/{good.sample_id}.json",
        Body=good.model_dump_json().encode(),
    )
    assert [s.record for s in list_samples(backend_settings)] == [good]
