"""INT8 at the edge (``make bench``): FP32, FP16 and INT8 of the same model side by side.

The shelf demo model, exported at 320 to ONNX Runtime and OpenVINO in each precision; INT8
quantized with :func:`kit.compile.quantize_int8` (ONNX Runtime static quantization, OpenVINO
NNCF), calibrated on synthetic shelf scenes and judged on held-out ones (other seeds than the
model's training set). For each: mAP50 on the held-out images, file size, the raw runtime's and
our pipeline's frames per second, interleaved in rounds so that machine noise hits all alike,
and the speed ratio to FP32 within each round. Results go to the "INT8 at the edge" section of
``docs/benchmarks.md``.
"""

from __future__ import annotations

import shutil
import statistics
from pathlib import Path

import pytest

from edge_app.detectors import load_detector
from kit.demo_models import DEMO_DIR
from tests.benchmarks.test_edge_bench import decoded_frames, run_pipeline, run_raw_async
from tests.support.bench_report import machine_line, write_section

pytestmark = [pytest.mark.bench, pytest.mark.timeout(3600)]

SIZE = 320
ROUNDS = 5
BACKENDS = ("onnxruntime", "openvino")
PRECISIONS = ("FP32", "FP16", "INT8")


@pytest.fixture(scope="module")
def shelf(tmp_path_factory) -> tuple[Path, Path, Path]:
    """(weights, calibration + held-out dataset, video): the demo model and scenes it never saw."""
    from kit.synthetic import make_dataset, write_scenario_video

    weights = DEMO_DIR / "shelf" / "model.pt"
    if not weights.is_file():
        pytest.fail(f"{weights} is missing: run `make demo-models`")
    folder = tmp_path_factory.mktemp("int8")
    copy = folder / "shelf.pt"
    shutil.copyfile(weights, copy)
    data = make_dataset(
        "shelf", folder / "data", n_images=160, seed=4242, size=(640, 480), splits=(0.5, 0.5, 0.0)
    )
    video = folder / "shelf.mp4"
    write_scenario_video("bottles_removed", video, seconds=10, fps=15, size=(640, 480), seed=3)
    return copy, data, video


def test_int8_vs_fp16_vs_fp32(shelf):
    from kit.compile import Int8Refused, export_onnx, export_openvino, parity_check, quantize_int8

    weights, data, video = shelf
    models: dict[tuple[str, str], Path] = {
        ("onnxruntime", "FP32"): export_onnx(weights, SIZE),
        ("onnxruntime", "FP16"): export_onnx(weights, SIZE, half=True),
        ("openvino", "FP32"): export_openvino(weights, SIZE),
        ("openvino", "FP16"): export_openvino(weights, SIZE, half=True),
    }
    accuracy: dict[tuple[str, str], dict] = {}
    for backend in BACKENDS:
        try:
            int8 = quantize_int8(weights, data, backend=backend, imgsz=SIZE)
            models[(backend, "INT8")] = int8.path
            accuracy[(backend, "INT8")] = {"report": int8.report, "verdict": "accepted"}
        except Int8Refused as refused:
            accuracy[(backend, "INT8")] = {"report": refused.report, "verdict": str(refused)}
        for precision in ("FP32", "FP16"):
            report = parity_check(weights, models[(backend, precision)], data, imgsz=SIZE)
            accuracy[(backend, precision)] = {"report": report, "verdict": "-"}

    frames = decoded_frames(video)
    detectors = {
        key: load_detector(path, performance_hint="throughput") for key, path in models.items()
    }
    tensors = {key: [d.preprocess(f)[0].copy() for f in frames] for key, d in detectors.items()}
    runs = {}
    for key, detector in detectors.items():
        runs[(*key, "raw")] = lambda d=detector, t=tensors[key]: run_raw_async(d, t)
        runs[(*key, "pipeline")] = lambda d=detector: run_pipeline(d, video)
    for run in runs.values():  # model load, first inferences
        run()
    fps: dict[tuple, list[float]] = {key: [] for key in runs}
    for _ in range(ROUNDS):
        for key, run in runs.items():
            fps[key].append(run())

    rows = []
    for backend in BACKENDS:
        for precision in PRECISIONS:
            report = accuracy[(backend, precision)]["report"]
            verdict = accuracy[(backend, precision)]["verdict"]
            path = models.get((backend, precision))
            if path is None:
                rows.append(
                    f"| {backend} | {precision} | {report.candidate_map50:.4f} | - | - | - | - | - "
                    f"| refused: drop {report.reference_map50 - report.candidate_map50:.4f} |"
                )
                continue
            size_mb = _size_mb(path)
            cells = []
            for stage in ("raw", "pipeline"):
                own = fps[(backend, precision, stage)]
                fp32 = fps[(backend, "FP32", stage)]
                ratio = statistics.median(a / b for a, b in zip(own, fp32, strict=True))
                cells.append(f"{statistics.median(own):.1f} | {ratio:.2f}")
            rows.append(
                f"| {backend} | {precision} | {report.candidate_map50:.4f} | {size_mb:.1f} "
                f"| {' | '.join(cells)} | {verdict} |"
            )
    reference_map50 = accuracy[("onnxruntime", "FP32")]["report"].reference_map50
    body = "\n".join(
        [
            machine_line("shelf demo model (yolov8n, 1 class), imgsz 320")
            + " Regenerate with `make bench` (tests/benchmarks/test_int8_bench.py).",
            "",
            "INT8 by `kit.compile.quantize_int8` (ONNX Runtime static quantization; OpenVINO "
            "with NNCF), calibrated on 80 synthetic shelf scenes and judged on 80 held-out "
            f"ones (other seeds than the model's training set): accepted when its mAP50 drops by "
            f"at most 0.01 below the PyTorch FP32 model's ({reference_map50:.4f} on these "
            "images). Frames per second are medians of "
            f"{ROUNDS} interleaved rounds over 150 frames of a 640x480 video: the raw runtime "
            "(throughput hint, `max_in_flight` jobs, tensors prepared beforehand) and our full "
            "pipeline (decode, letterbox, infer, NMS, tracking, zone, line); × FP32 is the "
            "median of the within-round ratios to the same backend's FP32.",
            "",
            "| backend | precision | mAP50 (held-out) | size MB | raw fps | raw × FP32 "
            "| pipeline fps | pipeline × FP32 | INT8 gate |",
            "|---|---|---|---|---|---|---|---|---|",
            *rows,
            "",
            "The models are the kit's exports (dynamic height and width), so the 640x480 frames "
            "are inferred at 320x256 (rectangular inference, [edge](edge.md#how-frames-are-"
            "analysed)).",
            "",
            "To run a model in INT8, add the format to its registered version, `kit models "
            "quantize shelf:3 --backend openvino` (or `onnxruntime`; the same gate, calibrated "
            "and judged on the version's own dataset unless `--data` names another), and set the "
            "cameras' `precision` to `int8` in the control panel. The format is `onnx_int8` or "
            "`openvino_int8` in the version's metadata, with its mAP50 and drop as "
            "`<format>/mAP50` and `<format>/mAP50_drop`; a camera whose model has none runs FP32 "
            "and says so in its heartbeat ([edge](edge.md#inference-backends)).",
        ]
    )
    write_section("INT8 at the edge", body)
    assert all(value > 0 for values in fps.values() for value in values)


def _size_mb(path: Path) -> float:
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files) / 1e6
