"""The control API refuses rules and zones naming a class the camera's model lacks (GIVEN / WHEN /
THEN), and answers with the model's classes."""

from __future__ import annotations

import json

import pytest


def register(harness, name: str, version: int, classes: list[str]) -> None:
    """A model version in the bucket as the registry writes it (metadata is all the API reads)."""
    s3, bucket = harness.services.s3, harness.settings.resources.bucket
    body = {"name": name, "version": version, "classes": classes, "input_size": 320}
    s3.put_object(
        Bucket=bucket, Key=f"models/{name}/{version}/metadata.json", Body=json.dumps(body).encode()
    )


def set_alias(harness, name: str, alias: str, version: int) -> None:
    record = {"alias": alias, "version": version, "updated_at": "2026-01-31T12:00:00Z"}
    harness.services.s3.put_object(
        Bucket=harness.settings.resources.bucket,
        Key=f"models/{name}/aliases/{alias}.json",
        Body=json.dumps(record).encode(),
    )


@pytest.fixture
def models(harness):
    """site:1 knows person/helmet/fall, site:2 only person/helmet; site:production -> 1."""
    register(harness, "site", 1, ["person", "helmet", "fall"])
    register(harness, "site", 2, ["person", "helmet"])
    set_alias(harness, "site", "production", 1)
    return harness


def count_rule(class_name: str, **fields) -> dict:
    return {"type": "count_above", "class_name": class_name, "threshold": 0, **fields}


def test_a_misspelt_rule_class_is_422_listing_the_model_s_classes(models):
    camera = {"model": {"name": "site", "version": "production"}, "rules": [count_rule("Falll")]}

    status, body = models.api("PUT", "/config/yard-1", body=camera)

    assert status == 422 and body["error"] == "unprocessable"
    assert body["problems"] == [
        {
            "field": "cameras.yard-1.rules[0].class_name",
            "value": "Falll",
            "allowed": "a class of site:production (= site:1): person, helmet, fall",
        }
    ]
    assert "person, helmet, fall" in body["message"] and "'Falll'" in body["message"]
    assert models.store.get_config().revision == 0

    camera["rules"] = [count_rule("fall")]
    status, body = models.api("PUT", "/config/yard-1", body=camera)
    assert status == 200 and body["settings"]["rules"][0]["class_name"] == "fall"


def test_zone_classes_and_ppe_classes_are_checked_too(models):
    zone = {"name": "gate", "polygon": [[0, 0], [1, 0], [1, 1]], "classes": ["person", "forklift"]}
    ppe = {"type": "ppe_violation", "helmet_class": "hardhat"}
    camera = {"model": {"name": "site", "version": 2}, "zones": [zone], "rules": [ppe]}

    status, body = models.api("PUT", "/config/yard-1", body=camera)

    assert status == 422
    assert [(p["field"], p["value"]) for p in body["problems"]] == [
        ("cameras.yard-1.rules[0].helmet_class", "hardhat"),
        ("cameras.yard-1.zones[0].classes[1]", "forklift"),
    ]
    assert body["problems"][0]["allowed"] == "a class of site:2: person, helmet"


def test_switching_to_a_model_without_a_rule_s_class_is_refused(models):
    status, _ = models.api(
        "PUT",
        "/config/yard-1",
        body={"model": {"name": "site", "version": 1}, "rules": [count_rule("fall")]},
    )
    assert status == 200

    status, body = models.api(
        "PUT",
        "/config/yard-1",
        body={"model": {"name": "site", "version": 2}, "rules": [count_rule("fall")]},
    )

    assert status == 422
    assert body["problems"][0]["field"] == "cameras.yard-1.rules[0].class_name"
    assert body["problems"][0]["allowed"].endswith("person, helmet")
    assert models.store.get_config().for_camera("yard-1").model.version == 1


def test_defaults_rules_are_checked_against_each_camera_s_model(models):
    """A whole-config PUT: the defaults' rule reaches yard-2, whose own model lacks the class."""
    config = {
        "defaults": {"model": {"name": "site", "version": 1}, "rules": [count_rule("fall")]},
        "cameras": {"yard-1": {}, "yard-2": {"model": {"name": "site", "version": 2}}},
    }

    status, body = models.api("PUT", "/config", body=config)

    assert status == 422
    assert body["problems"] == [
        {
            "field": "defaults.rules[0].class_name",
            "value": "fall",
            "allowed": "a class of site:2: person, helmet",
        }
    ]


def test_a_camera_on_its_device_s_default_model_is_checked_once_it_reported_one(models):
    """No configured model: the classes of the model the camera last reported apply; before
    it reported anything, nothing can be checked."""
    status, _ = models.api("PUT", "/config/new-cam", body={"rules": [count_rule("Falll")]})
    assert status == 200

    models.process(models.payload(camera_id="yard-1", model={"name": "site", "version": 2}))
    status, body = models.api("PUT", "/config/yard-1", body={"rules": [count_rule("fall")]})

    assert status == 422
    assert body["problems"][0]["allowed"] == (
        "a class of site:2, the model camera yard-1 last reported: person, helmet"
    )
    status, _ = models.api("PUT", "/config/yard-1", body={"rules": [count_rule("helmet")]})
    assert status == 200


def test_an_unknown_alias_is_refused_before_any_class_check(models):
    camera = {"model": {"name": "site", "version": "typo"}, "rules": [count_rule("Falll")]}

    status, body = models.api("PUT", "/config/yard-1", body=camera)

    assert status == 422 and body["message"].startswith("unknown model:")
    assert "model 'site' has no alias 'typo'; aliases: production -> 1" in body["message"]
