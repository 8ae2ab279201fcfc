"""Who may deploy and how far the stack's roles reach: no ``iam:*`` or ``*`` anywhere, the
permissions boundary on every role the stack creates (and each role within it), the deploy role
making roles only with it, the edge job's calls granted, a read-only preview role, the GitHub
roles' files; the SageMaker execution role; no local bearer token in any cloud resource."""

from __future__ import annotations

import json
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import pytest

from infra.config import StackConfig
from infra.deploy_access import (
    MANAGED_POLICY_MAX_CHARS,
    ROLE_MANAGEMENT_ACTIONS,
    StackAccount,
    boundary_statements,
    deploy_role_statements,
    edge_role_statements,
    main,
    policy_size,
    preview_role_statements,
)
from infra.iam import document, parse_document
from infra.policies import POLICY_DOCUMENT_PROPS
from kit.aws import DLC_REGISTRIES, SAGEMAKER_READ_PREFIXES, SAGEMAKER_WRITE_PREFIXES
from kit.core.settings import Settings
from tests.support.boto_calls import AwsCall, reachable_calls

REPO_ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "123456789012"
INLINE_POLICIES_MAX_CHARS = 10240
"""IAM's limit on all inline policies of one role together (whitespace not counted)."""
EDGE_JOB_CODE = [
    REPO_ROOT / path
    for path in ("kit/__init__.py", "kit/core", "kit/deploy", "kit/package", "kit/registry.py")
]
"""What ``kit deploy --target greengrass`` runs (the CLI's greengrass branch)."""
EDGE_JOB_ENTRIES = (
    "kit.deploy.greengrass.deploy_greengrass",
    "kit.deploy.greengrass.wait_for_deployment",
)
READ_VERBS = ("Describe", "Get", "List")


def _stack_documents(run) -> dict[str, Any]:
    """Every policy document the program registered: role policies, managed policies, bucket,
    key and IoT policies, roles' trust policies."""
    found: dict[str, Any] = {}
    for resource in run.resources:
        key = POLICY_DOCUMENT_PROPS.get(resource.type)
        if key and resource.inputs.get(key):
            found[f"{resource.type} {resource.name}"] = resource.inputs[key]
        if resource.type == "aws:iam/role:Role":
            found[f"trust {resource.name}"] = resource.inputs["assumeRolePolicy"]
    return found


def _allows_everything_or_iam(policy: Any) -> list[dict[str, Any]]:
    return [
        item
        for item in parse_document(policy)
        if item.get("Effect") == "Allow"
        and (
            "NotAction" in item
            or any(action in ("*", "iam:*") for action in item.get("Action", []))
            or (
                "*" in item.get("Resource", [])
                and any(action.endswith(":*") for action in item.get("Action", []))
            )
        )
    ]


def _github_documents(tmp_path: Path) -> dict[str, str]:
    main(
        [
            "--repository",
            "acme/edge-vision-kit",
            "--prefix",
            "evk-acme",
            "--account",
            ACCOUNT,
            "--region",
            "eu-west-1",
            "--bucket",
            "evk-acme-bucket-1a2b3c4d",
            "--backend-url",
            "s3://evk-pulumi-state-123456789012",
            "--secrets-key-arn",
            f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/secrets",
            "--out",
            str(tmp_path),
        ]
    )
    return {path.name: path.read_text() for path in tmp_path.glob("*.json")}


def test_no_policy_in_the_program_or_the_github_roles_allows_iam_star_or_star(
    program_run, full_run, tmp_path
):
    documents = {**_stack_documents(program_run), **_stack_documents(full_run)}
    documents.update({f"github {name}": text for name, text in _github_documents(tmp_path).items()})
    assert len(documents) > 30
    offending = {name: _allows_everything_or_iam(doc) for name, doc in documents.items()}
    assert not {name: found for name, found in offending.items() if found}


def test_every_role_but_the_deploy_role_carries_the_boundary_and_stays_within_it(full_run):
    boundary_arn = full_run.outputs["permissions_boundary_arn"]
    assert boundary_arn == f"arn:aws:iam::{ACCOUNT}:policy/evkfull-permissions-boundary"
    roles = {r.inputs["name"]: r.inputs for r in full_run.of_type("aws:iam/role:Role")}
    unbounded = {name for name, role in roles.items() if role.get("permissionsBoundary") is None}
    assert unbounded == {"evkfull-deploy-codebuild"}
    assert {
        role["permissionsBoundary"] for role in roles.values() if role.get("permissionsBoundary")
    } == {boundary_arn}
    boundary = parse_document(full_run.documents["boundary"])
    assert not [item for item in boundary if any(a.startswith("iam:") for a in item["Action"])]
    assert policy_size(full_run.documents["boundary"]) <= MANAGED_POLICY_MAX_CHARS
    outside = []
    for policy in full_run.of_type("aws:iam/rolePolicy:RolePolicy"):
        role = next(r for r in roles.values() if policy.inputs["role"].startswith(r["name"]))
        if role.get("permissionsBoundary") is None:
            continue
        for item in parse_document(policy.inputs["policy"]):
            for action in item["Action"]:
                for resource in item["Resource"]:
                    if not _allowed_by(boundary, action, resource, item.get("Condition")):
                        outside.append(f"{role['name']}: {action} on {resource}")
    assert not outside, f"stack roles allowed beyond their boundary: {outside}"


def _allowed_by(boundary, action: str, resource: str, condition: Any) -> bool:
    return any(
        any(fnmatchcase(action, pattern) for pattern in item["Action"])
        and any(fnmatchcase(resource, pattern) for pattern in item["Resource"])
        and item.get("Condition") in (None, condition)
        for item in boundary
    )


def test_the_boundary_fits_a_managed_policy_for_the_longest_prefix_and_names():
    where = StackAccount("a" * 24, "aws-us-gov", "us-gov-west-1", ACCOUNT)
    statements = boundary_statements(
        where,
        bucket_arn=f"arn:aws-us-gov:s3:::{'a' * 24}-bucket-1a2b3c4d",
        key_arns=[f"arn:aws-us-gov:kms:us-gov-west-1:{ACCOUNT}:key/{'0' * 36}"],
    )
    assert policy_size(document(statements)) <= MANAGED_POLICY_MAX_CHARS


def _deploy_statements(**overrides):
    values = {
        "prefix": "evk",
        "partition": "aws",
        "region": "eu-west-1",
        "account_id": ACCOUNT,
        "backend_url": "s3://evk-pulumi-state",
        "secrets_key_arn": f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/secrets",
        "token_secret_name": "",
    }
    return deploy_role_statements(**{**values, **overrides})


def test_the_deploy_role_makes_or_changes_roles_only_with_the_boundary():
    statements = _deploy_statements()
    boundary = f"arn:aws:iam::{ACCOUNT}:policy/evk-permissions-boundary"
    iam = [s for s in statements if any(a.startswith("iam:") for a in s["Action"])]
    for item in iam:
        granting = set(item["Action"]) & set(ROLE_MANAGEMENT_ACTIONS)
        if granting:
            assert item["Condition"] == {"StringEquals": {"iam:PermissionsBoundary": boundary}}
            assert item["Resource"] == [f"arn:aws:iam::{ACCOUNT}:role/evk-*"]
    actions = {a for item in iam for a in item["Action"]}
    assert set(ROLE_MANAGEMENT_ACTIONS) <= actions
    assert (
        not {
            "iam:CreatePolicy",
            "iam:CreatePolicyVersion",
            "iam:SetDefaultPolicyVersion",
            "iam:DeleteRolePermissionsBoundary",
            "iam:CreateUser",
            "iam:AttachUserPolicy",
        }
        & actions
    )
    boundary_read = next(s for s in statements if s["Sid"] == "ReadTheBoundary")
    assert boundary_read["Resource"] == [boundary]
    assert all(a.startswith("iam:Get") or a.startswith("iam:List") for a in boundary_read["Action"])
    service_linked = next(s for s in statements if s["Sid"] == "ServiceLinkedRoles")
    assert service_linked["Resource"] == [f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/*"]
    assert "iam:AWSServiceName" in service_linked["Condition"]["StringEquals"]


def test_the_deploy_role_may_enable_the_apis_access_logs_and_push_the_dashboard_image():
    statements = {s["Sid"]: s for s in _deploy_statements()}
    delivery = statements["ApiAccessLogDelivery"]
    assert {
        "logs:CreateLogDelivery",
        "logs:GetLogDelivery",
        "logs:UpdateLogDelivery",
        "logs:DeleteLogDelivery",
        "logs:ListLogDeliveries",
        "logs:PutResourcePolicy",
        "logs:DescribeResourcePolicies",
    } == set(delivery["Action"])
    assert "ecr:GetAuthorizationToken" in statements["Identity"]["Action"]
    assert statements["DashboardImages"]["Resource"] == [
        f"arn:aws:ecr:eu-west-1:{ACCOUNT}:repository/evk-*"
    ]


def _statement_covers(statements, call: AwsCall, bucket_arn: str) -> bool:
    for item in statements:
        if call.action not in item["Action"]:
            continue
        if call.resource is None or not call.resource.startswith("bucket"):
            return True
        if call.resource == "bucket" and bucket_arn in item["Resource"]:
            return True
        if call.resource.startswith("bucket:") and any(
            r.startswith(f"{bucket_arn}/") for r in item["Resource"]
        ):
            return True
    return False


def test_the_edge_job_is_granted_every_call_kit_deploy_greengrass_makes():
    bucket_arn = "arn:aws:s3:::evk-bucket-1a2b3c4d"
    statements = edge_role_statements(
        partition="aws", region="eu-west-1", account_id=ACCOUNT, bucket_arn=bucket_arn
    )
    calls = [
        call
        for entry in EDGE_JOB_ENTRIES
        for call in reachable_calls(EDGE_JOB_CODE, entry, repo_root=REPO_ROOT)
    ]
    actions = {c.action for c in calls}
    assert {"greengrass:CreateDeployment", "greengrass:CreateComponentVersion"} <= actions
    assert {"iot:DescribeThingGroup", "iot:CreateJob", "s3:ListBucket"} <= actions
    missing = sorted(
        {
            f"{c.action} ({c.location})"
            for c in calls
            if not _statement_covers(statements, c, bucket_arn)
        }
    )
    assert not missing, f"kit deploy --target greengrass calls what the edge role lacks: {missing}"


def test_the_github_deploy_role_carries_the_edge_jobs_grants_and_fits_inline(tmp_path):
    documents = _github_documents(tmp_path)
    assert set(documents) == {
        "deploy-trust.json",
        "deploy-policy.json",
        "edge-policy.json",
        "preview-trust.json",
        "preview-policy.json",
    }
    deploy_actions = {
        a for item in parse_document(documents["edge-policy.json"]) for a in item["Action"]
    }
    assert {"greengrass:CreateDeployment", "iot:CreateJob", "s3:PutObject"} <= deploy_actions
    inline = policy_size(documents["deploy-policy.json"]) + policy_size(
        documents["edge-policy.json"]
    )
    assert inline <= INLINE_POLICIES_MAX_CHARS
    deploy_trust = json.loads(documents["deploy-trust.json"])["Statement"][0]
    assert deploy_trust["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert deploy_trust["Condition"]["StringEquals"] == {
        "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
        "token.actions.githubusercontent.com:sub": "repo:acme/edge-vision-kit:environment:production",
    }
    preview_trust = json.loads(documents["preview-trust.json"])["Statement"][0]
    assert (
        preview_trust["Condition"]["StringEquals"]["token.actions.githubusercontent.com:sub"]
        == "repo:acme/edge-vision-kit:pull_request"
    )
    with pytest.raises(SystemExit):
        main(["--repository", "acme", "--prefix", "evk", "--account", ACCOUNT, "--region",
              "eu-west-1", "--bucket", "b", "--backend-url", "s3://s", "--out", str(tmp_path)])  # fmt: skip


def test_the_preview_role_only_reads(tmp_path):
    statements = preview_role_statements(
        prefix="evk",
        partition="aws",
        region="eu-west-1",
        account_id=ACCOUNT,
        backend_url="s3://evk-pulumi-state",
        secrets_key_arn=f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/secrets",
    )
    for item in statements:
        for action in item["Action"]:
            verb = action.split(":", 1)[1]
            if item["Sid"] == "PulumiStateLocks":
                assert item["Resource"] == ["arn:aws:s3:::evk-pulumi-state/.pulumi/locks/*"]
                continue
            assert verb.startswith(READ_VERBS) or action in {"kms:Decrypt"}, action
    cloud = preview_role_statements(
        prefix="evk",
        partition="aws",
        region="eu-west-1",
        account_id=ACCOUNT,
        backend_url="https://api.pulumi.com",
        secrets_key_arn="",
    )
    assert not [s for s in cloud if any(a.startswith("s3:") for a in s["Action"])]


def test_the_sagemaker_role_reads_datasets_and_models_writes_job_folders_pulls_the_training_image(
    program_run,
):
    role = program_run.one("aws:iam/role:Role", name="evktest-sagemaker")
    trust = parse_document(role.inputs["assumeRolePolicy"])
    assert trust[0]["Principal"] == {"Service": ["sagemaker.amazonaws.com"]}
    assert trust[0]["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}}
    bucket = f"arn:aws:s3:::{program_run.outputs['bucket']}"
    statements = {s["Sid"]: s for s in parse_document(program_run.documents["sagemaker"])}
    assert statements["ReadDatasetsModelsAndJobs"]["Resource"] == sorted(
        f"{bucket}/{p}/*" for p in SAGEMAKER_READ_PREFIXES
    )
    assert {"datasets", "models"} <= set(SAGEMAKER_READ_PREFIXES)
    assert statements["WriteJobOutputs"]["Resource"] == sorted(
        f"{bucket}/{p}/*" for p in SAGEMAKER_WRITE_PREFIXES
    )
    assert statements["ListJobFolders"]["Resource"] == [bucket]
    assert statements["ListJobFolders"]["Condition"]["StringLike"]["s3:prefix"] == [
        f"{p}/*" for p in SAGEMAKER_READ_PREFIXES
    ]
    registry = DLC_REGISTRIES["eu-west-1"]
    assert statements["PullTrainingImage"]["Resource"] == [
        f"arn:aws:ecr:eu-west-1:{registry}:repository/pytorch-training"
    ]
    assert (
        program_run.outputs["sagemaker_role_arn"]
        == f"arn:aws:iam::{ACCOUNT}:role/evktest-sagemaker"
    )


def test_the_sagemaker_role_is_optional(run_stack):
    run = run_stack(StackConfig(prefix="evknosm", sagemaker_role=False))
    assert "sagemaker_role_arn" not in run.outputs
    assert not [
        r for r in run.of_type("aws:iam/role:Role") if r.inputs["name"].endswith("-sagemaker")
    ]


def _strings(value: Any):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


def test_no_local_bearer_token_in_any_cloud_resource(program_run, full_run):
    token = Settings().api_token
    for run in (program_run, full_run):
        assert run.config.settings().api_token == token, "the stack's settings hold the default"
        for resource in run.resources:
            for text in _strings(resource.inputs):
                assert token not in text, f"{resource.type} {resource.name} carries the local token"
                assert "EVK_API_TOKEN" not in text, f"{resource.type} {resource.name}"
    [task] = full_run.of_type("aws:ecs/taskDefinition:TaskDefinition")
    [container] = json.loads(task.inputs["containerDefinitions"])
    names = {e["name"] for e in container["environment"]}
    assert "EVK_TARGET" in names and not names & {"EVK_API_TOKEN", "EVK_ENDPOINT_URL"}
