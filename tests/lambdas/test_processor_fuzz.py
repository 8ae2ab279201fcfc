"""Hypothesis fuzzing of the processor: random batches of valid, corrupted and junk messages,
with non-finite, huge and mistyped numbers, control characters, foreign object keys and device
clocks in the future.

Properties, for every batch: no exception escapes the handler; a record fails only with the
documented rejection, :class:`~kit.core.contracts.ContractError`, and exactly the records that
break their contract fail; every valid payload in the batch is stored.
"""

from __future__ import annotations

import json
import string
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kit.core.contracts import MAX_CLOCK_SKEW_S, ContractError, DetectionPayload, parse_edge_message
from kit.core.timefmt import stamp
from lambdas.processor.handler import processor
from lambdas.processor.records import with_stable_payload_id
from tests.support.json_mutation import leaves, with_raw

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
QUEUED_AT = datetime(2026, 2, 1, tzinfo=UTC)
"""When the queue accepted every fuzzed message (payloads are dated around it)."""
NUMBER_LITERALS = (
    st.sampled_from(
        [
            "Infinity",
            "-Infinity",
            "NaN",
            "1e309",
            "-1e309",
            "1e400",
            "1e-400",
            "-0.0",
            "true",
            "false",
            '"5"',
            '"0.5"',
            "null",
            str(2**53 - 1),
            str(2**53),
            str(2**64),
            "5.0",
            "5.5",
        ]
    )
    | st.integers(15, 420).map(lambda digits: "1" + "0" * digits)
    | st.integers(-(2**70), 2**70).map(str)
    | st.floats(allow_nan=False, allow_infinity=False).map(repr)
)
"""Raw JSON put where a message has a number: not numbers, non-finite, huge, or valid."""
ODD_TEXT = st.sampled_from(
    [
        "bot\x07tle",
        "bottle\n",
        "\x00",
        "datasets/private/secret.txt",
        "frames/demo-2/shelf-1/x.jpg",
        "frames/demo-1/shelf-1/../../x",
        "Flasche für Öl",
        "",
    ]
)
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
    if draw(st.integers(0, 9)) == 0:  # a device clock ahead: within the allowance or beyond it
        skew = draw(st.integers(MAX_CLOCK_SKEW_S - 2, MAX_CLOCK_SKEW_S + 2) | st.just(10**9))
        captured = QUEUED_AT + timedelta(seconds=skew)
    device_id = draw(st.sampled_from(["demo-1", "demo-2"]))
    camera_id = draw(st.sampled_from(["shelf-1", "gate-1", "tank-1"]))
    return {
        "kind": "detection",
        "payload_id": draw(st.uuids()).hex,
        "device_id": device_id,
        "camera_id": camera_id,
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
        "frame_key": draw(
            st.none() | st.just(f"frames/{device_id}/{camera_id}/{stamp(captured)}.jpg")
        ),
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
    mutation = draw(
        st.sampled_from(["drop", "replace", "extra", "nested", "number", "text", "class"])
    )
    key = draw(st.sampled_from(sorted(message)))
    if mutation == "drop":
        del message[key]
    elif mutation == "replace":
        message[key] = draw(JSON_VALUES)
    elif mutation == "extra":
        message[draw(st.text(string.ascii_lowercase, min_size=1, max_size=8))] = draw(JSON_VALUES)
    elif mutation == "number":
        numbers = [path for path, leaf in leaves(message) if isinstance(leaf, int | float)]
        return with_raw(message, draw(st.sampled_from(numbers)), draw(NUMBER_LITERALS))
    elif mutation == "text":
        texts = [path for path, leaf in leaves(message) if isinstance(leaf, str)]
        message_path = draw(st.sampled_from(texts))
        return with_raw(message, message_path, json.dumps(draw(ODD_TEXT)))
    elif mutation == "class" and message.get("kind") == "detection":
        message["counts"] = {draw(ODD_TEXT): draw(st.integers(0, 2**60))}
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
        return parse_edge_message(with_stable_payload_id(body), queued_at=QUEUED_AT)
    except ContractError:
        return None


def check_batch(harness, batch: list[str], first_keys: dict[str, dict]) -> None:
    """``first_keys``: payload id -> the key it was first stored under (a later payload with the
    same id is a duplicate by definition and is not stored again)."""
    event = {"Records": [harness.sqs_record(body, sent_at=QUEUED_AT) for body in batch]}
    ids = [record["messageId"] for record in event["Records"]]

    response = harness.process_event(event)

    unexpected = [
        info[1] for info in processor.exceptions if not isinstance(info[1], ContractError)
    ]
    assert not unexpected, f"records failed with undocumented errors: {unexpected!r}"
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
@pytest.mark.timeout(3600)
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_fuzzed_batches_ten_thousand_cases(harness):
    fuzz(harness, examples=10_000)
