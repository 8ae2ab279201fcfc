"""What a control change or a short source does to a device's cameras: a short image folder is
analysed whole however long its model takes to load, a config change loads a model only on the
camera whose model changed (the others keep their reader, processor, detector and tracker), and
an alias that moved in the registry is followed at the next alias check."""

from __future__ import annotations

import logging

import cv2
import pytest

from edge_app.app import EdgeApp
from edge_app.detectors import load_detector
from edge_app.runtime import DeviceRuntime
from edge_app.sources import CameraState, SourceStatus
from kit.core.contracts import ControlConfig, ModelRef
from tests.support.wait import wait_until

SHAPES_PRODUCTION = {"name": "shapes", "version": "production"}


def store_control_config(settings, config: ControlConfig) -> None:
    """Put ``config`` in the config table, where the device reads it."""
    settings.client("dynamodb").put_item(
        TableName=settings.resources.config_table,
        Item={"config_id": {"S": "current"}, "config": {"S": config.model_dump_json()}},
    )


def test_a_two_image_folder_is_analysed_whole_though_it_plays_faster_than_the_model_loads(
    backend, make_device_config, trained_model, tmp_path
):
    folder = tmp_path / "images"
    folder.mkdir()
    for index in range(2):
        assert cv2.imwrite(str(folder / f"{index}.jpg"), trained_model.frames[index])
    analysed = []
    config = make_device_config(
        cameras=[{"id": "folder-1", "source": f"{folder}/", "model": SHAPES_PRODUCTION}],
        control_source="none",
    )
    app = EdgeApp(config, settings=backend)
    camera = app.runtime.cameras["folder-1"]
    camera.on_result = lambda result, rendered: analysed.append(result.frame.index)
    reader = app.readers["folder-1"]
    app.start()
    try:
        wait_until(lambda: reader.state is CameraState.ENDED, what="the folder played out")
        wait_until(lambda: camera.processed == 2, what="both images analysed")
    finally:
        app.close()
    assert analysed == [0, 1]
    assert reader.status().dropped == 0


def test_a_config_change_loads_a_model_only_on_the_camera_whose_model_changed(
    backend, make_device_config, scene_video, caplog
):
    """Three cameras on ``shapes:production``; one switches model, one gets other thresholds
    and refresh rate, one is left as it is."""
    opened = []

    def open_detector(path):
        opened.append(path.name)
        return load_detector(path)

    config = make_device_config(
        cameras=[
            {
                "id": camera_id,
                "source": {"uri": str(scene_video), "loop": True},
                "model": SHAPES_PRODUCTION,
            }
            for camera_id in ("cam-a", "cam-b", "cam-c")
        ]
    )
    app = EdgeApp(config, settings=backend, open_detector=open_detector).start()
    cameras = app.runtime.cameras
    try:
        wait_until(
            lambda: all(camera.processed >= 2 for camera in cameras.values()),
            what="every camera analysing",
        )
        kept = {
            camera_id: (
                app.readers[camera_id],
                cameras[camera_id].processor,
                cameras[camera_id].processor.detector,
                cameras[camera_id].processor.tracker,
            )
            for camera_id in ("cam-b", "cam-c")
        }
        before = {camera_id: app.readers[camera_id].frame_count for camera_id in kept}
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="edge_app.runtime"):
            store_control_config(
                backend,
                ControlConfig.model_validate(
                    {
                        "revision": 1,
                        "defaults": {"refresh_s": 1, "confidence": 0.3},
                        "cameras": {
                            "cam-a": {"model": {"name": "shapes-b", "version": 1}},
                            "cam-b": {"refresh_s": 2, "iou": 0.5},
                        },
                    }
                ),
            )
            wait_until(
                lambda: (
                    str(cameras["cam-a"].model) == "shapes-b:1"
                    and cameras["cam-b"].processor.camera_settings.iou == 0.5
                ),
                what="camera a on shapes-b:1 and camera b at IoU 0.5",
            )
            analysed = {camera_id: cameras[camera_id].processed for camera_id in kept}
            wait_until(
                lambda: all(
                    cameras[camera_id].processed > analysed[camera_id] + 2 for camera_id in kept
                ),
                what="cameras b and c analysing after the change",
            )
        loading = [r.getMessage() for r in caplog.records if "loading model" in r.getMessage()]
        for camera_id, (reader, processor, detector, tracker) in kept.items():
            camera = cameras[camera_id]
            assert app.readers[camera_id] is reader and camera.processor is processor
            assert processor.detector is detector and processor.tracker is tracker
            assert reader.frame_count > before[camera_id] and reader.reconnects == 0
            assert str(camera.model) == "shapes:production" and camera.error is None
        assert cameras["cam-b"].camera_settings.refresh_s == 2
        assert loading == ["camera cam-a: loading model shapes-b:1 (fp32)"]
        assert sorted(opened) == ["shapes-b.onnx", "shapes.onnx"]
    finally:
        app.close()


@pytest.fixture
def registered_shapes(backend, models_dir, trained_model) -> str:
    """``shapes-reg`` registered twice (versions 1 and 2) with ``production`` on version 1."""
    from kit import registry

    classes = [trained_model.class_names[i] for i in sorted(trained_model.class_names)]
    name = "shapes-reg"
    for version in registry.list_models(name, settings=backend):
        registry.delete(name, version.version, force=True, settings=backend)
    versions = [
        registry.register(
            name,
            {"onnx": models_dir / "shapes.onnx"},
            classes=classes,
            input_size=trained_model.imgsz,
            settings=backend,
        ).version
        for _ in range(2)
    ]
    registry.alias(name, "production", versions[0], settings=backend)
    return name


def test_a_moved_alias_is_followed_at_the_next_check_and_an_unmoved_one_keeps_the_camera(
    backend, make_device_config, registered_shapes
):
    from kit import registry

    ref = {"name": registered_shapes, "version": "production"}
    config = make_device_config(
        cameras=[{"id": "cam-a", "source": "unused", "model": ref}], control_source="none"
    )
    runtime = DeviceRuntime(config, settings=backend, control_poll=False)
    status = SourceStatus("cam-a", "test", CameraState.RUNNING, 0.0, 0, 0, 0, None, None)
    camera = runtime.add_camera(config.cameras[0], lambda: status)
    try:
        camera.apply_pending(wait_for_first_model=True)
        first = registry.get(f"{registered_shapes}:production", settings=backend).version
        assert camera.model == ModelRef(name=registered_shapes, version=first)
        processor, detector = camera.processor, camera.processor.detector

        runtime.check_aliases()
        camera.apply_pending()
        wait_until(
            lambda: camera.apply_pending() or camera.loading is None, what="the alias checked"
        )
        assert camera.processor is processor and camera.processor.detector is detector

        moved = registry.alias(registered_shapes, "production", first + 1, settings=backend)
        runtime.apply_control(ControlConfig.model_validate({"revision": 2}))
        camera.apply_pending()
        assert camera.loading is None, "a revision that leaves the model as it is loads nothing"
        runtime.check_aliases()
        wait_until(
            lambda: camera.apply_pending() or camera.model == moved,
            what=f"the camera on {moved}",
        )
        assert camera.processor is processor and camera.processor.detector is not detector
        assert camera.error is None
    finally:
        runtime.close()
