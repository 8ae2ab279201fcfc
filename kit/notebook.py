"""Small helpers that keep the numbered notebooks to a few lines a cell.

Examples:
    >>> from kit.notebook import setup, show
    >>> settings = setup("local")          # doctest: +SKIP
    >>> show(image_bgr, title="a scene")   # doctest: +SKIP
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from kit.core.contracts import DetectionPayload
from kit.core.settings import Settings, load_settings
from kit.offline import configure_ultralytics

if TYPE_CHECKING:
    from kit.local.runner import AlertNotice

SPOOL_BYTES = 16 * 1024 * 1024
"""Room for what :func:`publish_payload` sends: a payload (and its frame) at a time."""

log = logging.getLogger(__name__)


def setup(target: str = "local", *, start_local: bool = True, **overrides: Any) -> Settings:
    """Settings for a notebook: offline ultralytics, the target, and (local) a running stack.

    On the local target the local stack (moto + Lambda runner) is started unless it runs already,
    so every notebook can be run on its own, in any order.
    """
    configure_ultralytics()
    logging.basicConfig(level=logging.WARNING)
    settings = load_settings(target=target, **overrides)
    if target == "local" and start_local:
        from kit.local import LocalStack

        status = LocalStack(settings).up()
        print(f"local stack: {status.endpoint_url} (control API {settings.control_api_url()})")
    else:
        print(
            f"target {settings.target}: region {settings.region}, bucket {settings.resources.bucket}"
        )
    return settings


def show(
    image: np.ndarray | bytes | Any, *, title: str | None = None, width: int | None = 800
) -> None:
    """Display a BGR image (numpy), encoded image bytes (JPEG, PNG) or a matplotlib figure."""
    from IPython.display import Image, Markdown, display

    if title:
        display(Markdown(f"**{title}**"))
    if isinstance(image, np.ndarray):
        import cv2

        ok, png = cv2.imencode(".png", image)
        if not ok:
            raise ValueError(f"cannot encode an image of shape {image.shape} as PNG")
        display(Image(data=png.tobytes(), width=width))
    elif isinstance(image, bytes):
        display(Image(data=image, width=width))
    elif hasattr(image, "savefig"):  # a matplotlib Figure made without pyplot
        from io import BytesIO

        buffer = BytesIO()
        image.savefig(buffer, format="png", bbox_inches="tight", dpi=100)
        display(Image(data=buffer.getvalue(), width=width))
    else:
        display(image)


def table(rows: Iterable[Mapping[str, Any]], columns: list[str] | None = None) -> None:
    """Display rows of dicts as an HTML table (no pandas needed)."""
    from html import escape

    from IPython.display import HTML, display

    rows = list(rows)
    columns = columns or list(dict.fromkeys(key for row in rows for key in row))
    head = "".join(f"<th>{escape(str(c))}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(str(row.get(c, '')))}</td>" for c in columns) + "</tr>"
        for row in rows
    )
    display(HTML(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"))


def kit(args: list[str]) -> None:
    """Run a ``kit`` command in the notebook (same code as the terminal); raise if it fails."""
    from kit.cli import main

    code = main([str(arg) for arg in args])
    if code != 0:
        raise RuntimeError(
            f"`kit {' '.join(map(str, args))}` failed with exit code {code} (see above)"
        )


def publish_payload(
    settings: Settings,
    payload: DetectionPayload,
    *,
    frame_jpeg: bytes | None = None,
    timeout_s: float = 30.0,
) -> DetectionPayload:
    """Send ``payload`` (and its annotated frame) to the backend as an edge device does.

    It goes through the edge app's own :class:`~edge_app.publisher.Publisher` (frame to the
    bucket, then the payload to the detections queue) over a spool of its own, so what the
    processor receives is exactly what a device would send. On aws it needs AWS credentials that
    may write to the bucket and the queue.

    Args:
        frame_jpeg: the annotated frame, stored at ``payload.frame_key`` (which it then needs).
        timeout_s: how long the backend may take to accept it.

    Returns:
        ``payload``, sent.

    Raises:
        ValueError: a frame without ``payload.frame_key``.
        TimeoutError: the backend did not accept it within ``timeout_s`` (the error says why).
    """
    from edge_app.publisher import Publisher
    from edge_app.spool import Spool

    with (
        tempfile.TemporaryDirectory(prefix="evk-publish-") as folder,
        Spool(folder, max_bytes=SPOOL_BYTES, fsync=False) as spool,
    ):
        publisher = Publisher(settings, spool).start()
        try:
            publisher.publish(payload, frame_jpeg)
            sent = publisher.flush(timeout_s)
        finally:
            publisher.stop(flush=False)
    if not sent:
        raise TimeoutError(
            f"payload {payload.payload_id} was not accepted within {timeout_s:g} s: "
            f"{publisher.stats.last_error or 'the backend did not answer'}"
        )
    return payload


def wait_for_alert_notice(
    settings: Settings, alert_id: str, *, timeout_s: float = 30.0
) -> AlertNotice:
    """The notification the alerts topic sent about ``alert_id`` (local target: its inbox).

    Notices about other alerts read meanwhile are consumed (the inbox is a demo's mailbox).

    Raises:
        ValueError: the target is not local (on aws the topic e-mails its subscribers).
        TimeoutError: no notice about ``alert_id`` within ``timeout_s``.
    """
    if settings.target != "local":
        raise ValueError(
            f"the alerts inbox exists on the local target only, not on {settings.target!r}: "
            "on aws the alerts topic e-mails its subscribers"
        )
    from kit.local.runner import read_alert_inbox

    deadline = time.monotonic() + timeout_s
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(
                f"the alerts topic sent nothing about alert {alert_id} within {timeout_s:g} s"
            )
        for notice in read_alert_inbox(settings, wait_s=max(1, min(20, int(left)))):
            if notice.alert_id == alert_id:
                return notice
