"""upload_dataset against moto's in-process S3 (mock_aws)."""

import hashlib
import json

import boto3
import pytest
import yaml
from moto import mock_aws

from kit.data import DetectionDataset, split_dataset, upload_dataset
from kit.data.upload import list_dataset_versions

BUCKET = "kit-datasets"


@pytest.fixture
def s3(monkeypatch):
    for variable in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE"):
        monkeypatch.delenv(variable, raising=False)
    with mock_aws():
        client = boto3.client("s3", region_name="eu-west-1")
        client.create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
        )
        yield client


def _keys(s3, prefix):
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix)["Contents"])


def test_versions_increment_and_manifest_describes_every_file(s3, sample_dataset):
    first = upload_dataset(sample_dataset, s3_client=s3, bucket=BUCKET, name="shelf")
    second = upload_dataset(sample_dataset, s3_client=s3, bucket=BUCKET, name="shelf")

    assert (first, second) == ("datasets/shelf/v1/", "datasets/shelf/v2/")
    manifest = json.loads(s3.get_object(Bucket=BUCKET, Key=second + "manifest.json")["Body"].read())
    assert manifest["name"] == "shelf" and manifest["version"] == "v2"
    assert manifest["classes"] == ["bottle", "can", "cup"]
    assert manifest["counts"]["images"]["train"] == 6
    assert manifest["counts"]["boxes"]["train"] == {"bottle": 4, "can": 3, "cup": 2}
    listed = {entry["path"]: entry for entry in manifest["files"]}
    uploaded = [key[len(second) :] for key in _keys(s3, second)]
    assert sorted(listed) == sorted(set(uploaded) - {"manifest.json"})
    assert "images/train/shelf_000.jpg" in listed and "labels/train/empty_005.txt" in listed
    for path, entry in listed.items():
        body = s3.get_object(Bucket=BUCKET, Key=second + path)["Body"].read()
        assert entry["sha256"] == hashlib.sha256(body).hexdigest()
        assert entry["size"] == len(body)


def test_explicit_version_then_auto_continues_above_it(s3, sample_dataset):
    assert (
        upload_dataset(sample_dataset, s3_client=s3, bucket=BUCKET, name="shelf", version="v7")
        == "datasets/shelf/v7/"
    )
    upload_dataset(sample_dataset, s3_client=s3, bucket=BUCKET, name="shelf", version="draft")

    assert upload_dataset(sample_dataset, s3_client=s3, bucket=BUCKET, name="shelf") == (
        "datasets/shelf/v8/"
    )
    assert list_dataset_versions(s3_client=s3, bucket=BUCKET, name="shelf") == ["v7", "v8"]
    assert upload_dataset(sample_dataset, s3_client=s3, bucket=BUCKET, name="fish") == (
        "datasets/fish/v1/"
    )
    with pytest.raises(ValueError, match=r"datasets/shelf/v7/ already exists"):
        upload_dataset(sample_dataset, s3_client=s3, bucket=BUCKET, name="shelf", version="v7")


def test_uploaded_folder_is_portable(s3, sample_dataset, tmp_path):
    splits = split_dataset(sample_dataset, ratios=(0.5, 0.5), seed=0)
    folder = splits.as_yolo(tmp_path / "local").parent

    prefix = upload_dataset(folder, s3_client=s3, bucket=BUCKET, name="shelf")

    download = tmp_path / "downloaded"
    for key in _keys(s3, prefix):
        target = download / key[len(prefix) :]
        target.parent.mkdir(parents=True, exist_ok=True)
        s3.download_file(BUCKET, key, str(target))
    data = yaml.safe_load((download / "data.yaml").read_text())
    assert "path" not in data and data["train"] == "images/train" and data["val"] == "images/val"
    val = DetectionDataset.from_yolo(data_yaml=download / "data.yaml", split="val")
    assert {item.path.name for item in val} == {item.path.name for item in splits.val}
    manifest = json.loads((download / "manifest.json").read_text())
    assert manifest["counts"]["images"] == {"train": len(splits.train), "val": len(splits.val)}


def test_bad_inputs_are_refused(s3, tmp_path, sample_dataset):
    with pytest.raises(FileNotFoundError, match="has no data.yaml"):
        upload_dataset(tmp_path, s3_client=s3, bucket=BUCKET, name="shelf")
    with pytest.raises(ValueError, match=r"dataset name 'my shelf' is not allowed"):
        upload_dataset(sample_dataset, s3_client=s3, bucket=BUCKET, name="my shelf")
    with pytest.raises(ValueError, match=r"version '../v1' is not allowed"):
        upload_dataset(sample_dataset, s3_client=s3, bucket=BUCKET, name="shelf", version="../v1")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "data.yaml").write_text(f"names: [a]\ntrain: {tmp_path / 'elsewhere/images'}\n")
    with pytest.raises(ValueError, match="outside .*self-contained"):
        upload_dataset(outside, s3_client=s3, bucket=BUCKET, name="shelf")
