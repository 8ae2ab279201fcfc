"""Greengrass v2 deployments: S3 and IoT on moto, Greengrass v2 (which moto lacks) on a Stubber."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import boto3
import pytest
from botocore.stub import ANY, Stubber
from moto import mock_aws

from kit.core.settings import load_settings
from kit.deploy import (
    GreengrassDeployError,
    core_device_state,
    deploy_greengrass,
    deployment_state,
    device_status,
)
from kit.package import validate_recipe, verify_bundle

REGION = "eu-west-1"
NAME = "com.edgevisionkit.EdgeApp"
COMPONENT_ARN = f"arn:aws:greengrass:{REGION}:123456789012:components:{NAME}"


@pytest.fixture
def aws(monkeypatch, tmp_path):
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        settings = load_settings(
            target="aws", region=REGION, prefix="evkgg", state_dir=tmp_path / "state"
        )
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(
            Bucket=settings.resources.bucket,
            CreateBucketConfiguration={"LocationConstraint": REGION},
        )
        iot = boto3.client("iot", region_name=REGION)
        greengrass = boto3.client("greengrassv2", region_name=REGION)
        yield settings, s3, iot, greengrass


def test_deploy_publishes_the_component_and_deploys_it_to_the_thing_group(aws):
    settings, s3, iot, greengrass = aws
    group_arn = iot.create_thing_group(thingGroupName="evk-edge")["thingGroupArn"]
    stubber = Stubber(greengrass)
    stubber.add_response(
        "list_component_versions",
        {
            "componentVersions": [
                {
                    "componentName": NAME,
                    "componentVersion": v,
                    "arn": f"{COMPONENT_ARN}:versions:{v}",
                }
                for v in ("0.1.0", "0.1.3", "0.0.9")
            ]
        },
        {"arn": COMPONENT_ARN},
    )
    stubber.add_response(
        "create_component_version",
        {
            "arn": f"{COMPONENT_ARN}:versions:0.1.4",
            "componentName": NAME,
            "componentVersion": "0.1.4",
            "creationTimestamp": datetime(2026, 11, 26, tzinfo=UTC),
            "status": {"componentState": "DEPLOYABLE", "message": "NONE", "errors": {}},
        },
        {"inlineRecipe": ANY},
    )
    stubber.add_response(
        "create_deployment",
        {"deploymentId": "dep-1", "iotJobId": "job-1"},
        {
            "targetArn": group_arn,
            "deploymentName": f"{NAME}-0.1.4",
            "components": {NAME: {"componentVersion": "0.1.4"}},
            "deploymentPolicies": ANY,
        },
    )
    with stubber:
        result = deploy_greengrass(
            settings,
            thing_group="evk-edge",
            cameras=[{"id": "dock", "source": "rtsp://10.0.0.7/live"}],
            s3=s3,
            greengrass=greengrass,
            iot=iot,
        )
    stubber.assert_no_pending_responses()

    assert (result.deployment_id, result.target_arn) == ("dep-1", group_arn)
    component = result.component
    assert (component.component_version, component.status) == ("0.1.4", "DEPLOYABLE")
    assert validate_recipe(component.recipe) == []
    key = f"packages/greengrass/{NAME}/0.1.4/{result.bundle.path.name}"
    assert component.artifact_uri == f"s3://{settings.resources.bucket}/{key}"
    stored = s3.get_object(Bucket=settings.resources.bucket, Key=key)
    assert stored["Metadata"]["sha256"] == result.bundle.sha256
    assert stored["Body"].read() == result.bundle.path.read_bytes()
    assert verify_bundle(result.bundle.path)
    defaults = component.recipe["ComponentConfiguration"]["DefaultConfiguration"]
    assert defaults["deviceId"] == "" and defaults["cameras"][0]["id"] == "dock"
    assert defaults["settings"]["target"] == "aws"
    assert defaults["settings"]["resources"]["detections_queue"] == "evkgg-detections"
    assert "endpoint_url" not in defaults["settings"]
    assert "api_token" not in defaults["settings"], "the local bearer token stays local"
    assert defaults["python"] == "python3"
    assert json.loads(component.recipe_file.read_text()) == component.recipe


def test_first_version_deployed_to_one_thing(aws):
    settings, s3, iot, greengrass = aws
    thing_arn = iot.create_thing(thingName="line-7-core")["thingArn"]
    stubber = Stubber(greengrass)
    stubber.add_client_error(
        "list_component_versions",
        "ResourceNotFoundException",
        expected_params={"arn": COMPONENT_ARN},
    )
    stubber.add_response(
        "create_component_version",
        {
            "arn": f"{COMPONENT_ARN}:versions:0.1.0",
            "componentName": NAME,
            "componentVersion": "0.1.0",
            "creationTimestamp": datetime(2026, 11, 26, tzinfo=UTC),
            "status": {"componentState": "REQUESTED", "message": "NONE", "errors": {}},
        },
        {"inlineRecipe": ANY},
    )
    stubber.add_response(
        "create_deployment",
        {"deploymentId": "dep-2"},
        {
            "targetArn": thing_arn,
            "deploymentName": f"{NAME}-0.1.0",
            "components": {NAME: {"componentVersion": "0.1.0"}},
            "deploymentPolicies": ANY,
        },
    )
    with stubber:
        result = deploy_greengrass(
            settings,
            thing="line-7-core",
            device_id="line-7",
            cameras=[{"id": "dock", "source": "rtsp://10.0.0.7/live"}],
            python="python3.11",
            s3=s3,
            greengrass=greengrass,
            iot=iot,
        )
    stubber.assert_no_pending_responses()
    assert (result.component.component_version, result.target_arn) == ("0.1.0", thing_arn)
    defaults = result.component.recipe["ComponentConfiguration"]["DefaultConfiguration"]
    assert defaults["deviceId"] == "line-7"
    assert defaults["python"] == "python3.11", "the Install step's interpreter (Ubuntu 22.04)"


def test_a_missing_thing_group_fails_before_anything_is_created(aws):
    settings, s3, iot, greengrass = aws
    with (
        Stubber(greengrass) as stubber,
        pytest.raises(GreengrassDeployError, match="no IoT thing group 'nope'"),
    ):
        deploy_greengrass(settings, thing_group="nope", s3=s3, greengrass=greengrass, iot=iot)
    stubber.assert_no_pending_responses()
    assert s3.list_objects_v2(Bucket=settings.resources.bucket).get("KeyCount", 0) == 0


def test_exactly_one_target(aws):
    settings, s3, iot, greengrass = aws
    with pytest.raises(ValueError, match="exactly one deployment target"):
        deploy_greengrass(
            settings, thing="a", thing_group="b", s3=s3, greengrass=greengrass, iot=iot
        )


def test_deployment_and_core_device_state(aws):
    _, _, _, greengrass = aws
    stubber = Stubber(greengrass)
    stubber.add_response(
        "get_deployment",
        {
            "deploymentId": "dep-1",
            "targetArn": "arn:aws:iot:eu-west-1:123456789012:thinggroup/evk-edge",
            "deploymentName": f"{NAME}-0.1.4",
            "deploymentStatus": "ACTIVE",
            "components": {NAME: {"componentVersion": "0.1.4"}},
            "creationTimestamp": datetime(2026, 11, 26, 10, tzinfo=UTC),
            "isLatestForTarget": True,
        },
        {"deploymentId": "dep-1"},
    )
    stubber.add_response(
        "get_core_device",
        {
            "coreDeviceThingName": "line-7-core",
            "coreVersion": "2.14.0",
            "platform": "linux",
            "architecture": "aarch64",
            "status": "HEALTHY",
            "lastStatusUpdateTimestamp": datetime(2026, 11, 26, 10, 5, tzinfo=UTC),
        },
        {"coreDeviceThingName": "line-7-core"},
    )
    stubber.add_response(
        "list_installed_components",
        {
            "installedComponents": [
                {"componentName": NAME, "componentVersion": "0.1.4", "lifecycleState": "RUNNING"},
                {
                    "componentName": "aws.greengrass.Nucleus",
                    "componentVersion": "2.14.0",
                    "lifecycleState": "FINISHED",
                },
            ]
        },
        {"coreDeviceThingName": "line-7-core"},
    )
    stubber.add_response(
        "list_effective_deployments",
        {
            "effectiveDeployments": [
                {
                    "deploymentId": "dep-1",
                    "deploymentName": f"{NAME}-0.1.4",
                    "targetArn": "arn:aws:iot:eu-west-1:123456789012:thinggroup/evk-edge",
                    "coreDeviceExecutionStatus": "SUCCEEDED",
                    "creationTimestamp": datetime(2026, 11, 26, 10, tzinfo=UTC),
                    "modifiedTimestamp": datetime(2026, 11, 26, 10, 4, tzinfo=UTC),
                }
            ]
        },
        {"coreDeviceThingName": "line-7-core"},
    )
    with stubber:
        deployment = deployment_state(greengrass, "dep-1")
        device = core_device_state(greengrass, "line-7-core")
    assert (deployment.status, deployment.done, deployment.components) == (
        "ACTIVE",
        False,
        {NAME: "0.1.4"},
    )
    assert (device.status, device.architecture, device.core_version) == (
        "HEALTHY",
        "aarch64",
        "2.14.0",
    )
    assert device.component().version == "0.1.4" and device.component().lifecycle_state == "RUNNING"
    assert device.deployments[0].status == "SUCCEEDED"
    assert device.deployments[0].modified_at == "2026-11-26T10:04:00+00:00"


def test_an_unknown_core_device_is_named(aws):
    _, _, _, greengrass = aws
    stubber = Stubber(greengrass)
    stubber.add_client_error("get_core_device", "ResourceNotFoundException", http_status_code=404)
    with stubber, pytest.raises(GreengrassDeployError, match="no Greengrass core device 'ghost'"):
        core_device_state(greengrass, "ghost")


def test_device_status_lists_core_devices_with_their_components(deploy_settings):
    greengrass = boto3.client(
        "greengrassv2", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="y"
    )
    stubber = Stubber(greengrass)
    stubber.add_response(
        "list_core_devices",
        {"coreDevices": [{"coreDeviceThingName": "gg-core-9", "status": "HEALTHY"}]},
        {},
    )
    stubber.add_response(
        "get_core_device",
        {"coreDeviceThingName": "gg-core-9", "status": "HEALTHY"},
        {"coreDeviceThingName": "gg-core-9"},
    )
    stubber.add_response(
        "list_installed_components",
        {
            "installedComponents": [
                {"componentName": NAME, "componentVersion": "0.1.4", "lifecycleState": "BROKEN"}
            ]
        },
        {"coreDeviceThingName": "gg-core-9"},
    )
    stubber.add_response(
        "list_effective_deployments",
        {"effectiveDeployments": []},
        {"coreDeviceThingName": "gg-core-9"},
    )
    with stubber:
        statuses = {s.device_id: s for s in device_status(deploy_settings, greengrass=greengrass)}
    status = statuses["gg-core-9"]
    assert (status.target, status.health) == ("greengrass", "OFFLINE")
    assert status.deployed == {
        "core_status": "HEALTHY",
        "components": {NAME: "0.1.4"},
        "lifecycle": {NAME: "BROKEN"},
    }
