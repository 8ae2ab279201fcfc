"""The edge bundle: contents, manifest, integrity, imports, and the device config writer."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from kit.package import BundleError, build_bundle, check_imports, unpack_bundle, verify_bundle
from kit.package.bundle import BUNDLED_SOURCES, REPO_ROOT, source_files
from kit.package.device_config_writer import (
    ConfigurationError,
    compose_device_config,
    configuration_from_environ,
)


def test_bundle_holds_the_runtime_the_light_kit_modules_and_the_device_files(bundle):
    with zipfile.ZipFile(bundle.path) as archive:
        names = set(archive.namelist())
    assert {
        "manifest.json",
        "requirements.txt",
        "device.yaml",
        "bin/write_device_config.py",
    } <= names
    assert {
        "edge_app/__main__.py",
        "edge_app/pipeline.py",
        "kit/__init__.py",
        "kit/core/settings.py",
    } <= names
    core = {str(path.relative_to(REPO_ROOT)) for path in (REPO_ROOT / "kit" / "core").rglob("*.py")}
    assert core and core <= names, "kit/core ships whole"
    outside_core = [n for n in names if n.startswith("kit/") and not n.startswith("kit/core/")]
    assert outside_core == ["kit/__init__.py"]
    assert {"models/shelf-3.onnx", "videos/demo-1.mp4"} <= names
    assert not [
        n for n in names if n.startswith(("kit/package", "kit/deploy", "kit/train", "lambdas"))
    ]
    assert not [n for n in names if "__pycache__" in n]


def test_manifest_lists_every_file_with_its_sha256(bundle):
    manifest = bundle.manifest
    with zipfile.ZipFile(bundle.path) as archive:
        for name in archive.namelist():
            if name == "manifest.json":
                continue
            data = archive.read(name)
            assert manifest["files"][name] == {
                "sha256": hashlib.sha256(data).hexdigest(),
                "size": len(data),
            }
        assert len(manifest["files"]) == len(archive.namelist()) - 1
    assert manifest["app"] == "edge_app" and manifest["app_version"]
    assert manifest["models"] == {"shelf:3": "models/shelf-3.onnx"}
    assert manifest["entry"] == ["python", "-m", "edge_app", "--config", "device.yaml"]
    assert bundle.sha256 == hashlib.sha256(bundle.path.read_bytes()).hexdigest()


def test_requirements_are_the_edge_requirements(bundle):
    with zipfile.ZipFile(bundle.path) as archive:
        shipped = archive.read("requirements.txt").decode()
    assert shipped == (REPO_ROOT / "edge_app" / "requirements.txt").read_text()
    names = {
        line.split("==")[0] for line in shipped.splitlines() if line and not line.startswith("#")
    }
    assert not names & {"torch", "torchvision", "ultralytics"}


def test_device_config_in_the_bundle_points_at_the_shipped_model(bundle):
    with zipfile.ZipFile(bundle.path) as archive:
        config = yaml.safe_load(archive.read("device.yaml"))
    assert config["device_id"] == "line-7"
    assert config["models"] == {"shelf:3": "models/shelf-3.onnx"}
    assert config["cameras"][0]["model"] == {"name": "shelf", "version": 3}


def test_same_inputs_give_the_same_bundle(tmp_path, bundle, bundle_config, model_file, video_file):
    again = build_bundle(
        tmp_path,
        device_config=bundle_config,
        models={"shelf:3": model_file},
        videos={"demo-1": video_file},
    )
    assert again.sha256 == bundle.sha256


def test_verify_names_a_tampered_file(tmp_path, bundle):
    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(bundle.path) as source, zipfile.ZipFile(tampered, "w") as target:
        for info in source.infolist():
            data = source.read(info.filename)
            if info.filename == "edge_app/pipeline.py":
                data += b"\n# changed\n"
            target.writestr(info, data)
        target.writestr("extra.py", b"print('hello')\n")
    with pytest.raises(BundleError) as error:
        verify_bundle(tampered)
    assert "edge_app/pipeline.py: sha256" in str(error.value)
    assert "extra.py: not in the manifest" in str(error.value)


def test_not_a_bundle_is_refused_clearly(tmp_path):
    path = tmp_path / "x.zip"
    path.write_bytes(b"not a zip")
    with pytest.raises(BundleError, match="is not an edge bundle"):
        verify_bundle(path)


def test_unpacked_bundle_runs_its_own_code(tmp_path, bundle):
    unpack_bundle(bundle.path, tmp_path / "current")
    script = (
        "import edge_app, kit, kit.core.registry, edge_app.config; print(edge_app.__file__); "
        "print(kit.core.registry.__file__); print(kit.__path__[0])"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env={"PYTHONPATH": str(tmp_path / "current"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(str(tmp_path / "current" / "edge_app"))
    assert lines[1].startswith(str(tmp_path / "current" / "kit"))
    assert lines[2] == str(tmp_path / "current" / "kit")


def test_bundle_refuses_an_invalid_device_config(tmp_path, bundle_config):
    broken = {**bundle_config, "cameras": [{"id": "dock", "source": "x", "process_fps": 500}]}
    with pytest.raises(BundleError, match="process_fps"):
        build_bundle(tmp_path, device_config=broken)


def test_bundle_refuses_a_missing_model_file(tmp_path, bundle_config):
    with pytest.raises(BundleError, match="model file .*missing.onnx for 'shelf:3' does not exist"):
        build_bundle(
            tmp_path, device_config=bundle_config, models={"shelf:3": tmp_path / "missing.onnx"}
        )


# -- import checks ----------------------------------------------------------------------------


def test_the_real_sources_import_only_what_a_device_installs():
    requirements = [
        "numpy",
        "opencv-python-headless",
        "onnxruntime",
        "boto3",
        "pydantic",
        "pyyaml",
        "requests",
        "lap",
    ]
    problems = check_imports(REPO_ROOT, source_files(), requirements)
    assert problems == [], "\n".join(map(str, problems))


def _tree(root: Path, files: dict[str, str]) -> list[str]:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return sorted(files)


def test_import_check_names_heavy_unbundled_and_uninstalled_modules(tmp_path):
    files = _tree(
        tmp_path,
        {
            "edge_app/__init__.py": "",
            "edge_app/a.py": "import numpy\nimport yaml\nfrom kit.core.settings import Settings\n",
            "edge_app/b.py": "def f():\n    import torch\n",
            "edge_app/c.py": "import shapely\nfrom kit.train import local\n",
            "edge_app/d.py": (
                "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pandas\n"
                "try:\n    import openvino\nexcept ImportError:\n    openvino = None\n"
                "def g():\n    import panoramasdk\n"
            ),
            "kit/__init__.py": "",
            "kit/core/settings.py": "import json\n",
        },
    )
    problems = {
        (p.file, p.module): p.reason for p in check_imports(tmp_path, files, ["numpy", "pyyaml"])
    }
    assert set(problems) == {
        ("edge_app/b.py:2", "torch"),
        ("edge_app/c.py:1", "shapely"),
        ("edge_app/c.py:2", "kit.train"),
    }
    assert "never reach a device" in problems[("edge_app/b.py:2", "torch")]
    assert "edge_app/requirements.txt" in problems[("edge_app/c.py:1", "shapely")]
    assert "not in the bundle" in problems[("edge_app/c.py:2", "kit.train")]


def test_bundled_sources_exist():
    assert source_files()
    for source in BUNDLED_SOURCES:
        assert (REPO_ROOT / source).exists()


# -- the device config writer -------------------------------------------------------------------


def test_configuration_overrides_the_bundle_config_and_paths_become_absolute(tmp_path):
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "shelf-3.onnx").write_bytes(b"x")
    (tmp_path / "videos").mkdir()
    (tmp_path / "videos" / "demo-1.mp4").write_bytes(b"x")
    base = {
        "device_id": "placeholder",
        "cameras": [{"id": "demo-1", "source": {"uri": "videos/demo-1.mp4", "loop": True}}],
        "models": {"shelf:3": "models/shelf-3.onnx"},
        "settings": {"target": "aws", "region": "eu-west-1", "resources": {"bucket": "b"}},
    }
    config = compose_device_config(
        base,
        {
            "thingName": "core-7",
            "model": "shelf:3",
            "settings": {"resources": {"detections_queue": "q"}},
        },
        bundle_root=tmp_path,
        work_dir=tmp_path / "work",
    )
    assert config["device_id"] == "core-7"
    assert config["cameras"][0]["model"] == {"name": "shelf", "version": 3}
    assert config["cameras"][0]["source"]["uri"] == str(tmp_path / "videos" / "demo-1.mp4")
    assert config["models"]["shelf:3"] == str(tmp_path / "models" / "shelf-3.onnx")
    assert config["settings"]["resources"] == {"bucket": "b", "detections_queue": "q"}
    assert config["base_dir"] == str((tmp_path / "work").resolve())


def test_configuration_from_environment_names_a_bad_variable():
    assert configuration_from_environ(
        {"EDGE_CAMERAS": "[]", "EDGE_MODEL": "", "EDGE_HEARTBEAT_S": "5"}
    ) == {
        "cameras": [],
        "heartbeatS": 5.0,
    }
    with pytest.raises(ConfigurationError, match="EDGE_CAMERAS must be JSON"):
        configuration_from_environ({"EDGE_CAMERAS": "{configuration:/cameras}"})
    with pytest.raises(ConfigurationError, match="EDGE_SETTINGS must be a JSON dict"):
        configuration_from_environ({"EDGE_SETTINGS": "[1]"})


def test_writer_in_the_bundle_writes_a_valid_config(tmp_path, bundle):
    unpack_bundle(bundle.path, tmp_path / "current")
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(tmp_path / "current"),
        "EDGE_THING_NAME": "core-7",
        "EDGE_DEVICE_ID": "",
        "EDGE_CAMERAS": json.dumps([{"id": "gate", "source": "rtsp://10.0.0.9/1"}]),
        "EDGE_MODEL": "shelf:3",
    }
    out = tmp_path / "work" / "device.json"
    result = subprocess.run(
        [
            sys.executable,
            str(tmp_path / "current" / "bin" / "write_device_config.py"),
            "--out",
            str(out),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    config = json.loads(out.read_text())
    assert config["device_id"] == "core-7"
    assert config["cameras"] == [
        {"id": "gate", "source": "rtsp://10.0.0.9/1", "model": {"name": "shelf", "version": 3}}
    ]
    assert config["models"]["shelf:3"] == str(tmp_path / "current" / "models" / "shelf-3.onnx")

    env["EDGE_CAMERAS"] = json.dumps([{"id": "gate", "source": "rtsp://x", "process_fps": 0}])
    result = subprocess.run(
        [
            sys.executable,
            str(tmp_path / "current" / "bin" / "write_device_config.py"),
            "--out",
            str(out),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "the device config is invalid" in result.stderr and "process_fps" in result.stderr
