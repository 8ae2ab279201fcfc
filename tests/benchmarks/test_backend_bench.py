"""Backend benchmarks (``make bench``): processor throughput, its DynamoDB calls, what a camera
costs, and end-to-end alert latency.

- Processor payloads/s: the processor handler in-process, fed SQS batch events of 10 payloads
  from 10 cameras, against the local moto server (DynamoDB, SNS, SQS): every payload stored
  once, its camera's count rule evaluated. Two workloads: the steady path (no payload breaches
  the rule) and one with alerts opened and resolved along the way. In the same run, moto's raw
  rate of single PutItem calls of the same items, and the ratio (the handler's overhead over
  the emulator's floor; goal >= 0.3 on the steady path): the steady run and the raw puts
  alternate in :data:`ROUNDS` rounds and the ratio is the median of the rounds' ratios, since
  the shared machine's load drifts within a run.
- DynamoDB calls per payload by operation, counted at botocore (a batch write is one call), with
  the 10 cameras on one device and on 10 devices.
- The cost of a camera-month at refresh 1 / 5 / 60 s (:mod:`kit.cost`), from the measured calls,
  item sizes and handler CPU time (``docs/cost.md`` explains it).
- End-to-end latency: `kit local up` (moto + the runner process); a payload that breaches a rule
  is sent to the detections queue; the time until its alert is read from the alerts-inbox
  subscription, p50/p95.

Results go to ``docs/benchmarks.md`` under "## Backend" (other sections are kept).
"""

from __future__ import annotations

import json
import statistics
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from kit.core.contracts import ControlConfig, parse, parse_edge_message
from kit.core.settings import load_settings
from kit.cost import EU_WEST_1, Measured, camera_month, payload_usage, per_payload_usd
from kit.local import LocalStack
from kit.local.lambda_events import LocalLambdaContext
from kit.local.runner import read_alert_inbox
from tests.support.bench_report import machine_line, write_section

pytestmark = pytest.mark.bench

RECORDS = 300
CAMERAS = 10
BATCH = 10
LATENCY_SAMPLES = 40
RULE = {"type": "count_below", "class_name": "bottle", "threshold": 3, "cooldown_s": 0}
STEADY_BOTTLES = 6
"""Above the rule's threshold: the steady path (no alert transition)."""
AWS_CALL_MS = 6.0
"""Assumed latency of one DynamoDB call from Lambda in the same region (single-digit ms), for
the batch duration the cost model bills; moto's is not AWS's."""
REFRESHES_S = (1, 5, 60)
ROUNDS = 5
"""Rounds of raw puts then steady batches; each round's ratio compares the two under one load."""

results: dict[str, str] = {}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def detection(camera: str, bottles: int, at: datetime, device: str = "bench-1") -> str:
    return json.dumps(
        {
            "kind": "detection",
            "payload_id": uuid.uuid4().hex,
            "device_id": device,
            "camera_id": camera,
            "model": {"name": "shelf", "version": 1},
            "captured_at": at.isoformat(),
            "frame": {"width": 640, "height": 480},
            "detections": [
                {
                    "class_name": "bottle",
                    "class_id": 0,
                    "confidence": 0.9,
                    "box": {"x1": 10.0 * i, "y1": 10, "x2": 10.0 * i + 8, "y2": 60},
                }
                for i in range(bottles)
            ],
            "counts": {"bottle": bottles},
            "frame_key": f"frames/{device}/{camera}/{at:%Y/%m/%d/%H%M%S}.jpg",
        }
    )


def heartbeat(at: datetime, device: str = "bench-1") -> str:
    """A heartbeat of a device running the benchmark's cameras (its item's real size)."""
    moment = at.isoformat()
    return json.dumps(
        {
            "kind": "heartbeat",
            "device_id": device,
            "app_version": "0.1.0",
            "sent_at": moment,
            "uptime_s": 3600.5,
            "cameras": {
                f"shelf-{i}": {
                    "state": "running",
                    "fps": 5.0,
                    "last_frame_at": moment,
                    "model": {"name": "shelf", "version": 1},
                    "frames_published": 720,
                    "reconnects": 0,
                }
                for i in range(CAMERAS)
            },
            "spool_depth": 0,
            "spool_bytes": 0,
            "dropped": {"frames": 0, "payloads": 0},
        }
    )


def sqs_event(bodies: list[str]) -> dict:
    return {
        "Records": [
            {
                "messageId": str(uuid.uuid4()),
                "receiptHandle": "bench",
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": str(int(time.time() * 1000)),
                },
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:eu-west-1:123456789012:evkbench-detections",
                "awsRegion": "eu-west-1",
            }
            for body in bodies
        ]
    }


def item_bytes(item: dict) -> int:
    """An item's size as DynamoDB counts it: attribute names plus values (numbers about half
    their digits, nested maps and lists 3 bytes plus their parts)."""

    def value_bytes(attribute: dict) -> int:
        (kind, raw), *_ = attribute.items()
        if kind in ("S", "B"):
            return len(raw.encode() if isinstance(raw, str) else raw)
        if kind == "N":
            return len(raw.lstrip("-").replace(".", "")) // 2 + 1
        if kind == "M":
            return 3 + sum(len(k.encode()) + value_bytes(v) for k, v in raw.items())
        if kind == "L":
            return 3 + sum(1 + value_bytes(v) for v in raw)
        return 1

    return sum(len(name.encode()) + value_bytes(value) for name, value in item.items())


class DynamoDBCalls:
    """How many calls of each DynamoDB operation a client makes."""

    def __init__(self, client):
        self.by_operation: Counter[str] = Counter()
        client.meta.events.register("provide-client-params.dynamodb.*", self._record)

    def _record(self, model, **_) -> None:
        self.by_operation[model.name] += 1

    def reset(self) -> None:
        self.by_operation.clear()


def store_config(settings, values: dict) -> None:
    from lambdas.store import Store

    store = Store(settings.client("dynamodb"), settings.resources)
    store.put_config(parse(ControlConfig, {**values, "revision": 1}), expected_revision=0)


@pytest.fixture(scope="module")
def quiet_stack(tmp_path_factory):
    """moto with the backend, without the runner: the benchmark invokes the processor itself."""
    stack = LocalStack(
        load_settings(
            state_dir=tmp_path_factory.mktemp("bench"), local_port=0, api_port=0, prefix="evkbench"
        )
    )
    stack.up(runner=False)
    yield stack.settings.model_copy(update={"endpoint_url": stack.endpoint_url})
    stack.down(snapshot=False)


def raw_put_items(bodies: list[str]) -> list[dict]:
    """The processor's own detection items of ``bodies``, under a camera of their own."""
    from lambdas.store import detection_item

    items = []
    for body in bodies:
        item = detection_item(parse_edge_message(body, queued_at=datetime.now(UTC)))
        item["camera_id"] = {"S": "raw-put-probe"}
        items.append(item)
    return items


def raw_put_seconds(client, table: str, items: list[dict]) -> float:
    """Seconds moto takes for single PutItem calls of ``items``, one after another on one
    client: the floor any handler on this emulator stands on."""
    began = time.perf_counter()
    for item in items:
        client.put_item(TableName=table, Item=item)
    return time.perf_counter() - began


def run_processor(events: list[dict]) -> tuple[float, float]:
    """Wall and CPU seconds of the handler over ``events`` (every record must succeed)."""
    from lambdas.processor.handler import handler

    began, cpu = time.perf_counter(), time.process_time()
    for event in events:
        response = handler(event, LocalLambdaContext("evkbench-processor"))
        assert response["batchItemFailures"] == []
    return time.perf_counter() - began, time.process_time() - cpu


def stream(start: datetime, bottles, devices: int = 1) -> list[dict]:
    """RECORDS payloads, one per camera per second, in SQS events of BATCH (10 cameras each);
    camera n on device n modulo ``devices``."""
    bodies = [
        detection(
            f"shelf-{i % CAMERAS}",
            bottles(i),
            start + timedelta(seconds=i // CAMERAS),
            device=f"bench-{i % CAMERAS % devices + 1}",
        )
        for i in range(RECORDS)
    ]
    return [sqs_event(bodies[i : i + BATCH]) for i in range(0, RECORDS, BATCH)]


def stored_sizes(settings) -> dict[str, float]:
    """Mean stored item size per table (the processor's items after the steady run)."""
    client, names = settings.client("dynamodb"), settings.resources
    sizes = {}
    for label, table in (
        ("detection", names.detections_table),
        ("completion", names.idempotency_table),
        ("camera", names.cameras_table),
        ("device", names.devices_table),
        ("config", names.config_table),
    ):
        items = [
            item
            for page in client.get_paginator("scan").paginate(TableName=table)
            for item in page["Items"]
            if item.get("camera_id", {}).get("S") != "raw-put-probe"
        ]
        sizes[label] = statistics.mean(item_bytes(item) for item in items)
    return sizes


def test_processor_payloads_per_second_and_calls_per_payload(quiet_stack):
    import logging

    from lambdas import runtime

    logging.getLogger("processor").setLevel(logging.WARNING)
    settings = quiet_stack
    store_config(settings, {"defaults": {"rules": [RULE]}})
    services = runtime.use_settings(settings)
    calls = DynamoDBCalls(services.dynamodb)
    start = datetime(2026, 1, 31, tzinfo=UTC)
    steady = stream(start, lambda i: STEADY_BOTTLES)
    alerting = stream(start + timedelta(hours=1), lambda i: (i // 10) % 6)
    mixed = stream(start + timedelta(hours=2), lambda i: STEADY_BOTTLES, devices=CAMERAS)

    probes = raw_put_items([r["body"] for event in steady for r in event["Records"]])
    probe_client = settings.client("dynamodb")
    raw_put_seconds(probe_client, settings.resources.detections_table, probes[:BATCH])  # warm-up
    calls.reset()
    raw_s = steady_wall = steady_cpu = 0.0
    ratios = []
    per_round = len(steady) // ROUNDS
    for index in range(ROUNDS):
        events = steady[index * per_round : (index + 1) * per_round]
        items = probes[index * per_round * BATCH : (index + 1) * per_round * BATCH]
        raw = raw_put_seconds(probe_client, settings.resources.detections_table, items)
        wall, cpu = run_processor(events)
        ratios.append(raw / wall)  # payloads/s over PutItem/s, as many of each
        raw_s, steady_wall, steady_cpu = raw_s + raw, steady_wall + wall, steady_cpu + cpu
    steady_calls = dict(calls.by_operation)
    raw_rate = len(probes) / raw_s
    calls.reset()
    alerting_wall, _ = run_processor(alerting)
    alerting_calls = dict(calls.by_operation)
    alerts = sum(1 for _ in read_alert_inbox_all(settings))
    calls.reset()
    run_processor(mixed)
    mixed_calls = dict(calls.by_operation)

    heartbeat_at = start + timedelta(hours=3)
    run_processor([sqs_event([heartbeat(heartbeat_at)])])

    steady_rate, alerting_rate = RECORDS / steady_wall, RECORDS / alerting_wall
    ratio = statistics.median(ratios)
    per_payload = {op: n / RECORDS for op, n in sorted(steady_calls.items())}
    steady_total = sum(per_payload.values())
    alerting_total = sum(alerting_calls.values()) / RECORDS
    mixed_total = sum(mixed_calls.values()) / RECORDS

    def by_operation(counts: dict[str, int]) -> str:
        return ", ".join(f"{op} {n / RECORDS:.2f}" for op, n in sorted(counts.items()))

    results["raw"] = (
        f"| moto, raw single PutItem | {RECORDS} detection items, one call each, one client | "
        f"**{raw_rate:.0f} PutItem/s** |"
    )
    results["processor"] = (
        f"| processor, steady path, in-process against moto | {RECORDS} payloads in batches of "
        f"{BATCH} from {CAMERAS} cameras, a count rule each, no breach | "
        f"**{steady_rate:.0f} payloads/s** ({steady_wall * 1000 * BATCH / RECORDS:.0f} ms a "
        f"batch, {steady_cpu * 1000 * BATCH / RECORDS:.1f} ms of it handler CPU); "
        f"**{ratio:.2f}x** the raw PutItem rate (median of {ROUNDS} alternating rounds, "
        f"{min(ratios):.2f}-{max(ratios):.2f}) |"
    )
    results["alerting"] = (
        f"| processor with alerts, in-process against moto | the same, counts crossing the "
        f"threshold ({alerts} alerts opened/resolved) | **{alerting_rate:.0f} payloads/s** "
        f"({alerting_total:.2f} DynamoDB calls a payload) |"
    )
    results["calls"] = (
        f"| DynamoDB calls a payload, steady path | counted at botocore, a batch write one call "
        f"| **{steady_total:.2f}**: {by_operation(steady_calls)}; the 10 cameras on 10 devices: "
        f"**{mixed_total:.2f}** (with alerts: {by_operation(alerting_calls)}) |"
    )
    sizes = stored_sizes(settings)
    calls_per_batch = steady_total * BATCH
    measured = Measured(
        detection_item_bytes=sizes["detection"],
        claim_item_bytes=sizes["completion"],  # a claim and a result: each under 1 KB
        completion_item_bytes=sizes["completion"],
        camera_item_bytes=sizes["camera"],
        device_item_bytes=sizes["device"],
        config_item_bytes=sizes["config"],
        message_bytes=statistics.mean(len(r["body"]) for r in steady[0]["Records"]),
        batch_ms=calls_per_batch * AWS_CALL_MS + steady_cpu * 1000 * BATCH / RECORDS,
        batch_size=BATCH,
    )
    months = [camera_month(payload_usage(measured, refresh_s=r), refresh_s=r) for r in REFRESHES_S]
    results["cost"] = (
        f"| a camera-month, {EU_WEST_1.region} list prices of {EU_WEST_1.as_of} "
        f"([cost.md](cost.md)) | measured items (detection {sizes['detection']:.0f} B, camera "
        f"{sizes['camera']:.0f} B), a {measured.batch_ms:.0f} ms batch on AWS "
        f"({AWS_CALL_MS:g} ms a call), a 60 KB frame each payload, 30-day retention | "
        + ", ".join(f"refresh {m.refresh_s:g} s: **${m.total:.2f}**" for m in months)
        + " |"
    )
    # what the ratios mean for a buyer: payloads a dollar buys, cameras one processor serves
    usage_5s = payload_usage(measured, refresh_s=5)
    month_5s = camera_month(usage_5s, refresh_s=5)
    per_instance = BATCH / (measured.batch_ms / 1000)  # payloads/s one concurrent Lambda handles
    results["buyer"] = (
        f"| for a buyer | the numbers above at AWS prices | **{1 / per_payload_usd(usage_5s):,.0f} "
        f"payloads a dollar** (requests and compute), {month_5s.payloads / month_5s.total:,.0f} "
        f"with a month's storage at refresh 5 s; one processor instance (a {BATCH}-payload batch "
        f"in {measured.batch_ms:.0f} ms on AWS) keeps up with **{per_instance * 5:,.0f} cameras "
        f"at refresh 5 s** ({per_instance:.0f} payloads/s) |"
    )
    for key in ("raw", "processor", "alerting", "calls", "cost", "buyer"):
        print(results[key])
    print("item sizes (bytes):", {k: round(v) for k, v in sizes.items()})
    for month in months:
        print(month)
    assert steady_total <= 3, per_payload
    assert mixed_total <= 3, mixed_calls


def read_alert_inbox_all(settings):
    while True:
        batch = read_alert_inbox(settings)
        if not batch:
            return
        yield from batch


def test_end_to_end_alert_latency(tmp_path_factory):
    stack = LocalStack(
        load_settings(
            state_dir=tmp_path_factory.mktemp("bench-e2e"),
            local_port=0,
            api_port=0,
            prefix="evkbenche2e",
        )
    )
    status = stack.up()
    try:
        settings = stack.settings.model_copy(update={"endpoint_url": status.endpoint_url})
        store_config(settings, {"defaults": {"rules": [RULE]}})
        sqs = settings.client("sqs")
        queue = sqs.get_queue_url(QueueName=settings.resources.detections_queue)["QueueUrl"]
        latencies = []
        for i in range(LATENCY_SAMPLES):
            sent = time.perf_counter()
            sqs.send_message(
                QueueUrl=queue, MessageBody=detection(f"cam-{i}", 0, datetime.now(UTC))
            )
            notices = []
            while not notices:
                notices = read_alert_inbox(settings, wait_s=10)
                assert time.perf_counter() - sent < 30, "no alert within 30 s"
            latencies.append((time.perf_counter() - sent) * 1000)
            assert notices[0].attributes["camera_id"] == f"cam-{i}"
    finally:
        stack.down(snapshot=False)
    p50, p95 = statistics.median(latencies), percentile(latencies, 0.95)
    results["latency"] = (
        f"| end to end, `kit local up` | payload sent to SQS -> runner -> processor -> SNS -> "
        f"alerts-inbox read, {LATENCY_SAMPLES} alerts | **p50 {p50:.0f} ms, p95 {p95:.0f} ms** |"
    )
    print(results["latency"])
    write_results()


def write_results() -> None:
    body = "\n".join(
        [
            machine_line("moto server on 127.0.0.1")
            + " Regenerate with `make bench` (tests/benchmarks/test_backend_bench.py).",
            "",
            "| what | workload | result |",
            "|---|---|---|",
            *(
                results[k]
                for k in ("raw", "processor", "alerting", "calls", "cost", "buyer", "latency")
                if k in results
            ),
            "",
            "A payload on the steady path costs one conditional put (its claim on its payload "
            "id) and one camera update; each batch adds the config read, one batch write of the "
            "payloads and one of their results, however many devices sent them (a device's "
            "newest payload time is read from its cameras; `lambdas/processor/records.py`). "
            "The batch's claims, and its cameras, are worked on concurrently (each camera's "
            "payloads in order). A transition adds the rule states, the alert record, its "
            "notification claim and mark, and an SNS publish. Most of a batch's time is moto's "
            "own work on each request (parsing and validating expressions: a conditional "
            "update of the camera costs it several plain puts), about 3-4 ms a call on an idle "
            "machine and more with other jobs running (see the load average): the emulator "
            "bounds these rates, which is why the processor is compared with moto's own PutItem "
            "rate measured in the same run; [cost.md](cost.md#where-a-batchs-time-goes) has the "
            "profile. Latency includes the runner's long poll (woken by the message) and the "
            "inbox long poll.",
        ]
    )
    write_section("Backend", body)
