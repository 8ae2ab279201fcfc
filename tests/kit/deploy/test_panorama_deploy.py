"""Panorama (legacy) deployments on a Stubber: moto has no Panorama and botocore 1.44 no model."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from botocore.stub import Stubber

from kit.core.settings import load_settings
from kit.deploy import (
    application_instance_state,
    deploy_application,
    panorama_client,
    panorama_devices,
)
from kit.package import (
    PanoramaPackageError,
    build_bundle,
    build_panorama_app,
    device_config,
    parse_camera,
)


@pytest.fixture
def client(tmp_path):
    settings = load_settings(target="aws", region="us-west-2", state_dir=tmp_path)
    return panorama_client(settings, aws_access_key_id="x", aws_secret_access_key="y")


@pytest.fixture
def app(tmp_path, onnx_model, neo_archive):
    config = device_config("pano-1", [parse_camera("door=panorama:camera_node")], model="tiny:1")
    bundle = build_bundle(tmp_path / "bundle", device_config=config, models={"tiny:1": onnx_model})
    return build_panorama_app(tmp_path / "apps", bundle, model_file=neo_archive, input_size=160)


def test_client_speaks_the_panorama_api(client):
    assert client.meta.service_model.service_name == "panorama"
    assert client.meta.endpoint_url == "https://panorama.us-west-2.amazonaws.com"


def test_deploy_creates_an_application_instance_from_the_manifest(client, app):
    stubber = Stubber(client)
    stubber.add_response(
        "create_application_instance",
        {"ApplicationInstanceId": "applicationInstance-0123abcd"},
        {
            "Name": "evk_edge_app",
            "Description": "Edge Vision Kit edge app",
            "DefaultRuntimeContextDevice": "device-4567",
            "ManifestPayload": {"PayloadData": app.graph_file.read_text()},
            "RuntimeRoleArn": "arn:aws:iam::123456789012:role/evk-panorama-app",
            "ManifestOverridesPayload": {"PayloadData": json.dumps({"nodeGraphOverrides": {}})},
        },
    )
    stubber.add_response(
        "describe_application_instance",
        {
            "ApplicationInstanceId": "applicationInstance-0123abcd",
            "Name": "evk_edge_app",
            "DefaultRuntimeContextDevice": "device-4567",
            "Status": "DEPLOYMENT_SUCCEEDED",
            "HealthStatus": "RUNNING",
            "StatusDescription": "Application deployed successfully.",
            "CreatedTime": datetime(2026, 5, 1, tzinfo=UTC),
        },
        {"ApplicationInstanceId": "applicationInstance-0123abcd"},
    )
    with stubber:
        instance = deploy_application(
            client,
            app,
            device_id="device-4567",
            role_arn="arn:aws:iam::123456789012:role/evk-panorama-app",
            overrides={"nodeGraphOverrides": {}},
        )
        state = application_instance_state(client, instance)
    stubber.assert_no_pending_responses()
    assert instance == "applicationInstance-0123abcd"
    assert (state.status, state.health, state.health_label) == (
        "DEPLOYMENT_SUCCEEDED",
        "RUNNING",
        "RUNNING",
    )
    assert state.device_id == "device-4567" and state.created_at == "2026-05-01T00:00:00+00:00"


def test_an_invalid_application_is_not_sent(client, app):
    (app.code_package / "src" / "app.py").unlink()
    with (
        Stubber(client) as stubber,
        pytest.raises(PanoramaPackageError, match="has no file src/app.py"),
    ):
        deploy_application(client, app, device_id="device-4567")
    stubber.assert_no_pending_responses()


def test_devices_are_listed_and_described(client):
    stubber = Stubber(client)
    stubber.add_response(
        "list_devices",
        {"Devices": [{"DeviceId": "device-b"}], "NextToken": "page-2"},
        {},
    )
    stubber.add_response(
        "list_devices", {"Devices": [{"DeviceId": "device-a"}]}, {"NextToken": "page-2"}
    )
    for device_id, connection in (("device-b", "OFFLINE"), ("device-a", "ONLINE")):
        stubber.add_response(
            "describe_device",
            {
                "DeviceId": device_id,
                "Name": f"appliance {device_id[-1]}",
                "ProvisioningStatus": "SUCCEEDED",
                "DeviceConnectionStatus": connection,
                "DeviceAggregatedStatus": connection,
                "CurrentSoftware": "6.2.1",
                "LatestSoftware": "6.2.1",
            },
            {"DeviceId": device_id},
        )
    with stubber:
        devices = panorama_devices(client)
    assert [(d.device_id, d.connection_status) for d in devices] == [
        ("device-a", "ONLINE"),
        ("device-b", "OFFLINE"),
    ]
    assert devices[0].current_software == "6.2.1"


@pytest.mark.parametrize(
    ("status", "health", "label"),
    [
        ("DEPLOYMENT_IN_PROGRESS", "NOT_AVAILABLE", "OFFLINE"),
        ("DEPLOYMENT_FAILED", "NOT_AVAILABLE", "ERROR"),
        ("DEPLOYMENT_SUCCEEDED", "ERROR", "ERROR"),
        ("REMOVAL_SUCCEEDED", "NOT_AVAILABLE", "STOPPED"),
    ],
)
def test_instance_health_maps_to_device_health(client, status, health, label):
    stubber = Stubber(client)
    stubber.add_response(
        "describe_application_instance",
        {
            "ApplicationInstanceId": "applicationInstance-1",
            "Status": status,
            "HealthStatus": health,
        },
        {"ApplicationInstanceId": "applicationInstance-1"},
    )
    with stubber:
        assert application_instance_state(client, "applicationInstance-1").health_label == label
