"""Hypothesis fuzzing of the processor: random batches of valid, corrupted and junk messages.

Properties, for every batch: no exception escapes the handler; exactly the records that break
their contract are reported as failures; every valid payload in the batch is stored; every valid
heartbeat is kept.
"""

from __future__ import annotations

import json
import string
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kit.core.contracts import ContractError, DetectionPayload, parse_edge_message
from kit.core.timefmt import stamp
from lambdas.processor.records import with_stable_payload_id

CONFIG = {
    "defaults": {
        "rules": [
            {"type": "count_below", "class_name": "bottle", "threshold": 2, "cooldown_s": 30},
            {"type": "count_above", "class_name": "person", "threshold": 3},
            {"type": "ppe_violation"},
            {"type": "rising_trend", "class_name": "fish", "window": 5, "min_points": 3},
        ]
    }
}
CLASSES = ["bottle", "person", "helmet", "fish"]
JSON_SCALARS = st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.text(max_size=12)
JSON_VALUES = st.recursive(
    JSON_SCALARS | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


@st.composite
def detections(draw, width: int, height: int):
    x1 = draw(st.floats(0, width, allow_nan=False))
    y1 = draw(st.floats(0, height, allow_nan=False))
    return {
        "class_name": draw(st.sampled_from(CLASSES)),
        "class_id": draw(st.integers(0, 3)),
        "confidence": draw(st.floats(0, 1)),
        "box": {
            "x1": x1,
            "y1": y1,
            "x2": draw(st.floats(x1, width, allow_nan=False)),
            "y2": draw(st.floats(y1, height, allow_nan=False)),
        },
    }


@st.composite
def payloads(draw):
    width, height = draw(st.integers(1, 1920)), draw(st.integers(1, 1080))
    captured = datetime(2026, 1, 31, tzinfo=UTC) + timedelta(
        seconds=draw(st.integers(0, 86400)), microseconds=draw(st.integers(0, 999_999))
    )
    return {
        "kind": "detection",
        "payload_id": draw(st.uuids()).hex,
        "device_id": draw(st.sampled_from(["demo-1", "demo-2"])),
        "camera_id": draw(st.sampled_from(["shelf-1", "gate-1", "tank-1"])),
        "model": {"name": "shelf", "version": draw(st.integers(1, 3) | st.just("latest"))},
        "captured_at": stamp(captured),
        "frame": {"width": width, "height": height},
        "detections": draw(st.lists(detections(width, height), max_size=4)),
        "counts": draw(st.dictionaries(st.sampled_from(CLASSES), st.integers(0, 20), max_size=3)),
        "zone_counts": draw(
            st.dictionaries(
                st.sampled_from(["inlet", "top"]),
                st.dictionaries(st.sampled_from(CLASSES), st.integers(0, 9), max_size=2),
                max_size=2,
            )
        ),
        "frame_key": draw(st.none() | st.just("frames/demo-1/shelf-1/x.jpg")),
    }


@st.composite
def heartbeats(draw):
    return {
        "kind": "heartbeat",
        "device_id": draw(st.sampled_from(["demo-1", "demo-2"])),
        "app_version": "0.1.0",
        "sent_at": stamp(
            datetime(2026, 1, 31, tzinfo=UTC) + timedelta(seconds=draw(st.integers(0, 9999)))
        ),
        "uptime_s": draw(st.floats(0, 1e6)),
        "cameras": {"shelf-1": {"state": draw(st.sampled_from(["running", "failed", "stopped"]))}},
    }


@st.composite
def corrupted(draw):
    """A valid message with one thing broken (which may, by chance, still be valid)."""
    message = draw(payloads() | heartbeats())
    mutation = draw(st.sampled_from(["drop", "replace", "extra", "nested"]))
    key = draw(st.sampled_from(sorted(message)))
    if mutation == "drop":
        del message[key]
    elif mutation == "replace":
        message[key] = draw(JSON_VALUES)
    elif mutation == "extra":
        message[draw(st.text(string.ascii_lowercase, min_size=1, max_size=8))] = draw(JSON_VALUES)
    elif isinstance(message.get("frame"), dict):
        message["frame"]["width"] = draw(st.integers(-5, 0) | st.text(max_size=3))
    return json.dumps(message)


junk = (
    st.text(max_size=40)
    | JSON_VALUES.map(json.dumps)
    | st.binary(max_size=30).map(lambda b: b.decode("latin-1"))
)
bodies = payloads().map(json.dumps) | heartbeats().map(json.dumps) | corrupted() | junk


def parsed(body: str):
    """The message the processor sees (None: it breaks its contract)."""
    try:
        return parse_edge_message(with_stable_payload_id(body))
    except ContractError:
        return None


def check_batch(harness, batch: list[str], first_keys: dict[str, dict]) -> None:
    """``first_keys``: payload id -> the key it was first stored under (a later payload with the
    same id is a duplicate by definition and is not stored again)."""
    event = harness.sqs_event(*batch)
    ids = [record["messageId"] for record in event["Records"]]

    response = harness.process_event(event)

    failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
    assert failed == {i for i, body in zip(ids, batch, strict=True) if parsed(body) is None}
    for body in batch:
        message = parsed(body)
        if isinstance(message, DetectionPayload):
            key = first_keys.setdefault(
                message.payload_id,
                {
                    "camera_id": {"S": message.camera_id},
                    "sk": {"S": f"{stamp(message.captured_at)}#{message.payload_id}"},
                },
            )
            stored = harness.services.dynamodb.get_item(
                TableName=harness.settings.resources.detections_table, Key=key
            )
            assert "Item" in stored, f"payload {message.payload_id} was not stored"


def fuzz(harness, examples: int) -> None:
    harness.set_config(**CONFIG)
    first_keys: dict[str, dict] = {}

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(st.lists(bodies, min_size=1, max_size=6))
    def run(batch):
        check_batch(harness, batch, first_keys)

    run()


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_fuzzed_batches_report_exactly_the_bad_records_and_store_the_good_ones(harness):
    fuzz(harness, examples=200)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_fuzzed_batches_thousand_cases(harness):
    fuzz(harness, examples=1000)
