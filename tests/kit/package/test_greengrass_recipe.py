"""The Greengrass v2 component recipe: shape, lifecycle, configuration, validation."""

from __future__ import annotations

import copy
import json
import shlex

import pytest

from kit.package import (
    RecipeError,
    RunCommand,
    build_component,
    check_recipe,
    default_configuration,
    validate_recipe,
)
from kit.package.device_config_writer import ENVIRONMENT_KEYS
from kit.package.greengrass import INSTALL_SCRIPT


@pytest.fixture
def component(tmp_path, bundle):
    configuration = default_configuration(
        cameras=[{"id": "dock", "source": "rtsp://10.0.0.7/live"}],
        model="shelf:3",
        settings={"target": "aws", "region": "eu-west-1", "prefix": "evk"},
    )
    return build_component(
        bundle,
        bucket="evk-bucket",
        component_version="0.1.4",
        configuration=configuration,
        out_dir=tmp_path,
    )


def test_recipe_has_the_documented_shape(component, bundle):
    recipe = component.recipe
    assert recipe["RecipeFormatVersion"] == "2020-01-25"
    assert recipe["ComponentName"] == "com.edgevisionkit.EdgeApp"
    assert recipe["ComponentVersion"] == "0.1.4"
    assert (
        recipe["ComponentDependencies"]["aws.greengrass.TokenExchangeService"]["DependencyType"]
        == "HARD"
    )
    defaults = recipe["ComponentConfiguration"]["DefaultConfiguration"]
    assert set(defaults) == {
        "deviceId",
        "cameras",
        "model",
        "settings",
        "heartbeatS",
        "logLevel",
        "python",
    }
    assert defaults["deviceId"] == "" and defaults["model"] == "shelf:3"
    assert defaults["python"] == "python3"
    (manifest,) = recipe["Manifests"]
    assert manifest["Platform"] == {"os": "linux"}
    assert manifest["Artifacts"] == [
        {
            "URI": f"s3://evk-bucket/packages/greengrass/com.edgevisionkit.EdgeApp/0.1.4/{bundle.path.name}",
            "Unarchive": "ZIP",
            "Permission": {"Read": "OWNER", "Execute": "NONE"},
        }
    ]
    assert validate_recipe(recipe) == []
    assert json.loads(component.recipe_file.read_text()) == recipe


def test_install_makes_the_venv_with_the_configured_interpreter_and_the_bundles_requirements(
    component, bundle
):
    install = component.recipe["Manifests"][0]["Lifecycle"]["Install"]
    assert install["Script"] == INSTALL_SCRIPT
    assert install["Setenv"] == {
        "EVK_PYTHON": "{configuration:/python}",
        "EVK_VENV": "{work:path}/venv",
        "EVK_REQUIREMENTS": f"{{artifacts:decompressedPath}}/{bundle.name}/requirements.txt",
    }
    assert install["Timeout"] > 0
    assert '"$EVK_PYTHON" -m venv "$EVK_VENV"' in INSTALL_SCRIPT
    assert "pip install" in INSTALL_SCRIPT and '-r "$EVK_REQUIREMENTS"' in INSTALL_SCRIPT
    configured = default_configuration(python="/opt/python3.12/bin/python3")
    assert configured["python"] == "/opt/python3.12/bin/python3"
    with pytest.raises(ValueError, match="python 'python3; rm -rf /' is not an interpreter"):
        default_configuration(python="python3; rm -rf /")


def test_run_writes_the_config_then_execs_the_edge_app(component, bundle):
    run = component.recipe["Manifests"][0]["Lifecycle"]["Run"]
    words = shlex.split(run["Script"])
    writer, app = words[: words.index("&&")], words[words.index("&&") + 1 :]
    assert writer == [
        "{work:path}/venv/bin/python",
        f"{{artifacts:decompressedPath}}/{bundle.name}/bin/write_device_config.py",
        "--out",
        "{work:path}/device.json",
    ]
    assert app == [
        "exec",
        "{work:path}/venv/bin/python",
        "-m",
        "edge_app",
        "--config",
        "{work:path}/device.json",
        "--log-level",
        "{configuration:/logLevel}",
    ]
    assert run["Setenv"]["PYTHONPATH"] == f"{{artifacts:decompressedPath}}/{bundle.name}"
    assert run["Setenv"]["EDGE_THING_NAME"] == "{iot:thingName}"
    assert run["Setenv"]["EDGE_CAMERAS"] == "{configuration:/cameras}"
    assert {ENVIRONMENT_KEYS[k] for k in ENVIRONMENT_KEYS} <= set(run["Setenv"])


def test_local_and_greengrass_share_the_run_command():
    local = RunCommand("/venv/bin/python", "/dev/current", "/dev/work").script()
    assert local == (
        "/venv/bin/python /dev/current/bin/write_device_config.py --out /dev/work/device.json && "
        "exec /venv/bin/python -m edge_app --config /dev/work/device.json --log-level INFO"
    )
    with pytest.raises(ValueError, match="unknown configuration key 'cameraz'"):
        RunCommand("p", "b", "w").environment({"cameraz": "[]"})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda r: r.update(RecipeFormatVersion="2021-01-01"),
            "RecipeFormatVersion must be '2020-01-25'",
        ),
        (
            lambda r: r.update(ComponentVersion="1.0"),
            "ComponentVersion '1.0' must be major.minor.patch",
        ),
        (lambda r: r.update(ComponentName="aws.greengrass.Mine"), "reserved for AWS"),
        (lambda r: r.update(ComponentName="bad name!"), "ComponentName 'bad name!'"),
        (lambda r: r.update(Manifests=[]), "Manifests must be a non-empty list"),
        (
            lambda r: r["Manifests"][0]["Lifecycle"].pop("Run"),
            "needs a Run (or Startup) step",
        ),
        (
            lambda r: r["Manifests"][0]["Lifecycle"]["Run"]["Setenv"].update(
                X="{configuration:/camreas}"
            ),
            "{configuration:/camreas} names no key of DefaultConfiguration",
        ),
        (
            lambda r: r["Manifests"][0]["Lifecycle"]["Run"].update(Script="{artifact:path}/run.sh"),
            "unknown recipe variable {artifact:path}",
        ),
        (
            lambda r: r["Manifests"][0]["Artifacts"][0].update(URI="s3://evk-bucket/other/app.zip"),
            "no ZIP artefact unpacks into it",
        ),
        (
            lambda r: r["Manifests"][0]["Artifacts"][0].update(URI="https://example.com/a.zip"),
            "URI must be s3://<bucket>/<key>",
        ),
        (
            lambda r: r["Manifests"][0]["Lifecycle"].update(Instal={"Script": "true"}),
            "Lifecycle.Instal: unknown lifecycle step",
        ),
        (
            lambda r: r["Manifests"][0]["Lifecycle"]["Install"].update(Timeout=-1),
            "Timeout must be a positive number",
        ),
    ],
)
def test_broken_recipes_fail_with_a_clear_message(component, change, message):
    recipe = copy.deepcopy(component.recipe)
    change(recipe)
    problems = validate_recipe(recipe)
    assert any(message in problem for problem in problems), problems
    with pytest.raises(RecipeError, match="invalid component recipe"):
        check_recipe(recipe)


def test_a_bad_version_is_refused_when_building(bundle):
    with pytest.raises(RecipeError, match="ComponentVersion 'v1' must be major.minor.patch"):
        build_component(
            bundle, bucket="b", component_version="v1", configuration=default_configuration()
        )


def test_unknown_log_level_is_refused():
    with pytest.raises(
        ValueError, match="log level 'LOUD' is not one of DEBUG, INFO, WARNING, ERROR"
    ):
        default_configuration(log_level="LOUD")
