"""The AWS stack and ``kit local up`` build the same backend: same queues, tables, keys, topic.

The local side is :func:`kit.local.provision.provision` (what ``kit local up`` runs) against a
moto server; the AWS side is the Pulumi program under mocks. Both start from
:func:`kit.core.backend.describe_backend`, and this test compares what each actually creates.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from moto.server import ThreadedMotoServer

from infra.config import StackConfig
from kit.core.backend import describe_backend
from kit.core.settings import load_settings
from kit.local.provision import provision

PREFIX = "evkagree"
REGION = "eu-west-1"


@pytest.fixture(scope="module")
def local_settings(tmp_path_factory):
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    settings = load_settings(
        environ={},
        config_file=None,
        project_root=Path(tmp_path_factory.mktemp("agree")),
        prefix=PREFIX,
        region=REGION,
        target="local",
        endpoint_url=f"http://{host}:{port}",
    )
    provision(describe_backend(settings), settings)
    yield settings
    server.stop()


@pytest.fixture(scope="module")
def aws_run(run_stack):
    # No name suffix: the local stack names its bucket after the prefix alone.
    return run_stack(StackConfig(prefix=PREFIX, region=REGION, name_suffix=""))


def test_same_queues_with_the_same_redrive_and_timeouts(local_settings, aws_run):
    sqs = local_settings.client("sqs")
    urls = sqs.list_queues(QueueNamePrefix=PREFIX).get("QueueUrls", [])
    local = {}
    for url in urls:
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        local[url.rsplit("/", 1)[1]] = attributes
    spec = describe_backend(local_settings)
    local_only = {q.name for q in spec.queues if q.local_only}
    aws = {q.inputs["name"]: q.inputs for q in aws_run.of_type("aws:sqs/queue:Queue")}
    assert set(aws) == set(local) - local_only
    for name, queue in aws.items():
        attributes = local[name]
        if "redrivePolicy" in queue:
            aws_redrive = json.loads(queue["redrivePolicy"])
            local_redrive = json.loads(attributes["RedrivePolicy"])
            assert (
                aws_redrive["deadLetterTargetArn"].rsplit(":", 1)[1]
                == local_redrive["deadLetterTargetArn"].rsplit(":", 1)[1]
            )
            assert int(aws_redrive["maxReceiveCount"]) == int(local_redrive["maxReceiveCount"])
            assert queue["visibilityTimeoutSeconds"] == int(attributes["VisibilityTimeout"])
            assert queue["messageRetentionSeconds"] == int(attributes["MessageRetentionPeriod"])
        else:
            assert "RedrivePolicy" not in attributes
            assert queue["messageRetentionSeconds"] == int(attributes["MessageRetentionPeriod"])


def test_same_tables_keys_indexes_and_ttl(local_settings, aws_run):
    dynamodb = local_settings.client("dynamodb")
    aws = {t.inputs["name"]: t.inputs for t in aws_run.of_type("aws:dynamodb/table:Table")}
    local_names = set(dynamodb.list_tables()["TableNames"])
    assert set(aws) == {n for n in local_names if n.startswith(f"{PREFIX}-")}
    for name, table in aws.items():
        described = dynamodb.describe_table(TableName=name)["Table"]
        keys = {k["KeyType"]: k["AttributeName"] for k in described["KeySchema"]}
        assert keys.get("HASH") == table["hashKey"] and keys.get("RANGE") == table.get("rangeKey")
        assert {
            a["AttributeName"]: a["AttributeType"] for a in described["AttributeDefinitions"]
        } == {a["name"]: a["type"] for a in table["attributes"]}
        assert described["BillingModeSummary"]["BillingMode"] == table["billingMode"]
        local_indexes = {
            index["IndexName"]: (
                [(k["AttributeName"], k["KeyType"]) for k in index["KeySchema"]],
                index["Projection"]["ProjectionType"],
            )
            for index in described.get("GlobalSecondaryIndexes", [])
        }
        aws_indexes = {
            index["name"]: (
                [(k["attributeName"], k["keyType"]) for k in index["keySchemas"]],
                index["projectionType"],
            )
            for index in table.get("globalSecondaryIndexes", [])
        }
        assert aws_indexes == local_indexes, name
        ttl = dynamodb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
        if "ttl" in table:
            assert ttl["TimeToLiveStatus"] == "ENABLED"
            assert ttl["AttributeName"] == table["ttl"]["attributeName"]
        else:
            assert ttl["TimeToLiveStatus"] == "DISABLED"


def test_same_topic_and_bucket(local_settings, aws_run):
    topics = {
        t["TopicArn"].rsplit(":", 1)[1]
        for t in local_settings.client("sns").list_topics()["Topics"]
    }
    [aws_topic] = aws_run.of_type("aws:sns/topic:Topic")
    assert aws_topic.inputs["name"] in topics
    assert {t for t in topics if t.startswith(f"{PREFIX}-")} == {aws_topic.inputs["name"]}
    buckets = {b["Name"] for b in local_settings.client("s3").list_buckets()["Buckets"]}
    [aws_bucket] = aws_run.of_type("aws:s3/bucket:Bucket")
    assert aws_bucket.inputs["bucket"] in buckets
