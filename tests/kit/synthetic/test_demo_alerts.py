"""The demo does not cry wolf: each demo camera's scenario video, looped as the demo's edge app
loops it, fed to the backend's rule evaluation and alert state machine with its capture times
(no waiting), opens an alert when its story says so and not every loop.

The observations are the scenario's ground truth, one payload every ``refresh_s`` of video time
as the edge app publishes it; the demo models find those objects (tests/kit/test_demo_models.py).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from kit.core.contracts import CameraSettings, DetectionPayload, parse
from kit.core.geometry import boxes_in_zone
from kit.core.rules import CountSample
from kit.demo import CAMERAS, VIDEO_FPS, VIDEO_SECONDS, DemoCamera, camera_zones
from kit.synthetic import FrameTruth, open_scenario
from lambdas.alerts import RuleOutcome, RuleState, next_state
from lambdas.rules import evaluate_payload, history_needed

T0 = datetime(2026, 1, 31, 12, tzinfo=UTC)
LOOPS = 12
"""Eight minutes of demo: long enough for every camera's cooldown to run out at least once."""


@dataclass(frozen=True)
class Opened:
    loop: int
    second: float
    message: str


def loop_truths(camera: DemoCamera, refresh_s: int) -> tuple[list[FrameTruth], list | None]:
    """The ground truth of the frames the edge app publishes in one loop of the camera's video
    (one every ``refresh_s``), and the scenario's region."""
    clip = open_scenario(
        camera.scenario,
        seconds=VIDEO_SECONDS,
        fps=VIDEO_FPS,
        size=(640, 480),
        seed=1,
        **camera.video_options,
    )
    truths = [truth for _, truth in clip.frames(every=round(refresh_s * VIDEO_FPS))]
    return truths, clip.region


def payload(
    camera: DemoCamera, truth: FrameTruth, at: datetime, classes, zones
) -> DetectionPayload:
    """What the edge app publishes for a frame whose detections are its ground truth."""
    detections = [
        {
            "class_name": classes[class_id],
            "class_id": class_id,
            "confidence": 0.9,
            "box": dict(zip(("x1", "y1", "x2", "y2"), box, strict=True)),
            "track_id": track_id,
        }
        for box, class_id, track_id in zip(
            truth.boxes, truth.class_ids, truth.track_ids, strict=True
        )
    ]
    zone_counts = {}
    for zone in zones:
        inside = boxes_in_zone(truth.boxes, zone["polygon"], frame_wh=(640, 480))
        counted = {}
        for keep, class_id in zip(inside, truth.class_ids, strict=True):
            name = classes[class_id]
            if keep and name in (zone.get("classes") or classes):
                counted[name] = counted.get(name, 0) + 1
        zone_counts[zone["name"]] = counted
    return parse(
        DetectionPayload,
        {
            "device_id": "demo-1",
            "camera_id": camera.camera_id,
            "model": {"name": camera.model, "version": 1},
            "captured_at": at.isoformat(),
            "frame": {"width": 640, "height": 480},
            "detections": detections,
            "counts": {name: truth.counts.get(name, 0) for name in classes},
            "zone_counts": zone_counts,
        },
    )


def alerts_opened(camera: DemoCamera) -> list[Opened]:
    """Every alert the camera's rules open over :data:`LOOPS` loops of its video."""
    overrides = {k: v for k, v in camera.overrides.items() if k != "model"}
    truths, region = loop_truths(camera, overrides["refresh_s"])
    zones = camera_zones(region)
    settings = parse(CameraSettings, {**overrides, "zones": zones})
    classes = open_scenario(camera.scenario, seconds=1, fps=1, **camera.video_options).classes
    window = history_needed(settings)
    history: deque[CountSample] = deque(maxlen=max(window, 1))
    states: dict[str, RuleState] = {}
    opened = []
    for loop in range(LOOPS):
        for truth in truths:
            second = loop * VIDEO_SECONDS + truth.time_s
            at = T0 + timedelta(seconds=second)
            sent = payload(camera, truth, at, classes, zones)
            history.append(CountSample.from_payload(sent))
            for rule, evaluation in evaluate_payload(settings, sent, list(history)):
                outcome = RuleOutcome(
                    camera_id=camera.camera_id,
                    rule=rule,
                    evaluation=evaluation,
                    at=at,
                    token=sent.payload_id,
                    payload_id=sent.payload_id,
                )
                before = states.get(rule.key, RuleState())
                states[rule.key] = after = next_state(before, outcome)
                if after.alert is not None and before.alert is None:
                    opened.append(Opened(loop, truth.time_s, after.alert.message))
    return opened


@pytest.mark.parametrize("camera", CAMERAS, ids=[c.camera_id for c in CAMERAS])
def test_each_demo_camera_alerts_when_its_story_says_and_not_every_loop(camera):
    opened = alerts_opened(camera)

    loops = [o.loop for o in opened]
    assert loops and loops[0] == 0, f"{camera.camera_id}: no alert in the first loop: {opened}"
    assert len(loops) == len(set(loops)), f"{camera.camera_id}: twice in one loop: {opened}"
    assert len(loops) <= LOOPS // 3, f"{camera.camera_id}: alerts in loops {loops}"
    first = opened[0]
    story = {
        # the shelf alerts once the bottles ran low and stayed low, not as they go
        "shelf-1": "bottle count",
        "pond-1": "rising",
        "site-1": "without helmet",
    }[camera.camera_id]
    assert story in first.message and " for " in first.message, first


def test_every_nth_frame_has_the_full_clips_ground_truth():
    def clip():
        return open_scenario("helmet_off", seconds=2, fps=5, size=(320, 240), seed=3)

    full = [truth for _, truth in clip().frames()]
    sampled = [truth for _, truth in clip().frames(every=3)]

    assert sampled == full[::3]
    with pytest.raises(ValueError, match="every must be a positive"):
        next(clip().frames(every=0))
