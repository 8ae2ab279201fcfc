"""The cost model (kit.cost): billing rules and per camera-month arithmetic, checked by hand."""

from __future__ import annotations

import pytest

from kit.cost import (
    EU_WEST_1,
    MEASURED_2026_12_04,
    SECONDS_PER_MONTH,
    SETTING_VARIANTS,
    Measured,
    PayloadUsage,
    camera_month,
    camera_month_rows,
    payload_usage,
    per_payload_usd,
    read_units,
    sqs_requests,
    write_units,
)

MEASURED = Measured(
    detection_item_bytes=1122,
    claim_item_bytes=170,
    completion_item_bytes=170,
    camera_item_bytes=384,
    device_item_bytes=2062,
    config_item_bytes=403,
    message_bytes=1000,
    batch_ms=200,
    batch_size=10,
)


def test_units_round_up_per_started_kb_4_kb_and_64_kb():
    assert [write_units(b) for b in (0, 1, 1024, 1025, 2062)] == [1, 1, 1, 2, 3]
    assert [read_units(b) for b in (100, 4096, 4097)] == [1, 1, 2]
    assert read_units(100, consistent=False) == 0.5
    assert [sqs_requests(b) for b in (10, 65536, 65537)] == [1, 1, 2]


def test_a_payload_pays_its_writes_and_its_share_of_batch_and_heartbeats():
    usage = payload_usage(MEASURED, refresh_s=5, cameras_per_device=10, heartbeat_s=10)
    heartbeats = 5 / 10 / 10  # a device's heartbeats per payload of one of its 10 cameras
    # claim 1 + camera 1 + detection 2 + result 1; the device's 3 WRU per heartbeat only (a
    # payload writes nothing to its device)
    assert usage.write_units == pytest.approx(5 + heartbeats * 3)
    assert usage.read_units == pytest.approx(1 * (1 + heartbeats) / 10)
    assert usage.sqs_requests == pytest.approx(1 + heartbeats + 2 * (1 + heartbeats) / 10)
    assert usage.s3_puts == 1
    assert usage.lambda_gb_s == pytest.approx(0.25 * 0.2 * (1 + heartbeats) / 10)
    kept = 86400 / 5
    assert usage.dynamodb_bytes_kept == pytest.approx(kept * (30 * 1122 + 4 * 170))
    assert usage.s3_bytes_kept == pytest.approx(kept * 30 * 60_000)


def test_settings_change_what_they_should():
    base = payload_usage(MEASURED, refresh_s=5)
    no_frame = payload_usage(MEASURED, refresh_s=5, frame_upload=False)
    crops = payload_usage(MEASURED, refresh_s=5, crops=5)
    short = payload_usage(MEASURED, refresh_s=5, detection_retention_days=7)

    assert (no_frame.s3_puts, no_frame.s3_bytes_kept) == (0, 0)
    assert crops.s3_puts == 6 and crops.s3_bytes_kept > base.s3_bytes_kept
    assert short.dynamodb_bytes_kept < base.dynamodb_bytes_kept
    assert short.write_units == base.write_units  # TTL deletes are free


def test_a_camera_month_multiplies_per_payload_prices_by_payloads():
    usage = PayloadUsage(
        write_units=5,
        read_units=0.1,
        sqs_requests=1.2,
        s3_puts=1,
        lambda_gb_s=0.001,
        lambda_requests=0.1,
        dynamodb_bytes_kept=2 * 1024**3,
        s3_bytes_kept=10 * 1024**3,
    )
    month = camera_month(usage, refresh_s=5)

    payloads = SECONDS_PER_MONTH / 5
    assert month.payloads == payloads == 518_400
    assert month.dynamodb_requests == pytest.approx(payloads * (5 * 0.7068 + 0.1 * 0.1415) / 1e6)
    assert month.sqs == pytest.approx(payloads * 1.2 * 0.40 / 1e6)
    assert month.s3_requests == pytest.approx(payloads * 0.005 / 1000)
    assert month.dynamodb_storage == pytest.approx(2 * 0.283)
    assert month.s3_storage == pytest.approx(10 * 0.023)
    assert month.lambda_compute == pytest.approx(
        payloads * (0.001 * 0.0000166667 + 0.1 * 0.20 / 1e6)
    )
    assert month.total == pytest.approx(
        sum(
            getattr(month, f)
            for f in (
                "dynamodb_requests",
                "dynamodb_storage",
                "sqs",
                "s3_requests",
                "s3_storage",
                "lambda_compute",
            )
        )
    )
    assert per_payload_usd(usage) * payloads == pytest.approx(
        month.dynamodb_requests + month.sqs + month.s3_requests + month.lambda_compute
    )
    arm = camera_month(usage, refresh_s=5, architecture="arm64")
    assert arm.lambda_compute < month.lambda_compute


def test_bad_inputs_are_named():
    usage = payload_usage(MEASURED, refresh_s=5)
    with pytest.raises(ValueError, match="refresh_s must be a positive number of seconds, got 0"):
        camera_month(usage, refresh_s=0)
    with pytest.raises(ValueError, match=r"architecture 'sparc'.*priced: \['arm64', 'x86_64'\]"):
        camera_month(usage, refresh_s=5, architecture="sparc")
    with pytest.raises(ValueError, match="heartbeat_s must be positive, got -1"):
        payload_usage(MEASURED, refresh_s=5, heartbeat_s=-1)
    assert EU_WEST_1.as_of and EU_WEST_1.region == "eu-west-1"


def test_the_camera_month_table_shows_each_refresh_and_what_each_setting_changes():
    rows = camera_month_rows(refreshes_s=(1, 5, 60))
    by = {(row["setting"], row["refresh"]): row for row in rows}
    deployed = "as deployed (a frame a payload, 30-day retention)"
    assert len(rows) == 3 * len(SETTING_VARIANTS)
    for refresh in (1, 5, 60):
        month = camera_month(
            payload_usage(MEASURED_2026_12_04, refresh_s=refresh), refresh_s=refresh
        )
        assert by[(deployed, f"{refresh} s")]["total"] == f"${month.total:.2f}"

    def dollars(setting: str, column: str = "total") -> float:
        return float(by[(setting, "5 s")][column].lstrip("$"))

    assert dollars("no frame upload", "S3") == 0 < dollars(deployed, "S3")
    assert dollars("no frame upload") < dollars(deployed) < dollars("5 crops a payload")
    assert dollars("7-day retention (detections and frames)") < dollars(deployed)
    assert dollars(deployed, "DynamoDB") == dollars("5 crops a payload", "DynamoDB")
