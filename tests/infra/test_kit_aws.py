"""kit.aws: stack outputs → the aws target's settings file (with the SageMaker role); Cognito's
first user (moto); the Deep Learning Containers registry of every region botocore lists for
SageMaker (botocore's own endpoint data, offline)."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import botocore
import pytest
import yaml
from moto import mock_aws

from kit.aws import (
    DLC_PARTITIONS,
    DLC_REGISTRIES,
    StackOutputsError,
    aws_outputs,
    create_cognito_user,
    partition_of,
    read_stack_outputs,
    settings_from_outputs,
    sign_in,
    training_image_registry,
    write_settings_file,
)
from kit.core.settings import Settings, load_settings


def _load(path: Path) -> Settings:
    return load_settings(path, environ={}, project_root=path.parent)


def test_outputs_file_becomes_a_settings_file_keeping_other_settings(program_run, tmp_path):
    outputs_file = tmp_path / "stack-outputs.json"
    outputs_file.write_text(json.dumps(program_run.outputs))
    settings_file = tmp_path / "evk.yaml"
    settings_file.write_text(
        yaml.safe_dump(
            {
                "target": "local",
                "endpoint_url": "http://127.0.0.1:5055",
                "alert_emails": ["ops@example.com"],
                "device_id": "shelf-cam-1",
            }
        )
    )
    written, values = aws_outputs(outputs_file, write=settings_file)
    assert written == settings_file and values["target"] == "aws"
    settings = _load(settings_file)
    assert settings.target == "aws" and settings.endpoint_url is None
    assert settings.aws_endpoint() is None, "boto3 must reach AWS, not moto"
    assert settings.alert_emails == ["ops@example.com"] and settings.device_id == "shelf-cam-1"
    assert settings.api_url == program_run.outputs["api_url"]
    assert settings.cognito_client_id == program_run.outputs["cognito_client_id"]
    assert settings.resources.detections_queue == "evktest-detections"
    assert settings.resources.idempotency_table == "evktest-idempotency"
    assert settings.region == "eu-west-1" and settings.prefix == "evktest"
    assert settings.sagemaker_role_arn == program_run.outputs["sagemaker_role_arn"]
    assert settings.sagemaker_role_arn.endswith(":role/evktest-sagemaker")


def test_a_new_settings_file_is_created(program_run, tmp_path):
    path = write_settings_file(
        settings_from_outputs(program_run.outputs), tmp_path / "sub" / "evk.yaml"
    )
    assert _load(path).resources.bucket == program_run.outputs["bucket"]
    assert program_run.outputs["bucket"].startswith("evktest-bucket-")


def test_reading_outputs_reports_what_is_wrong(tmp_path):
    with pytest.raises(StackOutputsError, match="cannot read stack outputs"):
        read_stack_outputs(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("not json")
    with pytest.raises(StackOutputsError, match="are not JSON"):
        read_stack_outputs(bad)
    bad.write_text("[1, 2]")
    with pytest.raises(StackOutputsError, match="must be a JSON object, not list"):
        read_stack_outputs(bad)
    with pytest.raises(StackOutputsError, match="is not installed here"):
        read_stack_outputs(pulumi="definitely-not-the-pulumi-cli")
    with pytest.raises(StackOutputsError, match="stack outputs lack api_url, cognito_user_pool_id"):
        settings_from_outputs(
            {"region": "eu-west-1", "prefix": "evk", "cognito_client_id": "c", "resources": {}}
        )
    with pytest.raises(StackOutputsError, match="unknown resources"):
        settings_from_outputs(
            {
                "region": "eu-west-1",
                "prefix": "evk",
                "api_url": "https://x/",
                "cognito_user_pool_id": "p",
                "cognito_client_id": "c",
                "resources": {"moat": "x"},
            }
        )
    settings_file = tmp_path / "evk.yaml"
    settings_file.write_text("- a list\n")
    with pytest.raises(StackOutputsError, match="must hold a mapping"):
        write_settings_file({"target": "aws", "resources": {}}, settings_file)


def test_outputs_are_read_from_the_pulumi_cli_when_it_exists(tmp_path):
    cli = tmp_path / "pulumi"
    cli.write_text('#!/bin/sh\necho \'{"region": "eu-west-1", "args": "\'"$*"\'"}\'\n')
    cli.chmod(0o755)
    outputs = read_stack_outputs(stack="prod", pulumi=str(cli), cwd=tmp_path)
    assert outputs == {"region": "eu-west-1", "args": "stack output --json --stack prod"}
    failing = tmp_path / "failing"
    failing.write_text("#!/bin/sh\necho 'no stack selected' >&2\nexit 255\n")
    failing.chmod(0o755)
    with pytest.raises(StackOutputsError, match="failed \\(255\\): no stack selected"):
        read_stack_outputs(pulumi=str(failing), cwd=tmp_path)


def test_first_cognito_user_is_created_and_signs_in():
    with mock_aws():
        cognito = boto3.client("cognito-idp", region_name="eu-west-1")
        pool = cognito.create_user_pool(PoolName="evk-users", UsernameAttributes=["email"])[
            "UserPool"
        ]["Id"]
        client_id = cognito.create_user_pool_client(
            UserPoolId=pool,
            ClientName="evk-api",
            ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
        )["UserPoolClient"]["ClientId"]
        settings = Settings(target="aws", cognito_user_pool_id=pool, cognito_client_id=client_id)
        user = create_cognito_user(
            settings,
            "analyst@example.com",
            temporary_password="Temporary-pass-1",
            send_invitation=False,
            client=cognito,
        )
        assert user["status"] == "FORCE_CHANGE_PASSWORD"
        with pytest.raises(ValueError, match="give new_password"):
            sign_in(settings, "analyst@example.com", "Temporary-pass-1", client=cognito)
        tokens = sign_in(
            settings,
            "analyst@example.com",
            "Temporary-pass-1",
            new_password="A-better-password-2",
            client=cognito,
        )
        assert tokens["AccessToken"] and tokens["IdToken"]
        again = sign_in(settings, "analyst@example.com", "A-better-password-2", client=cognito)
        assert again["AccessToken"]


def test_cognito_helpers_say_what_is_missing():
    with pytest.raises(ValueError, match="no cognito_user_pool_id: deploy the stack"):
        create_cognito_user(Settings(target="aws"), "a@example.com")
    settings = Settings(target="aws", cognito_user_pool_id="eu-west-1_x")
    with pytest.raises(ValueError, match="is not an e-mail address"):
        create_cognito_user(settings, "analyst")
    with pytest.raises(ValueError, match="give the temporary_password"):
        create_cognito_user(settings, "a@example.com", send_invitation=False)
    with pytest.raises(ValueError, match="no cognito_client_id"):
        sign_in(settings, "a@example.com", "pw")


def _botocore_sagemaker_regions() -> dict[str, set[str]]:
    endpoints = json.loads((Path(botocore.__file__).parent / "data" / "endpoints.json").read_text())
    regions: dict[str, set[str]] = {}
    for partition in endpoints["partitions"]:
        service = partition["services"].get("api.sagemaker", {})
        regions[partition["partition"]] = {
            region
            for region, endpoint in service.get("endpoints", {}).items()
            if region in partition["regions"] and not endpoint.get("deprecated")
        }
    return regions


def test_every_region_botocore_lists_for_sagemaker_has_its_training_image_registry():
    listed = _botocore_sagemaker_regions()
    with_containers = set().union(*(listed[p] for p in DLC_PARTITIONS))
    assert len(with_containers) > 30
    assert set(DLC_REGISTRIES) == with_containers, (
        f"missing: {sorted(with_containers - set(DLC_REGISTRIES))}; "
        f"not listed by botocore: {sorted(set(DLC_REGISTRIES) - with_containers)}"
    )
    assert {partition_of(region) for region in DLC_REGISTRIES} == set(DLC_PARTITIONS)
    for partition, regions in listed.items():
        if partition in DLC_PARTITIONS:
            continue
        for region in regions:
            with pytest.raises(
                ValueError,
                match=f"no AWS Deep Learning Containers registry is known for region '{region}'",
            ):
                training_image_registry(region)
    assert (
        training_image_registry("ap-southeast-7")
        == "590183813437.dkr.ecr.ap-southeast-7.amazonaws.com"
    )
    assert training_image_registry("cn-northwest-1").endswith(".amazonaws.com.cn")
