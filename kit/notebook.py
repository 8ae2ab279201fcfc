"""Small helpers that keep the numbered notebooks to a few lines a cell.

Examples:
    >>> from kit.notebook import setup, show
    >>> settings = setup("local")          # doctest: +SKIP
    >>> show(image_bgr, title="a scene")   # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from kit.core.settings import Settings, load_settings
from kit.offline import configure_ultralytics

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


def show(image: np.ndarray | Any, *, title: str | None = None, width: int | None = 800) -> None:
    """Display a BGR image (numpy) or a matplotlib figure in the notebook."""
    from IPython.display import Image, Markdown, display

    if title:
        display(Markdown(f"**{title}**"))
    if isinstance(image, np.ndarray):
        import cv2

        ok, png = cv2.imencode(".png", image)
        if not ok:
            raise ValueError(f"cannot encode an image of shape {image.shape} as PNG")
        display(Image(data=png.tobytes(), width=width))
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
