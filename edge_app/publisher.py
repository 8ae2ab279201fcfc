"""Publishing to the backend through a write-ahead spool: nothing is lost, nothing overtakes.

Every outgoing item — the annotated frame for S3, crops, then the payload for SQS — is first put
in the on-disk :class:`~edge_app.spool.Spool`; one sender thread sends them strictly in order and
removes each once the backend accepted it. While S3 or SQS cannot be reached the sender backs off
(exponentially, up to ``retry_max_s``) and items wait on disk, within the spool's byte bound
(frames are dropped before payloads, oldest first, and counted). The same holds while AWS
credentials cannot be had (a device that booted without network): the clients are made once
they can be (:class:`~edge_app.clients.BackendClients`). A crash loses nothing either: the spool
is reopened with its items on the next start. A payload sent twice after a crash is harmless:
the processor is idempotent on ``payload_id``.

A labelling sample (:mod:`edge_app.sampling`) is one spool item of its own kind: its JPEG as the
body, its pre-labels and record in the item's metadata. It waits and is evicted like a frame (all
three go or stay together), and its three objects are written record last, so a sample whose
record is in the bucket is complete.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime

from edge_app.clients import BackendClients
from edge_app.sampling import Sample
from edge_app.spool import ReplayResult, Spool, SpoolItem
from kit.core.contracts import DetectionPayload, Heartbeat
from kit.core.settings import Settings

log = logging.getLogger(__name__)

FRAME_CONTENT_TYPE = "image/jpeg"
LABELS_CONTENT_TYPE = "text/plain; charset=utf-8"
RECORD_CONTENT_TYPE = "application/json"
SAMPLE_KIND = "sample"
"""The ``kind`` in a spooled frame item's metadata that makes it a labelling sample."""


def frame_key(device_id: str, camera_id: str, captured_at: datetime) -> str:
    """``frames/<device>/<camera>/<yyyy>/<mm>/<dd>/<timestamp>.jpg`` (timestamp to the millisecond, UTC)."""
    stamp = captured_at.strftime("%Y%m%dT%H%M%S") + f"{captured_at.microsecond // 1000:03d}Z"
    return f"frames/{device_id}/{camera_id}/{captured_at:%Y/%m/%d}/{stamp}.jpg"


def crop_key(
    device_id: str, camera_id: str, captured_at: datetime, index: int, class_name: str
) -> str:
    """``crops/<device>/<camera>/<yyyy>/<mm>/<dd>/<timestamp>-<n>-<class>.jpg``."""
    stamp = captured_at.strftime("%Y%m%dT%H%M%S") + f"{captured_at.microsecond // 1000:03d}Z"
    return f"crops/{device_id}/{camera_id}/{captured_at:%Y/%m/%d}/{stamp}-{index}-{class_name}.jpg"


@dataclass
class PublisherStats:
    sent_payloads: int = 0
    sent_frames: int = 0
    sent_samples: int = 0
    send_failures: int = 0
    backend_reachable: bool = True
    last_error: str | None = None


class Publisher:
    """Sends frames to S3 and messages to SQS, in order, through ``spool``.

    Args:
        settings: where the bucket and the detections queue are.
        spool: the on-disk spool (owned by the caller, who closes it).
        retry_max_s: the longest wait between two attempts while the backend is unreachable.
        retry_min_s: the first wait after a failed attempt.
        clients: where the S3 and SQS clients come from (default: made from ``settings``).
    """

    def __init__(
        self,
        settings: Settings,
        spool: Spool,
        *,
        retry_max_s: float = 30.0,
        retry_min_s: float = 0.5,
        clients: BackendClients | None = None,
    ):
        self.settings = settings
        self.spool = spool
        self.retry_min_s = retry_min_s
        self.retry_max_s = retry_max_s
        self.stats = PublisherStats()
        self.clients = clients or BackendClients(settings, retry_max_s=retry_max_s)
        self._queue_url: str | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- what the pipeline calls ---------------------------------------------------------------
    def publish(
        self,
        payload: DetectionPayload,
        frame_jpeg: bytes | None = None,
        crops: list[tuple[str, bytes]] | None = None,
    ) -> None:
        """Queue the frame (at ``payload.frame_key``), the crops ``[(key, jpeg)]`` and then the payload."""
        if frame_jpeg is not None:
            if payload.frame_key is None:
                raise ValueError("a frame is published with a payload that names its frame_key")
            self.spool.put("frame", frame_jpeg, {"key": payload.frame_key})
        for key, jpeg in crops or []:
            self.spool.put("frame", jpeg, {"key": key})
        self.spool.put(
            "payload", payload.model_dump_json(by_alias=True).encode(), {"kind": "detection"}
        )
        self._wake.set()

    def publish_sample(self, sample: Sample) -> None:
        """Queue a labelling sample: its JPEG, pre-labels and record as one item, in order with
        frames and payloads."""
        record = sample.record
        self.spool.put(
            "frame",
            sample.jpeg,
            {
                "kind": SAMPLE_KIND,
                "key": record.image_key,
                "labels_key": record.labels_key,
                "labels": sample.labels,
                "record_key": sample.record_key,
                "record": record.model_dump_json(),
            },
        )
        self._wake.set()

    def send_heartbeat(self, heartbeat: Heartbeat) -> None:
        """Queue a heartbeat (through the spool too: its order relative to payloads is kept)."""
        self.spool.put("payload", heartbeat.model_dump_json().encode(), {"kind": "heartbeat"})
        self._wake.set()

    # -- the sender thread --------------------------------------------------------------------
    def start(self) -> Publisher:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="publisher", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout_s: float = 5.0, *, flush: bool = True) -> None:
        """Stop the sender; with ``flush``, first try for up to ``timeout_s`` to send what is queued."""
        if flush and self._thread is not None and self.stats.backend_reachable:
            self.flush(timeout_s)
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until the spool is empty (True) or ``timeout_s`` passed (False)."""
        done = threading.Event()
        deadline = threading.Timer(timeout_s, done.set)
        deadline.start()
        try:
            while not done.is_set():
                if self.spool.depth == 0:
                    return True
                self._wake.set()
                done.wait(0.05)
            return self.spool.depth == 0
        finally:
            deadline.cancel()

    def _run(self) -> None:
        delay = self.retry_min_s
        while not self._stop.is_set():
            self._wake.clear()
            try:
                result = self.spool.replay_pending(self._send)
            except Exception as error:  # noqa: BLE001 - the sender must outlive any one failure
                log.exception("spool replay failed")
                result = ReplayResult(0, self.spool.depth, error=error)
            if result.error is None:
                if not self.stats.backend_reachable:
                    log.info("backend reachable again; spool drained")
                self.stats.backend_reachable = True
                delay = self.retry_min_s
                self._wake.wait(1.0)
                continue
            self.stats.send_failures += 1
            self.stats.last_error = f"{type(result.error).__name__}: {result.error}"
            if self.stats.backend_reachable:
                log.warning(
                    "backend unreachable (%s); spooling, retrying with backoff",
                    self.stats.last_error,
                )
            self.stats.backend_reachable = False
            self._stop.wait(delay)
            delay = min(delay * 2, self.retry_max_s)

    def _send(self, item: SpoolItem) -> None:
        if item.kind.value == "frame":
            s3, bucket = self.clients.client("s3"), self.settings.resources.bucket
            s3.put_object(
                Bucket=bucket, Key=item.meta["key"], Body=item.body, ContentType=FRAME_CONTENT_TYPE
            )
            if item.meta.get("kind") != SAMPLE_KIND:
                self.stats.sent_frames += 1
                return
            # a retry after a failure in between writes the same objects again: harmless
            s3.put_object(
                Bucket=bucket,
                Key=item.meta["labels_key"],
                Body=item.meta["labels"].encode(),
                ContentType=LABELS_CONTENT_TYPE,
            )
            s3.put_object(
                Bucket=bucket,
                Key=item.meta["record_key"],
                Body=item.meta["record"].encode(),
                ContentType=RECORD_CONTENT_TYPE,
            )
            self.stats.sent_samples += 1
            return
        sqs = self.clients.client("sqs")
        if self._queue_url is None:
            queue = self.settings.resources.detections_queue
            self._queue_url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
        sqs.send_message(
            QueueUrl=self._queue_url,
            MessageBody=item.body.decode(),
            MessageAttributes={
                "kind": {"DataType": "String", "StringValue": item.meta.get("kind", "detection")}
            },
        )
        self.stats.sent_payloads += 1
