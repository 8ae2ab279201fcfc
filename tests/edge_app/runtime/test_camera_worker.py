"""A camera's worker thread: which frames it analyses, and how it keeps frames in flight when it
falls behind.

The camera is scripted (the test hands out its frames, with their capture times) and, where it
matters, each inference completes only when the test releases it: what the worker does then
depends on the frames alone, never on how fast a busy machine runs the threads.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import numpy as np
import pytest

from edge_app.app import EARLY_FRAME_FRACTION, CameraWorker, FramePacer
from edge_app.config import CameraConfig
from edge_app.detectors import Detector, InferenceBackend, InferenceJob, load_backend
from edge_app.pipeline import CameraProcessor, FrameResult
from edge_app.runtime import CameraRuntime, ModelStore
from edge_app.sources import CameraState, Frame, SourceStatus
from kit.core.contracts import ModelRef
from tests.support.wait import wait_until

START = datetime(2026, 11, 26, 12, tzinfo=UTC)
SHAPES = ModelRef(name="shapes", version=1)


class ScriptedCamera:
    """A camera whose frames the test gives: each one handed out once, in order."""

    def __init__(self) -> None:
        self.taken = 0
        self._frames: collections.deque[Frame] = collections.deque()
        self._condition = threading.Condition()

    def give(self, frames: list[Frame]) -> None:
        with self._condition:
            self._frames.extend(frames)
            self._condition.notify_all()

    def read_latest(self, timeout: float | None = 0.0) -> Frame | None:
        with self._condition:
            self._condition.wait_for(lambda: self._frames, timeout)
            if not self._frames:
                return None
            self.taken += 1
            return self._frames.popleft()

    def status(self) -> SourceStatus:
        return SourceStatus(
            camera_id="cam-1",
            source="scripted",
            state=CameraState.RUNNING,
            fps=0.0,
            frames=self.taken,
            dropped=0,
            reconnects=0,
            last_frame_at=None,
            last_error=None,
        )


class HeldInference(InferenceBackend):
    """The model's real inference (``runtime``), each job completed only when the test releases
    it: a stand-in for an inference engine slower than the camera."""

    name = "held"
    max_in_flight = 2

    def __init__(self, runtime: InferenceBackend):
        super().__init__(runtime.model_path, runtime.metadata)
        self.runtime = runtime
        self._held: collections.deque[tuple[InferenceJob, np.ndarray]] = collections.deque()
        self._lock = threading.Lock()

    @property
    def waiting(self) -> int:
        """Jobs submitted and not released yet."""
        with self._lock:
            return len(self._held)

    def submit(self, tensor: np.ndarray) -> InferenceJob:
        job = InferenceJob()
        with self._lock:
            self._held.append((job, tensor))
        return job

    def release_oldest(self) -> None:
        """Run the oldest held job's inference now."""
        with self._lock:
            job, tensor = self._held.popleft()
        job.run(self.runtime.infer, tensor)


def frames_at(images: list[np.ndarray], fps: float) -> list[Frame]:
    """``images`` as a camera sending ``fps`` frames a second captured them."""
    return [
        Frame(image, index, START + timedelta(seconds=index / fps), "cam-1")
        for index, image in enumerate(images)
    ]


def summary(result: FrameResult) -> tuple:
    return (
        result.frame.index,
        result.detections.tracker_id.tolist(),
        result.detections.xyxy.round(3).tolist(),
        result.counts,
    )


@contextmanager
def running_worker(
    store: ModelStore, camera: ScriptedCamera, process_fps: float, on_result=None
) -> Iterator[CameraWorker]:
    """A worker on ``camera`` running ``shapes:1`` from ``store``, started once its model
    loaded; stopped on exit."""
    config = CameraConfig(id="cam-1", source="scripted", model=SHAPES, process_fps=process_fps)
    with ThreadPoolExecutor(1) as loader:
        runtime = CameraRuntime(
            config,
            store,
            loader=loader,
            source_status=camera.status,
            device_id="dev-1",
            on_result=on_result,
        )
        worker = CameraWorker(runtime, camera).start()
        try:
            wait_until(lambda: runtime.processor is not None, what="the camera's model loaded")
            yield worker
        finally:
            worker.stop()


@pytest.mark.parametrize(("source_fps", "process_fps"), [(10, 10), (20, 4), (30, 7), (5, 10)])
def test_the_pacer_takes_at_most_process_fps_frames_a_second(source_fps, process_fps):
    pacer = FramePacer(process_fps)
    times = [START + timedelta(seconds=index / source_fps) for index in range(10 * source_fps)]
    taken = [at for at in times if pacer.due(at)]
    gaps = [(later - earlier).total_seconds() for earlier, later in pairwise(taken)]
    assert min(gaps) >= (1 - EARLY_FRAME_FRACTION) / process_fps - 1e-6
    expected = 10 * min(source_fps, process_fps)
    assert expected - 1 <= len(taken) <= expected + 1
    if source_fps <= process_fps:
        assert taken == times, "a camera no faster than process_fps has every frame analysed"


def test_the_pacer_takes_every_frame_of_a_camera_at_process_fps_with_jitter():
    """Frames a fifth of the interval early or late are all taken: a camera at exactly
    ``process_fps`` never falls into analysing every other frame."""
    pacer = FramePacer(10)
    jitter = [-0.02, 0.02] * 50
    times = [START + timedelta(seconds=index / 10 + jitter[index]) for index in range(100)]
    assert all(pacer.due(at) for at in times)


def test_the_pacer_starts_again_when_the_clock_is_set_back():
    pacer = FramePacer(5)
    assert [pacer.due(START), pacer.due(START + timedelta(seconds=0.05))] == [True, False]
    back = START - timedelta(hours=1)
    assert [pacer.due(back + timedelta(seconds=s)) for s in (0, 0.05, 0.2)] == [True, False, True]
    with pytest.raises(ValueError, match="process_fps must be > 0"):
        FramePacer(0)


@pytest.mark.parametrize(("source_fps", "process_fps"), [(10, 10), (20, 4)])
def test_a_camera_is_analysed_at_its_process_fps(trained_model, source_fps, process_fps):
    """Every frame the pacer finds due is analysed, in order, and no other; a last frame long
    after the others (always due) tells when the worker is through."""
    images = [trained_model.frames[index % 12] for index in range(3 * source_fps)]
    frames = frames_at(images, source_fps)
    last = Frame(images[0], len(frames), START + timedelta(minutes=1), "cam-1")
    reference = FramePacer(process_fps)
    expected = [frame.index for frame in [*frames, last] if reference.due(frame.captured_at)]
    handled: list[int] = []
    camera = ScriptedCamera()
    store = ModelStore(preloaded={"shapes": trained_model.onnx})

    def on_result(result: FrameResult, rendered) -> None:
        handled.append(result.frame.index)

    with running_worker(store, camera, process_fps, on_result) as worker:
        camera.give([*frames, last])
        wait_until(lambda: last.index in handled, what="the last frame handled")
    assert handled == expected
    assert 3 * process_fps <= len(handled) - 1 <= 3 * process_fps + 1
    assert worker.camera.processed == len(handled) and worker.camera.error is None


def test_a_camera_that_falls_behind_keeps_frames_in_flight_and_results_in_order(trained_model):
    """While inference is slower than the camera, the worker keeps the processor's depth of
    frames in flight, hands results over in capture order while the next frames are in flight,
    and tracks exactly as frame by frame."""
    held = HeldInference(load_backend(trained_model.onnx))
    store = ModelStore(
        preloaded={"shapes": trained_model.onnx}, open_detector=lambda _: Detector(held)
    )
    handled: list[FrameResult] = []
    in_flight_when_handled: list[int] = []

    def on_result(result: FrameResult, rendered) -> None:
        handled.append(result)
        in_flight_when_handled.append(worker.camera.processor.pending)

    frames = frames_at(trained_model.frames[:8], fps=1)
    camera = ScriptedCamera()
    with running_worker(store, camera, process_fps=120, on_result=on_result) as worker:
        processor = worker.camera.processor
        camera.give(frames)
        wait_until(
            lambda: held.waiting == processor.depth == 4,
            what="the processor's depth of frames submitted, none inferred yet",
        )
        assert camera.taken == processor.depth and not handled
        for index in range(len(frames)):
            wait_until(lambda: held.waiting, what=f"the inference of frame {index}")
            held.release_oldest()
        wait_until(lambda: len(handled) == len(frames), what="every frame handled")
    assert [result.frame.index for result in handled] == list(range(len(frames)))
    assert in_flight_when_handled[0] == processor.depth - 1
    replay = CameraProcessor(
        "cam-1",
        Detector(held.runtime),
        SHAPES,
        worker.camera.camera_settings,
        frame_rate=120,
    )
    assert [summary(replay.process(result.frame)) for result in handled] == [
        summary(result) for result in handled
    ]
    assert any(summary(result)[1] for result in handled), "the scenes have tracked objects"


def test_a_bad_frame_is_reported_and_the_next_one_analysed(trained_model):
    images = trained_model.frames[:3]
    frames = frames_at(images, fps=1)
    bad = Frame(images[1].astype(np.float32), 1, frames[1].captured_at, "cam-1")
    handled: list[int] = []
    camera = ScriptedCamera()
    store = ModelStore(preloaded={"shapes": trained_model.onnx})

    def on_result(result: FrameResult, rendered) -> None:
        handled.append(result.frame.index)

    with running_worker(store, camera, process_fps=10, on_result=on_result) as worker:
        camera.give([frames[0], bad])
        error = wait_until(lambda: worker.camera.error, what="the bad frame's error")
        camera.give([frames[2]])
        wait_until(lambda: 2 in handled, what="the frame after the bad one handled")
    assert "uint8" in error and worker.camera.health().error is None
    assert handled == [0, 2]
