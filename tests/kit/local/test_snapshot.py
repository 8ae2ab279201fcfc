"""Local snapshots cannot destroy data: generations, atomic writes, verification on restore,
containment of S3 keys, TTL, and a status that reads a damaged snapshot (issue 14, item 6)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

from kit.local.snapshot import KEEP_GENERATIONS, generations

TABLES = "lifecycle-{}"


def fill(aws, endpoint: str, tag: str, *, detections: int = 30) -> dict[str, list[dict]]:
    """Items in four tables, tagged with ``tag``; returns them by table."""
    dynamodb = aws("dynamodb", endpoint)
    far = str(int(time.time()) + 30 * 86400)
    written = {
        "detections": [
            {
                "camera_id": {"S": "shelf-1"},
                "sk": {"S": f"{tag}#{n:04d}"},
                "expires_at": {"N": far},
                "payload": {"S": json.dumps({"n": n, "tag": tag})},
            }
            for n in range(detections)
        ],
        "audit": [
            {"entity": {"S": "config"}, "at": {"S": f"{tag}#{n}"}, "expires_at": {"N": far}}
            for n in range(5)
        ],
        "alerts": [{"alert_id": {"S": f"{tag}-alert"}, "state": {"S": "OPEN"}}],
        "config": [{"config_id": {"S": f"{tag}-config"}, "revision": {"N": "7"}}],
    }
    for table, items in written.items():
        for item in items:
            dynamodb.put_item(TableName=TABLES.format(table), Item=item)
    return written


def items_of(aws, endpoint: str, table: str) -> list[dict]:
    dynamodb = aws("dynamodb", endpoint)
    items = []
    for page in dynamodb.get_paginator("scan").paginate(TableName=TABLES.format(table)):
        items += page["Items"]
    return items


def keys(items: list[dict]) -> set[str]:
    return {json.dumps(item, sort_keys=True) for item in items}


def newest(stack) -> Path:
    return generations(stack.snapshot_dir)[0].folder


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_every_value_round_trips_through_a_snapshot(own_stack, aws):
    """GIVEN every DynamoDB type, S3 metadata and SQS message attributes, WHEN the stack goes
    down and up, THEN each comes back exactly (binary values, ids and receive counts too)."""
    endpoint = own_stack.up(runner=False).endpoint_url
    item = {
        "config_id": {"S": "all-types"},
        "b": {"B": b"\x00\x01\xff"},
        "n": {"N": "4.5"},
        "flag": {"BOOL": True},
        "none": {"NULL": True},
        "m": {"M": {"x": {"B": b"\xfe"}, "l": {"L": [{"S": "a"}, {"N": "1"}]}}},
        "ss": {"SS": ["a", "b"]},
        "ns": {"NS": ["1", "2"]},
        "bs": {"BS": [b"\x01", b"\x02"]},
    }
    aws("dynamodb", endpoint).put_item(TableName="lifecycle-config", Item=item)
    aws("s3", endpoint).put_object(
        Bucket="lifecycle-bucket",
        Key="frames/d/c/a.jpg",
        Body=b"\xff\xd8jpeg",
        ContentType="image/jpeg",
        Metadata={"camera": "c"},
    )
    sqs = aws("sqs", endpoint)
    url = sqs.get_queue_url(QueueName="lifecycle-detections")["QueueUrl"]
    sent = sqs.send_message(
        QueueUrl=url,
        MessageBody="payload",
        MessageAttributes={
            "device": {"DataType": "String", "StringValue": "demo-1"},
            "raw": {"DataType": "Binary", "BinaryValue": b"\x00\xff"},
        },
    )
    sqs.receive_message(QueueUrl=url, VisibilityTimeout=600)  # in flight at down

    own_stack.down()
    endpoint = own_stack.up(runner=False).endpoint_url

    got = aws("dynamodb", endpoint).get_item(
        TableName="lifecycle-config", Key={"config_id": {"S": "all-types"}}
    )["Item"]
    assert got == item
    stored = aws("s3", endpoint).get_object(Bucket="lifecycle-bucket", Key="frames/d/c/a.jpg")
    assert stored["Body"].read() == b"\xff\xd8jpeg"
    assert (stored["ContentType"], stored["Metadata"]) == ("image/jpeg", {"camera": "c"})
    sqs = aws("sqs", endpoint)
    url = sqs.get_queue_url(QueueName="lifecycle-detections")["QueueUrl"]
    [message] = sqs.receive_message(
        QueueUrl=url, MessageAttributeNames=["All"], AttributeNames=["All"]
    )["Messages"]
    assert (message["MessageId"], message["Body"]) == (sent["MessageId"], "payload")
    assert message["Attributes"]["ApproximateReceiveCount"] == "2"
    assert message["MessageAttributes"] == {
        "device": {"DataType": "String", "StringValue": "demo-1"},
        "raw": {"DataType": "Binary", "BinaryValue": b"\x00\xff"},
    }


def test_keys_that_look_like_paths_stay_inside_the_snapshot_folder(own_stack, aws, tmp_path):
    """GIVEN S3 keys with ``..``, a leading ``/`` and other path-like forms, WHEN the stack is
    snapshotted, THEN nothing is written outside its snapshot folder, and up restores each key."""
    endpoint = own_stack.up(runner=False).endpoint_url
    marker = uuid.uuid4().hex
    hostile = [
        f"../../../escaped-{marker}.txt",
        f"/tmp/evk-absolute-{marker}",
        f"frames/../../../../up-{marker}",
        "..",
        "./.",
        f"{'deep/' * 60}{'x' * 200}",
    ]
    s3 = aws("s3", endpoint)
    for n, key in enumerate(hostile):
        s3.put_object(Bucket="lifecycle-bucket", Key=key, Body=f"body {n}".encode())
    before = {p for p in tmp_path.rglob("*") if not p.is_relative_to(own_stack.snapshot_dir)}

    assert own_stack.down()["bucket"] == len(hostile)

    after = {p for p in tmp_path.rglob("*") if not p.is_relative_to(own_stack.snapshot_dir)}
    created_outside = {p for p in after - before if not p.is_relative_to(own_stack.directory)}
    assert created_outside == set()
    assert not Path(f"/tmp/evk-absolute-{marker}").exists()
    assert not list(Path("/").glob(f"*{marker}*"))
    s3 = aws("s3", own_stack.up(runner=False).endpoint_url)
    for n, key in enumerate(hostile):
        assert s3.get_object(Bucket="lifecycle-bucket", Key=key)["Body"].read() == (
            f"body {n}".encode()
        )


def test_a_truncated_file_loses_no_other_tables_data_across_up_up_down_up(own_stack, aws):
    """The issue's probe. GIVEN two snapshots, the newest with a truncated audit table file,
    WHEN up, up, down, up, THEN every other table keeps the newest data, the audit table comes
    from the older snapshot, the damaged file is named, and the damaged snapshot is kept."""
    endpoint = own_stack.up(runner=False).endpoint_url
    first = fill(aws, endpoint, "first")
    own_stack.down()
    endpoint = own_stack.up(runner=False).endpoint_url
    second = fill(aws, endpoint, "second")
    own_stack.down()
    damaged_generation = newest(own_stack)
    truncate(damaged_generation / "tables" / "audit.json")

    status = own_stack.up(runner=False)  # up
    [damage] = status.restored["damaged"]
    assert damage["file"] == str(damaged_generation / "tables" / "audit.json")
    assert "bytes, the manifest says" in damage["problem"]
    assert damage["instead"].startswith("taken from the older snapshot")
    assert "audit.json is damaged" in status.describe()
    endpoint = own_stack.up(runner=False).endpoint_url  # up again: the same stack
    own_stack.down()
    endpoint = own_stack.up(runner=False).endpoint_url

    for table in ("detections", "alerts", "config"):
        assert keys(items_of(aws, endpoint, table)) == keys(first[table] + second[table]), table
    assert keys(items_of(aws, endpoint, "audit")) == keys(first["audit"])
    assert damaged_generation.is_dir() and (damaged_generation / "DAMAGED.json").is_file()


def test_a_damaged_snapshot_is_never_pruned_and_its_data_not_replaced_by_nothing(own_stack, aws):
    """GIVEN one snapshot whose detections file is truncated (no older one to fall back to),
    WHEN up restores and the stack goes down and up more times than generations are kept,
    THEN the other tables survive every cycle and the damaged snapshot is still there."""
    endpoint = own_stack.up(runner=False).endpoint_url
    written = fill(aws, endpoint, "only")
    own_stack.down()
    damaged_generation = newest(own_stack)
    truncate(damaged_generation / "tables" / "detections.json")

    status = own_stack.up(runner=False)
    assert [d["instead"] for d in status.restored["damaged"]] == [
        "nothing restored for it (no older snapshot holds it)"
    ]
    for _ in range(KEEP_GENERATIONS + 1):
        own_stack.down()
        endpoint = own_stack.up(runner=False).endpoint_url

    for table in ("audit", "alerts", "config"):
        assert keys(items_of(aws, endpoint, table)) == keys(written[table]), table
    assert damaged_generation.is_dir()
    assert len(generations(own_stack.snapshot_dir)) == KEEP_GENERATIONS + 1


def test_status_works_and_up_uses_the_previous_snapshot_when_a_manifest_is_damaged(own_stack, aws):
    endpoint = own_stack.up(runner=False).endpoint_url
    first = fill(aws, endpoint, "first", detections=3)
    own_stack.down()
    own_stack.up(runner=False)
    own_stack.down()
    damaged_generation = newest(own_stack)
    truncate(damaged_generation / "manifest.json")

    status = own_stack.status()
    assert not status.running
    assert any(damaged_generation.name in problem for problem in status.snapshot["problems"])
    cli = subprocess.run(
        [sys.executable, "-m", "kit.cli", "local", "status"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **own_stack.settings.as_env()},
    )
    assert cli.returncode == 3 and "DAMAGED" in cli.stdout, cli.stderr
    assert "Traceback" not in cli.stderr

    restored = own_stack.up(runner=False)
    assert restored.restored["generation"] != damaged_generation.name
    assert keys(items_of(aws, restored.endpoint_url, "detections")) == keys(first["detections"])


def test_an_interrupted_save_leaves_the_last_snapshot_as_it_was(own_stack, aws):
    """A save that died half-way (its staging folder left behind) is ignored and cleaned up."""
    endpoint = own_stack.up(runner=False).endpoint_url
    written = fill(aws, endpoint, "kept", detections=3)
    own_stack.down()
    leftover = own_stack.snapshot_dir / ".staging-crashed"
    (leftover / "tables").mkdir(parents=True)
    (leftover / "tables" / "detections.json").write_text("[")

    endpoint = own_stack.up(runner=False).endpoint_url
    assert keys(items_of(aws, endpoint, "detections")) == keys(written["detections"])
    own_stack.down()
    assert not leftover.exists()


def test_generations_are_pruned_and_unreferenced_bodies_deleted(own_stack, aws):
    endpoint = own_stack.up(runner=False).endpoint_url
    s3 = aws("s3", endpoint)
    s3.put_object(Bucket="lifecycle-bucket", Key="frames/old.jpg", Body=b"old body")
    own_stack.snapshot()
    s3.delete_object(Bucket="lifecycle-bucket", Key="frames/old.jpg")
    s3.put_object(Bucket="lifecycle-bucket", Key="frames/new.jpg", Body=b"new body")
    for _ in range(KEEP_GENERATIONS):
        own_stack.snapshot()

    assert len(generations(own_stack.snapshot_dir)) == KEEP_GENERATIONS
    bodies = {p.read_bytes() for p in (own_stack.snapshot_dir / "objects").glob("*/*")}
    assert bodies == {b"new body"}


def test_expired_items_are_left_out_of_the_snapshot(own_stack, aws):
    """Detections carry a TTL (``expires_at``): what DynamoDB would have deleted is not saved."""
    endpoint = own_stack.up(runner=False).endpoint_url
    dynamodb = aws("dynamodb", endpoint)
    now = int(time.time())
    for sk, expires in (("expired", now - 60), ("live", now + 3600)):
        dynamodb.put_item(
            TableName="lifecycle-detections",
            Item={"camera_id": {"S": "c"}, "sk": {"S": sk}, "expires_at": {"N": str(expires)}},
        )

    counts = own_stack.down()

    assert counts["table:detections"] == 1
    endpoint = own_stack.up(runner=False).endpoint_url
    assert [i["sk"]["S"] for i in items_of(aws, endpoint, "detections")] == ["live"]


def test_a_snapshot_of_an_earlier_version_is_restored(own_stack, aws):
    """Snapshots written before generations existed (files directly in the folder, binary
    values tagged) come back once, then are replaced by generations."""
    folder = own_stack.snapshot_dir
    (folder / "tables").mkdir(parents=True)
    (folder / "queues").mkdir()
    (folder / "bucket" / "frames").mkdir(parents=True)
    (folder / "manifest.json").write_text(json.dumps({"saved_at": "2026-01-01", "counts": {}}))
    (folder / "tables" / "config.json").write_text(
        json.dumps(
            [{"config_id": {"S": "current"}, "blob": {"B": {"__evk_b64__": "AAE="}}}],
        )
    )
    (folder / "queues" / "detections.json").write_text(
        json.dumps([{"body": "queued", "attributes": {}}])
    )
    (folder / "bucket" / "frames" / "x.jpg").write_bytes(b"jpeg")

    endpoint = own_stack.up(runner=False).endpoint_url

    item = aws("dynamodb", endpoint).get_item(
        TableName="lifecycle-config", Key={"config_id": {"S": "current"}}
    )["Item"]
    assert item["blob"] == {"B": b"\x00\x01"}
    assert (
        aws("s3", endpoint).get_object(Bucket="lifecycle-bucket", Key="frames/x.jpg")["Body"].read()
        == b"jpeg"
    )
    sqs = aws("sqs", endpoint)
    url = sqs.get_queue_url(QueueName="lifecycle-detections")["QueueUrl"]
    assert [m["Body"] for m in sqs.receive_message(QueueUrl=url)["Messages"]] == ["queued"]
    own_stack.down()
    assert generations(own_stack.snapshot_dir)[0].name != "legacy"
