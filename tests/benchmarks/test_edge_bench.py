"""Edge benchmark (``make bench``): our pipeline vs the raw runtime vs ultralytics, side by side.

On the same model (the shipped shelf demo model, exported here at each size), the same frames (a
synthetic ``bottles_removed`` video, 640x480) and the same backend, interleaved in rounds so that
machine noise hits all three alike:

- (a) raw runtime: ``backend.infer`` on tensors prepared beforehand (inference only);
- (b) our full per-frame pipeline: decode -> letterbox -> infer -> decode/NMS -> ByteTrack -> zone + line;
- (c) ultralytics' own predict loop on the same exported model (decode, preprocess, infer, NMS).

Also: the aggregate of 4 cameras (threads, one pipeline each, one shared model), and how many
cameras this machine sustains at 5 fps each without a growing backlog (OpenVINO, 320).
Results go to the "Edge" section of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import shutil
import statistics
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import cv2
import pytest

from edge_app.detectors import load_detector
from edge_app.pipeline import CameraProcessor
from edge_app.sources import CameraReader, Frame
from kit.benchmarks import machine_line, write_section
from kit.contracts import CameraSettings, ModelRef
from kit.demo_models import DEMO_DIR

pytestmark = pytest.mark.bench

SIZES = (320, 640)
ROUNDS = 3
TARGET_FPS = 5.0
SETTINGS = CameraSettings.model_validate(
    {
        "confidence": 0.3,
        "zones": [{"name": "shelf", "polygon": [[0, 0], [1, 0], [1, 0.6], [0, 0.6]]}],
        "lines": [{"name": "edge", "start": [0.5, 0], "end": [0.5, 1]}],
    }
)
results: dict[str, object] = {}


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    from kit.synthetic import write_scenario_video

    path = tmp_path_factory.mktemp("bench") / "shelf.mp4"
    write_scenario_video("bottles_removed", path, seconds=10, fps=15, size=(640, 480), seed=3)
    return path


@pytest.fixture(scope="module")
def exports(tmp_path_factory) -> dict[tuple[str, int], Path]:
    """The shelf demo model exported to ONNX and OpenVINO at each size."""
    from kit.compile import export_onnx, export_openvino

    weights = DEMO_DIR / "shelf" / "model.pt"
    if not weights.is_file():
        pytest.fail(f"{weights} is missing: run `make demo-models`")
    folder = tmp_path_factory.mktemp("exports")
    made = {}
    for size in SIZES:
        copy = folder / f"shelf{size}.pt"
        shutil.copyfile(weights, copy)
        made[("onnxruntime", size)] = export_onnx(copy, size)
        made[("openvino", size)] = export_openvino(copy, size)
    return made


def decoded_frames(video: Path) -> list:
    capture = cv2.VideoCapture(str(video))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            return frames
        frames.append(frame)


def run_raw(detector, tensors) -> float:
    started = time.perf_counter()
    for tensor in tensors:
        detector.infer(tensor)
    return len(tensors) / (time.perf_counter() - started)


def run_pipeline(detector, video: Path, camera: str = "bench") -> float:
    """Our pipeline as the edge app runs it: a reader thread decodes (every frame, as fast as it
    can) while this thread runs the processor, so decoding overlaps inference."""
    processor = CameraProcessor(
        camera, detector, ModelRef(name="shelf", version=1), SETTINGS, frame_rate=15
    )
    count, started = 0, time.perf_counter()
    with CameraReader(camera, {"uri": str(video), "fastest": True}, every_frame=True) as reader:
        for frame in reader.frames(idle_timeout=5):
            processor.process(frame)
            count += 1
    return count / (time.perf_counter() - started)


def run_ultralytics(model, video: Path, size: int) -> float:
    count, started = 0, time.perf_counter()
    for _ in model.predict(source=str(video), stream=True, imgsz=size, conf=0.3, verbose=False):
        count += 1
    return count / (time.perf_counter() - started)


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
@pytest.mark.parametrize("size", SIZES)
def test_pipeline_vs_raw_vs_ultralytics(backend, size, exports, video):
    from kit.offline import configure_ultralytics

    configure_ultralytics()
    from ultralytics import YOLO

    path = exports[(backend, size)]
    detector = load_detector(path)
    frames = decoded_frames(video)
    tensors = [detector.preprocess(frame)[0].copy() for frame in frames]
    model = YOLO(str(path), task="detect")
    run_ultralytics(model, video, size)  # warm-up: model load, first inference
    run_pipeline(detector, video)
    fps = {"raw": [], "pipeline": [], "ultralytics": []}
    for _ in range(ROUNDS):
        fps["raw"].append(run_raw(detector, tensors))
        fps["pipeline"].append(run_pipeline(detector, video))
        fps["ultralytics"].append(run_ultralytics(model, video, size))
    median = {k: statistics.median(v) for k, v in fps.items()}
    results[f"{backend} {size}"] = median
    assert median["pipeline"] > 0 and median["raw"] > 0


def test_four_cameras_aggregate(exports, video):
    for backend in ("onnxruntime", "openvino"):
        detector = load_detector(exports[(backend, 320)])
        threads = [
            threading.Thread(target=run_pipeline, args=(detector, video, f"cam-{i}"))
            for i in range(4)
        ]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        frames = len(decoded_frames(video)) * 4
        results[f"4 cameras {backend} 320"] = frames / (time.perf_counter() - started)
    assert results["4 cameras openvino 320"] > 0


def sustains(detector, frames: list, cameras: int, seconds: float = 6.0) -> tuple[bool, float]:
    """Run ``cameras`` pipelines at 5 fps each for ``seconds``; True when none fell behind.

    Each camera has a frame due every 200 ms; lateness is how far past its due time a frame's
    processing starts. A camera keeps up when its lateness in the last second stays under one
    frame interval (a backlog that does not grow).
    """
    interval = 1.0 / TARGET_FPS
    worst: list[float] = []
    start = time.perf_counter() + 0.2

    def camera(index: int) -> None:
        processor = CameraProcessor(
            f"c{index}", detector, ModelRef(name="shelf", version=1), SETTINGS, frame_rate=5
        )
        due, n, late_tail = start + index * interval / cameras, 0, 0.0
        now = datetime.now(UTC)
        while due < start + seconds:
            wait = due - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            lateness = time.perf_counter() - due
            if due > start + seconds - 1.0:
                late_tail = max(late_tail, lateness)
            image = frames[n % len(frames)]
            _, encoded = cv2.imencode(".jpg", image)
            processor.process(
                Frame(
                    image=cv2.imdecode(encoded, cv2.IMREAD_COLOR),
                    index=n,
                    captured_at=now,
                    camera_id="c",
                )
            )
            n += 1
            due += interval
        worst.append(late_tail)

    threads = [threading.Thread(target=camera, args=(i,)) for i in range(cameras)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return max(worst) < interval, max(worst)


def test_cameras_sustained_at_5_fps_on_openvino_320(exports, video):
    detector = load_detector(exports[("openvino", 320)])
    frames = decoded_frames(video)[:30]
    ok, failed = 0, None
    for cameras in (8, 16, 24, 32, 48, 64, 96):
        if sustains(detector, frames, cameras)[0]:
            ok = cameras
        else:
            failed = cameras
            break
    while failed is not None and failed - ok > 4:
        middle = (ok + failed) // 2
        if sustains(detector, frames, middle)[0]:
            ok = middle
        else:
            failed = middle
    results["cameras at 5 fps"] = ok
    write_report()
    assert ok >= 1


def write_report() -> None:
    rows = []
    for backend in ("onnxruntime", "openvino"):
        for size in SIZES:
            fps = results.get(f"{backend} {size}")
            if not fps:
                continue
            rows.append(
                f"| {backend} | {size} | {fps['raw']:.1f} | {fps['pipeline']:.1f} | {fps['ultralytics']:.1f} "
                f"| **{fps['pipeline'] / fps['raw']:.2f}** | **{fps['pipeline'] / fps['ultralytics']:.2f}** |"
            )
    body = "\n".join(
        [
            machine_line("shelf demo model (yolov8n, 1 class), synthetic 640x480 video")
            + " Regenerate with `make bench` (tests/benchmarks/test_edge_bench.py).",
            "",
            "Frames per second, median of 3 interleaved rounds over 150 frames: (a) the raw runtime "
            "(inference only, tensors prepared beforehand), (b) our full per-frame pipeline "
            "(a reader thread decodes while the camera thread letterboxes, infers, decodes + NMS, "
            "tracks with ByteTrack and counts a zone and a line), (c) "
            "ultralytics' predict loop on the same exported model (decode, preprocess, infer, NMS).",
            "",
            "| backend | imgsz | (a) raw fps | (b) pipeline fps | (c) ultralytics fps | b/a | b/c |",
            "|---|---|---|---|---|---|---|",
            *rows,
            "",
            "| multi-camera | result |",
            "|---|---|",
            f"| 4 cameras, one thread each, one shared model, ONNX Runtime 320 | {results.get('4 cameras onnxruntime 320', 0):.1f} fps in all |",
            f"| 4 cameras, one thread each, one shared model, OpenVINO 320 | {results.get('4 cameras openvino 320', 0):.1f} fps in all |",
            f"| cameras sustained at 5 fps each (OpenVINO 320; JPEG decode + pipeline per frame; lateness < 200 ms) | **{results.get('cameras at 5 fps', 0)}** |",
            "",
            "b/a below 1 is the cost of everything around inference (decode alone is about 1-2 ms "
            "a 640x480 frame); b/c above 1 means our pipeline is faster than ultralytics' loop on "
            "the same model. An AWS Panorama appliance application took 8 streams.",
        ]
    )
    write_section("Edge", body)
