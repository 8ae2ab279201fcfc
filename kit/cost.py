"""What a camera costs in the cloud: per payload and per camera-month, at dated list prices.

Pure arithmetic over what the benchmark measures (DynamoDB calls per payload, item sizes, the
processor's time per batch) and what a camera is set to (refresh, frame upload, crops,
retention): no AWS call. ``docs/cost.md`` explains each term; notebook 05 shows the table.

Billing rules used (AWS documentation): a DynamoDB on-demand write costs one write request unit
(WRU) per started KB of the item (an update: of the larger of the item before and after; a
batch write: per item; a failed conditional write too), a strongly consistent read one read
request unit (RRU) per started 4 KB; an SQS request is one per started 64 KB of its body; S3
bills each PUT and each GB-month stored; Lambda bills each invocation and its duration times
its memory (GB-seconds).

Examples:
    >>> write_units(1500), read_units(1500), sqs_requests(2000)
    (2, 1, 1)
    >>> usage = PayloadUsage(write_units=5, read_units=0.1, sqs_requests=1.2, s3_puts=1,
    ...     lambda_gb_s=0.001, lambda_requests=0.1)
    >>> month = camera_month(usage, refresh_s=5)
    >>> int(month.payloads), round(month.dynamodb_requests, 2), round(month.s3_requests, 2)
    (518400, 1.84, 2.59)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

SECONDS_PER_MONTH = 30 * 86400
"""A month of 30 days, as AWS's price examples count it."""
GB = 1024**3


@dataclass(frozen=True)
class PriceTable:
    """List prices of one region, on one date (USD).

    Attributes:
        region: the AWS region.
        as_of: the date the prices are known to hold (ISO date).
        dynamodb_wru_per_million: on-demand write request units, Standard table class.
        dynamodb_rru_per_million: on-demand read request units.
        dynamodb_gb_month: DynamoDB Standard storage (beyond the free 25 GB).
        sqs_per_million: SQS standard queue requests (beyond the free million a month).
        s3_put_per_thousand: S3 Standard PUT, COPY, POST, LIST requests.
        s3_gb_month: S3 Standard storage, first 50 TB.
        lambda_requests_per_million: Lambda invocations.
        lambda_gb_s: Lambda duration, per GB-second, by architecture (``arm64``, ``x86_64``).
    """

    region: str
    as_of: str
    dynamodb_wru_per_million: float
    dynamodb_rru_per_million: float
    dynamodb_gb_month: float
    sqs_per_million: float
    s3_put_per_thousand: float
    s3_gb_month: float
    lambda_requests_per_million: float
    lambda_gb_s: dict[str, float] = field(default_factory=dict)


EU_WEST_1 = PriceTable(
    region="eu-west-1",
    as_of="2025-06-01",
    # On-demand throughput after AWS halved it on 2024-11-01 ($1.4135 and $0.283 before).
    dynamodb_wru_per_million=0.7068,
    dynamodb_rru_per_million=0.1415,
    dynamodb_gb_month=0.283,
    sqs_per_million=0.40,
    s3_put_per_thousand=0.005,
    s3_gb_month=0.023,
    lambda_requests_per_million=0.20,
    lambda_gb_s={"arm64": 0.0000133334, "x86_64": 0.0000166667},
)
"""Europe (Ireland) list prices, as known on ``as_of``; check the AWS pricing pages before
quoting them."""


def write_units(item_bytes: float) -> int:
    """WRUs of one standard write of an item of ``item_bytes`` (one per started KB)."""
    return max(1, math.ceil(item_bytes / 1024))


def read_units(item_bytes: float, *, consistent: bool = True) -> float:
    """RRUs of one read of an item of ``item_bytes`` (one per started 4 KB; half when
    eventually consistent)."""
    units = max(1, math.ceil(item_bytes / 4096))
    return units if consistent else units / 2


def sqs_requests(body_bytes: float) -> int:
    """SQS requests one message of ``body_bytes`` is billed as (one per started 64 KB)."""
    return max(1, math.ceil(body_bytes / 65536))


@dataclass(frozen=True)
class PayloadUsage:
    """What one payload uses, all included (its share of batch and per-device work too).

    Attributes:
        write_units: DynamoDB WRUs.
        read_units: DynamoDB RRUs.
        sqs_requests: SQS requests (send, and the share of receive and delete).
        s3_puts: S3 PUTs (frame and crops).
        lambda_gb_s: Lambda GB-seconds (its share of a batch's duration times memory).
        lambda_requests: Lambda invocations (1 / batch size).
        dynamodb_bytes_kept: bytes the payload keeps stored in DynamoDB, times how many
            payloads are kept at once per camera (retention / refresh): storage at steady state.
        s3_bytes_kept: the same for the bucket (frames and crops under their expiry).
    """

    write_units: float
    read_units: float
    sqs_requests: float
    s3_puts: float
    lambda_gb_s: float
    lambda_requests: float
    dynamodb_bytes_kept: float = 0.0
    s3_bytes_kept: float = 0.0


@dataclass(frozen=True)
class Measured:
    """What the benchmark measures of the processor's steady path (item sizes as DynamoDB
    counts them: attribute names and values).

    Attributes:
        detection_item_bytes: a payload's item in the detections table.
        claim_item_bytes: its claim in the idempotency table (the conditional put).
        completion_item_bytes: its result there (the batch write that replaces the claim).
        camera_item_bytes: the camera's item (the update writes all of it).
        device_item_bytes: the device's item (heartbeat included).
        config_item_bytes: the config item (read once a batch, strongly consistent).
        message_bytes: the payload's message body on the queue.
        batch_ms: the processor's duration for one batch (on AWS: calls times their latency,
            plus the handler's own CPU time).
        batch_size: messages a batch.

    A payload writes nothing to its device's item (the device's newest payload time is read
    from its cameras), so how many devices a batch holds changes nothing here; the device's
    item is written by its heartbeats.
    """

    detection_item_bytes: float
    claim_item_bytes: float
    completion_item_bytes: float
    camera_item_bytes: float
    device_item_bytes: float
    config_item_bytes: float
    message_bytes: float
    batch_ms: float
    batch_size: int = 10


def payload_usage(
    measured: Measured,
    *,
    refresh_s: float,
    frame_upload: bool = True,
    frame_bytes: float = 60_000,
    crops: float = 0,
    crop_bytes: float = 8_000,
    detection_retention_days: float = 30,
    frame_retention_days: float = 30,
    claim_retention_days: float = 4,
    memory_mb: int = 256,
    cameras_per_device: int = 10,
    heartbeat_s: float = 10,
) -> PayloadUsage:
    """One payload's usage: its own writes, its share of the batch's and of its device's
    heartbeats.

    Args:
        refresh_s: seconds between a camera's payloads (how many are kept at once).
        frame_upload: an annotated frame is uploaded with each payload.
        frame_bytes: an annotated JPEG frame.
        crops: crops uploaded with each payload (the camera's ``crops``).
        crop_bytes: one crop.
        detection_retention_days: the detections table's TTL.
        frame_retention_days: the bucket's expiry of ``frames/`` and ``crops/``.
        claim_retention_days: how long a payload id's result is kept (idempotency table).
        memory_mb: the processor's memory.
        cameras_per_device: cameras sharing one device's heartbeats.
        heartbeat_s: seconds between a device's heartbeats.

    Raises:
        ValueError: ``refresh_s``, ``heartbeat_s`` or ``cameras_per_device`` not positive.
    """
    for name, value in (
        ("refresh_s", refresh_s),
        ("heartbeat_s", heartbeat_s),
        ("cameras_per_device", cameras_per_device),
    ):
        if not value > 0:
            raise ValueError(f"{name} must be positive, got {value!r}")
    m = measured
    device_write = write_units(m.device_item_bytes)
    # A device's heartbeats, shared by its cameras' payloads: a message and a device update each.
    heartbeats = refresh_s / heartbeat_s / cameras_per_device
    messages = 1 + heartbeats
    kept = 86400 / refresh_s
    return PayloadUsage(
        write_units=write_units(m.claim_item_bytes)
        + write_units(m.camera_item_bytes)
        + write_units(m.detection_item_bytes)
        + write_units(max(m.claim_item_bytes, m.completion_item_bytes))
        + heartbeats * device_write,
        read_units=read_units(m.config_item_bytes) * messages / m.batch_size,
        # Each message is sent once; a batch is received once and deleted in one request.
        sqs_requests=sqs_requests(m.message_bytes) + heartbeats + 2 * messages / m.batch_size,
        s3_puts=(1 + crops) if frame_upload else 0.0,
        lambda_gb_s=memory_mb / 1024 * m.batch_ms / 1000 * messages / m.batch_size,
        lambda_requests=messages / m.batch_size,
        dynamodb_bytes_kept=kept
        * (
            detection_retention_days * m.detection_item_bytes
            + claim_retention_days * m.completion_item_bytes
        ),
        s3_bytes_kept=kept * frame_retention_days * (frame_bytes + crops * crop_bytes)
        if frame_upload
        else 0.0,
    )


@dataclass(frozen=True)
class CameraMonth:
    """One camera's month, in USD by service; ``total`` sums them."""

    refresh_s: float
    payloads: float
    dynamodb_requests: float
    dynamodb_storage: float
    sqs: float
    s3_requests: float
    s3_storage: float
    lambda_compute: float

    @property
    def total(self) -> float:
        return (
            self.dynamodb_requests
            + self.dynamodb_storage
            + self.sqs
            + self.s3_requests
            + self.s3_storage
            + self.lambda_compute
        )


def per_payload_usd(
    usage: PayloadUsage, prices: PriceTable = EU_WEST_1, *, architecture: str = "x86_64"
) -> float:
    """What one payload's requests and compute cost (storage is per month: :func:`camera_month`)."""
    return (
        usage.write_units * prices.dynamodb_wru_per_million / 1e6
        + usage.read_units * prices.dynamodb_rru_per_million / 1e6
        + usage.sqs_requests * prices.sqs_per_million / 1e6
        + usage.s3_puts * prices.s3_put_per_thousand / 1e3
        + usage.lambda_gb_s * _gb_s_price(prices, architecture)
        + usage.lambda_requests * prices.lambda_requests_per_million / 1e6
    )


def camera_month(
    usage: PayloadUsage,
    *,
    refresh_s: float,
    prices: PriceTable = EU_WEST_1,
    architecture: str = "x86_64",
) -> CameraMonth:
    """One camera's month at one payload every ``refresh_s`` seconds, free tiers left out (a
    fleet spends them on its first cameras).

    ``usage.dynamodb_bytes_kept`` and ``usage.s3_bytes_kept`` are the camera's stored bytes at
    steady state (for that refresh).

    Raises:
        ValueError: ``refresh_s`` is not positive, or ``architecture`` has no price.
    """
    if not refresh_s > 0:
        raise ValueError(f"refresh_s must be a positive number of seconds, got {refresh_s!r}")
    payloads = SECONDS_PER_MONTH / refresh_s
    return CameraMonth(
        refresh_s=refresh_s,
        payloads=payloads,
        dynamodb_requests=payloads
        * (
            usage.write_units * prices.dynamodb_wru_per_million
            + usage.read_units * prices.dynamodb_rru_per_million
        )
        / 1e6,
        dynamodb_storage=usage.dynamodb_bytes_kept / GB * prices.dynamodb_gb_month,
        sqs=payloads * usage.sqs_requests * prices.sqs_per_million / 1e6,
        s3_requests=payloads * usage.s3_puts * prices.s3_put_per_thousand / 1e3,
        s3_storage=usage.s3_bytes_kept / GB * prices.s3_gb_month,
        lambda_compute=payloads
        * (
            usage.lambda_gb_s * _gb_s_price(prices, architecture)
            + usage.lambda_requests * prices.lambda_requests_per_million / 1e6
        ),
    )


def _gb_s_price(prices: PriceTable, architecture: str) -> float:
    if architecture not in prices.lambda_gb_s:
        raise ValueError(
            f"no Lambda price for architecture {architecture!r} in {prices.region}; "
            f"priced: {sorted(prices.lambda_gb_s)}"
        )
    return prices.lambda_gb_s[architecture]


MEASURED_2026_12_04 = Measured(
    detection_item_bytes=1191,
    claim_item_bytes=194,
    completion_item_bytes=194,
    camera_item_bytes=422,
    device_item_bytes=2020,
    config_item_bytes=434,
    message_bytes=1000,
    batch_ms=180,
    batch_size=10,
)
"""The processor's steady path as ``make bench`` measured it on 2026-12-04 (docs/cost.md):
stored item sizes, a ~1 KB message, a 180 ms batch on AWS as modelled there."""

SETTING_VARIANTS: dict[str, dict[str, float | bool]] = {
    "as deployed (a frame a payload, 30-day retention)": {},
    "no frame upload": {"frame_upload": False},
    "5 crops a payload": {"crops": 5},
    "7-day retention (detections and frames)": {
        "detection_retention_days": 7,
        "frame_retention_days": 7,
    },
}
"""What each camera setting changes, for :func:`camera_month_rows`."""


def camera_month_rows(
    measured: Measured = MEASURED_2026_12_04,
    *,
    refreshes_s: tuple[float, ...] = (1, 5, 60),
    prices: PriceTable = EU_WEST_1,
) -> list[dict[str, str]]:
    """A camera-month in USD by service, one row per refresh and setting variant
    (:data:`SETTING_VARIANTS`): the table notebook 05 and docs/cost.md show."""
    rows = []
    for variant, options in SETTING_VARIANTS.items():
        for refresh_s in refreshes_s:
            usage = payload_usage(measured, refresh_s=refresh_s, **options)
            month = camera_month(usage, refresh_s=refresh_s, prices=prices)
            rows.append(
                {
                    "setting": variant,
                    "refresh": f"{refresh_s:g} s",
                    "payloads": f"{month.payloads:,.0f}",
                    "DynamoDB": f"${month.dynamodb_requests + month.dynamodb_storage:.2f}",
                    "SQS": f"${month.sqs:.2f}",
                    "S3": f"${month.s3_requests + month.s3_storage:.2f}",
                    "Lambda": f"${month.lambda_compute:.2f}",
                    "total": f"${month.total:.2f}",
                }
            )
    return rows
