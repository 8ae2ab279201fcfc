"""INT8 is accepted only when it keeps the model's mAP50 on held-out images (issue 19)."""

from __future__ import annotations

import pytest

from kit.compile import (
    MAX_INT8_MAP50_DROP,
    Int8Refused,
    ParityReport,
    int8_verdict,
    quantize_int8,
)


def report(reference_map50: float | None, candidate_map50: float | None) -> ParityReport:
    return ParityReport(
        reference="best.pt",
        candidate="best_int8.onnx",
        imgsz=320,
        conf=0.25,
        iou_threshold=0.5,
        min_box_agreement=0.95,
        tolerance=0.02,
        images=(),
        reference_map50=reference_map50,
        candidate_map50=candidate_map50,
    )


@pytest.mark.parametrize(
    ("candidate", "accepted"),
    [(0.95, True), (0.9401, True), (0.97, True), (0.9399, False), (0.5, False)],
)
def test_int8_is_judged_by_its_map50_drop_on_held_out_images(candidate, accepted):
    verdict = int8_verdict(report(0.95, candidate))
    assert (verdict is None) == accepted, verdict
    if not accepted:
        assert f"{candidate:.4f} vs 0.9500" in verdict
        assert f"at most {MAX_INT8_MAP50_DROP:.4f}" in verdict and "FP16" in verdict


def test_int8_without_labelled_held_out_images_cannot_be_judged():
    with pytest.raises(ValueError, match="labelled held-out images"):
        int8_verdict(report(None, None))


@pytest.mark.parametrize(("backend", "suffix"), [("onnxruntime", ".onnx"), ("openvino", "")])
def test_quantized_models_pass_or_are_refused_and_removed(
    backend, suffix, trained, shapes_dataset, tmp_path
):
    """The real quantizers on a small model: with a gate it meets, the model is kept and its
    registry format named; with one no model can meet (mAP50 above FP32's by more than 1), it is
    refused with the numbers and its file removed."""
    name = "int8.onnx" if suffix else "int8_openvino_model"
    accepted = quantize_int8(
        trained.weights, shapes_dataset, backend=backend, max_drop=1.0, output=tmp_path / name
    )
    assert accepted.path.exists() and accepted.format == {"onnxruntime": "onnx_int8"}.get(
        backend, "openvino_int8"
    )
    assert accepted.report.reference_map50 is not None
    assert accepted.map50_drop == pytest.approx(
        accepted.report.reference_map50 - accepted.report.candidate_map50
    )

    with pytest.raises(Int8Refused, match="refused: mAP50") as refused:
        quantize_int8(
            trained.weights, shapes_dataset, backend=backend, max_drop=-1.0, output=tmp_path / name
        )
    assert refused.value.report.candidate_map50 is not None
    assert not (tmp_path / name).exists()
