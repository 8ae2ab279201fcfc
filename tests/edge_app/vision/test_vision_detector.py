"""Detectors on a real (small, trained here) YOLOv8n: parity with ultralytics, metadata, backends."""

from __future__ import annotations

import shutil
import threading

import numpy as np
import pytest

from edge_app.detections import Detections, box_iou
from edge_app.detectors import (
    Detector,
    DetectorMetadata,
    backend_for_path,
    load_detector,
    read_metadata_yaml,
    read_onnx_metadata,
)


def assert_same_detections(ours: list[Detections], reference: list[Detections]) -> None:
    """Same classes, IoU >= 0.9 for >= 95 % of boxes, confidences within 1e-3, on >= 20 boxes."""
    total = matched = 0
    for mine, theirs in zip(ours, reference, strict=True):
        total += len(theirs)
        if not len(theirs) or not len(mine):
            continue
        iou = box_iou(theirs.xyxy, mine.xyxy)
        iou[theirs.class_id[:, None] != mine.class_id[None, :]] = 0
        best = iou.argmax(axis=1)
        close = np.abs(theirs.confidence - mine.confidence[best]) <= 1e-3
        matched += int(((iou.max(axis=1) >= 0.9) & close).sum())
    assert total >= 20, f"the test model found only {total} boxes: parity would prove little"
    assert sum(len(d) for d in ours) == total
    assert matched >= 0.95 * total, f"{matched} of {total} boxes match ultralytics"


@pytest.fixture(scope="module")
def ultralytics_predict(yolo, trained_model):
    """Detections of ``YOLO(model_path).predict`` on the test frames."""

    def predict(model_path, **options) -> list[Detections]:
        model = yolo(str(model_path), task="detect")
        return [
            Detections.from_ultralytics(
                model.predict(frame, imgsz=trained_model.imgsz, verbose=False, **options)[0]
            )
            for frame in trained_model.frames
        ]

    return predict


@pytest.fixture(scope="module")
def onnx_detector(trained_model) -> Detector:
    return load_detector(trained_model.onnx)


def test_onnxruntime_detector_matches_ultralytics_predict(
    trained_model, onnx_detector, ultralytics_predict
):
    expected = ultralytics_predict(trained_model.onnx, conf=0.25, iou=0.45)
    ours = [onnx_detector.detect(frame, conf=0.25, iou=0.45) for frame in trained_model.frames]
    assert_same_detections(ours, expected)


def test_openvino_detector_matches_ultralytics_predict(
    trained_model, openvino_model, ultralytics_predict
):
    detector = load_detector(openvino_model)
    assert detector.backend.name == "openvino"
    expected = ultralytics_predict(openvino_model, conf=0.3, iou=0.5)
    ours = [detector.detect(frame, conf=0.3, iou=0.5) for frame in trained_model.frames]
    assert_same_detections(ours, expected)


def test_classes_filter_matches_ultralytics(trained_model, onnx_detector, ultralytics_predict):
    expected = ultralytics_predict(trained_model.onnx, iou=0.45, classes=[1, 2])
    ours = [
        onnx_detector.detect(frame, iou=0.45, classes=["ball", 2]) for frame in trained_model.frames
    ]
    assert all(set(d.class_id.tolist()) <= {1, 2} for d in ours)
    assert_same_detections(ours, expected)


def test_stages_give_the_same_result_as_detect(trained_model, onnx_detector):
    frame = trained_model.frames[0]
    tensor, info = onnx_detector.preprocess(frame)
    staged = onnx_detector.postprocess(onnx_detector.infer(tensor), info, conf=0.25, iou=0.45)
    direct = onnx_detector.detect(frame)
    np.testing.assert_array_equal(staged.xyxy, direct.xyxy)
    assert staged.class_names == trained_model.class_names


def test_boxes_lie_inside_the_frame(trained_model, onnx_detector):
    for frame in trained_model.frames:
        detections = onnx_detector.detect(frame, conf=0.05)
        height, width = frame.shape[:2]
        assert (detections.xyxy >= 0).all()
        assert (detections.xyxy[:, 0::2] <= width).all() and (
            detections.xyxy[:, 1::2] <= height
        ).all()


def test_nms_free_export_matches_ultralytics(trained_model, ultralytics_predict):
    # Exported with NMS inside the graph: output (1, 300, 6), the layout of YOLO26-style heads.
    path = trained_model.export(
        "with_nms", format="onnx", imgsz=trained_model.imgsz, nms=True, simplify=False
    )
    detector = load_detector(path)
    tensor, _ = detector.preprocess(trained_model.frames[0])
    assert detector.infer(tensor).shape[-1] == 6
    expected = ultralytics_predict(path, conf=0.25)
    assert_same_detections([detector.detect(f, conf=0.25) for f in trained_model.frames], expected)


def test_metadata_is_read_from_the_onnx_model(trained_model, onnx_detector):
    assert onnx_detector.class_names == trained_model.class_names
    assert onnx_detector.imgsz == (trained_model.imgsz, trained_model.imgsz)
    assert onnx_detector.metadata.stride == 32
    assert onnx_detector.metadata.task == "detect"
    assert onnx_detector.metadata.batch == 1


def test_onnx_metadata_reader_agrees_with_onnxruntime(trained_model):
    import onnxruntime

    session = onnxruntime.InferenceSession(str(trained_model.onnx))
    assert read_onnx_metadata(trained_model.onnx) == session.get_modelmeta().custom_metadata_map


def test_metadata_is_read_from_the_openvino_export(trained_model, openvino_model):
    values = read_metadata_yaml(openvino_model / "metadata.yaml")
    metadata = DetectorMetadata.from_mapping(values)
    assert metadata.class_names == trained_model.class_names
    assert (metadata.imgsz, metadata.stride, metadata.task) == (
        (trained_model.imgsz, trained_model.imgsz),
        32,
        "detect",
    )
    assert load_detector(openvino_model).metadata == metadata


def test_openvino_falls_back_to_the_labels_in_the_ir(trained_model, openvino_model, tmp_path):
    copy = shutil.copytree(openvino_model, tmp_path / "plain_openvino_model")
    (copy / "metadata.yaml").unlink()
    detector = load_detector(copy)
    assert detector.class_names == trained_model.class_names
    assert detector.imgsz == (trained_model.imgsz, trained_model.imgsz)  # from the input shape


def test_openvino_reads_the_onnx_file_too(trained_model, onnx_detector):
    pytest.importorskip("openvino", reason="openvino is not installed")
    detector = load_detector(trained_model.onnx, backend="openvino", precision="f32")
    assert detector.backend.name == "openvino"
    assert detector.class_names == trained_model.class_names
    tensor, _ = onnx_detector.preprocess(trained_model.frames[0])
    np.testing.assert_allclose(detector.infer(tensor), onnx_detector.infer(tensor), atol=2e-3)


def test_two_detectors_at_once_are_independent(trained_model, onnx_detector):
    other_path = trained_model.export("at_224", format="onnx", imgsz=224, simplify=False)
    other = load_detector(other_path, class_names={0: "crate", 1: "fish", 2: "helmet"})
    frames = trained_model.frames[:8]
    alone = [onnx_detector.detect(frame) for frame in frames]
    other_alone = [other.detect(frame) for frame in frames]
    assert other.imgsz == (224, 224) and onnx_detector.imgsz == (
        trained_model.imgsz,
        trained_model.imgsz,
    )
    assert (
        onnx_detector.class_names == trained_model.class_names
    )  # the other model's names did not leak
    for frame, expected, other_expected in zip(frames, alone, other_alone, strict=True):
        interleaved, other_interleaved = onnx_detector.detect(frame), other.detect(frame)
        np.testing.assert_array_equal(interleaved.xyxy, expected.xyxy)
        np.testing.assert_array_equal(other_interleaved.xyxy, other_expected.xyxy)
        assert set(other_interleaved.counts()) == {"crate", "fish", "helmet"}

    results: dict[str, list[Detections]] = {}

    def run(name: str, detector: Detector) -> None:
        results[name] = [detector.detect(frame) for frame in frames * 3]

    threads = [threading.Thread(target=run, args=a) for a in (("a", onnx_detector), ("b", other))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for got, expected in zip(results["a"], alone * 3, strict=True):
        np.testing.assert_array_equal(got.xyxy, expected.xyxy)
    for got, expected in zip(results["b"], other_alone * 3, strict=True):
        np.testing.assert_array_equal(got.xyxy, expected.xyxy)


def test_backend_is_picked_from_the_path(tmp_path):
    assert backend_for_path("model.onnx") == "onnxruntime"
    assert backend_for_path("model.xml") == "openvino"
    openvino_dir = tmp_path / "best_openvino_model"
    openvino_dir.mkdir()
    (openvino_dir / "best.xml").write_text("<net/>")
    assert backend_for_path(openvino_dir) == "openvino"
    (tmp_path / "best.pt").touch()
    with pytest.raises(ValueError, match=r"expected a \.onnx file, an OpenVINO \.xml"):
        backend_for_path(tmp_path / "best.pt")


def test_clear_errors_for_bad_models_and_arguments(trained_model, onnx_detector, tmp_path):
    with pytest.raises(FileNotFoundError, match="no model at"):
        load_detector(tmp_path / "missing.onnx")
    with pytest.raises(
        ValueError, match=r"inference\.backend: must be one of .* \(got 'tensorrt'\)"
    ):
        load_detector(trained_model.onnx, backend="tensorrt")
    with pytest.raises(ValueError, match="conf must be between 0 and 1"):
        onnx_detector.detect(trained_model.frames[0], conf=25)
    with pytest.raises(ValueError, match="unknown class name 'person'"):
        onnx_detector.detect(trained_model.frames[0], classes=["person"])
    with pytest.raises(ValueError, match="expected a BGR frame"):
        onnx_detector.detect(np.zeros((10, 10), np.uint8))


def test_models_that_are_not_detectors_are_refused():
    metadata = DetectorMetadata.from_mapping(
        {"names": "{0: 'a'}", "imgsz": "[64, 64]", "task": "segment"}
    )
    with pytest.raises(ValueError, match="task 'segment'"):
        metadata.check_supported()


@pytest.mark.parametrize(
    ("values", "message"),
    [({"imgsz": "[64, 64]"}, "no class names"), ({"names": "{0: 'a'}"}, "no input size")],
)
def test_incomplete_metadata_is_reported(values, message):
    with pytest.raises(ValueError, match=message):
        DetectorMetadata.from_mapping(values, source="model.onnx")


def test_metadata_accepts_typed_values_and_name_lists():
    metadata = DetectorMetadata.from_mapping(
        {"names": ["hard hat", "person"], "imgsz": 320, "stride": 32, "end2end": True}
    )
    assert metadata.class_names == {0: "hard hat", 1: "person"}
    assert metadata.imgsz == (320, 320) and metadata.end2end


def test_a_file_that_is_not_onnx_is_reported(tmp_path):
    path = tmp_path / "weights.onnx"
    path.write_bytes(b"\x0f\xff\xff")
    with pytest.raises(ValueError, match="is not an ONNX model"):
        read_onnx_metadata(path)


@pytest.fixture(scope="module", params=["onnxruntime", "openvino"])
def model_for_backend(request, trained_model):
    """The test model and the backend name to load it with."""
    if request.param == "openvino":
        return request.getfixturevalue("openvino_model"), "openvino"
    return trained_model.onnx, "onnxruntime"


def test_async_jobs_give_what_sync_inference_gives(trained_model, model_for_backend):
    path, backend = model_for_backend
    latency = load_detector(path, backend=backend, performance_hint="latency", threads=2)
    throughput = load_detector(path, backend=backend, performance_hint="throughput", threads=2)
    assert latency.max_in_flight == 1 and throughput.max_in_flight >= 2
    tensors = [latency.preprocess(frame)[0].copy() for frame in trained_model.frames]
    expected = [latency.infer(tensor) for tensor in tensors]
    # more jobs than slots, all submitted before any result is read: none may wait for another
    jobs = [throughput.submit(tensor) for tensor in tensors * 3]
    for job, want in zip(jobs, expected * 3, strict=True):
        np.testing.assert_allclose(job.result(timeout=30), want, rtol=1e-4, atol=1e-4)
        assert job.done() and job.elapsed_ms > 0
    outputs = [job.result() for job in jobs]
    assert all(a is not b for a, b in zip(outputs, outputs[1:], strict=False)), "outputs are copies"
    throughput.backend.close()


def test_failed_inference_raises_from_the_job_or_submit(trained_model, model_for_backend):
    path, backend = model_for_backend
    detector = load_detector(path, backend=backend)
    wrong = np.zeros((1, 3, 8, 8), np.float32)
    with pytest.raises(Exception, match=r"(?i)dimension|shape"):
        detector.submit(wrong).result(timeout=30)
    tensor = detector.preprocess(trained_model.frames[0])[0]
    assert detector.infer(tensor).shape[0] == 1, "a failed job leaves the backend usable"


def test_a_tensor_of_another_dtype_or_layout_is_converted(trained_model, model_for_backend):
    path, backend = model_for_backend
    detector = load_detector(path, backend=backend)
    tensor = detector.preprocess(trained_model.frames[0])[0]
    expected = detector.infer(tensor.copy())
    as_float64 = tensor.astype(np.float64)
    strided = np.asfortranarray(tensor)  # same values, not C-contiguous
    for other in (as_float64, strided):
        np.testing.assert_allclose(detector.submit(other).result(timeout=30), expected, atol=1e-4)


def test_unknown_performance_hint_is_refused(trained_model):
    with pytest.raises(
        ValueError, match=r"performance_hint: Input should be 'throughput' or 'latency'"
    ):
        load_detector(trained_model.onnx, performance_hint="fastest")
