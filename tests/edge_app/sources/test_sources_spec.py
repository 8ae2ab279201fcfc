"""SourceSpec parsing and BackoffPolicy delays."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from edge_app.sources import BackoffPolicy, SourceKind, SourceSpec


@pytest.mark.parametrize(
    ("value", "kind", "location"),
    [
        ("videos/shelf.mp4", SourceKind.FILE, "videos/shelf.mp4"),
        ("file:///data/shelf.mp4", SourceKind.FILE, "/data/shelf.mp4"),
        ("file://localhost/data/my%20clip.avi", SourceKind.FILE, "/data/my clip.avi"),
        ("0", SourceKind.WEBCAM, "0"),
        (2, SourceKind.WEBCAM, "2"),
        ("webcam:1", SourceKind.WEBCAM, "1"),
        ("webcam://0", SourceKind.WEBCAM, "0"),
        ("/dev/video0", SourceKind.WEBCAM, "/dev/video0"),
        ("rtsp://10.0.0.5:554/stream1", SourceKind.STREAM, "rtsp://10.0.0.5:554/stream1"),
        ("http://cam.local/video.mjpg", SourceKind.STREAM, "http://cam.local/video.mjpg"),
        ("HTTPS://cam.local/live", SourceKind.STREAM, "HTTPS://cam.local/live"),
        ("images:///data/frames", SourceKind.IMAGES, "/data/frames"),
        ("/data/frames/", SourceKind.IMAGES, "/data/frames"),
    ],
)
def test_parse_string_forms(value: str | int, kind: SourceKind, location: str) -> None:
    spec = SourceSpec.parse(value)

    assert spec.kind is kind
    assert spec.location == location
    assert spec.loop is False and spec.fps is None and spec.fastest is False


def test_existing_directory_is_an_image_folder(tmp_path: Path) -> None:
    assert SourceSpec.parse(str(tmp_path)).kind is SourceKind.IMAGES
    assert SourceSpec.parse(f"file://{tmp_path}").kind is SourceKind.IMAGES


def test_parse_dict_with_options() -> None:
    spec = SourceSpec.parse(
        {"uri": "file:///v/shelf.mp4", "loop": True, "fps": 5, "fastest": False}
    )

    assert spec == SourceSpec(SourceKind.FILE, "/v/shelf.mp4", loop=True, fps=5.0)
    assert spec.decode_threads == 1  # one FFmpeg thread a camera unless asked otherwise
    threads = SourceSpec.parse({"uri": "rtsp://h/s", "decode_threads": 0}).decode_threads
    assert threads == 0


def test_parse_dict_kind_overrides_guess(tmp_path: Path) -> None:
    spec = SourceSpec.parse({"uri": str(tmp_path / "not-yet-there"), "kind": "images"})

    assert spec.kind is SourceKind.IMAGES


def test_parse_dict_int_uri_is_webcam() -> None:
    assert SourceSpec.parse({"uri": 0, "fps": 15}) == SourceSpec(SourceKind.WEBCAM, "0", fps=15.0)


def test_parse_returns_spec_unchanged() -> None:
    spec = SourceSpec(SourceKind.FILE, "a.mp4")

    assert SourceSpec.parse(spec) is spec


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "must not be empty"),
        ("ftp://host/video.mp4", "unknown camera source scheme 'ftp'"),
        ("webcam:front", "device index"),
        ({"path": "a.mp4"}, "unknown camera source option(s) ['path']"),
        ({"loop": True}, "needs a 'uri'"),
        ({"uri": "a.mp4", "fps": 0}, "fps must be a positive number"),
        ({"uri": "a.mp4", "fps": "fast"}, "fps must be a positive number"),
        ({"uri": "a.mp4", "loop": "yes"}, "loop must be true or false"),
        ({"uri": "a.mp4", "decode_threads": -1}, "decode_threads must be a whole number from 0"),
        ({"uri": "a.mp4", "decode_threads": 2.5}, "decode_threads must be a whole number from 0"),
        ({"uri": "a.mp4", "decode_threads": True}, "decode_threads must be a whole number from 0"),
        ({"uri": "a.mp4", "decode_threads": 65}, "decode_threads must be a whole number from 0"),
        ({"uri": "a.mp4", "kind": "camera"}, "unknown camera source kind 'camera'"),
        ({"uri": "rtsp://h/s", "loop": True}, "loop applies to files and image folders only"),
        ({"uri": "a.mp4", "kind": "stream"}, "needs a URL"),
        (True, "must be a string, a webcam index or a dict"),
        (1.5, "must be a string, a webcam index or a dict"),
    ],
)
def test_parse_rejects_bad_values_with_clear_message(value: object, message: str) -> None:
    with pytest.raises(ValueError) as error:
        SourceSpec.parse(value)  # type: ignore[arg-type]

    assert message in str(error.value)


def test_stream_password_is_hidden_in_text() -> None:
    spec = SourceSpec.parse("rtsp://admin:s3cret@10.0.0.5:554/stream1")

    assert "s3cret" not in str(spec)
    assert str(spec) == "stream:rtsp://admin:***@10.0.0.5:554/stream1"
    assert spec.location == "rtsp://admin:s3cret@10.0.0.5:554/stream1"


def test_backoff_grows_by_factor_up_to_max() -> None:
    policy = BackoffPolicy(initial_s=0.5, factor=2, max_s=3, jitter=0)

    assert [policy.delay(n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 3.0, 3.0, 3.0]


def test_backoff_jitter_stays_within_fraction() -> None:
    policy = BackoffPolicy(initial_s=1, factor=1, max_s=1, jitter=0.25)
    rng = random.Random(7)

    delays = [policy.delay(1, rng) for _ in range(200)]

    assert all(0.75 <= delay <= 1.25 for delay in delays)
    assert max(delays) - min(delays) > 0.2  # actually spread, not constant


def test_backoff_huge_attempt_numbers_stay_finite() -> None:
    assert BackoffPolicy(initial_s=1, factor=10, max_s=60, jitter=0).delay(10_000) == 60


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"initial_s": 0}, "initial_s must be > 0"),
        ({"factor": 0.5}, "factor must be >= 1"),
        ({"initial_s": 2, "max_s": 1}, "max_s must be >= initial_s"),
        ({"jitter": 1.5}, "jitter must be between 0 and 1"),
        ({"max_attempts": -1}, "max_attempts must be >= 0"),
    ],
)
def test_backoff_rejects_bad_settings(options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BackoffPolicy(**options)
