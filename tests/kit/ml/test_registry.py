"""The model registry against the session's moto server (a clean bucket per test)."""

from __future__ import annotations

import hashlib
import json
import tarfile
import threading
from datetime import timedelta

import pytest

from kit.core.contracts.model import ModelMetadata, ModelRef
from kit.registry import (
    ChecksumMismatchError,
    FormatFile,
    ModelRegistry,
    RegistryConflictError,
    RegistryError,
    fetch_artifact,
    pack_folder,
    parse_model_ref,
)


@pytest.fixture
def registry(backend_settings, tmp_path) -> ModelRegistry:
    return ModelRegistry(
        backend_settings.client("s3"),
        backend_settings.resources.bucket,
        cache_dir=tmp_path / "cache",
    )


@pytest.fixture
def model_files(tmp_path):
    """Stand-in format files: the registry treats them as opaque bytes."""
    onnx = tmp_path / "best.onnx"
    onnx.write_bytes(b"onnx bytes " * 100)
    weights = tmp_path / "best.pt"
    weights.write_bytes(b"torch bytes " * 100)
    openvino = tmp_path / "best_fp16_openvino_model"
    openvino.mkdir()
    (openvino / "best.xml").write_text("<net/>")
    (openvino / "best.bin").write_bytes(b"\x00\x01" * 64)
    (openvino / "metadata.yaml").write_text("names: {0: bottle}\n")
    return {"onnx": onnx, "pytorch": weights, "openvino": openvino}


def register(registry, files, name="shelf", **kwargs):
    kwargs.setdefault("classes", ["bottle"])
    kwargs.setdefault("input_size", 320)
    return registry.register(name, files, **kwargs)


def test_register_assigns_versions_and_records_checksums(registry, model_files):
    first = register(registry, model_files, metrics={"mAP50": 0.91}, dataset="datasets/shelf/v1/")
    second = register(registry, {"onnx": model_files["onnx"]}, parent="shelf:1")

    assert (first.version, second.version) == (1, 2)
    onnx = first.formats["onnx"]
    assert onnx.file == "model.onnx"
    assert onnx.sha256 == hashlib.sha256(model_files["onnx"].read_bytes()).hexdigest()
    assert onnx.size_bytes == model_files["onnx"].stat().st_size
    assert first.formats["openvino"].file == "model_openvino_model.tar"
    assert first.formats["openvino"].precision == "fp16"  # from the export folder's name
    assert second.parent == ModelRef(name="shelf", version=1)

    stored = registry.s3.get_object(Bucket=registry.bucket, Key="models/shelf/1/metadata.json")
    assert ModelMetadata.model_validate_json(stored["Body"].read()) == first
    keys = {o["Key"] for o in registry.s3.list_objects_v2(Bucket=registry.bucket)["Contents"]}
    assert {"models/shelf/1/model.onnx", "models/shelf/1/model.pt"} <= keys


def test_list_get_and_latest(registry, model_files):
    register(registry, model_files)
    register(registry, {"onnx": model_files["onnx"]}, name="fish", classes=["fish"])
    register(registry, {"onnx": model_files["onnx"]})

    assert [(m.name, m.version) for m in registry.list_models()] == [
        ("fish", 1),
        ("shelf", 1),
        ("shelf", 2),
    ]
    assert registry.get("shelf").version == 2
    assert registry.get("shelf", 1).version == 1
    assert registry.get("shelf:1").formats.keys() == {"onnx", "pytorch", "openvino"}
    assert registry.get(ModelRef(name="fish", version="latest")).classes == ["fish"]


def test_unknown_names_versions_aliases_and_formats_list_what_exists(registry, model_files):
    register(registry, {"onnx": model_files["onnx"]})

    with pytest.raises(RegistryError, match=r"no model named 'fish'.*registered models: shelf"):
        registry.get("fish")
    with pytest.raises(RegistryError, match=r"no version 7; versions: 1"):
        registry.get("shelf", 7)
    with pytest.raises(RegistryError, match=r"no alias 'production'; aliases: none"):
        registry.get("shelf:production")
    with pytest.raises(RegistryError, match=r"no 'openvino' file; formats: onnx"):
        registry.download("shelf", "openvino")
    with pytest.raises(ValueError, match="unknown format 'tflite'"):
        register(registry, {"tflite": model_files["onnx"]})
    with pytest.raises(ValueError, match="model name 'Shelf!'"):
        registry.get("Shelf!")


def test_invalid_metadata_does_not_use_up_a_version(registry, model_files):
    with pytest.raises(ValueError, match="multiple of the stride"):
        register(registry, {"onnx": model_files["onnx"]}, input_size=100)
    assert register(registry, {"onnx": model_files["onnx"]}).version == 1


def test_alias_rules(registry, model_files):
    register(registry, {"onnx": model_files["onnx"]})
    register(registry, {"onnx": model_files["onnx"]})

    assert registry.alias("shelf", "production", 1) == ModelRef(name="shelf", version=1)
    registry.alias("shelf", "staging", "latest")
    assert registry.aliases("shelf") == {"production": 1, "staging": 2}
    assert registry.get("shelf:production").version == 1

    registry.alias("shelf", "production", "staging")  # an alias may name another alias
    assert registry.aliases("shelf")["production"] == 2
    with pytest.raises(ValueError, match="reserved"):
        registry.alias("shelf", "latest", 1)
    with pytest.raises(ValueError, match="alias 'Prod!'"):
        registry.alias("shelf", "Prod!", 1)
    with pytest.raises(RegistryError, match="no version 5"):
        registry.alias("shelf", "production", 5)
    registry.remove_alias("shelf", "staging")
    assert registry.aliases("shelf") == {"production": 2}


def test_delete_refuses_aliased_versions_and_never_reuses_numbers(registry, model_files):
    register(registry, {"onnx": model_files["onnx"]})
    register(registry, {"onnx": model_files["onnx"]})
    registry.alias("shelf", "production", 2)

    with pytest.raises(RegistryConflictError, match="production"):
        registry.delete("shelf", 2)
    assert registry.delete("shelf", 1) == []
    assert registry.versions("shelf") == [2]
    assert registry.delete("shelf", 2, force=True) == ["production"]
    assert registry.aliases("shelf") == {}
    with pytest.raises(RegistryError, match="no model named 'shelf'"):
        registry.get("shelf")

    assert register(registry, {"onnx": model_files["onnx"]}).version == 3


def test_concurrent_registrations_get_distinct_versions(registry, model_files):
    versions, errors = [], []

    def worker():
        try:
            versions.append(register(registry, {"onnx": model_files["onnx"]}).version)
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert sorted(versions) == [1, 2, 3, 4, 5, 6]
    assert registry.versions("shelf") == [1, 2, 3, 4, 5, 6]


INT8 = "models/shelf/1/model_int8.onnx"


def int8_file(tmp_path, content: bytes):
    path = tmp_path / f"int8-{len(content)}.onnx"
    path.write_bytes(content)
    return path


def test_two_adds_of_one_format_at_once_never_leave_the_metadata_listing_a_replaced_file(
    backend_settings, registry, model_files, tmp_path
):
    """Both adds read the metadata before either writes it; A uploads its file and records it,
    then B, which has not seen A's metadata, uploads its own: B's file must not land on A's."""
    register(registry, {"onnx": model_files["onnx"]})
    files = {"a": int8_file(tmp_path, b"a" * 500), "b": int8_file(tmp_path, b"b" * 700)}
    b_read, a_recorded = threading.Event(), threading.Event()
    clients = {name: backend_settings.client("s3") for name in files}

    # after-call handlers see no parameters: the before-parameter-build one marks the context
    def mark_metadata(params, context, **_):
        context["metadata"] = params["Key"].endswith("metadata.json")

    def after_b_reads(context, **_):
        if context.get("metadata"):
            b_read.set()

    def before_a_records(params, context, **_):
        mark_metadata(params, context)
        if context["metadata"]:
            assert b_read.wait(30)

    def after_a_records(context, **_):
        if context.get("metadata"):
            a_recorded.set()

    def before_b_writes(params, **_):
        if params["Key"] == INT8:
            assert a_recorded.wait(30)

    clients["a"].meta.events.register("before-parameter-build.s3.PutObject", before_a_records)
    clients["a"].meta.events.register("after-call.s3.PutObject", after_a_records)
    clients["b"].meta.events.register("before-parameter-build.s3.GetObject", mark_metadata)
    clients["b"].meta.events.register("after-call.s3.GetObject", after_b_reads)
    clients["b"].meta.events.register("before-parameter-build.s3.PutObject", before_b_writes)
    outcome: dict[str, object] = {}

    def add(name):
        try:
            outcome[name] = ModelRegistry(clients[name], registry.bucket).add_format(
                "shelf:1", "onnx_int8", files[name]
            )
        except Exception as error:
            outcome[name] = error

    threads = [threading.Thread(target=add, args=(name,)) for name in files]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert isinstance(outcome["b"], RegistryConflictError), outcome["b"]
    assert "add it again" in str(outcome["b"])
    recorded = registry.get("shelf:1").formats["onnx_int8"]
    assert recorded.sha256 == outcome["a"].formats["onnx_int8"].sha256
    assert registry.download("shelf:1", "onnx_int8").read_bytes() == b"a" * 500


def add_that_dies_before_the_metadata(registry, file) -> None:
    """``add_format`` that stops after uploading its file, before writing the metadata (the
    process died, the network went away)."""

    def dies(params, **_):
        if params["Key"].endswith("metadata.json"):
            raise ConnectionError("the process died")

    registry.s3.meta.events.register("before-parameter-build.s3.PutObject", dies)
    try:
        with pytest.raises(ConnectionError):
            registry.add_format("shelf:1", "onnx_int8", file)
    finally:
        registry.s3.meta.events.unregister("before-parameter-build.s3.PutObject", dies)


def test_an_add_that_died_after_its_upload_is_taken_over(registry, model_files, tmp_path):
    """An add that uploaded its file and died before the metadata leaves a file nobody lists:
    the same file added again uses it; another file waits for `abandoned_upload_after`, then
    replaces it."""
    register(registry, {"onnx": model_files["onnx"]})
    first, other = int8_file(tmp_path, b"1" * 300), int8_file(tmp_path, b"2" * 400)

    add_that_dies_before_the_metadata(registry, first)
    assert "onnx_int8" not in registry.get("shelf:1").formats
    assert registry.s3.get_object(Bucket=registry.bucket, Key=INT8)["Body"].read() == b"1" * 300

    with pytest.raises(RegistryConflictError, match="add it again once the file is 15 minutes old"):
        registry.add_format("shelf:1", "onnx_int8", other)
    assert registry.s3.get_object(Bucket=registry.bucket, Key=INT8)["Body"].read() == b"1" * 300

    registry.abandoned_upload_after = timedelta(0)
    registry.add_format("shelf:1", "onnx_int8", other)
    assert registry.download("shelf:1", "onnx_int8").read_bytes() == b"2" * 400
    with pytest.raises(RegistryConflictError, match="has a 'onnx_int8' file already"):
        registry.add_format("shelf:1", "onnx_int8", first)


def test_the_same_file_added_again_after_a_failed_add_is_recorded(registry, model_files, tmp_path):
    register(registry, {"onnx": model_files["onnx"]})
    first = int8_file(tmp_path, b"1" * 300)

    add_that_dies_before_the_metadata(registry, first)

    added = registry.add_format("shelf:1", "onnx_int8", first)
    assert added.formats["onnx_int8"].sha256 == hashlib.sha256(b"1" * 300).hexdigest()
    assert registry.download("shelf:1", "onnx_int8").read_bytes() == b"1" * 300


def test_download_verifies_and_caches(registry, model_files, tmp_path):
    meta = register(registry, model_files)

    path = registry.download("shelf:1", "onnx")
    assert path == tmp_path / "cache" / "shelf" / "1" / "model.onnx"
    assert path.read_bytes() == model_files["onnx"].read_bytes()

    folder = registry.download("shelf", "openvino")
    assert folder.name == "model_openvino_model" and folder.is_dir()
    assert sorted(p.name for p in folder.iterdir()) == ["best.bin", "best.xml", "metadata.yaml"]
    assert (folder / "best.bin").read_bytes() == (model_files["openvino"] / "best.bin").read_bytes()

    path.write_bytes(b"tampered in the cache")
    assert registry.download("shelf:1", "onnx").read_bytes() == model_files["onnx"].read_bytes()
    assert meta.formats["onnx"].sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_download_detects_a_changed_file_in_the_bucket(registry, model_files, tmp_path):
    register(registry, {"onnx": model_files["onnx"]})
    registry.s3.put_object(Bucket=registry.bucket, Key="models/shelf/1/model.onnx", Body=b"evil")

    with pytest.raises(ChecksumMismatchError, match="models/shelf/1/model.onnx") as caught:
        registry.download("shelf", "onnx", cache_dir=tmp_path / "other")
    assert caught.value.actual == hashlib.sha256(b"evil").hexdigest()
    assert not any((tmp_path / "other" / "shelf" / "1").iterdir())


def test_fetch_artifact_works_with_a_plain_client_and_metadata(registry, model_files, tmp_path):
    """The edge runtime's path: its own boto3 client, metadata read from metadata.json."""
    register(registry, {"onnx": model_files["onnx"]})
    raw = registry.s3.get_object(Bucket=registry.bucket, Key="models/shelf/1/metadata.json")
    metadata = ModelMetadata.model_validate(json.loads(raw["Body"].read()))
    path = fetch_artifact(registry.s3, registry.bucket, metadata, "onnx", tmp_path / "edge")
    assert path.read_bytes() == model_files["onnx"].read_bytes()


def test_format_file_overrides_precision_and_target(registry, model_files, tmp_path):
    neo = tmp_path / "compiled.tar.gz"
    neo.write_bytes(b"neo")
    meta = register(registry, {"neo": FormatFile(neo, precision="fp16", target="jetson_xavier")})
    assert meta.formats["neo"].precision == "fp16"
    assert meta.formats["neo"].target == "jetson_xavier"
    with pytest.raises(ValueError, match="only openvino is registered from a folder"):
        register(registry, {"onnx": model_files["openvino"]})


def test_pack_folder_is_reproducible(model_files, tmp_path):
    first = pack_folder(model_files["openvino"], tmp_path / "a.tar")
    (model_files["openvino"] / "best.xml").touch()  # a new mtime must not change the archive
    second = pack_folder(model_files["openvino"], tmp_path / "b.tar")
    assert first.read_bytes() == second.read_bytes()
    with tarfile.open(first) as tar:
        assert tar.getnames() == ["best.bin", "best.xml", "metadata.yaml"]


def test_parse_model_ref():
    assert parse_model_ref("shelf:3") == ModelRef(name="shelf", version=3)
    assert parse_model_ref("shelf:production").version == "production"
    assert parse_model_ref(ModelRef(name="shelf"), 2).version == 2
    with pytest.raises(ValueError, match="version must be 1 or more"):
        parse_model_ref("shelf:0")
