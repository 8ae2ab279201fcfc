"""Image files on disk: listing, sizes, hashing and copying next to annotations."""

from __future__ import annotations

import hashlib
import re
import shutil
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from urllib.parse import parse_qs, unquote, urlparse

from PIL import Image, UnidentifiedImageError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
"""File suffixes (lower case) treated as images."""

# Label Studio stores uploads as "<8 hex>-<original name>".
_UPLOAD_PREFIX = re.compile(r"^[0-9a-f]{8}-(.+)$")


def list_images(images_dir: str | Path) -> list[Path]:
    """Image files directly inside ``images_dir``, sorted by name.

    Raises:
        FileNotFoundError: ``images_dir`` is not a folder.

    Examples:
        >>> paths = list_images("shelf/images/train")
    """
    folder = Path(images_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"images folder {folder} does not exist or is not a folder")
    return sorted(
        (path for path in folder.iterdir() if path.suffix.lower() in IMAGE_SUFFIXES),
        key=lambda path: path.name,
    )


def read_image_size(path: str | Path) -> tuple[int, int]:
    """``(width, height)`` of an image, read from its header (the pixels are not decoded).

    Raises:
        FileNotFoundError: The file does not exist.
        ValueError: The file is not an image.

    Examples:
        >>> width, height = read_image_size("shelf/images/train/0001.jpg")
    """
    try:
        with Image.open(path) as image:
            return image.size
    except (UnidentifiedImageError, ImportError) as error:
        # ImportError: once ultralytics is imported it patches Image.open to retry unknown files
        # with the pi-heif plugin, which is not installed; either way the file is no image we read.
        raise ValueError(f"{path} is not a readable image file") from error


def file_sha256(path: str | Path, *, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def copy_images(paths: Iterable[Path], images_dir: str | Path) -> dict[Path, Path]:
    """Copy images into one folder, keeping their file names.

    A file already at its destination is left alone (no copy onto itself).

    Returns:
        Source path -> copied path.

    Raises:
        ValueError: Two different source files share a file name.

    Examples:
        >>> copied = copy_images([Path("a/1.jpg"), Path("b/2.jpg")], "out/images")
    """
    folder = Path(images_dir)
    folder.mkdir(parents=True, exist_ok=True)
    copied: dict[Path, Path] = {}
    by_name: dict[str, Path] = {}
    for source in paths:
        source = Path(source)
        if source in copied:
            continue
        if source.name in by_name:
            raise ValueError(
                f"images {by_name[source.name]} and {source} share the file name "
                f"{source.name!r}; expected unique file names in one images folder"
            )
        by_name[source.name] = source
        destination = folder / source.name
        if not (destination.exists() and destination.resolve() == source.resolve()):
            shutil.copy2(source, destination)
        copied[source] = destination
    return copied


def find_image_by_reference(reference: str, images_dir: str | Path) -> Path:
    """Local path for an annotation tool's image URL, looked up by file name in ``images_dir``.

    Handles ``s3://`` and ``http(s)://`` URLs, plain paths, Label Studio's
    ``/data/local-files/?d=<path>`` and its uploads ``/data/upload/<project>/<8 hex>-<name>``
    (the prefix is dropped when only the original name is in ``images_dir``).

    Examples:
        >>> find_image_by_reference("s3://bucket/shelf/0001.jpg", "images")
        PosixPath('images/0001.jpg')
    """
    images_dir = Path(images_dir)
    parsed = urlparse(reference)
    local_files = parse_qs(parsed.query).get("d")
    raw_path = local_files[0] if local_files else parsed.path
    name = unquote(PurePosixPath(raw_path).name)
    candidate = images_dir / name
    if not candidate.exists() and (match := _UPLOAD_PREFIX.match(name)):
        stripped = images_dir / match.group(1)
        if stripped.exists():
            return stripped
    return candidate
