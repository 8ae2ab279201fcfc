"""The edge pipeline core: per camera, frames -> detector -> tracker -> zones/lines -> annotate.

:class:`CameraProcessor` is the per-frame logic of one camera (no threads, no I/O): detect,
track, count in zones and across lines; render the published frame (privacy blur, annotations);
build the :class:`~kit.core.contracts.DetectionPayload`; decide whether the frame is a sample
worth labelling (:class:`~edge_app.sampling.FrameSampler`, by the camera's ``sampling`` settings).
:func:`publish_result` sends one result (frame, crops, payload) through the publisher, every
``refresh_s``; :func:`publish_sample` sends a sampled frame (blurred image, pre-labels, record),
whenever one is.

Around it, from the device down:

- :mod:`edge_app.runtime` — the device's lifecycle, whatever drives its cameras: services
  (spool, publisher, model store, control client), each camera's state (model, control
  settings, counters, errors), control polling, heartbeats, shutdown.
- :mod:`edge_app.app` — the standalone edge app: a reader and a worker thread per camera.
- :mod:`edge_app.panorama` — a Panorama code node: the appliance's media batches.

Benchmarks drive :class:`CameraProcessor` directly.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from edge_app.annotate import annotate, blur_classes, crop, encode_jpeg
from edge_app.config import CameraConfig
from edge_app.detections import Detections
from edge_app.detectors import Detector, InferenceJob, LetterboxInfo
from edge_app.publisher import Publisher, crop_key, frame_key
from edge_app.sampling import FrameSampler, Sample, build_sample
from edge_app.sources import Frame
from edge_app.tracking import ByteTracker
from edge_app.zones import LineCounter, PolygonZone
from kit.core.contracts import CameraSettings, DetectionPayload, LineSpec, ModelRef, ZoneSpec

log = logging.getLogger(__name__)

JPEG_QUALITY = 80


@dataclass
class FrameResult:
    """What the pipeline made of one frame.

    Attributes:
        sample_reasons: why the frame is a sample worth labelling (empty: it is not one).
        sample_detections: the model's boxes to pre-label a sample with (None when no sample).
    """

    frame: Frame
    detections: Detections
    counts: dict[str, int]
    zone_counts: dict[str, dict[str, int]]
    line_counts: dict[str, dict[str, int]]
    inference_ms: float
    sample_reasons: tuple[str, ...] = ()
    sample_detections: Detections | None = None


class CameraProcessor:
    """The per-frame logic of one camera. Not thread-safe: one processor per camera.

    Args:
        camera_id: the camera.
        detector: the loaded model (may be shared with other cameras: the processor uses its own
            input buffer and only the detector's stateless stages).
        model: which model ``detector`` is, for payloads.
        camera_settings: the camera's resolved control settings (confidence, NMS IoU, max
            detections, zones, lines …).
        frame_rate: expected analysed frames per second (sizes the tracker's lost-track buffer).
    """

    def __init__(
        self,
        camera_id: str,
        detector: Detector,
        model: ModelRef,
        camera_settings: CameraSettings | None = None,
        *,
        frame_rate: float = 10.0,
    ):
        self.camera_id = camera_id
        self.frame_rate = frame_rate
        self.camera_settings = camera_settings or CameraSettings()
        self.zones: list[PolygonZone] = []
        self.lines: list[LineCounter] = []
        self._line_specs: dict[str, LineSpec] = {}
        self._in_flight: deque[tuple[Frame, LetterboxInfo, np.ndarray, InferenceJob]] = deque()
        self.sampler = FrameSampler(self.camera_settings.sampling)
        self.set_detector(detector, model)
        self.configure(self.camera_settings)

    def set_detector(self, detector: Detector, model: ModelRef) -> None:
        """Switch model: a new tracker too (track ids of another model mean nothing).

        Raises:
            RuntimeError: while frames are in flight (`collect` them first).
        """
        self._check_idle("switch model")
        self.detector = detector
        self.model = model
        self._free_inputs: list[np.ndarray] = []
        self.tracker = ByteTracker(
            track_activation_threshold=self.camera_settings.confidence,
            high_conf_det_threshold=self.camera_settings.confidence,
            low_conf_det_threshold=min(0.1, self.camera_settings.confidence),
            frame_rate=self.frame_rate,
            minimum_consecutive_frames=1,
        )
        self.sampler.forget_counts()

    def configure(self, camera_settings: CameraSettings) -> None:
        """Apply zones, lines, confidence, IoU and max detections; a line whose spec did not
        change keeps its counts.

        Raises:
            RuntimeError: while frames are in flight (`collect` them first).
        """
        self._check_idle("change settings")
        confidence_changed = camera_settings.confidence != self.camera_settings.confidence
        self.camera_settings = camera_settings
        self.zones = [_zone_from_spec(spec) for spec in camera_settings.zones]
        lines = []
        for spec in camera_settings.lines:
            kept = next(
                (line for line in self.lines if self._line_specs.get(line.name) == spec), None
            )
            lines.append(kept or LineCounter(spec.name, spec.start, spec.end, normalized=True))
        self.lines = lines
        self._line_specs = {spec.name: spec for spec in camera_settings.lines}
        self.sampler.configure(camera_settings.sampling)
        if confidence_changed:
            self.set_detector(self.detector, self.model)

    # -- per frame ----------------------------------------------------------------------
    @property
    def pending(self) -> int:
        """Frames submitted and not collected yet."""
        return len(self._in_flight)

    @property
    def depth(self) -> int:
        """Frames worth keeping in flight: one per concurrent inference, one queued so that the
        runtime never waits for this thread to letterbox the next, and the one being tracked."""
        return self.detector.max_in_flight + 2

    def submit(self, frame: Frame) -> None:
        """Letterbox ``frame`` and start its inference; `collect` returns results in order.

        Raises:
            ValueError: for an image that is not an ``(H, W, 3)`` uint8 frame (nothing is queued).
        """
        buffer = self._free_inputs.pop() if self._free_inputs else None
        try:
            # a buffer of another shape is replaced (a rectangular model follows the frame size)
            tensor, info = self.detector.preprocess(frame.image, out=buffer)
            job = self.detector.submit(tensor)
        except BaseException:
            if buffer is not None:
                self._free_inputs.append(buffer)
            raise
        self._in_flight.append((frame, info, tensor, job))

    def collect(self) -> FrameResult:
        """Wait for the oldest submitted frame, then track and count it.

        Raises:
            RuntimeError: when nothing is in flight.
            Exception: the frame's inference error (that frame is dropped; later ones are not).
        """
        if not self._in_flight:
            raise RuntimeError(f"camera {self.camera_id}: no frame in flight to collect")
        frame, info, buffer, job = self._in_flight.popleft()
        try:
            raw = job.result()
        finally:
            self._free_inputs.append(buffer)
        height, width = frame.image.shape[:2]
        low = min(0.1, self.camera_settings.confidence)
        detections = self.detector.postprocess(
            raw,
            info,
            conf=low,
            iou=self.camera_settings.iou,
            max_det=self.camera_settings.max_detections,
        )
        tracked = self.tracker.update(detections)
        confident = tracked[tracked.confidence >= self.camera_settings.confidence]
        zone_counts = {}
        for zone in self.zones:
            zone.trigger(confident, frame_wh=(width, height))
            zone_counts[zone.name] = zone.counts(self.detector.class_names)
        line_counts = {}
        for line in self.lines:
            line.trigger(confident, frame_wh=(width, height))
            line_counts[line.name] = {"in": line.in_count, "out": line.out_count}
        counts = confident.counts(self.detector.class_names)
        # the detector's own boxes, not the tracker's: the band judges what the model hesitates
        # about, and the pre-labels are what the model predicted
        reasons = self.sampler.decide(detections.confidence, counts, frame.captured_at)
        sample_detections = None
        if reasons:
            threshold = self.sampler.prelabel_threshold(self.camera_settings.confidence)
            sample_detections = detections[detections.confidence >= threshold]
        return FrameResult(
            frame=frame,
            detections=confident,
            counts=counts,
            zone_counts=zone_counts,
            line_counts=line_counts,
            inference_ms=job.elapsed_ms,
            sample_reasons=reasons,
            sample_detections=sample_detections,
        )

    def process(self, frame: Frame) -> FrameResult:
        """Detect, track and count on one frame (nothing else may be in flight)."""
        self._check_idle("process a frame out of turn")
        self.submit(frame)
        return self.collect()

    def process_all(
        self, frames: Iterable[Frame], depth: int | None = None
    ) -> Iterator[FrameResult]:
        """Results of ``frames`` in order, keeping up to ``depth`` frames in flight.

        While the backend infers the newest frames, this thread letterboxes the next one and
        tracks the oldest, so the CPU work around inference overlaps inference itself.
        ``depth`` defaults to `depth`; 1 is `process` frame by frame.
        """
        depth = self.depth if depth is None else depth
        if depth < 1:
            raise ValueError(f"depth must be at least 1, got {depth}")
        try:
            for frame in frames:
                if len(self._in_flight) >= depth:
                    yield self.collect()
                self.submit(frame)
            while self._in_flight:
                yield self.collect()
        finally:
            self.drain()

    def drain(self) -> None:
        """Wait for the frames in flight and drop their results (tracking skips them)."""
        while self._in_flight:
            _, _, buffer, job = self._in_flight.popleft()
            try:
                job.result()
            except Exception as error:  # dropped anyway; the error was the frame's own
                log.debug("camera %s: dropped in-flight frame: %s", self.camera_id, error)
            self._free_inputs.append(buffer)

    def _check_idle(self, action: str) -> None:
        if self._in_flight:
            raise RuntimeError(
                f"camera {self.camera_id}: cannot {action} with {len(self._in_flight)} frame(s) "
                "in flight; collect() them first"
            )

    def render(
        self,
        result: FrameResult,
        *,
        blur: Iterable[str] = ("person",),
        blur_method: str = "gaussian",
    ) -> np.ndarray:
        """The frame that leaves the device: privacy classes blurred, then annotated."""
        names = self.detector.class_names
        private = blur_classes(
            result.frame.image, result.detections, names, classes=tuple(blur), method=blur_method
        )
        return annotate(
            private,
            result.detections,
            class_names=names,
            zones=self.zones,
            lines=self.lines,
            camera=self.camera_id,
            model=str(self.model),
            timestamp=result.frame.captured_at.timestamp(),
        )

    def crops(
        self,
        result: FrameResult,
        classes: Iterable[str],
        *,
        limit: int,
        pad: int,
        blur: Iterable[str] = (),
        blur_method: str = "gaussian",
    ) -> list[tuple[str, np.ndarray]]:
        """Crops of ``classes`` (at most ``limit``, most confident first), privacy classes blurred."""
        names = self.detector.class_names
        wanted = [c for c in classes if c in names.values()]
        if not wanted or not len(result.detections):
            return []
        source = blur_classes(
            result.frame.image, result.detections, names, classes=tuple(blur), method=blur_method
        )
        selected = result.detections[np.argsort(-result.detections.confidence)]
        selected = selected.filter(classes=wanted)[:limit]
        crops = []
        for index in range(len(selected)):
            # one at a time: crop() skips boxes that are empty once clipped to the frame
            for image in crop(source, selected[index], pad=pad, class_names=names):
                crops.append((names[int(selected.class_id[index])], image))
        return crops

    def payload(self, result: FrameResult, device_id: str, key: str | None) -> DetectionPayload:
        """The detection payload of ``result``; ``key`` is where its annotated frame goes."""
        height, width = result.frame.image.shape[:2]
        return DetectionPayload(
            device_id=device_id,
            camera_id=self.camera_id,
            model=self.model,
            captured_at=result.frame.captured_at,
            frame={"width": width, "height": height},
            detections=result.detections.to_list(self.detector.class_names),
            counts=result.counts,
            zone_counts=result.zone_counts,
            line_counts=result.line_counts,
            frame_key=key,
            inference_ms=round(result.inference_ms, 3),
        )


def _zone_from_spec(spec: ZoneSpec) -> PolygonZone:
    return PolygonZone(spec.name, spec.polygon, classes=spec.classes, normalized=True)


def publish_result(
    processor: CameraProcessor,
    camera: CameraConfig,
    result: FrameResult,
    publisher: Publisher | None,
    device_id: str,
) -> np.ndarray:
    """Render ``result`` (privacy blur, annotations) and publish its frame, crops and payload.

    Returns:
        The rendered frame (also when ``publisher`` is None: nothing is sent then).
    """
    privacy = camera.privacy
    rendered = processor.render(result, blur=privacy.blur_classes, blur_method=privacy.method)
    if publisher is None:
        return rendered
    captured_at: datetime = result.frame.captured_at
    crops = [
        (
            crop_key(device_id, camera.id, captured_at, index, class_name),
            encode_jpeg(image, JPEG_QUALITY),
        )
        for index, (class_name, image) in enumerate(
            processor.crops(
                result,
                camera.crops.classes,
                limit=camera.crops.max_per_publish,
                pad=camera.crops.padding,
                blur=privacy.blur_classes,
                blur_method=privacy.method,
            )
        )
    ]
    payload = processor.payload(result, device_id, frame_key(device_id, camera.id, captured_at))
    publisher.publish(payload, encode_jpeg(rendered, JPEG_QUALITY), crops)
    return rendered


def publish_sample(
    processor: CameraProcessor,
    camera: CameraConfig,
    result: FrameResult,
    publisher: Publisher | None,
    device_id: str,
) -> Sample | None:
    """Send ``result`` as a labelling sample when it is one (privacy classes blurred, as in every
    published frame), under ``samples/<device>/<camera>/``.

    Returns:
        The sample sent; None when the frame is no sample or there is no ``publisher``.
    """
    if not result.sample_reasons or result.sample_detections is None or publisher is None:
        return None
    sample = build_sample(
        result.frame.image,
        result.sample_detections,
        processor.detector.class_names,
        reasons=result.sample_reasons,
        model=processor.model,
        device_id=device_id,
        camera_id=camera.id,
        captured_at=result.frame.captured_at,
        blur=camera.privacy.blur_classes,
        blur_method=camera.privacy.method,
    )
    publisher.publish_sample(sample)
    return sample
