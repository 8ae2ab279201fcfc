"""Serving the dashboard notebook with Voila, so that a page's kernel ends with the page.

Voila starts one kernel per page visit and, when the page closes, the browser posts
``voila/api/shutdown/<kernel>`` with the page's ``_xsrf`` cookie. Voila 0.5 never sets that
cookie while it streams a notebook (the page renders without Jupyter's template namespace, the
only place tornado's ``xsrf_token`` is read), so the browser sends an empty ``_xsrf``, the call
is refused (``403 '_xsrf' argument missing from POST``) and every visit left a kernel polling
the backend. :func:`set_xsrf_cookie`, Voila's prelaunch hook, sets the cookie before the page's
headers go out, and the shutdown call is accepted. Idle kernels with no page connected are culled
as a backstop (a browser that crashed sends no shutdown call).

``python -m kit.dashboard.server [VOILA OPTIONS]`` serves ``notebooks/dashboard.ipynb`` with this
configuration (``make dashboard``, ``kit demo``, the hosted dashboard's container); options on
the command line (``--port=8866``, ``--Voila.ip=0.0.0.0`` …) override it.

Examples:
    >>> config = voila_config()
    >>> config.MappingKernelManager.cull_connected
    False
    >>> "comm_msg" in config.MappingKernelManager.untracked_message_types
    True
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from traitlets.config import Config

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "dashboard.ipynb"
CULL_IDLE_TIMEOUT_S = 600
"""A kernel whose page went away without the shutdown call ends after this long without
activity (a kernel with a page connected is never culled)."""
CULL_INTERVAL_S = 60
"""How often the kernel manager looks for idle kernels."""
STATIC_PROBE_PATH = "voila/static/voila.js"
"""A static file Voila serves, to tell that it is up (relative to the dashboard's URL): opening
the notebook's page for that would start a kernel."""
WIDGET_TRAFFIC = ("comm_open", "comm_msg", "comm_close", "execute_request")
"""Kernel messages that are no user's activity: the dashboard's poller thread updates widgets
all the time, parented to the last request the kernel got (often the notebook's execution).
Were they activity, no dashboard kernel would ever be idle, and none would be culled."""


def set_xsrf_cookie(handler: Any, notebook: Any = None, cwd: str | None = None) -> None:
    """Voila's prelaunch hook: set the page's ``_xsrf`` cookie (tornado sets it on first read of
    ``xsrf_token``) before Voila streams the page, for the browser's kernel shutdown call.

    Args:
        handler: the tornado request handler of the page.
        notebook: the notebook about to run (unchanged).
        cwd: its working directory (unused).
    """
    handler.xsrf_token  # noqa: B018 - reading it sets the cookie


def voila_config() -> Config:
    """The dashboard's Voila and kernel-manager configuration (see the module docstring)."""
    from jupyter_server.services.kernels.kernelmanager import MappingKernelManager

    config = Config()
    config.VoilaConfiguration.prelaunch_hook = set_xsrf_cookie
    config.MappingKernelManager.cull_idle_timeout = CULL_IDLE_TIMEOUT_S
    config.MappingKernelManager.cull_interval = CULL_INTERVAL_S
    config.MappingKernelManager.cull_connected = False
    untracked = MappingKernelManager.class_traits()["untracked_message_types"].default()
    config.MappingKernelManager.untracked_message_types = [*untracked, *WIDGET_TRAFFIC]
    return config


def voila_command(*options: str, python: str | None = None) -> list[str]:
    """The command that serves the dashboard: ``python -m kit.dashboard.server`` and ``options``
    (``--port=8866``, ``--Voila.ip=127.0.0.1`` …)."""
    return [python or sys.executable, "-m", "kit.dashboard.server", *options]


def main(argv: list[str] | None = None) -> None:
    """Serve the dashboard notebook with Voila (``--no-browser``) and :func:`voila_config`."""
    from voila.app import Voila

    options = sys.argv[1:] if argv is None else argv
    Voila.launch_instance(argv=[str(NOTEBOOK), "--no-browser", *options], config=voila_config())


if __name__ == "__main__":
    main()
