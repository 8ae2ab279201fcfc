"""The local AWS target against a real moto server process, through plain boto3."""

from __future__ import annotations

import json
import subprocess
import sys

import boto3
import psutil
import pytest

from kit.core.settings import load_settings
from kit.local import LocalStack, LocalStackError
from tests.support.wait import DEFAULT_TIMEOUT_S, process_tree, wait_until_exited


def plain_client(service, endpoint):
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name="eu-west-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )


def test_up_provisions_every_resource_of_the_backend(own_stack):
    status = own_stack.up()
    assert status.running and status.endpoint_url.startswith("http://127.0.0.1:")
    s3 = plain_client("s3", status.endpoint_url)
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["lifecycle-bucket"]
    sqs = plain_client("sqs", status.endpoint_url)
    queues = sorted(u.rsplit("/", 1)[-1] for u in sqs.list_queues()["QueueUrls"])
    assert queues == ["lifecycle-alerts-inbox", "lifecycle-detections", "lifecycle-detections-dlq"]
    url = sqs.get_queue_url(QueueName="lifecycle-detections")["QueueUrl"]
    redrive = json.loads(
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"])["Attributes"][
            "RedrivePolicy"
        ]
    )
    assert redrive["deadLetterTargetArn"].endswith(":lifecycle-detections-dlq")
    assert int(redrive["maxReceiveCount"]) == 5
    dynamodb = plain_client("dynamodb", status.endpoint_url)
    tables = dynamodb.list_tables()["TableNames"]
    assert {t.removeprefix("lifecycle-") for t in tables} == {
        "alerts",
        "audit",
        "cameras",
        "config",
        "detections",
        "devices",
        "idempotency",
    }
    ttl = dynamodb.describe_time_to_live(TableName="lifecycle-detections")["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}
    indexes = dynamodb.describe_table(TableName="lifecycle-alerts")["Table"][
        "GlobalSecondaryIndexes"
    ]
    assert sorted(i["IndexName"] for i in indexes) == ["by-camera", "by-state", "recent"]
    sns = plain_client("sns", status.endpoint_url)
    topic = sns.list_topics()["Topics"][0]["TopicArn"]
    assert topic.endswith(":lifecycle-alerts")
    subs = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    assert [(s["Protocol"], s["Endpoint"].rsplit(":", 1)[-1]) for s in subs] == [
        ("sqs", "lifecycle-alerts-inbox")
    ]


def test_up_twice_reuses_the_server_and_duplicates_nothing(own_stack):
    first = own_stack.up()
    second = own_stack.up()
    assert second.services["moto"]["pid"] == first.services["moto"]["pid"]
    assert second.resources == first.resources
    sns = plain_client("sns", second.endpoint_url)
    topic = sns.list_topics()["Topics"][0]["TopicArn"]
    assert len(sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]) == 1


def test_data_survives_down_and_up(own_stack):
    endpoint = own_stack.up(runner=False).endpoint_url
    settings = own_stack.settings
    plain_client("s3", endpoint).put_object(
        Bucket="lifecycle-bucket", Key="frames/d/c/x.jpg", Body=b"\xff\xd8jpeg"
    )
    plain_client("dynamodb", endpoint).put_item(
        TableName="lifecycle-config",
        Item={"config_id": {"S": "current"}, "revision": {"N": "4"}, "blob": {"B": b"\x00\x01"}},
    )
    sqs = plain_client("sqs", endpoint)
    url = sqs.get_queue_url(QueueName=settings.resources.detections_queue)["QueueUrl"]
    for body in ("first", "second"):
        sqs.send_message(QueueUrl=url, MessageBody=body)

    counts = own_stack.down()
    assert counts["bucket"] == 1 and counts["table:config"] == 1 and counts["queue:detections"] == 2
    assert not own_stack.status().running

    endpoint = own_stack.up(runner=False).endpoint_url
    body = (
        plain_client("s3", endpoint)
        .get_object(Bucket="lifecycle-bucket", Key="frames/d/c/x.jpg")["Body"]
        .read()
    )
    assert body == b"\xff\xd8jpeg"
    item = plain_client("dynamodb", endpoint).get_item(
        TableName="lifecycle-config", Key={"config_id": {"S": "current"}}
    )
    assert item["Item"]["revision"] == {"N": "4"} and item["Item"]["blob"] == {"B": b"\x00\x01"}
    sqs = plain_client("sqs", endpoint)
    url = sqs.get_queue_url(QueueName=settings.resources.detections_queue)["QueueUrl"]
    received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert sorted(m["Body"] for m in received) == ["first", "second"]


def test_down_leaves_no_process_behind(own_stack):
    services = own_stack.up().services
    assert set(services) == {"moto", "runner"} and all(s["alive"] for s in services.values())
    started = [process for s in services.values() for process in process_tree(s["pid"])]
    own_stack.down()
    wait_until_exited(started, what="the stack's processes")
    assert not own_stack.state_file.exists()
    own_stack.down()  # a second down is harmless


def test_up_after_the_server_died_starts_a_new_one(own_stack):
    first = own_stack.up()
    moto = psutil.Process(first.services["moto"]["pid"])
    moto.kill()
    moto.wait(DEFAULT_TIMEOUT_S)
    second = own_stack.up()
    assert second.running and second.services["moto"]["pid"] != first.services["moto"]["pid"]


def test_port_taken_by_another_program_gives_a_clear_error(tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        stack = LocalStack(load_settings(state_dir=tmp_path, local_port=port))
        with pytest.raises(LocalStackError, match=f"port {port} on 127.0.0.1 is already in use"):
            stack.up()


def test_aws_target_is_refused(tmp_path):
    with pytest.raises(LocalStackError, match="target 'local'"):
        LocalStack(load_settings(state_dir=tmp_path, target="aws"))


def test_cli_up_status_down(tmp_path):
    env = {"EVK_STATE_DIR": str(tmp_path), "EVK_LOCAL_PORT": "0", "EVK_PREFIX": "clitest"}
    run = lambda *args: subprocess.run(  # noqa: E731
        [sys.executable, "-m", "kit.cli", "local", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**__import__("os").environ, **env},
    )
    try:
        up = run("up")
        assert up.returncode == 0, up.stderr
        endpoint = up.stdout.strip().splitlines()[-1].removeprefix("endpoint: ")
        assert "clitest-bucket" in [
            b["Name"] for b in plain_client("s3", endpoint).list_buckets()["Buckets"]
        ]
        status = run("status", "--json")
        assert status.returncode == 0 and json.loads(status.stdout)["running"] is True
    finally:
        down = run("down")
    assert down.returncode == 0 and "local stack stopped" in down.stdout
    assert run("status").returncode == 3


def test_messages_in_flight_at_down_are_kept(own_stack):
    """GIVEN a message a consumer received but never deleted, WHEN the stack goes down and up,
    THEN the message is still there (a snapshot loses nothing)."""
    endpoint = own_stack.up(runner=False).endpoint_url
    sqs = plain_client("sqs", endpoint)
    url = sqs.get_queue_url(QueueName=own_stack.settings.resources.detections_queue)["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="in-flight")
    assert (
        sqs.receive_message(QueueUrl=url, VisibilityTimeout=600)["Messages"][0]["Body"]
        == "in-flight"
    )
    assert own_stack.down()["queue:detections"] == 1
    sqs = plain_client("sqs", own_stack.up(runner=False).endpoint_url)
    url = sqs.get_queue_url(QueueName=own_stack.settings.resources.detections_queue)["QueueUrl"]
    assert [m["Body"] for m in sqs.receive_message(QueueUrl=url)["Messages"]] == ["in-flight"]


def test_live_snapshot_keeps_the_queue_as_it_was(own_stack):
    endpoint = own_stack.up(runner=False).endpoint_url
    sqs = plain_client("sqs", endpoint)
    url = sqs.get_queue_url(QueueName=own_stack.settings.resources.detections_queue)["QueueUrl"]
    for body in ("a", "b", "c"):
        sqs.send_message(QueueUrl=url, MessageBody=body)
    assert own_stack.snapshot()["queue:detections"] == 3
    bodies = []
    while batch := sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=60
    ).get("Messages"):
        bodies += [m["Body"] for m in batch]
    assert sorted(bodies) == ["a", "b", "c"]


def test_down_works_after_a_large_upload(own_stack, tmp_path):
    """moto's state dump fails once a large (multipart) object is in S3: down still snapshots."""
    endpoint = own_stack.up(runner=False).endpoint_url
    big = tmp_path / "big.bin"
    big.write_bytes(b"\0" * (12 * 1024 * 1024))
    plain_client("s3", endpoint).upload_file(
        str(big), "lifecycle-bucket", "models/big/1/model.onnx"
    )
    counts = own_stack.down()
    assert counts["bucket"] == 1 and not own_stack.status().running
