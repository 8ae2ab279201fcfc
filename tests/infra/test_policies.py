"""The guardrails pass on the program and catch deliberately bad resources."""

from __future__ import annotations

import ast
import copy
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from infra.policies import (
    GUARDRAILS,
    check_all,
    dlq_on_every_queue,
    encryption_everywhere,
    jwt_on_every_route,
    no_public_buckets,
    no_wildcard_admin,
    pitr_on_every_table,
    violations,
)

PACK_DIR = Path(__file__).resolve().parents[2] / "infra" / "policy_pack"


def _resource(resource_type: str, **props):
    return SimpleNamespace(
        resource_type=resource_type, props=props, urn=f"urn:{resource_type}", name="bad"
    )


def _with(resources, token, change, **match):
    """A copy of ``resources`` where ``change(props)`` edits the matching resource's props."""
    changed = copy.deepcopy(resources)
    hits = [
        r
        for r in changed
        if r.type == token and all(r.inputs.get(k) == v for k, v in match.items())
    ]
    assert hits, f"no {token} with {match}"
    change(hits[0].inputs)
    return changed


def _without(resources, token):
    return [r for r in resources if r.type != token]


def test_the_program_passes_every_guardrail(program_run, full_run):
    for run in (program_run, full_run):
        assert check_all(run.resources) == {g.name: [] for g in GUARDRAILS}


BUCKET_TOKEN = "aws:s3/bucket:Bucket"
BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
SSE = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
POLICY = "aws:s3/bucketPolicy:BucketPolicy"


def test_public_buckets_are_caught(program_run):
    resources = program_run.resources
    bucket = program_run.one("aws:s3/bucket:Bucket").inputs["bucket"]
    off = _with(resources, BLOCK, lambda p: p.update(blockPublicPolicy=False))
    assert violations(no_public_buckets, off) == [
        f"public access block of bucket {bucket} leaves blockPublicPolicy off: set all four to true"
    ]
    assert (
        "has no public access block" in violations(no_public_buckets, _without(resources, BLOCK))[0]
    )
    acl = _with(resources, BUCKET_TOKEN, lambda p: p.update(acl="public-read"))
    assert violations(no_public_buckets, acl) == [f"bucket {bucket} has the public ACL public-read"]
    open_policy = json.dumps(
        {
            "Statement": [
                {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "*"}
            ]
        }
    )
    opened = _with(resources, POLICY, lambda p: p.update(policy=open_policy))
    assert "allows ['s3:GetObject'] to anyone" in violations(no_public_buckets, opened)[0]
    acl_resource = [
        *resources,
        _resource("aws:s3/bucketAcl:BucketAcl", bucket=bucket, acl="public-read-write"),
    ]
    assert violations(no_public_buckets, acl_resource) == [
        f"bucket {bucket} gets the public ACL public-read-write"
    ]


def test_missing_encryption_is_caught(program_run, full_run):
    resources = program_run.resources
    assert (
        "has no default encryption"
        in violations(encryption_everywhere, _without(resources, SSE))[0]
    )
    assert (
        "accepts requests without TLS"
        in violations(encryption_everywhere, _without(resources, POLICY))[0]
    )
    queue = _with(
        resources,
        "aws:sqs/queue:Queue",
        lambda p: p.pop("sqsManagedSseEnabled"),
        name="evktest-detections",
    )
    assert violations(encryption_everywhere, queue) == [
        "queue evktest-detections is not encrypted: set sqsManagedSseEnabled or kmsMasterKeyId"
    ]
    topic = _with(resources, "aws:sns/topic:Topic", lambda p: p.pop("kmsMasterKeyId"))
    assert violations(encryption_everywhere, topic) == [
        "topic evktest-alerts is not encrypted: set kmsMasterKeyId"
    ]
    table = _with(
        resources,
        "aws:dynamodb/table:Table",
        lambda p: p.pop("serverSideEncryption"),
        name="evktest-audit",
    )
    assert (
        "table evktest-audit does not use a KMS key" in violations(encryption_everywhere, table)[0]
    )
    plain = _with(
        full_run.resources,
        "aws:lb/listener:Listener",
        lambda p: p.update(
            protocol="HTTP", defaultActions=[{"type": "forward", "targetGroupArn": "tg"}]
        ),
        port=80,
    )
    assert violations(encryption_everywhere, plain) == [
        "load balancer listener on port 80 serves plain HTTP: use HTTPS or only redirect to HTTPS"
    ]


@pytest.mark.parametrize(
    ("statement", "caught"),
    [
        ({"Effect": "Allow", "Action": "*", "Resource": "*"}, True),
        ({"Effect": "Allow", "Action": ["s3:*"], "Resource": ["*"]}, True),
        ({"Effect": "Allow", "NotAction": ["iam:*"], "Resource": ["*"]}, True),
        (
            {
                "Effect": "Allow",
                "Action": ["dynamodb:*"],
                "NotResource": ["arn:aws:dynamodb:::table/x"],
            },
            True,
        ),
        ({"Effect": "Allow", "Action": ["s3:*"], "Resource": ["arn:aws:s3:::evk-bucket/*"]}, False),
        ({"Effect": "Allow", "Action": ["ec2:Describe*"], "Resource": ["*"]}, False),
        ({"Effect": "Deny", "Action": "*", "Resource": "*"}, False),
    ],
)
def test_wildcard_actions_on_wildcard_resources_are_caught(program_run, statement, caught):
    document = json.dumps({"Version": "2012-10-17", "Statement": [statement]})
    bad = _with(
        program_run.resources,
        "aws:iam/rolePolicy:RolePolicy",
        lambda p: p.update(policy=document),
        name="evktest-processor-least-privilege",
    )
    found = violations(no_wildcard_admin, bad)
    assert bool(found) is caught, found


def test_administrator_managed_policies_are_caught(program_run):
    attach = _resource(
        "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
        role="evktest-processor-role",
        policyArn="arn:aws:iam::aws:policy/AdministratorAccess",
    )
    assert violations(no_wildcard_admin, [*program_run.resources, attach]) == [
        "aws:iam/rolePolicyAttachment:RolePolicyAttachment evktest-processor-role attaches "
        "arn:aws:iam::aws:policy/AdministratorAccess"
    ]


def test_a_queue_without_dlq_is_caught_but_dead_letter_queues_need_none(program_run):
    resources = program_run.resources
    bad = _with(
        resources,
        "aws:sqs/queue:Queue",
        lambda p: p.pop("redrivePolicy"),
        name="evktest-detections",
    )
    assert violations(dlq_on_every_queue, bad) == [
        "queue evktest-detections has no dead-letter queue: set redrivePolicy "
        "(or tag it evk:queue-role=dead-letter if it is one)"
    ]
    untagged = _with(
        resources, "aws:sqs/queue:Queue", lambda p: p.pop("tags"), name="evktest-detections-dlq"
    )
    assert (
        "queue evktest-detections-dlq has no dead-letter queue"
        in violations(dlq_on_every_queue, untagged)[0]
    )


def test_a_table_without_pitr_is_caught(program_run):
    bad = _with(
        program_run.resources,
        "aws:dynamodb/table:Table",
        lambda p: p.update(pointInTimeRecovery={"enabled": False}),
        name="evktest-config",
    )
    assert violations(pitr_on_every_table, bad) == [
        "table evktest-config has no point-in-time recovery: set pointInTimeRecovery.enabled = true"
    ]


def test_an_open_route_is_caught_but_the_health_route_may_be_open(program_run):
    resources = program_run.resources
    route = "aws:apigatewayv2/route:Route"
    bad = _with(
        resources,
        route,
        lambda p: (p.update(authorizationType="NONE"), p.pop("authorizerId")),
        routeKey="PUT /config",
    )
    assert violations(jwt_on_every_route, bad) == [
        "route PUT /config is open (authorization 'NONE'): only GET /health may skip the JWT authorizer"
    ]
    health = [r for r in resources if r.type == route and r.inputs["routeKey"] == "GET /health"]
    assert health and health[0].inputs["authorizationType"] == "NONE"
    assert violations(jwt_on_every_route, resources) == []


def test_the_policy_pack_wraps_every_guardrail_without_being_imported():
    pack = ast.parse((PACK_DIR / "__main__.py").read_text())
    names = {node.id for node in ast.walk(pack) if isinstance(node, ast.Name)}
    assert {"PolicyPack", "StackValidationPolicy", "GUARDRAILS"} <= names
    settings = yaml.safe_load((PACK_DIR / "PulumiPolicy.yaml").read_text())
    assert settings["runtime"]["name"] == "python"
    assert (PACK_DIR / settings["runtime"]["options"]["virtualenv"]).resolve() == (
        PACK_DIR.parents[1] / ".venv"
    ).resolve()
    assert len({g.name for g in GUARDRAILS}) == 6
