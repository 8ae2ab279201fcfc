"""Every resource of the stack exists with the properties the issue lists (program under mocks)."""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

import pytest

from infra.config import POWERTOOLS_VERSION, StackConfig, cloud_environment, unique_name_suffix
from infra.functions import code_files
from infra.iam import parse_document
from infra.messaging import Messaging, MessagingArgs
from kit.aws import settings_from_outputs
from kit.core.backend import CONTROL_API_ROUTES, PROCESSOR_TIMEOUT_S, QueueSpec, describe_backend
from kit.core.settings import load_settings

DEFAULT_CONFIG = StackConfig(
    prefix="evktest",
    region="eu-west-1",
    alert_emails=("ops@example.com", "oncall@example.com"),
    alert_webhook_url="https://hooks.example.com/evk",
    batch_size=25,
    batching_window_s=5,
    log_retention_days=14,
)
"""The config the session's ``program_run`` used (checked against ``facts`` below)."""
REGION = DEFAULT_CONFIG.region
ACCOUNT = "123456789012"
STACK = "test"
BUILT_CONFIG = DEFAULT_CONFIG.with_name_suffix(unique_name_suffix(ACCOUNT, REGION, STACK))
"""The config as the program completes it: a name suffix derived from account, region, stack."""
SPEC = describe_backend(BUILT_CONFIG.settings())


def test_the_run_used_this_module_config(facts, program_run):
    assert facts.default_config == DEFAULT_CONFIG and facts.account == ACCOUNT
    assert facts.stack == STACK and program_run.config == BUILT_CONFIG


def test_one_component_per_concern(program_run, full_run):
    components = {r.type for r in program_run.resources if r.type.startswith("kit:backend:")}
    assert components == {
        "kit:backend:Storage",
        "kit:backend:SecureBucket",
        "kit:backend:Messaging",
        "kit:backend:Tables",
        "kit:backend:Alerts",
        "kit:backend:Functions",
        "kit:backend:Triggers",
        "kit:backend:Auth",
        "kit:backend:Api",
        "kit:backend:EdgeAccess",
        "kit:backend:PermissionsBoundary",
        "kit:backend:SageMakerAccess",
    }
    optional = {r.type for r in full_run.resources} - {r.type for r in program_run.resources}
    assert {"kit:backend:DashboardHosting", "kit:backend:DeliveryPipeline"} <= optional


def test_bucket_is_private_encrypted_versioned_tls_only_with_frames_expiring(program_run):
    bucket = program_run.one("aws:s3/bucket:Bucket")
    name = bucket.inputs["bucket"]
    assert name == SPEC.bucket.name
    block = program_run.one("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", bucket=name)
    assert all(
        block.inputs[flag] is True
        for flag in (
            "blockPublicAcls",
            "blockPublicPolicy",
            "ignorePublicAcls",
            "restrictPublicBuckets",
        )
    )
    encryption = program_run.one(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        bucket=name,
    )
    assert (
        encryption.inputs["rules"][0]["applyServerSideEncryptionByDefault"]["sseAlgorithm"]
        == "AES256"
    )
    versioning = program_run.one("aws:s3/bucketVersioning:BucketVersioning", bucket=name)
    assert versioning.inputs["versioningConfiguration"]["status"] == "Enabled"
    ownership = program_run.one(
        "aws:s3/bucketOwnershipControls:BucketOwnershipControls", bucket=name
    )
    assert ownership.inputs["rule"]["objectOwnership"] == "BucketOwnerEnforced"
    lifecycle = program_run.one(
        "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", bucket=name
    )
    frames = [r for r in lifecycle.inputs["rules"] if r["filter"].get("prefix") == "frames/"]
    assert len(frames) == 1 and frames[0]["status"] == "Enabled"
    assert frames[0]["expiration"]["days"] == DEFAULT_CONFIG.frames_expiry_days
    [deny] = parse_document(
        program_run.one("aws:s3/bucketPolicy:BucketPolicy", bucket=name).inputs["policy"]
    )
    assert deny["Effect"] == "Deny" and deny["Principal"] == "*"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert set(deny["Resource"]) == {f"arn:aws:s3:::{name}", f"arn:aws:s3:::{name}/*"}


def test_queue_has_dlq_redrive_visibility_and_a_depth_alarm_on_the_alerts_topic(program_run):
    spec = SPEC.queue("detections")
    queue = program_run.one("aws:sqs/queue:Queue", name=spec.name)
    dlq = program_run.one("aws:sqs/queue:Queue", name=spec.dlq)
    assert queue.inputs["visibilityTimeoutSeconds"] >= 6 * PROCESSOR_TIMEOUT_S
    redrive = json.loads(queue.inputs["redrivePolicy"])
    assert redrive == {
        "deadLetterTargetArn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{spec.dlq}",
        "maxReceiveCount": spec.max_receive_count,
    }
    assert (
        queue.inputs["sqsManagedSseEnabled"] is True and dlq.inputs["sqsManagedSseEnabled"] is True
    )
    assert dlq.inputs["messageRetentionSeconds"] == 14 * 86400
    built = {q.inputs["name"] for q in program_run.of_type("aws:sqs/queue:Queue")}
    assert SPEC.queue("alerts-inbox").name not in built, "the inbox queue is local only"
    alarm = program_run.one("aws:cloudwatch/metricAlarm:MetricAlarm")
    assert alarm.inputs["namespace"] == "AWS/SQS"
    assert alarm.inputs["metricName"] == "ApproximateNumberOfMessagesVisible"
    assert alarm.inputs["dimensions"] == {"QueueName": spec.dlq}
    assert alarm.inputs["threshold"] == 0
    assert alarm.inputs["comparisonOperator"] == "GreaterThanThreshold"
    topic_arn = f"arn:aws:sns:{REGION}:{ACCOUNT}:{SPEC.topic('alerts').name}"
    assert alarm.inputs["alarmActions"] == [topic_arn]


def test_a_visibility_timeout_below_six_processor_timeouts_is_refused(under_mocks):
    short = QueueSpec("detections", "q", dlq="q-dlq", visibility_timeout_s=60)

    def build():
        Messaging(
            "messaging",
            MessagingArgs(
                queues=[short], consumer_timeout_s=30, alarm_topic_arn="arn", alarm_name_prefix="p"
            ),
        )

    with pytest.raises(
        ValueError, match="visibility timeout 60s is below 6 x the consumer timeout"
    ):
        under_mocks(build)


def test_tables_are_on_demand_with_pitr_ttl_and_the_described_keys(program_run):
    tables = {t.inputs["name"]: t.inputs for t in program_run.of_type("aws:dynamodb/table:Table")}
    assert set(tables) == {t.name for t in SPEC.tables}
    for spec in SPEC.tables:
        table = tables[spec.name]
        assert table["billingMode"] == "PAY_PER_REQUEST"
        assert table["pointInTimeRecovery"] == {"enabled": True}
        assert table["serverSideEncryption"] == {"enabled": True}
        assert table["hashKey"] == spec.hash_key.name
        assert table.get("rangeKey") == (spec.range_key.name if spec.range_key else None)
        assert {a["name"]: a["type"] for a in table["attributes"]} == spec.attributes
        if spec.ttl_attribute:
            assert table["ttl"] == {"attributeName": spec.ttl_attribute, "enabled": True}
        else:
            assert "ttl" not in table
        indexes = {i["name"]: i for i in table.get("globalSecondaryIndexes", [])}
        assert set(indexes) == {i.name for i in spec.indexes}
        for index in spec.indexes:
            schema = [(k["attributeName"], k["keyType"]) for k in indexes[index.name]["keySchemas"]]
            expected = [(index.hash_key.name, "HASH")]
            if index.range_key:
                expected.append((index.range_key.name, "RANGE"))
            assert schema == expected and indexes[index.name]["projectionType"] == "ALL"


def test_alerts_topic_is_encrypted_with_email_and_webhook_subscriptions(program_run):
    topic = program_run.one("aws:sns/topic:Topic")
    assert topic.inputs["name"] == SPEC.topic("alerts").name
    key = program_run.one("aws:kms/key:Key")
    assert key.inputs["enableKeyRotation"] is True
    assert topic.inputs["kmsMasterKeyId"].startswith(f"arn:aws:kms:{REGION}:{ACCOUNT}:key/")
    services = {s["Principal"].get("Service") for s in parse_document(key.inputs["policy"])}
    assert "cloudwatch.amazonaws.com" in services, "the DLQ alarm must be able to publish"
    subscriptions = {
        (s.inputs["protocol"], s.inputs["endpoint"])
        for s in program_run.of_type("aws:sns/topicSubscription:TopicSubscription")
    }
    assert subscriptions == {
        ("email", "ops@example.com"),
        ("email", "oncall@example.com"),
        ("https", "https://hooks.example.com/evk"),
    }


def test_functions_use_the_description_code_layer_environment_and_log_groups(program_run, facts):
    functions = {
        f.inputs["name"]: f.inputs for f in program_run.of_type("aws:lambda/function:Function")
    }
    settings = BUILT_CONFIG.settings()
    layer = f"arn:aws:lambda:{REGION}:017000801446:layer:AWSLambdaPowertoolsPythonV3-python311-x86_64:{facts.layer_version}"
    assert (
        "aws:ssm/getParameter:getParameter",
        {"name": f"/aws/service/powertools/python/x86_64/python3.11/{POWERTOOLS_VERSION}"},
    ) in program_run.calls
    logs = {
        g.inputs["name"]: g.inputs for g in program_run.of_type("aws:cloudwatch/logGroup:LogGroup")
    }
    for spec in SPEC.functions:
        name = f"{settings.prefix}-{spec.logical}"
        function = functions[name]
        assert function["handler"] == spec.handler
        assert function["runtime"] == "python3.11"
        assert function["timeout"] == spec.timeout_s
        assert function["memorySize"] == spec.memory_mb
        assert function["layers"] == [layer]
        assert function["role"] == f"arn:aws:iam::{ACCOUNT}:role/{name}-role"
        env = function["environment"]["variables"]
        assert env.items() >= cloud_environment(settings).items()
        assert "EVK_API_TOKEN" not in env, "the local bearer token stays local"
        rebuilt = load_settings(environ=env, config_file=None, project_root=Path("/nonexistent"))
        assert rebuilt.target == "aws" and rebuilt.resources == settings.resources
        log_group = f"/aws/lambda/{name}"
        assert logs[log_group]["retentionInDays"] == DEFAULT_CONFIG.log_retention_days
        assert function["loggingConfig"]["logGroup"] == log_group


def test_function_code_holds_the_handlers_contracts_settings_and_yaml_only():
    files = code_files()
    assert (
        "kit/__init__.py" in files
        and "kit/core/settings.py" in files
        and "kit/core/backend.py" in files
    )
    assert "kit/core/contracts/__init__.py" in files and "yaml/__init__.py" in files
    for spec in SPEC.functions:
        assert spec.handler.rpartition(".")[0].replace(".", "/") + ".py" in files
    assert not [f for f in files if "__pycache__" in f or f.endswith(".pyc")]
    assert not [f for f in files if f.startswith(("kit/local", "kit/cli", "edge_app", "infra"))]


LAMBDA_PROVIDED = {"boto3", "botocore", "jmespath", "s3transfer", "urllib3", "dateutil"}
"""What the Lambda Python runtime has besides the standard library."""
LAYER_PROVIDED = {"aws_lambda_powertools", "pydantic", "pydantic_core", "typing_extensions"}
"""What the Powertools layer adds."""


def _imports(tree: ast.Module):
    type_checking = {
        id(node)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
        for node in ast.walk(block)
    }
    for node in ast.walk(tree):
        if id(node) in type_checking:
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def test_everything_the_handlers_import_is_in_the_archive_the_runtime_or_the_layer():
    """Follow every import from each handler's module, as Python would on AWS Lambda.

    kit/core ships whole; its numpy modules (kit.core.boxes) are for devices and no handler
    reaches them (an import-linter contract forbids it; this test would name the chain too).
    """
    files = code_files()
    packaged = {
        name.removesuffix(".py").removesuffix("/__init__").replace("/", "."): path
        for name, path in files.items()
        if name.endswith(".py")
    }
    available = set(sys.stdlib_module_names) | LAMBDA_PROVIDED | LAYER_PROVIDED
    missing = []
    for spec in SPEC.functions:
        pending, seen = [spec.handler.rpartition(".")[0]], set()
        while pending:
            module = pending.pop()
            if module in seen:
                continue
            seen.add(module)
            parts = module.split(".")
            pending += [
                ".".join(parts[:end])
                for end in range(1, len(parts))
                if ".".join(parts[:end]) in packaged
            ]
            for imported in _imports(ast.parse(packaged[module].read_text())):
                if imported in packaged:
                    pending.append(imported)
                elif imported.rpartition(".")[0] in packaged:
                    continue  # a name imported from a packaged module, not a module
                elif imported.split(".")[0] not in available:
                    missing.append(f"{spec.logical}: {module} imports {imported}")
    assert not missing, f"would fail to import on AWS Lambda: {sorted(set(missing))}"


def test_the_shared_core_ships_whole_in_the_archive(repo_root):
    files = code_files()
    core = {p.relative_to(repo_root).as_posix() for p in (repo_root / "kit" / "core").rglob("*.py")}
    assert core and core <= set(files)


def test_the_archive_the_program_uploads_is_those_files(program_run):
    function = program_run.one("aws:lambda/function:Function", name="evktest-processor")
    assert set(function.inputs["code"].assets) == set(code_files())


def test_powertools_layer_follows_the_pinned_package(repo_root):
    pins = dict(
        line.split("==", 1)
        for line in (repo_root / "requirements.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )
    assert pins["aws-lambda-powertools"].strip() == POWERTOOLS_VERSION


def test_triggers_report_batch_item_failures_and_schedule_the_health_check(program_run):
    mapping = program_run.one("aws:lambda/eventSourceMapping:EventSourceMapping")
    assert (
        mapping.inputs["eventSourceArn"]
        == f"arn:aws:sqs:{REGION}:{ACCOUNT}:{SPEC.queue('detections').name}"
    )
    assert mapping.inputs["functionName"].endswith(":function:evktest-processor")
    assert mapping.inputs["functionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping.inputs["batchSize"] == DEFAULT_CONFIG.batch_size == 25
    assert mapping.inputs["maximumBatchingWindowInSeconds"] == DEFAULT_CONFIG.batching_window_s == 5
    rule = program_run.one("aws:cloudwatch/eventRule:EventRule")
    assert rule.inputs["scheduleExpression"] == SPEC.function("health-check").trigger.expression
    target = program_run.one("aws:cloudwatch/eventTarget:EventTarget")
    assert target.inputs["rule"] == rule.inputs["name"]
    assert target.inputs["arn"].endswith(":function:evktest-health-check")
    invoke = program_run.one("aws:lambda/permission:Permission", principal="events.amazonaws.com")
    assert (
        invoke.inputs["sourceArn"]
        == f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{rule.inputs['name']}"
    )
    assert invoke.inputs["function"] == "evktest-health-check"


def test_api_routes_jwt_authorizer_cors_and_throttling(program_run):
    api = program_run.one("aws:apigatewayv2/api:Api")
    assert api.inputs["protocolType"] == "HTTP"
    assert "http://localhost:8866" in api.inputs["corsConfiguration"]["allowOrigins"]
    assert "authorization" in api.inputs["corsConfiguration"]["allowHeaders"]
    pool = program_run.one("aws:cognito/userPool:UserPool")
    client = program_run.one("aws:cognito/userPoolClient:UserPoolClient")
    authorizer = program_run.one("aws:apigatewayv2/authorizer:Authorizer")
    assert authorizer.inputs["authorizerType"] == "JWT"
    assert authorizer.inputs["identitySources"] == ["$request.header.Authorization"]
    jwt = authorizer.inputs["jwtConfiguration"]
    assert jwt["issuer"].startswith(f"https://cognito-idp.{REGION}.amazonaws.com/{REGION}_")
    assert jwt["audiences"] == [program_run.outputs["cognito_client_id"]]
    routes = {
        r.inputs["routeKey"]: r.inputs for r in program_run.of_type("aws:apigatewayv2/route:Route")
    }
    assert set(routes) == set(CONTROL_API_ROUTES)
    for key, route in routes.items():
        if key == "GET /health":
            assert route["authorizationType"] == "NONE" and "authorizerId" not in route
        else:
            assert route["authorizationType"] == "JWT" and route["authorizerId"]
    integration = program_run.one("aws:apigatewayv2/integration:Integration")
    assert integration.inputs["integrationType"] == "AWS_PROXY"
    assert integration.inputs["payloadFormatVersion"] == "2.0"
    assert integration.inputs["integrationUri"].endswith(":function:evktest-control-api")
    targets = {r["target"] for r in routes.values()}
    assert len(targets) == 1 and targets.pop().startswith(f"integrations/{integration.name}-")
    stage = program_run.one("aws:apigatewayv2/stage:Stage")
    assert stage.inputs["name"] == "$default" and stage.inputs["autoDeploy"] is True
    assert (
        stage.inputs["defaultRouteSettings"]["throttlingBurstLimit"]
        == DEFAULT_CONFIG.api_throttle_burst
    )
    assert (
        stage.inputs["defaultRouteSettings"]["throttlingRateLimit"]
        == DEFAULT_CONFIG.api_throttle_rate
    )
    assert stage.inputs["accessLogSettings"]["destinationArn"].endswith(
        ":log-group:/aws/apigateway/evktest-control-api"
    )
    invoke = program_run.one(
        "aws:lambda/permission:Permission", principal="apigateway.amazonaws.com"
    )
    assert (
        invoke.inputs["sourceArn"].endswith("/*/*")
        and invoke.inputs["function"] == "evktest-control-api"
    )
    assert pool.inputs["adminCreateUserConfig"]["allowAdminCreateUserOnly"] is True
    assert pool.inputs["passwordPolicy"]["minimumLength"] >= 12
    assert client.inputs["generateSecret"] is False
    assert "ALLOW_USER_PASSWORD_AUTH" in client.inputs["explicitAuthFlows"]


def test_edge_roles_role_alias_and_core_device_policy(program_run):
    tes = program_run.one("aws:iam/role:Role", name="evktest-greengrass-tes")
    trust = parse_document(tes.inputs["assumeRolePolicy"])
    assert trust[0]["Principal"] == {"Service": ["credentials.iot.amazonaws.com"]}
    alias = program_run.one("aws:iot/roleAlias:RoleAlias")
    assert alias.inputs["roleArn"] == f"arn:aws:iam::{ACCOUNT}:role/evktest-greengrass-tes"
    core = parse_document(program_run.one("aws:iot/policy:Policy").inputs["policy"])
    assume = [s for s in core if "iot:AssumeRoleWithCertificate" in s["Action"]]
    assert assume[0]["Resource"] == [
        f"arn:aws:iot:{REGION}:{ACCOUNT}:rolealias/{alias.inputs['alias']}"
    ]
    panorama = program_run.one("aws:iam/role:Role", name="evktest-panorama-app")
    trust = parse_document(panorama.inputs["assumeRolePolicy"])
    assert trust[0]["Principal"] == {"Service": ["panorama.amazonaws.com"]}
    assert trust[0]["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}}


def test_stack_outputs_become_the_aws_target_settings(program_run):
    outputs = program_run.outputs
    for key in (
        "bucket",
        "detections_queue_url",
        "tables",
        "api_url",
        "cognito_user_pool_id",
        "cognito_client_id",
        "region",
    ):
        assert outputs[key], key
    assert outputs["tables"] == {t.logical: t.name for t in SPEC.tables}
    values = settings_from_outputs(outputs)
    settings = load_settings(
        environ={}, config_file=None, project_root=Path("/nonexistent"), **values
    )
    assert settings.target == "aws" and settings.region == REGION
    assert settings.resources == BUILT_CONFIG.settings().resources
    assert settings.api_url == outputs["api_url"]
    assert settings.cognito_user_pool_id == outputs["cognito_user_pool_id"]
