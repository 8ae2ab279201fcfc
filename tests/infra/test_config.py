"""Stack config: the example stack file is valid, bad values are refused with clear messages."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest
import yaml

from infra.config import PROJECT, StackConfig, StackConfigError, unique_name_suffix

REPO_ROOT = Path(__file__).resolve().parents[2]


def _stack_file_values(path: Path) -> tuple[dict, str]:
    config = yaml.safe_load(path.read_text())["config"]
    values = {k.split(":", 1)[1]: v for k, v in config.items() if k.startswith(f"{PROJECT}:")}
    return values, config["aws:region"]


def test_example_stack_config_is_valid_and_matches_the_project():
    assert yaml.safe_load((REPO_ROOT / "Pulumi.yaml").read_text())["name"] == PROJECT
    values, region = _stack_file_values(REPO_ROOT / "Pulumi.dev.yaml")
    config = StackConfig.from_values(values, region=region)
    assert config.prefix == "evk-dev" and config.region == "eu-west-1"
    assert config.alert_emails == ("ops@example.com",)
    assert config.edge.enabled and not config.dashboard.enabled and not config.pipeline.enabled
    assert config.pipeline.thing_group == "evk-cameras"
    assert config.name_suffix is None, "derived from the account, region and stack"
    settings = config.with_name_suffix("1a2b3c4d").settings()
    assert settings.target == "aws" and settings.resources.bucket == "evk-dev-bucket-1a2b3c4d"


def test_pulumi_runs_the_program_folder_as_a_script(under_mocks, facts):
    import pulumi

    assert yaml.safe_load((REPO_ROOT / "Pulumi.yaml").read_text())["main"] == "infra/"

    def build():
        pulumi.runtime.set_all_config(
            {"aws:region": "eu-west-1", "edge-vision-kit:prefix": "evkmain"}
        )
        runpy.run_path(str(REPO_ROOT / "infra"), run_name="__main__")

    mocks = under_mocks(build)
    buckets = [r.inputs["bucket"] for r in mocks.resources if r.type == "aws:s3/bucket:Bucket"]
    suffix = unique_name_suffix(facts.account, "eu-west-1", facts.stack)
    assert buckets == [f"evkmain-bucket-{suffix}"]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"bogus": 1}, "unknown stack config key(s) bogus"),
        ({"batchSize": 0}, "edge-vision-kit:batchSize = 0 is not allowed; expected 1..10000"),
        (
            {"batchSize": 50, "batchingWindowSeconds": 0},
            "at least 1 when batchSize is above 10",
        ),
        (
            {"logRetentionDays": 10},
            "edge-vision-kit:logRetentionDays = 10 is not allowed; expected 1, 3, 5",
        ),
        ({"alertWebhookUrl": "http://hooks.example.com"}, "an https:// URL"),
        ({"alertEmails": ["not-an-email"]}, "alert_emails"),
        ({"prefix": "Bad_Prefix"}, "prefix"),
        ({"corsOrigins": ["http://example.com"]}, "corsOrigins = 'http://example.com'"),
        ({"dashboard": {"enabled": True, "domain": "d.example.com"}}, "dashboard.certificateArn"),
        (
            {"dashboard": {"enabled": True, "colour": "red"}},
            "unknown key(s) colour in edge-vision-kit:dashboard",
        ),
        (
            {
                "dashboard": {
                    "enabled": True,
                    "domain": "d",
                    "certificateArn": "arn:aws:acm:x",
                    "cpu": 300,
                }
            },
            "a Fargate size",
        ),
        ({"pipeline": {"enabled": True, "repository": "nope"}}, "pipeline.repository = 'nope'"),
        ({"batchSize": "many"}, "batchSize = 'many' is not allowed; expected a whole number"),
        ({"protectData": "maybe"}, "protectData = 'maybe' is not allowed; expected true or false"),
        (
            {"nameSuffix": "Acme_1"},
            "nameSuffix = 'Acme_1' is not allowed; expected 1-12 lower-case letters and digits",
        ),
        ({"sagemakerRole": "perhaps"}, "sagemakerRole = 'perhaps' is not allowed"),
    ],
)
def test_bad_values_are_refused_naming_the_key_and_what_is_allowed(values, message):
    with pytest.raises(StackConfigError) as error:
        StackConfig.from_values(values)
    assert message in str(error.value)


def test_values_arrive_as_pulumi_gives_them():
    config = StackConfig.from_values(
        {"batchSize": "20", "protectData": "true", "alertEmails": "a@example.com, b@example.com"}
    )
    assert config.batch_size == 20 and config.protect_data is True
    assert config.alert_emails == ("a@example.com", "b@example.com")


def test_the_program_reads_pulumi_config_and_exports_the_outputs(under_mocks, facts):
    import pulumi

    from infra.program import main

    exported: dict = {}

    def build():
        pulumi.runtime.set_all_config(
            {
                "aws:region": "eu-west-2",
                "edge-vision-kit:prefix": "evkcfg",
                "edge-vision-kit:alertEmails": "ops@example.com",
                "edge-vision-kit:batchSize": "5",
                "edge-vision-kit:edge": '{"enabled": false}',
            }
        )
        main()
        stack = pulumi.runtime.settings.get_root_resource()
        return pulumi.Output.from_input(dict(stack.outputs)).apply(exported.update)

    mocks = under_mocks(build)
    assert exported["region"] == "eu-west-2" and exported["prefix"] == "evkcfg"
    suffix = unique_name_suffix(facts.account, "eu-west-2", facts.stack)
    assert exported["bucket"] == f"evkcfg-bucket-{suffix}"
    assert "greengrass_role_alias" not in exported, "edge disabled by config"
    [mapping] = [
        r for r in mocks.resources if r.type == "aws:lambda/eventSourceMapping:EventSourceMapping"
    ]
    assert mapping.inputs["batchSize"] == 5
    [subscription] = [
        r for r in mocks.resources if r.type == "aws:sns/topicSubscription:TopicSubscription"
    ]
    assert subscription.inputs["endpoint"] == "ops@example.com"


def test_a_structured_key_given_as_plain_text_is_refused(under_mocks):
    import pulumi

    def build():
        pulumi.runtime.set_all_config({"edge-vision-kit:dashboard": "on"})
        StackConfig.from_pulumi_config()

    with pytest.raises(StackConfigError, match="edge-vision-kit:dashboard must be an object"):
        under_mocks(build)


def test_globally_unique_names_get_a_suffix_of_the_account_region_and_stack():
    config = StackConfig.from_values({"prefix": "evk"})
    mine = unique_name_suffix("123456789012", "eu-west-1", "dev")
    assert mine == unique_name_suffix("123456789012", "eu-west-1", "dev"), "stable across runs"
    theirs = unique_name_suffix("210987654321", "eu-west-1", "dev")
    other_stack = unique_name_suffix("123456789012", "eu-west-1", "prod")
    assert len({mine, theirs, other_stack}) == 3
    named = config.with_name_suffix(mine)
    assert named.bucket_name == f"evk-bucket-{mine}" and len(named.bucket_name) <= 63
    assert named.cognito_domain_prefix == f"evk-login-{mine}"
    assert named.settings().resources.bucket == named.bucket_name
    assert named.settings().resources.detections_queue == "evk-detections", "regional: no suffix"
    kept = StackConfig.from_values({"prefix": "evk", "nameSuffix": ""})
    assert kept.name_suffix == "" and kept.bucket_name == "evk-bucket", "an older stack's names"
    own = StackConfig.from_values(
        {"prefix": "evk", "dashboard": {"cognitoDomainPrefix": "acme-evk-login"}}
    ).with_name_suffix(mine)
    assert own.cognito_domain_prefix == "acme-evk-login"
    longest = StackConfig(prefix="a" * 24).with_name_suffix("z" * 12)
    assert len(f"{longest.bucket_name}-pipeline") <= 63, "S3's limit, the pipeline's bucket too"
