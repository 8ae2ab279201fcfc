"""The control-panel dashboard: live frames, counts, alerts, devices and the control panel.

One ipywidgets app (:class:`Dashboard`) over the control API (:class:`ControlApiClient`), served
by Voila from ``notebooks/dashboard.ipynb`` (``make dashboard``). The logic behind it — counts
over time, the control panel's form and the ``PUT`` bodies it makes, reachability and backoff,
what each part shows — is in plain modules that test without a browser.

Examples:
    >>> from kit.dashboard import CountHistory, ControlApiClient
    >>> ControlApiClient("http://127.0.0.1:8088", token="evk-local-token").base_url
    'http://127.0.0.1:8088'
"""

from kit.dashboard.client import (
    BackendUnreachableError,
    ControlApiClient,
    ControlApiError,
    NotSignedInError,
)
from kit.dashboard.config_form import CameraForm, RuleRow, camera_form, overrides_body
from kit.dashboard.core import Dashboard
from kit.dashboard.history import CountHistory
from kit.dashboard.status import BackendState, Backoff, Schedule

__all__ = [
    "Backoff",
    "BackendState",
    "BackendUnreachableError",
    "CameraForm",
    "ControlApiClient",
    "ControlApiError",
    "CountHistory",
    "Dashboard",
    "NotSignedInError",
    "RuleRow",
    "Schedule",
    "camera_form",
    "overrides_body",
]
