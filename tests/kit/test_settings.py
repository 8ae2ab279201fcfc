"""Settings precedence: defaults < config file < EVK_* environment < keyword overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from kit.core.settings import SettingsError, find_project_root, load_settings


@pytest.fixture
def project(tmp_path) -> Path:
    (tmp_path / "Pulumi.yaml").write_text("name: x\n")
    return tmp_path


def test_defaults_derive_resource_names_from_the_prefix(project):
    settings = load_settings(environ={}, project_root=project)
    assert settings.target == "local"
    assert settings.resources.bucket == "evk-bucket"
    assert settings.resources.detections_dlq == "evk-detections-dlq"
    assert settings.resources.idempotency_table == "evk-idempotency"
    assert settings.state_dir == project / ".evk"


def test_config_file_in_project_root_beats_defaults(project):
    (project / "evk.yaml").write_text(
        "prefix: shop\nregion: eu-north-1\nresources:\n  bucket: my-bucket\n"
    )
    settings = load_settings(environ={}, project_root=project)
    assert (settings.prefix, settings.region) == ("shop", "eu-north-1")
    assert settings.resources.bucket == "my-bucket"
    assert settings.resources.detections_queue == "shop-detections"
    assert settings.config_file == project / "evk.yaml"


def test_environment_beats_config_file_and_overrides_beat_environment(project):
    (project / "evk.yaml").write_text("prefix: shop\nregion: eu-north-1\ndevice_id: from-file\n")
    environ = {
        "EVK_PREFIX": "envshop",
        "EVK_DEVICE_ID": "from-env",
        "EVK_RESOURCES__ALERTS_TOPIC": "topic-from-env",
        "EVK_ALERT_EMAILS": "a@example.com, b@example.com",
        "UNRELATED": "1",
    }
    settings = load_settings(environ=environ, project_root=project, device_id="from-code")
    assert settings.prefix == "envshop"
    assert settings.region == "eu-north-1"
    assert settings.device_id == "from-code"
    assert settings.resources.alerts_topic == "topic-from-env"
    assert settings.resources.bucket == "envshop-bucket"
    assert settings.alert_emails == ["a@example.com", "b@example.com"]


def test_evk_config_variable_selects_another_file(project, tmp_path_factory):
    other = tmp_path_factory.mktemp("elsewhere") / "prod.yaml"
    other.write_text("target: aws\nregion: us-east-1\n")
    (project / "evk.yaml").write_text("region: eu-north-1\n")
    settings = load_settings(environ={"EVK_CONFIG": str(other)}, project_root=project)
    assert (settings.target, settings.region) == ("aws", "us-east-1")
    assert settings.aws_endpoint() is None


def test_as_env_round_trips(project):
    settings = load_settings(
        environ={}, project_root=project, prefix="roundtrip", alert_emails=["x@y.io"]
    )
    again = load_settings(environ=settings.as_env(), project_root=project)
    assert again.model_dump(exclude={"config_file"}) == settings.model_dump(exclude={"config_file"})


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        (
            {"EVK_TARGET": "azure"},
            "Settings.target: Input should be 'local' or 'aws' (got 'azure')",
        ),
        ({"EVK_LOCAL_PORT": "99999"}, "Settings.local_port"),
        ({"EVK_PREFIX": "Has Spaces"}, "Settings.prefix"),
        ({"EVK_COLOUR": "red"}, "unknown setting EVK_COLOUR"),
        ({"EVK_ALERT_EMAILS": "not-an-address"}, "not an e-mail address"),
        ({"EVK_CONFIG": "/nonexistent/evk.yaml"}, "does not exist"),
    ],
)
def test_bad_values_name_the_setting(project, environ, message):
    with pytest.raises(SettingsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_settings(environ=environ, project_root=project)


def test_malformed_config_file_is_reported_with_its_path(project):
    (project / "evk.yaml").write_text("prefix: [unclosed\n")
    with pytest.raises(SettingsError, match="evk.yaml is not valid YAML"):
        load_settings(environ={}, project_root=project)
    (project / "evk.yaml").write_text("- a list\n")
    with pytest.raises(SettingsError, match="must hold a mapping"):
        load_settings(environ={}, project_root=project)


def test_project_root_is_found_upwards(project):
    nested = project / "notebooks" / "deep"
    nested.mkdir(parents=True)
    assert find_project_root(nested) == project
