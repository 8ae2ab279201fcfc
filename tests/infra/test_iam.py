"""IAM documents, parsed and checked action by action: against the backend description, and
against the AWS calls the code each role runs makes (a static scan of the Lambda code and of the
edge bundle's code, followed from their entry points)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from infra.edge import EDGE_PERMISSIONS
from infra.functions import LAMBDA_SOURCES, LOG_ACTIONS, TOPIC_KEY_ACTIONS
from infra.iam import ResourceArns, parse_document, permission_resources
from infra.policies import wildcard_statements
from kit.core.backend import Permission, SqsTrigger, describe_backend
from kit.package.bundle import BUNDLED_SOURCES
from tests.support.boto_calls import (
    ANY_PREFIX,
    AwsCall,
    calls_in_tree,
    reachable_calls,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
LAMBDA_CODE = [REPO_ROOT / source for source in LAMBDA_SOURCES if (REPO_ROOT / source).is_dir()]
"""The code folders every function's archive holds: calls in shared modules count too."""
PLATFORM_ACTIONS = {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"}
"""What Lambda's SQS poller does with the function's role (not the handler code)."""
EDGE_CODE = [REPO_ROOT / source for source in BUNDLED_SOURCES if (REPO_ROOT / source).is_dir()]
"""The code folders of the edge bundle (edge_app and kit/core): what a device runs."""
EDGE_ENTRY_POINTS = (
    "edge_app.__main__.main",
    "edge_app.panorama.run_application",
)
"""Where the edge runtime starts: ``python -m edge_app`` (Greengrass, container, local device)
and the Panorama code node (``src/app.py`` calls ``run_application``)."""
EDGE_PLATFORM_GRANTS = {
    ("s3:GetObject", "bucket:packages/"),
    ("s3:GetBucketLocation", "bucket"),
}
"""What the Greengrass nucleus does with the token exchange role (download the component's
artefacts), not the edge app's code."""


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


def _edge_calls() -> list[AwsCall]:
    calls = []
    for entry in EDGE_ENTRY_POINTS:
        calls += reachable_calls(EDGE_CODE, entry, repo_root=REPO_ROOT)
    return calls


def test_the_edge_scan_covers_the_bundle_and_follows_the_registry_reader():
    assert {p.relative_to(REPO_ROOT).as_posix() for p in EDGE_CODE} == {"edge_app", "kit/core"}
    found = {(c.action, c.resource, c.location.split(":")[0]) for c in _edge_calls()}
    assert ("s3:ListBucket", "bucket", "kit/core/registry.py") in found, "resolve() lists keys"
    assert ("s3:GetObject", ANY_PREFIX, "kit/core/registry.py") in found, "download_file"
    assert ("sqs:SendMessage", None, "edge_app/publisher.py") in found


def test_edge_roles_grant_what_the_edge_runtime_calls_and_only_that(program_run):
    calls = _edge_calls()
    missing = sorted(
        {
            f"{c.action} on {c.resource} ({c.location})"
            for c in calls
            if not _covered(c, EDGE_PERMISSIONS)
        }
    )
    assert not missing, f"the edge runtime calls what its roles do not allow: {missing}"
    unused = [
        f"{action} on {permission.resource}"
        for permission in EDGE_PERMISSIONS
        for action in permission.actions
        if (action, permission.resource) not in EDGE_PLATFORM_GRANTS
        and not any(_covered(c, [Permission((action,), permission.resource)]) for c in calls)
    ]
    assert not unused, f"the edge roles grant what no edge code calls: {unused}"
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
    assert ("s3:ListBucket", arns.bucket) in expected, "resolve() of an alias lists the keys"
    assert ("s3:PutObject", f"{arns.bucket}/frames/*") in expected
    assert ("s3:GetObject", f"{arns.bucket}/models/*") in expected
    assert ("sqs:SendMessage", arns.queues["detections"]) in expected


def test_a_new_edge_call_without_a_grant_is_found(tmp_path):
    package = tmp_path / "edge_app"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "uploader.py").write_text(
        "def upload(s3, settings, path):\n"
        "    s3.upload_file(str(path), settings.resources.bucket, 'frames/x.jpg')\n"
        "def purge(s3, settings):\n"
        "    s3.delete_object(Bucket=settings.resources.bucket, Key='frames/x.jpg')\n"
    )
    (package / "__main__.py").write_text(
        "from edge_app.uploader import purge, upload\n\n"
        "def main():\n    upload(None, None, 'p')\n    purge(None, None)\n"
    )
    calls = reachable_calls(package, "edge_app.__main__.main", repo_root=tmp_path)
    assert {(c.action, c.resource) for c in calls} == {
        ("s3:PutObject", ANY_PREFIX),
        ("s3:DeleteObject", ANY_PREFIX),
    }
    uncovered = [c.action for c in calls if not _covered(c, EDGE_PERMISSIONS)]
    assert uncovered == ["s3:DeleteObject"]


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


def test_every_method_the_scan_knows_is_an_operation_of_a_botocore_service_model():
    import botocore.session
    from botocore import xform_name

    from tests.support.boto_calls import API_METHODS, TRANSFER_METHODS

    session = botocore.session.get_session()
    services = ("dynamodb", "sqs", "sns", "s3", "greengrassv2", "iot")
    operations = {
        xform_name(name): service
        for service in services
        for name in session.get_service_model(service).operation_names
    }
    unknown = sorted(set(API_METHODS) - set(operations) - TRANSFER_METHODS)
    assert not unknown, f"not an operation of {services} in botocore's models: {unknown}"
    prefixes = {"greengrassv2": "greengrass"}
    for method, actions in API_METHODS.items():
        service = operations.get(method)
        if service is not None:
            assert actions[0].split(":")[0] == prefixes.get(service, service), method
