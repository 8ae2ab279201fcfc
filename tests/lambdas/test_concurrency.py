"""Concurrent processors agree with a sequential one (issue 14).

On AWS several processor instances run at once and an SQS standard queue reorders and redelivers.
Four processors, each with its own clients (:class:`lambdas.runtime.Services`), take interleaved
payloads of the same cameras from one shared queue, out of order and with redeliveries, and
retry what fails as SQS would. The result must be what one processor makes of the same payloads
one at a time in capture order: the same stored cameras, detections, alert records and e-mails.

What "the same payloads" means: the rules always judge a camera's newest payload, so a payload
that arrives after a newer one of its camera was judged is stored but drives no rule, as with one
processor (:mod:`lambdas.processor.records`). Which payloads arrive late in a parallel run depends
on timing; each processor reports it (``evaluated``), and the sequential run judges exactly those
in capture order, then receives the late ones. Everything else, e-mails included, must match.
A ``rising_trend`` rule is left out: it judges whatever history is stored when it runs, late
payloads included, which depends on timing by definition.
"""

from __future__ import annotations

import json
import queue
import random
import re
import threading
from datetime import timedelta
from typing import Any

import pytest
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
)

from kit.core.backend import describe_backend
from kit.core.contracts import ControlConfig, parse
from kit.core.settings import Settings
from kit.local.lambda_events import LocalLambdaContext
from kit.local.provision import provision
from kit.local.runner import read_alert_inbox
from lambdas.alerts import StateConflictError
from lambdas.processor.records import handle_record
from lambdas.runtime import Services
from lambdas.store import item_to_alert
from tests.lambdas.conftest import T0, BackendHarness

PROCESSORS = 4
CAMERAS = ("shelf-1", "shelf-2", "shelf-3")
PAYLOADS_PER_CAMERA = 16
RULES = {
    "refresh_s": 5,
    "rules": [
        {"type": "count_below", "class_name": "bottle", "threshold": 3, "cooldown_s": 12},
        {"type": "count_above", "class_name": "person", "threshold": 1, "cooldown_s": 0},
        {"type": "ppe_violation", "cooldown_s": 0},
        {"type": "camera_silent"},
    ],
}
CONFIG = {"cameras": {camera: RULES for camera in CAMERAS}}


def stream(seed: int) -> list[dict[str, Any]]:
    """The payloads of every camera, one every 5 s, counts that cross the thresholds often."""
    rng = random.Random(seed)
    payloads = []
    for camera in CAMERAS:
        device = "demo-1" if camera != "shelf-3" else "demo-2"
        for index in range(PAYLOADS_PER_CAMERA):
            at = T0 + timedelta(seconds=5 * index)
            # the newest breaches count_above (cooldown 0): each camera ends with an open alert
            persons = rng.choice([0, 1, 2]) if index < PAYLOADS_PER_CAMERA - 1 else 2
            helmets = rng.choice([0, persons])
            detections = [
                {
                    "class_name": name,
                    "class_id": class_id,
                    "confidence": 0.9,
                    "box": box,
                }
                for name, class_id, box, count in (
                    ("person", 0, {"x1": 100, "y1": 100, "x2": 200, "y2": 400}, persons),
                    ("helmet", 1, {"x1": 110, "y1": 100, "x2": 190, "y2": 150}, helmets),
                )
                for _ in range(count)
            ]
            payloads.append(
                BackendHarness.payload(
                    camera_id=camera,
                    at=at,
                    device_id=device,
                    counts={"bottle": rng.choice([0, 2, 4, 6]), "person": persons},
                    detections=detections,
                    frame_key=f"frames/{device}/{camera}/{at:%Y/%m/%d}/{index}.jpg",
                )
            )
    return payloads


def arrivals(payloads: list[dict[str, Any]], seed: int, jitter_s: float) -> list[tuple[str, str]]:
    """(message id, body) as a standard queue delivers them: interleaved, each displaced by up
    to ``jitter_s`` of capture time, about a third delivered twice (once more, anywhere)."""
    rng = random.Random(seed)
    messages = [(f"m-{i}", json.dumps(p)) for i, p in enumerate(payloads)]
    order = sorted(
        range(len(messages)),
        key=lambda i: T0.timestamp() + 5 * (i % PAYLOADS_PER_CAMERA) + rng.uniform(0, jitter_s),
    )
    delivered = [messages[i] for i in order]
    for message in rng.sample(messages, len(messages) // 3):
        delivered.insert(rng.randrange(len(delivered) + 1), message)
    return delivered


class ParallelProcessors:
    """``count`` processor threads over one queue of messages; what fails is put back, as SQS
    redelivers it after its visibility timeout."""

    def __init__(self, harness: BackendHarness, settings: Settings, count: int):
        self.harness = harness
        self.services = [Services(settings) for _ in range(count)]
        self.config = parse(ControlConfig, self.services[0].store.get_config().model_dump())
        self.messages: queue.Queue[tuple[str, str] | None] = queue.Queue()
        self.results: dict[str, dict[str, Any]] = {}
        self.retried: list[str] = []
        self.errors: list[BaseException] = []
        self._pending = 0
        self._lock = threading.Lock()

    def run(self, delivered: list[tuple[str, str]]) -> None:
        self._pending = len(delivered)
        for message in delivered:
            self.messages.put(message)
        threads = [
            threading.Thread(target=self._work, args=(services,), daemon=True)
            for services in self.services
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=600)
        assert not any(thread.is_alive() for thread in threads), "processors did not finish"
        assert not self.errors, self.errors

    def _work(self, services: Services) -> None:
        while True:
            message = self.messages.get()
            if message is None:
                return
            message_id, body = message
            services.idempotency_config.register_lambda_context(
                LocalLambdaContext("evktest-processor")
            )
            record = SQSRecord(self.harness.sqs_record(body, message_id=message_id))
            try:
                result = handle_record(record, services=services, config=self.config)
            except (StateConflictError, IdempotencyAlreadyInProgressError):
                self.retried.append(message_id)
                self.messages.put(message)
                continue
            except BaseException as error:  # noqa: BLE001  (reported to the test's thread)
                self.errors.append(error)
                result = None
            with self._lock:
                if result is not None:
                    self.results[json.loads(body)["payload_id"]] = result
                self._pending -= 1
                if self._pending == 0:
                    for _ in self.services:
                        self.messages.put(None)


def backend_of_its_own(harness: BackendHarness, prefix: str) -> Settings:
    """A backend provisioned under its own ``prefix`` on the session's moto server. Both runs get
    one: the session stack's runner checks the harness's cameras for silence on schedule, by the
    wall clock, and would open camera_silent alerts on payloads dated months ago in one run and
    not in the other."""
    settings = Settings.model_validate(
        harness.settings.model_dump(exclude={"resources"}) | {"prefix": prefix}
    )
    provision(describe_backend(settings), settings)
    return settings


def sequential(harness: BackendHarness, settings: Settings, payloads, evaluated: set[str]):
    """One processor: the payloads judged in the parallel run in capture order, then the rest
    (late: stored, not judged)."""
    services = Services(settings)
    config = parse(ControlConfig, CONFIG | {"revision": 1})
    assert services.store.put_config(config, expected_revision=None)
    ordered = sorted(payloads, key=lambda p: (p["payload_id"] not in evaluated, p["captured_at"]))
    for payload in ordered:
        services.idempotency_config.register_lambda_context(LocalLambdaContext("evktest-processor"))
        record = SQSRecord(harness.sqs_record(payload))
        result = handle_record(record, services=services, config=config)
        assert result["evaluated"] == (payload["payload_id"] in evaluated), payload
    return services


FRAME_LINK = re.compile(r"https?://\S+?/[^/\s]+/(frames/\S+?)\?\S+")


def outcome(services: Services) -> dict[str, Any]:
    """What a run left: cameras, devices, detections, alert records and e-mails, without what
    differs by design (arrival times, physical names, link signatures, claim times)."""
    store, names = services.store, services.settings.resources
    cameras = {
        c.camera_id: {
            **c.to_json(),
            "received_at": None,
            "rules": {k: json.loads(v) for k, v in c.rules.items()},
        }
        for c in store.list_cameras()
    }
    devices = {d.device_id: d.last_payload_at for d in store.list_devices()}
    detections = {
        camera: store.query_detections(camera, limit=1000, newest_first=False).items
        for camera in CAMERAS
    }
    alerts = sorted(
        (
            item_to_alert(item).model_dump(mode="json")
            for item in services.dynamodb.scan(TableName=names.alerts_table)["Items"]
        ),
        key=lambda a: a["alert_id"],
    )
    notices = []
    while batch := read_alert_inbox(services.settings, wait_s=1):
        notices += batch
    emails = sorted(
        (n.subject, FRAME_LINK.sub(r"<link to \1>", n.body), sorted(n.attributes.items()))
        for n in notices
    )
    return {
        "cameras": cameras,
        "devices": devices,
        "detections": detections,
        "alerts": alerts,
        "emails": emails,
    }


@pytest.mark.parametrize(("seed", "jitter_s"), [(1, 8.0), (2, 30.0)])
def test_parallel_processors_with_redeliveries_and_reordering_agree_with_one_in_order(
    harness, seed, jitter_s
):
    """GIVEN three cameras' interleaved payloads, delivered out of order with redeliveries
    WHEN four processors take them in parallel, retrying what fails
    THEN cameras, detections, alerts and e-mails are those of one processor in capture order."""
    payloads = stream(seed)
    parallel_settings = backend_of_its_own(harness, f"evkpar{seed}")
    assert Services(parallel_settings).store.put_config(
        parse(ControlConfig, CONFIG | {"revision": 1}), expected_revision=None
    )
    parallel = ParallelProcessors(harness, parallel_settings, PROCESSORS)

    parallel.run(arrivals(payloads, seed, jitter_s))

    assert set(parallel.results) == {p["payload_id"] for p in payloads}
    evaluated = {pid for pid, result in parallel.results.items() if result["evaluated"]}
    newest = {
        max((p for p in payloads if p["camera_id"] == c), key=lambda p: p["captured_at"])[
            "payload_id"
        ]
        for c in CAMERAS
    }
    assert newest <= evaluated
    reference = sequential(
        harness, backend_of_its_own(harness, f"evkref{seed}"), payloads, evaluated
    )

    got, expected = outcome(parallel.services[0]), outcome(reference)

    assert len(expected["alerts"]) >= len(CAMERAS) <= len(expected["emails"])  # not vacuous
    for part in ("detections", "devices", "cameras", "alerts", "emails"):
        assert got[part] == expected[part], f"{part}: {differences(got[part], expected[part])}"


def differences(got: Any, expected: Any, path: str = "") -> list[str]:
    """Where two JSON-like values differ: ``path: got != expected`` for each leaf."""
    if isinstance(got, dict) and isinstance(expected, dict):
        return [
            line
            for key in sorted(set(got) | set(expected), key=str)
            for line in differences(got.get(key), expected.get(key), f"{path}/{key}")
        ]
    if isinstance(got, list) and isinstance(expected, list) and len(got) == len(expected):
        return [
            line
            for i, (a, b) in enumerate(zip(got, expected, strict=True))
            for line in differences(a, b, f"{path}[{i}]")
        ]
    return [] if got == expected else [f"{path}: {got!r} != {expected!r}"]
