"""Edge sampling: which frames a camera samples for labelling (reasons, rate limit on the frames'
capture times), and a real pipeline run whose samples reach the bucket through the spool — blurred,
pre-labelled with the model's own boxes — and are pulled into a dataset version."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import cv2
import numpy as np

from edge_app.config import CameraConfig
from edge_app.detectors import load_detector
from edge_app.pipeline import CameraProcessor, publish_sample
from edge_app.publisher import Publisher
from edge_app.sampling import FrameSampler, build_sample
from edge_app.sources import Frame
from edge_app.spool import Spool
from kit.core.contracts import CameraSettings, ControlConfig, ModelRef, parse
from kit.core.contracts.sampling import SampleRecord, SamplingSettings
from kit.data import DetectionDataset
from kit.data.formats.yolo import parse_yolo_lines
from kit.data.samples import pull_samples
from kit.notebook import fetch_dataset
from tests.support.wait import DEFAULT_TIMEOUT_S

START = datetime(2026, 11, 26, 10, tzinfo=UTC)
MODEL = ModelRef(name="shapes", version=1)


def at(seconds: float) -> datetime:
    return START + timedelta(seconds=seconds)


def test_each_reason_is_judged_on_its_own_frame():
    settings = SamplingSettings(
        enabled=True, confidence_band=(0.3, 0.6), count_jump=2, max_per_hour=3600
    )
    sampler = FrameSampler(settings)
    assert sampler.decide(np.array([0.9]), {"box": 1}, at(0)) == ()  # sure, and no frame before
    assert sampler.decide(np.array([0.45, 0.9]), {"box": 1}, at(1)) == ("uncertain",)
    assert sampler.decide(np.array([0.6]), {"box": 3}, at(2)) == (
        "count_jump",
    )  # band is [0.3, 0.6)
    assert sampler.decide(np.array([0.3]), {"box": 1, "ball": 0}, at(3)) == (
        "uncertain",
        "count_jump",
    )
    assert sampler.decide(np.array([]), {"box": 0, "ball": 1}, at(4)) == ()  # each moved by 1
    sampler.configure(settings.model_copy(update={"enabled": False}))
    assert sampler.decide(np.array([0.45]), {"box": 9}, at(5)) == ()
    sampler.configure(settings)
    assert sampler.decide(np.array([]), {"box": 9}, at(6)) == (), "counts followed while off"

    off = FrameSampler(settings.model_copy(update={"confidence_band": (0.5, 0.5), "count_jump": 0}))
    assert off.decide(np.array([0.5]), {"box": 0}, at(0)) == ()
    assert off.decide(np.array([0.5]), {"box": 50}, at(1)) == ()


def test_random_share_samples_that_share_of_frames():
    settings = SamplingSettings(
        enabled=True, confidence_band=(0.5, 0.5), count_jump=0, random_share=0.25, max_per_hour=3600
    )
    sampler = FrameSampler(settings, rng=random.Random(7))
    sampled = [bool(sampler.decide(np.array([]), {}, at(i))) for i in range(4000)]
    draws = random.Random(7)
    assert sampled == [draws.random() < 0.25 for _ in range(4000)]
    assert 850 < sum(sampled) < 1150


def test_the_rate_limit_is_a_token_bucket_on_capture_time():
    settings = SamplingSettings(enabled=True, confidence_band=(0.0, 1.0), max_per_hour=60)
    assert settings.burst == 6
    sampler = FrameSampler(settings)
    times = [7 * i for i in range(520)]  # a frame every 7 s for an hour, each one uncertain
    taken = [t for t in times if sampler.decide(np.array([0.5]), {}, at(t))]
    assert taken[:6] == times[:6], "a burst first"
    assert len(taken) == 6 + int(times[-1] / 60), "then one a minute"
    for start in taken:
        assert sum(start <= t < start + 3600 for t in taken) <= 60 + 6

    hourly = FrameSampler(settings.model_copy(update={"max_per_hour": 1}))
    assert hourly.decide(np.array([0.5]), {}, at(100)) != ()
    assert hourly.decide(np.array([0.5]), {}, at(50)) == (), "a clock stepping back refills nothing"
    assert hourly.decide(np.array([0.5]), {}, at(100 + 3599)) == ()
    assert hourly.decide(np.array([0.5]), {}, at(100 + 3600)) != ()


def test_sampling_settings_are_bounded_and_per_camera():
    config = parse(
        ControlConfig,
        {"cameras": {"cam-1": {"sampling": {"enabled": True, "random_share": 0.1}}}},
    )
    assert config.for_camera("cam-1").sampling.enabled
    assert not config.for_camera("cam-2").sampling.enabled, "off by default"
    for bad in (
        {"confidence_band": [0.7, 0.2]},
        {"random_share": 1.5},
        {"max_per_hour": 0},
        {"count_jump": -1},
        {"random_share": float("nan")},
        {"enabled": "yes"},
    ):
        try:
            parse(ControlConfig, {"defaults": {"sampling": bad}})
        except ValueError as error:
            assert "defaults.sampling" in str(error), error
        else:
            raise AssertionError(f"sampling {bad} was accepted")


def _frame(image: np.ndarray, index: int) -> Frame:
    return Frame(image=image, index=index, captured_at=at(index), camera_id="cam-1")


def _labels(text: str, record: SampleRecord) -> tuple[np.ndarray, np.ndarray]:
    return parse_yolo_lines(
        text.splitlines(),
        width=record.frame.width,
        height=record.frame.height,
        classes=record.classes,
    )


def test_a_pipeline_run_sends_blurred_prelabelled_samples_through_the_spool(
    trained_model, backend_settings, tmp_path
):
    detector = load_detector(trained_model.onnx)
    camera = CameraConfig(id="cam-1", source="unused", privacy={"blur_classes": ["ball"]})
    sampling = SamplingSettings(
        enabled=True, confidence_band=(0.25, 1.0), count_jump=0, max_per_hour=3600
    )
    processor = CameraProcessor(
        "cam-1", detector, MODEL, CameraSettings(confidence=0.25, sampling=sampling)
    )
    images = trained_model.frames[:12]
    spool = Spool(tmp_path / "spool", max_bytes=50_000_000, fsync=False)
    offline = Publisher(backend_settings, spool)  # never started: nothing can leave yet
    samples = {}
    for index, image in enumerate(images):
        result = processor.process(_frame(image, index))
        sample = publish_sample(processor, camera, result, offline, "dev-1")
        if sample is not None:
            samples[index] = sample
    expected = [i for i, image in enumerate(images) if len(detector.detect(image, conf=0.25))]
    assert expected and list(samples) == expected
    assert all(sample.record.reasons == ["uncertain"] for sample in samples.values())
    assert spool.depth == len(samples)
    spool.close()  # the device restarts before the backend is back

    spool = Spool(tmp_path / "spool", max_bytes=50_000_000, fsync=False)
    publisher = Publisher(backend_settings, spool).start()
    try:
        assert publisher.flush(DEFAULT_TIMEOUT_S)
    finally:
        publisher.stop()
        spool.close()
    assert publisher.stats.sent_samples == len(samples)

    s3, bucket = backend_settings.client("s3"), backend_settings.resources.bucket

    def read(key: str) -> bytes:
        assert key.startswith("samples/dev-1/cam-1/2026-11-26/"), key
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read()

    blurred_balls = 0
    for index, sample in samples.items():
        image, record = images[index], sample.record
        stored = parse(SampleRecord, read(sample.record_key))
        assert stored == record and stored.model == MODEL
        assert stored.classes == list(trained_model.class_names.values())
        boxes, class_ids = _labels(read(record.labels_key).decode(), record)
        predicted = detector.detect(image, conf=0.25)
        assert class_ids.tolist() == predicted.class_id.tolist()
        clipped = np.clip(predicted.xyxy, 0, [image.shape[1], image.shape[0]] * 2)
        np.testing.assert_allclose(boxes, clipped, atol=1e-3 * max(image.shape))

        # the stored frame is the captured one, privacy class blurred and nothing drawn on it
        jpeg = cv2.imdecode(np.frombuffer(read(record.image_key), np.uint8), cv2.IMREAD_COLOR)
        assert jpeg.shape == image.shape
        unblurred = cv2.imdecode(
            np.frombuffer(
                build_sample(
                    image,
                    predicted,
                    detector.class_names,
                    reasons=["uncertain"],
                    model=MODEL,
                    device_id="dev-1",
                    camera_id="cam-1",
                    captured_at=record.captured_at,
                    blur=(),
                ).jpeg,
                np.uint8,
            ),
            cv2.IMREAD_COLOR,
        )
        difference = np.abs(jpeg.astype(int) - unblurred.astype(int)).sum(axis=2)
        balls = np.zeros(image.shape[:2], bool)
        for (x1, y1, x2, y2), class_id in zip(boxes.astype(int), class_ids, strict=True):
            if trained_model.class_names[int(class_id)] == "ball":
                balls[y1:y2, x1:x2] = True
        if balls.any():
            blurred_balls += 1
            near = cv2.dilate(balls.astype(np.uint8), np.ones((17, 17), np.uint8)).astype(bool)
            assert difference[balls].mean() > 10, "the ball's pixels are blurred"
            assert difference[~near].mean() < 1, "nothing else changed"
        else:
            assert difference.mean() < 1
    assert blurred_balls, "some sample held a ball to blur"

    pulled = pull_samples(backend_settings, name="shapes-field")
    assert pulled.version == "v1" and len(pulled.samples) == len(samples)
    version = DetectionDataset.from_yolo(
        data_yaml=fetch_dataset(backend_settings, "shapes-field:v1", tmp_path / "dataset")
    )
    assert version.classes == list(trained_model.class_names.values())
    by_stem = {item.path.stem: item for item in version}
    for sample in samples.values():
        item = by_stem[f"dev-1__cam-1__{sample.record.sample_id}"]
        boxes, class_ids = _labels(read(sample.record.labels_key).decode(), sample.record)
        assert item.class_ids.tolist() == class_ids.tolist()
        np.testing.assert_allclose(item.boxes, boxes, atol=1e-3)


def test_count_jumps_are_sampled_within_the_hourly_budget(trained_model):
    detector = load_detector(trained_model.onnx)
    sampling = SamplingSettings(
        enabled=True, confidence_band=(0.5, 0.5), count_jump=1, max_per_hour=2
    )
    processor = CameraProcessor(
        "cam-1", detector, MODEL, CameraSettings(confidence=0.25, sampling=sampling)
    )
    results = [
        processor.process(_frame(image, i)) for i, image in enumerate(trained_model.frames[:12])
    ]
    jumps = [i for i in range(1, len(results)) if results[i].counts != results[i - 1].counts]
    assert len(jumps) > 1, "the scenes' counts change from frame to frame"
    sampled = [i for i, result in enumerate(results) if result.sample_reasons]
    assert sampled == jumps[:1], "one sample: the budget is 2 an hour, a burst of 1"
    assert results[sampled[0]].sample_reasons == ("count_jump",)
    assert results[sampled[0]].sample_detections is not None
    camera = CameraConfig(id="cam-1", source="unused")
    assert publish_sample(processor, camera, results[0], None, "dev-1") is None, "no sample"
    assert publish_sample(processor, camera, results[sampled[0]], None, "dev-1") is None
