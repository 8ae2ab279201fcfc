"""A device's model store keeps loaded what its cameras run and a few idle detectors for a quick
switch back, not every model it ever ran: each load is a lease, given back when a camera
switches away (or abandons a load), and the oldest idle detectors are closed."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest

from edge_app.config import CameraConfig
from edge_app.detectors import load_detector
from edge_app.runtime import CameraRuntime, ModelStore
from edge_app.sources import CameraState, Frame, SourceStatus
from kit.core.contracts import CameraSettings, ModelRef
from tests.support.wait import wait_until

NAMES = ("m-a", "m-b", "m-c", "m-d")


@pytest.fixture
def store(models_dir) -> ModelStore:
    """Four models (the same network under four names), at most one idle detector kept."""
    return ModelStore(preloaded={name: models_dir / "shapes.onnx" for name in NAMES}, keep_idle=1)


def leases(store: ModelStore) -> dict[str, int]:
    """Leases by model name."""
    return {key.split(":")[0]: count for key, count in store.loaded.items()}


def assert_closed(detector) -> None:
    with pytest.raises(RuntimeError):
        detector.infer(detector.new_input_buffer())


def test_a_detector_is_closed_once_no_camera_runs_it_and_it_is_not_among_the_idle_kept(store):
    _, first = store.load(ModelRef(name="m-a", version=1))
    assert store.load(ModelRef(name="m-a", version=1))[1] is first  # a second camera on it
    store.release(first)
    assert leases(store) == {"m-a": 1}
    store.release(first)
    assert leases(store) == {"m-a": 0}, "kept idle: no camera runs it, one idle may stay"
    assert store.load(ModelRef(name="m-a", version=1))[1] is first, "switched back: no reload"
    store.release(first)

    _, second = store.load(ModelRef(name="m-b", version=1))
    store.release(second)  # now two idle, one too many: the one released first goes
    assert leases(store) == {"m-b": 0}
    assert_closed(first)
    second.infer(second.new_input_buffer())  # the one kept still runs

    _, again = store.load(ModelRef(name="m-a", version=1))
    assert again is not first, "a model closed is opened again from its file"
    assert again.infer(again.new_input_buffer()).ndim == 3
    store.release(object())  # not from this store: ignored
    store.release(first)  # closed already: ignored
    assert leases(store) == {"m-a": 1, "m-b": 0}


def test_keep_idle_is_bounded(models_dir):
    with pytest.raises(ValueError, match="keep_idle"):
        ModelStore(preloaded={"m-a": models_dir / "shapes.onnx"}, keep_idle=-1)


def test_two_cameras_loading_one_model_at_once_share_one_detector_and_the_extra_is_closed(
    models_dir,
):
    """GIVEN two cameras asking for the same model at the same moment (both open the file
    before either has stored it), THEN both get the first one stored, with a lease each, and
    the second one opened is closed, not left running."""
    both_opening = threading.Barrier(2, timeout=60)
    opened = []

    def open_detector(path):
        detector = load_detector(path)
        opened.append(detector)
        both_opening.wait()
        return detector

    store = ModelStore(preloaded={"m-a": models_dir / "shapes.onnx"}, open_detector=open_detector)
    with ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(store.load, ModelRef(name="m-a", version=1)) for _ in range(2)]
        got = [future.result(timeout=120)[1] for future in futures]
    assert got[0] is got[1] and len(opened) == 2
    assert leases(store) == {"m-a": 2}
    (extra,) = [detector for detector in opened if detector is not got[0]]
    assert_closed(extra)


def camera_on(store: ModelStore, loader) -> CameraRuntime:
    status = SourceStatus("cam-1", "test", CameraState.RUNNING, 0.0, 0, 0, 0, None, None)
    return CameraRuntime(
        CameraConfig(id="cam-1", source="unused", model=ModelRef(name="m-a", version=1)),
        store,
        loader=loader,
        source_status=lambda: status,
        device_id="dev-1",
    )


def switch(camera: CameraRuntime, name: str) -> None:
    camera.apply(CameraSettings(model=ModelRef(name=name, version=1)))
    wait_until(
        lambda: camera.apply_pending() or camera.model == ModelRef(name=name, version=1),
        what=f"the camera on {name}",
    )


def test_a_camera_switching_model_after_model_keeps_only_its_own_and_one_idle_loaded(
    store, trained_model
):
    frame = Frame(trained_model.frames[0], 0, datetime(2026, 12, 5, tzinfo=UTC), "cam-1")
    with ThreadPoolExecutor(1) as loader:
        camera = camera_on(store, loader)
        camera.apply_pending(wait_for_first_model=True)
        ran = [camera.processor.detector]
        for name in NAMES[1:]:
            switch(camera, name)
            ran.append(camera.processor.detector)
            assert leases(store) == {name: 1, NAMES[NAMES.index(name) - 1]: 0}
            assert len(camera.process(frame).detections) > 0
        for closed in ran[:-2]:
            assert_closed(closed)

        switch(camera, "m-c")  # back to the idle one: the same detector, not a new load
        assert camera.processor.detector is ran[2]
        assert leases(store) == {"m-c": 1, "m-d": 0}
        assert camera.error is None


def test_a_load_abandoned_for_another_model_gives_its_lease_back(store):
    with ThreadPoolExecutor(1) as loader:
        camera = camera_on(store, loader)
        camera.apply_pending(wait_for_first_model=True)
        camera.apply(CameraSettings(model=ModelRef(name="m-b", version=1)))
        camera.apply_pending()  # m-b starts loading ...
        camera.apply(CameraSettings(model=ModelRef(name="m-c", version=1)))
        switch(camera, "m-c")  # ... and is abandoned for m-c, loaded or not
        wait_until(
            lambda: leases(store).get("m-b", 0) == 0, what="m-b's lease given back once loaded"
        )
        loaded = leases(store)
        assert loaded["m-c"] == 1 and sum(loaded.values()) == 1
        assert len(loaded) <= 2, f"one running and at most one idle, got {loaded}"


def test_a_load_that_ends_on_the_running_detector_takes_no_second_lease(store):
    """GIVEN a camera on a model shipped with the app, WHEN it asks for INT8 (which such a model
    lacks: it runs its FP32 file, the very detector running), THEN nothing is switched and the
    detector has still one lease, so that switching away later closes it."""
    with ThreadPoolExecutor(1) as loader:
        camera = camera_on(store, loader)
        camera.apply_pending(wait_for_first_model=True)
        detector = camera.processor.detector
        camera.apply(CameraSettings(model=ModelRef(name="m-a", version=1), precision="int8"))
        camera.apply_pending()
        wait_until(lambda: camera.apply_pending() or camera.loading is None, what="the load")
        assert camera.processor.detector is detector and camera.precision_fallback
        assert leases(store) == {"m-a": 1}
