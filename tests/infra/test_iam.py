"""IAM documents, parsed and checked action by action: against the backend description, and
against the AWS calls the code each role runs makes (a static scan of lambdas/ and edge_app/)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from infra.edge import EDGE_PERMISSIONS
from infra.functions import LAMBDA_SOURCES, LOG_ACTIONS, TOPIC_KEY_ACTIONS
from infra.iam import ResourceArns, parse_document, permission_resources
from infra.policies import wildcard_statements
from kit.core.backend import Permission, SqsTrigger, describe_backend
from tests.support.boto_calls import (
    ANY_PREFIX,
    AwsCall,
    calls_in_package,
    calls_in_tree,
    reachable_calls,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
LAMBDA_CODE = [REPO_ROOT / source for source in LAMBDA_SOURCES if (REPO_ROOT / source).is_dir()]
"""The code folders every function's archive holds: calls in shared modules count too."""
PLATFORM_ACTIONS = {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"}
"""What Lambda's SQS poller does with the function's role (not the handler code)."""


def _spec(run):
    return describe_backend(run.config.settings())


def _arns(run) -> ResourceArns:
    spec = _spec(run)
    region, account = run.config.region, "123456789012"
    return ResourceArns(
        bucket=f"arn:aws:s3:::{spec.bucket.name}",
        tables={
            t.logical: f"arn:aws:dynamodb:{region}:{account}:table/{t.name}" for t in spec.tables
        },
        queues={
            q.logical: f"arn:aws:sqs:{region}:{account}:{q.name}"
            for q in spec.queues
            if not q.local_only
        },
        topics={t.logical: f"arn:aws:sns:{region}:{account}:{t.name}" for t in spec.topics},
        indexed_tables=frozenset(t.logical for t in spec.tables if t.indexes),
    )


def _granted(statements) -> set[tuple[str, str]]:
    return {
        (a, r)
        for s in statements
        if s["Effect"] == "Allow"
        for a in s["Action"]
        for r in s["Resource"]
    }


def test_each_function_role_is_exactly_its_description_permissions(program_run):
    spec, arns = _spec(program_run), _arns(program_run)
    key_arn = program_run.one("aws:sns/topic:Topic").inputs["kmsMasterKeyId"]
    for function in spec.functions:
        statements = parse_document(program_run.documents[f"function:{function.logical}"])
        expected = {
            (action, resource)
            for permission in function.permissions
            for action in permission.actions
            for resource in permission_resources(permission, arns)
        }
        log_group = (
            f"arn:aws:logs:{program_run.config.region}:123456789012:log-group:"
            f"/aws/lambda/{program_run.config.prefix}-{function.logical}:*"
        )
        expected |= {(action, log_group) for action in LOG_ACTIONS}
        if any("sns:Publish" in p.actions for p in function.permissions):
            expected |= {(action, key_arn) for action in TOPIC_KEY_ACTIONS}
        assert _granted(statements) == expected, function.logical
        assert all("*" not in s["Resource"] for s in statements), function.logical
        assert not [s for s in statements if s["Effect"] != "Allow" or "NotAction" in s]


def test_tables_with_indexes_grant_their_indexes_and_bucket_prefixes_are_object_arns(program_run):
    arns = _arns(program_run)
    assert permission_resources(Permission(("dynamodb:Query",), "table:alerts"), arns) == [
        arns.tables["alerts"],
        f"{arns.tables['alerts']}/index/*",
    ]
    assert permission_resources(Permission(("dynamodb:Query",), "table:config"), arns) == [
        arns.tables["config"]
    ]
    assert permission_resources(Permission(("s3:GetObject",), "bucket:models/"), arns) == [
        f"{arns.bucket}/models/*"
    ]
    assert permission_resources(Permission(("s3:ListBucket",), "bucket"), arns) == [arns.bucket]
    with pytest.raises(ValueError, match="no table named 'nope'; known: alerts, audit"):
        permission_resources(Permission(("dynamodb:GetItem",), "table:nope"), arns)
    with pytest.raises(ValueError, match="unknown kind 'stream'"):
        permission_resources(Permission(("kinesis:PutRecord",), "stream:x"), arns)


def _covered(call: AwsCall, permissions) -> bool:
    for permission in permissions:
        if call.action not in permission.actions:
            continue
        if call.resource is None or call.resource == permission.resource:
            return True
        if call.resource == ANY_PREFIX and permission.resource.startswith("bucket:"):
            return True
    return False


def _handler_file(handler: str) -> Path:
    return REPO_ROOT / (handler.rpartition(".")[0].replace(".", "/") + ".py")


@pytest.mark.parametrize("logical", ["processor", "control-api", "health-check"])
def test_every_aws_call_the_handler_makes_is_granted(program_run, logical):
    function = _spec(program_run).function(logical)
    assert _handler_file(function.handler).exists(), f"no handler module for {function.handler}"
    calls = reachable_calls(LAMBDA_CODE, function.handler, repo_root=REPO_ROOT)
    assert calls, f"the scan found no AWS call reachable from {function.handler}"
    missing = sorted(
        {
            f"{c.action} on {c.resource or 'some resource'} ({c.location})"
            for c in calls
            if not _covered(c, function.permissions)
        }
    )
    assert not missing, f"{logical} calls what its role does not allow: {missing}"


@pytest.mark.parametrize("logical", ["processor", "control-api", "health-check"])
def test_every_granted_action_is_used_by_the_handler_or_the_platform(program_run, logical):
    function = _spec(program_run).function(logical)
    assert _handler_file(function.handler).exists(), f"no handler module for {function.handler}"
    calls = reachable_calls(LAMBDA_CODE, function.handler, repo_root=REPO_ROOT)
    unused = []
    for permission in function.permissions:
        for action in permission.actions:
            if (
                isinstance(function.trigger, SqsTrigger)
                and permission.resource == f"queue:{function.trigger.queue}"
                and action in PLATFORM_ACTIONS
            ):
                continue
            used = any(
                c.action == action
                and (
                    c.resource in (None, permission.resource)
                    or (c.resource == ANY_PREFIX and permission.resource.startswith("bucket:"))
                )
                for c in calls
            )
            if not used:
                unused.append(f"{action} on {permission.resource}")
    assert not unused, f"{logical}'s role grants what no reachable code calls: {unused}"


def test_edge_roles_grant_what_the_edge_app_calls_and_only_that(program_run):
    calls = calls_in_package(REPO_ROOT / "edge_app", repo_root=REPO_ROOT)
    missing = sorted(
        {
            f"{c.action} on {c.resource} ({c.location})"
            for c in calls
            if not _covered(c, EDGE_PERMISSIONS)
        }
    )
    assert not missing, f"the edge app calls what its roles do not allow: {missing}"
    arns = _arns(program_run)
    expected = {
        (action, resource)
        for permission in EDGE_PERMISSIONS
        for action in permission.actions
        for resource in permission_resources(permission, arns)
    }
    panorama = _granted(parse_document(program_run.documents["edge:panorama"]))
    assert panorama == expected
    greengrass = _granted(parse_document(program_run.documents["edge:greengrass"]))
    assert expected <= greengrass
    assert {a for a, _ in greengrass - expected} == {
        "logs:CreateLogGroup",
        "logs:CreateLogStream",
        "logs:DescribeLogStreams",
        "logs:PutLogEvents",
    }
    assert ("s3:PutObject", f"{arns.bucket}/frames/*") in expected
    assert ("s3:GetObject", f"{arns.bucket}/models/*") in expected
    assert ("sqs:SendMessage", arns.queues["detections"]) in expected


def test_dashboard_task_may_only_invoke_the_control_api(full_run):
    statements = parse_document(full_run.documents["dashboard:task"])
    api = full_run.one("aws:apigatewayv2/api:Api")
    assert len(statements) == 1
    assert statements[0]["Action"] == ["execute-api:Invoke"]
    [resource] = statements[0]["Resource"]
    assert resource.startswith(f"arn:aws:execute-api:{full_run.config.region}:123456789012:")
    assert resource.endswith("/*") and api.name  # the API of this stack, every stage and route


def test_no_document_of_the_stack_allows_everything(program_run, full_run):
    for run in (program_run, full_run):
        for name, document in run.documents.items():
            assert not wildcard_statements(document), name


def test_scan_reads_boto3_calls_not_methods_that_share_their_names():
    code = """
sqs.send_message(QueueUrl=url, MessageBody=body)
self.publisher.publish(payload)             # our own method, snake_case arguments
sns.publish(TopicArn=arn, Message=text)
for page in client.get_paginator("scan").paginate(TableName=settings.resources.cameras_table):
    pass
s3.generate_presigned_url("get_object", Params={"Bucket": settings.resources.bucket, "Key": key})
client.transact_write_items(TransactItems=[{"Put": {}}, {"ConditionCheck": {}}])
layer = DynamoDBPersistenceLayer(table_name=settings.resources.idempotency_table)
work = idempotent_function(data_keyword_argument="payload", persistence_store=layer)(work)
"""
    calls = {(c.action, c.resource) for c in calls_in_tree(ast.parse(code), "x.py")}
    assert calls == {
        ("sqs:SendMessage", None),
        ("sns:Publish", None),
        ("dynamodb:Scan", "table:cameras"),
        ("s3:GetObject", ANY_PREFIX),
        ("dynamodb:PutItem", None),
        ("dynamodb:ConditionCheckItem", None),
        ("dynamodb:GetItem", "table:idempotency"),
        ("dynamodb:PutItem", "table:idempotency"),
        ("dynamodb:UpdateItem", "table:idempotency"),
        ("dynamodb:DeleteItem", "table:idempotency"),
    }


def test_reachability_follows_names_from_the_entry(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "store.py").write_text(
        "class Store:\n"
        "    def __init__(self, client):\n        self.client = client\n"
        "    def save(self):\n        self.client.put_item(TableName=names.alerts_table, Item={})\n"
        "    def audit(self):\n        self.client.put_item(TableName=names.audit_table, Item={})\n"
    )
    (package / "handler.py").write_text(
        "from pkg.store import Store\n\ndef handler(event, context):\n    Store(None).save()\n"
    )
    calls = reachable_calls(package, "pkg.handler.handler", repo_root=tmp_path)
    assert [(c.action, c.resource) for c in calls] == [("dynamodb:PutItem", "table:alerts")]
    with pytest.raises(ValueError, match="defines no function main"):
        reachable_calls(package, "pkg.handler.main", repo_root=tmp_path)
