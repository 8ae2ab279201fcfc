"""CI/CD: the GitHub Actions workflow (parsed and checked) and the CodePipeline component (mocks);
and the hosted dashboard (ECS Fargate behind a Cognito-authenticating load balancer)."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from infra.deploy_access import deploy_role_statements
from infra.iam import parse_document
from infra.pipeline import (
    DEPLOY_COMMANDS,
    DEPLOY_PACKAGES,
    EDGE_DEPLOY_COMMAND,
    PULUMI_CLI_VERSION,
    TEST_COMMANDS,
)
from infra.policies import wildcard_statements

WORKFLOW = Path(__file__).resolve().parents[2] / ".github" / "workflows" / "deploy.yml"


def _workflow():
    data = yaml.safe_load(WORKFLOW.read_text())
    triggers = data.get("on", data.get(True))  # YAML 1.1 reads a bare `on` as true
    return data, triggers


def _runs(job) -> str:
    return "\n".join(step.get("run", "") for step in job["steps"])


def _uses(job) -> list[str]:
    return [step["uses"] for step in job["steps"] if "uses" in step]


def test_workflow_runs_tests_on_every_change_preview_on_prs_and_up_on_main_after_approval():
    data, triggers = _workflow()
    assert triggers["push"]["branches"] == ["main"] and "pull_request" in triggers
    jobs = data["jobs"]
    assert set(jobs) == {"test", "preview", "deploy", "edge"}
    assert "if" not in jobs["test"] and "needs" not in jobs["test"]
    assert all(command.split()[0] in _runs(jobs["test"]) for command in ("make", "papermill"))
    assert "make test" in _runs(jobs["test"]) and ".venv/bin/papermill" in _runs(jobs["test"])

    assert jobs["preview"]["needs"] == "test"
    assert jobs["preview"]["if"] == "github.event_name == 'pull_request'"
    assert "pulumi preview" in _runs(
        jobs["preview"]
    ) and "--policy-pack infra/policy_pack" in _runs(jobs["preview"])
    assert "environment" not in jobs["preview"]

    deploy = jobs["deploy"]
    assert deploy["needs"] == "test"
    assert deploy["if"] == "github.event_name == 'push' && github.ref == 'refs/heads/main'"
    assert deploy["environment"] == "production", "the manual approval gate"
    assert "pulumi up --yes" in _runs(deploy)
    assert "kit aws outputs --from stack-outputs.json --write evk.yaml" in _runs(deploy)

    edge = jobs["edge"]
    assert edge["needs"] == "deploy" and edge["environment"] == "production"
    assert EDGE_DEPLOY_COMMAND in _runs(edge)
    assert "actions/download-artifact@v4" in _uses(edge)


def test_workflow_and_pipeline_run_the_same_commands():
    data, _ = _workflow()
    jobs = data["jobs"]
    for command in TEST_COMMANDS:
        assert command in _runs(jobs["test"]), command
    for command in DEPLOY_COMMANDS:
        assert command in _runs(jobs["deploy"]), command
    assert data["env"]["DEPLOY_PACKAGES"] == "|".join(DEPLOY_PACKAGES)


def _role_assumed(job) -> str:
    [step] = [
        s for s in job["steps"] if s.get("uses") == "aws-actions/configure-aws-credentials@v4"
    ]
    return step["with"]["role-to-assume"]


def test_workflow_uses_oidc_the_pinned_pulumi_cli_and_a_read_only_role_for_previews():
    data, _ = _workflow()
    assert data["env"]["PULUMI_VERSION"] == PULUMI_CLI_VERSION
    for name in ("preview", "deploy", "edge"):
        job = data["jobs"][name]
        assert job["permissions"]["id-token"] == "write", name
        assert "aws-actions/configure-aws-credentials@v4" in _uses(job), name
        assert "AWS_SECRET_ACCESS_KEY" not in json.dumps(job), "no long-lived keys"
    for name in ("preview", "deploy"):
        assert "pulumi/actions@v6" in _uses(data["jobs"][name])
        assert "docker/setup-buildx-action@v3" in _uses(data["jobs"][name]), "the dashboard image"
    assert _role_assumed(data["jobs"]["preview"]) == "${{ vars.AWS_PREVIEW_ROLE_ARN }}"
    assert _role_assumed(data["jobs"]["deploy"]) == "${{ vars.AWS_DEPLOY_ROLE_ARN }}"
    assert _role_assumed(data["jobs"]["edge"]) == "${{ vars.AWS_DEPLOY_ROLE_ARN }}"
    assert data["permissions"] == {"contents": "read"}


def test_pipeline_stages_are_source_test_approval_deploy_edge(full_run):
    pipeline = full_run.one("aws:codepipeline/pipeline:Pipeline")
    stages = pipeline.inputs["stages"]
    assert [s["name"] for s in stages] == ["Source", "Test", "Approve", "Deploy", "Edge"]
    [source] = stages[0]["actions"]
    assert source["provider"] == "CodeStarSourceConnection"
    assert source["configuration"]["FullRepositoryId"] == "example/edge-vision-kit"
    assert source["configuration"]["BranchName"] == "main"
    connection = full_run.one("aws:codestarconnections/connection:Connection")
    assert connection.inputs["providerType"] == "GitHub"
    assert source["configuration"]["ConnectionArn"] == full_run.outputs["repository_connection_arn"]
    assert stages[2]["actions"][0]["provider"] == "Manual"
    projects = {
        p.inputs["name"]: p.inputs for p in full_run.of_type("aws:codebuild/project:Project")
    }
    for stage, project in (
        ("Test", "evkfull-test"),
        ("Deploy", "evkfull-deploy"),
        ("Edge", "evkfull-edge"),
    ):
        [action] = next(s for s in stages if s["name"] == stage)["actions"]
        assert (
            action["provider"] == "CodeBuild" and action["configuration"]["ProjectName"] == project
        )
    [edge_action] = stages[4]["actions"]
    assert edge_action["inputArtifacts"] == ["source", "settings"]
    assert stages[3]["actions"][0]["outputArtifacts"] == ["settings"]
    buildspecs = {name: yaml.safe_load(p["source"]["buildspec"]) for name, p in projects.items()}
    assert buildspecs["evkfull-test"]["phases"]["build"]["commands"] == list(TEST_COMMANDS)
    deploy = buildspecs["evkfull-deploy"]
    assert deploy["phases"]["build"]["commands"][1:] == list(DEPLOY_COMMANDS)
    assert f"--version {PULUMI_CLI_VERSION}" in deploy["phases"]["install"]["commands"][0]
    assert deploy["artifacts"]["files"] == ["evk.yaml", "stack-outputs.json"]
    assert EDGE_DEPLOY_COMMAND in buildspecs["evkfull-edge"]["phases"]["build"]["commands"]
    assert projects["evkfull-deploy"]["environment"]["privilegedMode"] is True, "Docker builds"
    assert projects["evkfull-edge"]["environment"]["privilegedMode"] is False
    variables = {
        v["name"]: v["value"]
        for v in projects["evkfull-deploy"]["environment"]["environmentVariables"]
    }
    assert variables == {"PULUMI_BACKEND_URL": "s3://evk-pulumi-state", "PULUMI_STACK": "prod"}
    store = pipeline.inputs["artifactStores"][0]
    assert store == {"location": f"{full_run.outputs['bucket']}-pipeline", "type": "S3"}


def test_pipeline_roles_are_scoped(full_run):
    pipeline_role = parse_document(full_run.documents["pipeline:pipeline"])
    use = next(s for s in pipeline_role if s["Sid"] == "Source")
    assert use["Resource"] == [full_run.outputs["repository_connection_arn"]]
    builds = next(s for s in pipeline_role if s["Sid"] == "Builds")
    assert len(builds["Resource"]) == 3 and all(
        ":project/evkfull-" in r for r in builds["Resource"]
    )
    test_role = parse_document(full_run.documents["pipeline:test"])
    assert {s["Sid"] for s in test_role} == {"BuildLogs", "PipelineArtifacts"}, "tests need no AWS"
    deploy_role = parse_document(full_run.documents["pipeline:deploy"])
    sids = {s["Sid"] for s in deploy_role}
    assert {
        "PulumiState",
        "PulumiSecrets",
        "Functions",
        "Tables",
        "RolesOfTheStack",
        "BoundedRolesOfTheStack",
        "ApiAccessLogDelivery",
    } <= sids
    edge_role = parse_document(full_run.documents["pipeline:edge"])
    edge_actions = {a for s in edge_role for a in s["Action"]}
    assert {
        "greengrass:CreateDeployment",
        "iot:CreateJob",
        "iot:DescribeThingGroup",
    } <= edge_actions
    state = next(s for s in deploy_role if s["Sid"] == "PulumiState")
    assert state["Resource"] == ["arn:aws:s3:::evk-pulumi-state", "arn:aws:s3:::evk-pulumi-state/*"]
    for name in ("pipeline:pipeline", "pipeline:test", "pipeline:deploy", "pipeline:edge"):
        assert not wildcard_statements(full_run.documents[name]), name


def test_deploy_role_for_pulumi_cloud_reads_the_token_secret_instead_of_a_state_bucket():
    statements = deploy_role_statements(
        prefix="evk",
        partition="aws",
        region="eu-west-1",
        account_id="123456789012",
        backend_url="https://api.pulumi.com",
        secrets_key_arn="",
        token_secret_name="evk/pulumi-access-token",
    )
    sids = {s["Sid"] for s in statements}
    assert "PulumiState" not in sids and "PulumiSecrets" not in sids
    token = next(s for s in statements if s["Sid"] == "PulumiCloudToken")
    assert token["Resource"] == [
        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:evk/pulumi-access-token-*"
    ]


def test_dashboard_runs_on_fargate_behind_an_https_listener_that_logs_in_with_cognito(full_run):
    config = full_run.config.dashboard
    service = full_run.one("aws:ecs/service:Service")
    assert service.inputs["launchType"] == "FARGATE" and service.inputs["desiredCount"] == 1
    assert service.inputs["loadBalancers"][0]["containerPort"] == config.port
    https = full_run.one("aws:lb/listener:Listener", port=443)
    assert https.inputs["protocol"] == "HTTPS"
    assert https.inputs["certificateArn"] == config.certificate_arn
    login, forward = sorted(https.inputs["defaultActions"], key=lambda a: a["order"])
    assert login["type"] == "authenticate-cognito"
    pool = full_run.one("aws:cognito/userPool:UserPool")
    clients = {
        c.inputs["name"]: c for c in full_run.of_type("aws:cognito/userPoolClient:UserPoolClient")
    }
    dashboard_client = clients["evkfull-dashboard"]
    assert dashboard_client.inputs["generateSecret"] is True
    assert dashboard_client.inputs["callbackUrls"] == [
        f"https://{config.domain}/oauth2/idpresponse"
    ]
    cognito = login["authenticateCognito"]
    assert cognito["userPoolArn"].endswith(f":userpool/{full_run.outputs['cognito_user_pool_id']}")
    assert (
        cognito["userPoolDomain"]
        == full_run.one("aws:cognito/userPoolDomain:UserPoolDomain").inputs["domain"]
    )
    assert cognito["userPoolClientId"] != full_run.outputs["cognito_client_id"]
    assert forward["type"] == "forward"
    redirect = full_run.one("aws:lb/listener:Listener", port=80)
    assert redirect.inputs["defaultActions"][0]["redirect"]["protocol"] == "HTTPS"
    task = full_run.one("aws:ecs/taskDefinition:TaskDefinition")
    assert (
        task.inputs["requiresCompatibilities"] == ["FARGATE"]
        and task.inputs["networkMode"] == "awsvpc"
    )
    [container] = json.loads(task.inputs["containerDefinitions"])
    env = {e["name"]: e["value"] for e in container["environment"]}
    assert env["EVK_TARGET"] == "aws" and env["EVK_API_URL"] == full_run.outputs["api_url"]
    assert env["EVK_COGNITO_USER_POOL_ID"] == full_run.outputs["cognito_user_pool_id"]
    assert "EVK_API_TOKEN" not in env, "the local bearer token never goes to the cloud"
    [image] = full_run.of_type("docker-build:index:Image")
    assert image.inputs["push"] is True
    registry = f"123456789012.dkr.ecr.{full_run.config.region}.amazonaws.com/evkfull-dashboard"
    assert image.inputs["tags"] == [f"{registry}:latest"]
    assert container["image"].startswith(f"{registry}@sha256:"), "the task runs the pushed digest"
    assert full_run.outputs["dashboard_image"] == container["image"]
    assert dashboard_client.inputs["accessTokenValidity"] == 480, "as long as the login session"
    assert cognito["sessionTimeout"] == 8 * 3600
    assert full_run.one("aws:cognito/userPoolDomain:UserPoolDomain").inputs["domain"] == (
        f"evkfull-login-{full_run.config.name_suffix}"
    )
    assert container["logConfiguration"]["logDriver"] == "awslogs"
    assert container["logConfiguration"]["options"]["awslogs-group"] == "/ecs/evkfull-dashboard"
    assert task.inputs["taskRoleArn"].endswith(":role/evkfull-dashboard-task")
    api = full_run.one("aws:apigatewayv2/api:Api")
    assert "https://dashboard.example.com" in api.inputs["corsConfiguration"]["allowOrigins"]
    authorizer = full_run.one("aws:apigatewayv2/authorizer:Authorizer")
    assert len(authorizer.inputs["jwtConfiguration"]["audiences"]) == 2
    assert pool.inputs["name"] == "evkfull-users"
    assert full_run.outputs["dashboard_url"] == "https://dashboard.example.com"


def test_dashboard_task_only_reachable_from_the_load_balancer(full_run):
    groups = {
        g.inputs["name"]: g.inputs for g in full_run.of_type("aws:ec2/securityGroup:SecurityGroup")
    }
    [ingress] = groups["evkfull-dashboard-task"]["ingress"]
    assert "cidrBlocks" not in ingress and len(ingress["securityGroups"]) == 1
    assert ingress["fromPort"] == ingress["toPort"] == 8866
