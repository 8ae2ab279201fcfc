"""Cross-camera batching in the OpenVINO backend: with the throughput hint and a model whose
batch size is dynamic (the kit's exports), frames that wait for a busy device are inferred
together, up to ``max_batch`` at once, and each gets exactly the output it gets alone."""

from __future__ import annotations

import numpy as np
import pytest

from edge_app.detectors import load_detector
from tests.edge_app.vision.test_rectangular_inference import dynamic_openvino  # noqa: F401

pytestmark = pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")

QUEUE = 64  # frames submitted before any is collected: far more than run at once


def distinct_tensors(detector, frames, count: int) -> list[np.ndarray]:
    """``count`` different input tensors of one shape (the 160x160 scenes, flipped and shifted)."""
    tensors = []
    for i in range(count):
        frame = frames[i % 12]
        frame = np.roll(frame[:, ::-1] if i // 12 % 2 else frame, 7 * (i // 24), axis=1)
        tensors.append(detector.preprocess(np.ascontiguousarray(frame))[0])
    return tensors


@pytest.fixture(scope="module")
def batched(dynamic_openvino):  # noqa: F811 - the fixture imported above
    detector = load_detector(dynamic_openvino, backend="openvino", max_batch=4)
    yield detector
    detector.backend.close()


@pytest.fixture(scope="module")
def alone(dynamic_openvino):  # noqa: F811
    return load_detector(dynamic_openvino, backend="openvino", max_batch=1)


def test_frames_waiting_for_the_device_run_as_batches_and_get_their_own_output(
    trained_model, batched, alone
):
    """GIVEN a dynamic export with max_batch 4, WHEN far more frames are submitted than run at
    once, THEN the ones that waited ran in batches of 2 or 4, every frame ran exactly once, and
    each got the output it gets inferred alone."""
    assert batched.backend.batch_sizes == [1, 2, 4]
    assert alone.backend.batch_sizes == [1] and alone.backend.batch_counts == {}
    tensors = distinct_tensors(batched, trained_model.frames, QUEUE)
    batched.backend.prepare(tensors[0].shape[2:])
    assert batched.backend.compiled_batches(tensors[0].shape[2:]) == [1, 2, 4]
    before = batched.backend.batch_counts
    jobs = [batched.submit(tensor) for tensor in tensors]
    outputs = [job.result(timeout=120) for job in jobs]
    counts = {
        size: n - before.get(size, 0)
        for size, n in batched.backend.batch_counts.items()
        if n > before.get(size, 0)
    }
    assert sum(size * n for size, n in counts.items()) == QUEUE
    assert set(counts) <= {1, 2, 4} and max(counts) > 1, counts
    assert len({output.tobytes() for output in outputs}) == QUEUE  # different frames, outputs
    for tensor, output in zip(tensors, outputs, strict=True):
        assert output.shape[0] == 1
        np.testing.assert_allclose(output, alone.infer(tensor), rtol=1e-4, atol=1e-3)


def test_frames_of_different_sizes_are_never_batched_together(trained_model, batched, alone):
    """GIVEN cameras of two aspect ratios submitting at once, THEN each frame is inferred at its
    own size (its output has that size's anchors) with its own output."""
    wide = batched.preprocess(trained_model.frames[-1])[0]  # 640x480 -> 160x128
    tall = batched.preprocess(trained_model.frames[13])[0]  # 97x403 -> 64x160
    assert wide.shape != tall.shape
    tensors = [wide if i % 3 else tall for i in range(QUEUE)]
    jobs = [batched.submit(tensor) for tensor in tensors]
    for tensor, job in zip(tensors, jobs, strict=True):
        np.testing.assert_allclose(
            job.result(timeout=120), alone.infer(tensor), rtol=1e-4, atol=1e-3
        )


def test_a_bad_frame_fails_alone(trained_model, batched):
    """GIVEN a malformed input among good frames of the same size, THEN its job raises and the
    frames around it are inferred."""
    good = distinct_tensors(batched, trained_model.frames, 12)
    bad = np.zeros((1, 4, *good[0].shape[2:]), np.float32)  # four channels
    tensors = good[:6] + [bad] + good[6:]
    jobs = [batched.submit(tensor) for tensor in tensors]
    for tensor, job in zip(tensors, jobs, strict=True):
        if tensor is bad:
            with pytest.raises(Exception):  # noqa: B017,PT011 - whatever OpenVINO raises
                job.result(timeout=120)
        else:
            assert job.result(timeout=120).shape[0] == 1


def test_closing_fails_the_waiting_frames_and_finishes_the_started_ones(
    dynamic_openvino,  # noqa: F811
):
    """GIVEN frames queued beyond what runs at once, WHEN the backend is closed, THEN the
    started frames still get their output, the waiting ones fail saying so (no job hangs), and
    a frame submitted after it is refused. (640x640 inputs: the frames started cannot all be
    done before the last is submitted, so some are still waiting when it closes.)"""
    detector = load_detector(dynamic_openvino, backend="openvino", max_batch=4)
    rng = np.random.default_rng(0)
    tensors = [rng.random((1, 3, 640, 640), dtype=np.float32) for _ in range(QUEUE // 2)]
    jobs = [detector.submit(tensor) for tensor in tensors]
    detector.backend.close()
    finished, refused = 0, 0
    for job in jobs:
        try:
            job.result(timeout=120)
            finished += 1
        except RuntimeError as error:
            assert "closed before this frame ran" in str(error)
            refused += 1
    assert finished >= 1 and refused >= 1 and finished + refused == len(tensors)
    with pytest.raises(RuntimeError, match="closed"):
        detector.submit(tensors[0])


@pytest.mark.parametrize(
    ("model", "fields"),
    [
        ("openvino_model", {}),  # a fixed batch of 1 (an export without dynamic=True)
        ("dynamic_openvino", {"performance_hint": "latency"}),
        ("dynamic_openvino", {"max_batch": 1}),
    ],
)
def test_no_batching_without_a_dynamic_batch_the_throughput_hint_and_max_batch(
    request, trained_model, model, fields
):
    detector = load_detector(request.getfixturevalue(model), backend="openvino", **fields)
    assert detector.backend.batch_sizes == [1]
    tensors = distinct_tensors(detector, trained_model.frames, 8)
    jobs = [detector.submit(tensor) for tensor in tensors]
    assert all(job.result(timeout=120).shape[0] == 1 for job in jobs)
    assert detector.backend.batch_counts == {}


def test_max_batch_is_bounded():
    from edge_app.detectors.config import inference_config
    from kit.core.contracts import ContractError

    assert inference_config(backend="openvino", max_batch=16).max_batch == 16
    for bad in (0, 17, 2.5):
        with pytest.raises(ContractError, match="max_batch"):
            inference_config(backend="openvino", max_batch=bad)
