"""The Panorama application: manifest, packages, assets, and the validator's messages."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from kit.package import (
    PanoramaPackageError,
    build_panorama_app,
    check_panorama_app,
    panorama,
    validate_panorama_app,
)

ACCOUNT = "123456789012"


@pytest.fixture(scope="session")
def neo_archive(tmp_path_factory) -> Path:
    """A Neo model archive holding a TorchScript ``model.pth`` (packages never load it)."""
    folder = tmp_path_factory.mktemp("neo")
    (folder / "model.pth").write_bytes(b"PK\x03\x04torchscript" + bytes(range(256)) * 32)
    archive = folder / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder / "model.pth", arcname="model.pth")
    return archive


@pytest.fixture
def app(tmp_path, bundle, neo_archive):
    return build_panorama_app(
        tmp_path, bundle, model_file=neo_archive, input_size=320, device_id="pano-1"
    )


def _json(path: Path) -> dict:
    return json.loads(path.read_text())


def test_graph_has_camera_code_model_parameters_and_output(app):
    graph = app.manifest["nodeGraph"]
    assert graph["envelopeVersion"] == "2021-01-01"
    assert {p["name"] for p in graph["packages"]} == {
        f"{ACCOUNT}::evk_edge_app_code",
        f"{ACCOUNT}::evk_edge_app_model",
        "panorama::abstract_rtsp_media_source",
        "panorama::hdmi_data_sink",
    }
    nodes = {node["name"]: node for node in graph["nodes"]}
    assert (
        nodes["camera_node"]["interface"]
        == "panorama::abstract_rtsp_media_source.rtsp_v1_interface"
    )
    assert nodes["code_node"]["interface"] == f"{ACCOUNT}::evk_edge_app_code.interface"
    assert nodes["model_node"]["interface"] == f"{ACCOUNT}::evk_edge_app_model.interface"
    assert nodes["output_node"]["interface"] == "panorama::hdmi_data_sink.hdmi0"
    assert (nodes["threshold"]["interface"], nodes["threshold"]["value"]) == ("float32", 0.25)
    assert (nodes["refresh_rate"]["interface"], nodes["refresh_rate"]["value"]) == ("int32", 5)
    assert nodes["device_id"]["value"] == "pano-1"
    assert {(e["producer"], e["consumer"]) for e in graph["edges"]} == {
        ("camera_node.video_out", "code_node.video_in"),
        ("code_node.video_out", "output_node.video_in"),
        ("threshold", "code_node.threshold"),
        ("refresh_rate", "code_node.refresh_rate"),
        ("device_id", "code_node.device_id"),
    }
    assert validate_panorama_app(app.path) == []


def test_code_package_runs_the_adapter_from_the_bundle(app, bundle):
    folder = app.code_package
    assert folder.name == f"{ACCOUNT}-evk_edge_app_code-1.0"
    package = _json(folder / "package.json")["nodePackage"]
    (interface,) = package["interfaces"]
    assert interface["category"] == "business_logic"
    assert [p["name"] for p in interface["inputs"]] == [
        "video_in",
        "threshold",
        "refresh_rate",
        "device_id",
    ]
    runtime = _json(folder / "descriptor.json")["runtimeDescriptor"]
    assert runtime["entry"] == {"path": "python3", "name": "/panorama/app.py"}
    app_py = (folder / "src" / "app.py").read_text()
    assert "from edge_app.panorama import run_application" in app_py
    assert "model_node='model_node'" in app_py and "model_input='input0'" in app_py
    compile(app_py, "app.py", "exec")
    assert (folder / "src" / bundle.path.name).read_bytes() == bundle.path.read_bytes()
    dockerfile = (folder / "Dockerfile").read_text()
    assert "FROM public.ecr.aws/panorama/panorama-application" in dockerfile
    assert "COPY src /panorama" in dockerfile
    assert "-r /panorama/bundle/requirements.txt" in dockerfile


def test_model_package_holds_the_torchscript_for_neo(app, neo_archive):
    package = _json(app.model_package / "package.json")["nodePackage"]
    (asset,) = package["assets"]
    (implementation,) = asset["implementations"]
    archive = app.path / "assets" / implementation["assetUri"]
    assert (
        implementation["assetUri"] == hashlib.sha256(archive.read_bytes()).hexdigest() + ".tar.gz"
    )
    assert archive.read_bytes() == neo_archive.read_bytes()
    descriptor = _json(app.model_package / "descriptor.json")["mlModelDescriptor"]
    assert descriptor == {
        "envelopeVersion": "2021-01-01",
        "framework": "PYTORCH",
        "inputs": [{"name": "input0", "shape": [1, 3, 320, 320]}],
    }
    assert _json(app.path / "assets" / implementation["descriptorUri"]) == {
        "mlModelDescriptor": descriptor
    }


def test_without_a_model_node_the_code_runs_onnx_runtime(tmp_path, bundle):
    app = build_panorama_app(tmp_path, bundle, app_name="cpu_app")
    assert app.model_package is None
    assert "model_node=None" in (app.code_package / "src" / "app.py").read_text()
    assert "model_node" not in {n["name"] for n in app.manifest["nodeGraph"]["nodes"]}
    assert validate_panorama_app(app.path) == []


def _edit_json(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def _graph(app):
    return app.graph_file


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        (
            lambda app: _edit_json(_graph(app), lambda g: g["nodeGraph"]["edges"].pop(2)),
            "input code_node.threshold is fed by 0 edges",
        ),
        (
            lambda app: _edit_json(
                _graph(app),
                lambda g: g["nodeGraph"]["edges"][2].update(consumer="code_node.treshold"),
            ),
            "node 'code_node' has no input 'treshold' (inputs: video_in, threshold, refresh_rate, device_id)",
        ),
        (
            lambda app: _edit_json(
                _graph(app),
                lambda g: g["nodeGraph"]["edges"][0].update(producer="camera.video_out"),
            ),
            "producer 'camera.video_out' names no node",
        ),
        (
            lambda app: _edit_json(
                _graph(app),
                lambda g: g["nodeGraph"]["edges"].append(
                    {"producer": "threshold", "consumer": "code_node.video_in"}
                ),
            ),
            "threshold (float32) cannot feed code_node.video_in (media)",
        ),
        (
            lambda app: _edit_json(
                _graph(app), lambda g: g["nodeGraph"]["nodes"][4].update(value="high")
            ),
            "value 'high' is not a float32",
        ),
        (
            lambda app: _edit_json(_graph(app), lambda g: g["nodeGraph"]["packages"].pop(0)),
            "which graph.json does not list in packages",
        ),
        (
            lambda app: _edit_json(_graph(app), lambda g: g["nodeGraph"].pop("edges")),
            "nodeGraph: missing required key 'edges'",
        ),
        (
            lambda app: shutil.rmtree(app.model_package),
            f"packages/{ACCOUNT}-evk_edge_app_model-1.0/ does not exist",
        ),
        (
            lambda app: next((app.path / "assets").glob("*.tar.gz")).unlink(),
            ".assetUri: assets/",
        ),
        (
            lambda app: next((app.path / "assets").glob("*.tar.gz")).write_bytes(b"other"),
            "has sha256",
        ),
        (
            lambda app: (app.code_package / "src" / "app.py").unlink(),
            "entry /panorama/app.py has no file src/app.py",
        ),
        (
            lambda app: (app.code_package / "Dockerfile").unlink(),
            "Dockerfile: missing",
        ),
        (
            lambda app: (app.code_package / "Dockerfile").write_text(
                "\n".join(
                    line
                    for line in (app.code_package / "Dockerfile").read_text().splitlines()
                    if " -c " not in line
                )
            ),
            "must check that python3 (the entry's interpreter) is Python 3.11+",
        ),
        (
            lambda app: _edit_json(
                app.model_package / "descriptor.json",
                lambda d: d["mlModelDescriptor"].update(framework="CAFFE"),
            ),
            "framework 'CAFFE' must be one of",
        ),
        (
            lambda app: _edit_json(
                app.model_package / "package.json",
                lambda d: d["nodePackage"]["interfaces"][0].update(asset="missing_asset"),
            ),
            "asset 'missing_asset' is not among the package's assets",
        ),
        (
            lambda app: _edit_json(
                app.code_package / "package.json", lambda d: d["nodePackage"].update(version="2.0")
            ),
            "do not match the folder",
        ),
    ],
)
def test_broken_applications_fail_with_a_clear_message(app, breakage, message):
    breakage(app)
    problems = validate_panorama_app(app.path)
    assert any(message in problem for problem in problems), problems
    with pytest.raises(PanoramaPackageError, match="invalid Panorama application"):
        check_panorama_app(app.path)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"account_id": "12345"}, "account id '12345' must be 12 digits"),
        ({"app_name": "my app"}, "app name 'my app'"),
        ({"package_version": "1"}, "package version '1' must be major.minor"),
        ({"threshold": 1.5}, "threshold 1.5 must be between 0 and 1"),
        ({"model_file": "model.tar.gz"}, "input_size is required"),
    ],
)
def test_bad_build_options_are_refused(tmp_path, bundle, options, message):
    with pytest.raises(PanoramaPackageError, match=message):
        build_panorama_app(tmp_path, bundle, **options)


def test_a_model_that_is_not_a_neo_archive_is_refused(tmp_path, bundle):
    other = tmp_path / "model.pt"
    other.write_bytes(b"x")
    with pytest.raises(PanoramaPackageError, match="must be a Neo model.tar.gz archive"):
        build_panorama_app(tmp_path / "out", bundle, model_file=other, input_size=320)


def test_an_onnx_model_node_is_refused_panorama_documents_pytorch_mxnet_tensorflow(
    tmp_path, bundle, model_file
):
    with pytest.raises(PanoramaPackageError, match="PYTORCH, MXNET, TENSORFLOW models, not ONNX"):
        build_panorama_app(tmp_path / "out", bundle, model_file=model_file, input_size=320)


def _run_dockerfile_check(dockerfile: str) -> subprocess.CompletedProcess:
    """Run the Dockerfile's Python check as the image build would (a shell RUN line)."""
    (line,) = [ln for ln in dockerfile.splitlines() if ln.startswith("RUN ") and " -c " in ln]
    command = line.removeprefix("RUN ").replace("python3 ", f"{sys.executable} ", 1)
    return subprocess.run(["/bin/sh", "-c", command], capture_output=True, text=True, timeout=60)


def test_the_code_image_checks_it_runs_the_edge_runtime_s_python(app, monkeypatch):
    dockerfile = (app.code_package / "Dockerfile").read_text()
    assert _run_dockerfile_check(dockerfile).returncode == 0  # this machine's Python 3.11

    monkeypatch.setattr(panorama, "RUNTIME_PYTHON", (3, 99))
    too_old = _run_dockerfile_check(panorama._code_dockerfile("b.zip", "/b", "base", "python3"))

    assert too_old.returncode != 0
    assert "the edge runtime needs Python 3.99 or newer; this image has 3.11" in too_old.stderr


def test_the_interpreter_and_base_image_are_the_ones_asked_for(tmp_path, bundle):
    app = build_panorama_app(
        tmp_path, bundle, base_image="registry.example/panorama-py311:1", python="python3.11"
    )
    runtime = _json(app.code_package / "descriptor.json")["runtimeDescriptor"]
    dockerfile = (app.code_package / "Dockerfile").read_text()
    assert runtime["entry"]["path"] == "python3.11"
    assert "FROM registry.example/panorama-py311:1" in dockerfile
    assert "RUN python3.11 -c " in dockerfile and "python3.11 -m pip install" in dockerfile
    assert validate_panorama_app(app.path) == []
