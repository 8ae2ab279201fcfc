"""Benchmark: raw runtime inference vs the edge `Detector` (preprocess + infer + postprocess).

Not a test (pytest does not collect it). Run it on an otherwise idle machine:

    .venv/bin/python tests/edge_app/vision/bench_vision_detector.py            # yolov8n, 80 classes
    .venv/bin/python tests/edge_app/vision/bench_vision_detector.py m.onnx m_openvino_model

Without model arguments it builds ``yolov8n.yaml`` (80 classes, untrained: inference cost is
the same as the trained model's) and exports it at 320 and 640 px to ONNX and OpenVINO. Each
figure is the median of ``--runs`` timed runs on a 640x480 frame after a warm-up; raw inference
and `Detector.detect` alternate so that both see the same load.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from edge_app.detectors import Detector, load_detector  # noqa: E402
from edge_app.detectors.processing import decode_yolo_output  # noqa: E402


def median_ms(function, runs: int, warmup: int = 10) -> float:
    for _ in range(warmup):
        function()
    durations = []
    for _ in range(runs):
        start = time.perf_counter()
        function()
        durations.append(time.perf_counter() - start)
    return statistics.median(durations) * 1000


def paired_median_ms(first, second, runs: int, warmup: int = 10) -> tuple[float, float]:
    """Medians of two functions timed alternately, so that both see the same machine load."""
    for _ in range(warmup):
        first()
        second()
    durations: tuple[list[float], list[float]] = ([], [])
    for _ in range(runs):
        for function, store in ((first, durations[0]), (second, durations[1])):
            start = time.perf_counter()
            function()
            store.append(time.perf_counter() - start)
    return statistics.median(durations[0]) * 1000, statistics.median(durations[1]) * 1000


def raw_inference(detector: Detector, tensor: np.ndarray):
    """The runtime's own call, without anything of ours around it."""
    backend = detector.backend
    if backend.name == "onnxruntime":
        feed = {backend.session.get_inputs()[0].name: tensor}
        return lambda: backend.session.run(None, feed)
    request = backend.compiled_model.create_infer_request()
    return lambda: request.infer({0: tensor}, share_inputs=True)


def export_yolov8n(directory: Path) -> list[Path]:
    from kit.offline import configure_ultralytics

    configure_ultralytics(directory / "ultralytics")
    from ultralytics import YOLO

    paths = []
    for imgsz in (320, 640):
        weights = directory / f"yolov8n_{imgsz}.pt"
        YOLO("yolov8n.yaml").save(weights)
        paths.append(Path(YOLO(str(weights)).export(format="onnx", imgsz=imgsz)))
        paths.append(Path(YOLO(str(weights)).export(format="openvino", imgsz=imgsz)))
    return paths


def crowded_output(num_classes: int, anchors: int, objects: int, per_object: int) -> np.ndarray:
    """A head output where each of ``objects`` objects has ``per_object`` overlapping candidate
    boxes above 0.25, as a trained detector produces them (a crowded scene for NMS)."""
    rng = np.random.default_rng(0)
    output = np.zeros((1, 4 + num_classes, anchors), np.float32)
    output[0, :2] = rng.uniform(0, 600, (2, anchors))
    output[0, 2:4] = rng.uniform(10, 80, (2, anchors))
    output[0, 4:] = rng.uniform(0, 0.2, (num_classes, anchors))
    chosen = rng.choice(anchors, objects * per_object, replace=False).reshape(objects, per_object)
    centers, sizes = rng.uniform(50, 550, (objects, 2)), rng.uniform(20, 80, (objects, 2))
    for obj in range(objects):
        columns = chosen[obj]
        output[0, :2, columns] = centers[obj] + rng.normal(0, 3, (per_object, 2))
        output[0, 2:4, columns] = sizes[obj] + rng.normal(0, 2, (per_object, 2))
        output[0, 4 + rng.integers(0, num_classes), columns] = rng.uniform(0.3, 1, per_object)
    return output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", type=Path, help="models (default: export yolov8n)")
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    frame = np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8)
    with tempfile.TemporaryDirectory() as scratch:
        models = args.models or export_yolov8n(Path(scratch))
        print(f"{'model':28} {'backend':11} {'imgsz':>5} {'raw ms':>7} {'detect ms':>9} "
              f"{'ratio':>5} {'pre ms':>6} {'post ms':>7}")  # fmt: skip
        for path in models:
            detector = load_detector(path, threads=args.threads)
            tensor, info = detector.preprocess(frame)
            raw = detector.infer(tensor)
            raw_ms, detect_ms = paired_median_ms(
                raw_inference(detector, tensor), lambda d=detector: d.detect(frame), args.runs
            )
            buffer = detector.new_input_buffer()
            pre_ms = median_ms(lambda d=detector, b=buffer: d.preprocess(frame, out=b), args.runs)
            post_ms = median_ms(lambda d=detector, r=raw, i=info: d.postprocess(r, i), args.runs)
            print(
                f"{path.name:28} {detector.backend.name:11} {detector.imgsz[0]:>5} {raw_ms:7.2f} "
                f"{detect_ms:9.2f} {detect_ms / raw_ms:5.2f} {pre_ms:6.2f} {post_ms:7.2f}"
            )
    for anchors, imgsz in ((2100, 320), (8400, 640)):
        output = crowded_output(80, anchors, objects=30, per_object=10)
        post_ms = median_ms(lambda o=output: decode_yolo_output(o, 80, 0.25, 0.45), args.runs)
        print(f"decode + NMS, 80 classes, {imgsz} px, 30 objects x 10 candidates: {post_ms:.2f} ms")


if __name__ == "__main__":
    main()
