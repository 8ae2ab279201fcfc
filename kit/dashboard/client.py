"""A thin client of the control API (``docs/backend.md``): one method per route, clear errors.

Every call has a timeout. An answer other than 2xx raises :class:`ControlApiError` carrying the
API's JSON error (``message``, ``field``, ``allowed``, ``problems``); a backend that does not
answer (refused connection, timeout, 5xx) raises :class:`BackendUnreachableError`; a missing or
rejected token raises :class:`NotSignedInError`.

Auth: on the local target the bearer token is ``settings.api_token``; on aws it is a Cognito token,
from :meth:`ControlApiClient.sign_in` (``kit.aws.sign_in``; ``from_settings(email=..., password=...)``
signs in at once) or handed in (the hosted dashboard's load balancer forwards the user's token in
the ``x-amzn-oidc-accesstoken`` header). A signed-in client renews its token with Cognito's
refresh token (``REFRESH_TOKEN_AUTH``) :data:`REFRESH_MARGIN_S` before it expires, so a
dashboard left open keeps working; a token handed in cannot be renewed here, and once it has
expired requests raise :class:`NotSignedInError` saying so.

Waiting: :meth:`ControlApiClient.wait_for_frame`, :meth:`~ControlApiClient.wait_for_payload` and
:meth:`~ControlApiClient.wait_for_alert` poll the API until what a device or the processor makes
is there, and raise :class:`TimeoutError` saying what did not come and what the API last said.

Examples:
    >>> from kit.dashboard import ControlApiClient
    >>> client = ControlApiClient("http://127.0.0.1:8088", token="evk-local-token")
    >>> client.url("/alerts/a b/ack")
    'http://127.0.0.1:8088/alerts/a%20b/ack'
"""

from __future__ import annotations

import base64
import binascii
import json as jsonlib
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import quote

import requests

from kit.core.contracts import DetectionPayload
from kit.core.settings import Settings, load_settings
from kit.core.timefmt import parse_stamp, stamp

DEFAULT_TIMEOUT_S = 10.0
FRAME_TIMEOUT_S = 10.0
POLL_S = 1.0
"""How often the ``wait_for_*`` methods ask the API."""
REFRESH_MARGIN_S = 300.0
"""Renew a token this long before it expires (Cognito's ID and access tokens last an hour)."""
OIDC_TOKEN_ENV = "HTTP_X_AMZN_OIDC_ACCESSTOKEN"
"""Where Voila puts the load balancer's ``x-amzn-oidc-accesstoken`` header for the kernel
(``--VoilaConfiguration.http_header_envs="['x-amzn-oidc-accesstoken']"``)."""


T = TypeVar("T")


class ControlApiError(Exception):
    """The control API answered with an error, or could not be reached.

    Attributes:
        status: the HTTP status (None when no answer came).
        message: what the API said (its ``message``), or why no answer came.
        method: the request's method.
        path: the request's path.
        field: the field the API named, if any.
        allowed: what that field allows, if the API said.
        problems: every problem of a rejected body (``field``, ``value``, ``allowed``).
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        method: str = "",
        path: str = "",
        field: str | None = None,
        allowed: str | None = None,
        problems: list[dict[str, Any]] | None = None,
    ):
        self.status = status
        self.message = message
        self.method = method
        self.path = path
        self.field = field
        self.allowed = allowed
        self.problems = problems or []
        where = f"{method} {path}".strip()
        code = f" answered {status}" if status is not None else ""
        super().__init__(f"{where}{code}: {message}" if where else message)


class BackendUnreachableError(ControlApiError):
    """No usable answer: connection refused, timeout, or a 5xx from the API or its gateway."""


class NotSignedInError(ControlApiError):
    """No token, or the API refused it (401): sign in (aws) or check ``api_token`` (local)."""


def _error_from_response(response: requests.Response, method: str, path: str) -> ControlApiError:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        body = {"message": response.text.strip()[:300] or response.reason or "no message"}
    kind: type[ControlApiError] = ControlApiError
    if response.status_code == 401:
        kind = NotSignedInError
    elif response.status_code >= 500:
        kind = BackendUnreachableError
    return kind(
        str(body.get("message") or body.get("error") or response.reason),
        status=response.status_code,
        method=method,
        path=path,
        field=body.get("field"),
        allowed=body.get("allowed"),
        problems=body.get("problems"),
    )


class ControlApiClient:
    """Calls the control API with a bearer token.

    Args:
        base_url: the API's base URL (``settings.control_api_url()``); None while not known yet
            (every call then raises :class:`BackendUnreachableError` saying how to start it).
        token: the bearer token; None until signed in.
        timeout_s: seconds each request may take.
        settings: used by :meth:`sign_in` (Cognito ids, region).
        cognito: the ``cognito-idp`` client :meth:`sign_in` and the token renewal use (default:
            an unsigned one for the settings' region, so signing in needs no AWS credentials).
        clock: the time now, in seconds since the epoch (tokens' expiry is compared with it).
        refresh_margin_s: renew a signed-in token this long before it expires.

    Safe to use from several threads (one HTTP session per thread; one renewal at a time).
    """

    def __init__(
        self,
        base_url: str | None,
        token: str | None = None,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        settings: Settings | None = None,
        cognito: Any = None,
        clock: Callable[[], float] = time.time,
        refresh_margin_s: float = REFRESH_MARGIN_S,
    ):
        self.base_url = _checked_url(base_url)
        self.cognito = cognito
        self.timeout_s = timeout_s
        self.settings = settings
        self.user: str | None = None
        self.clock = clock
        self.refresh_margin_s = refresh_margin_s
        self.refresh_token: str | None = None
        self._token: str | None = None
        self.token_expires_at: float | None = None
        self.token = token
        self._local = threading.local()
        self._renewal = threading.Lock()

    @classmethod
    def from_settings(
        cls,
        settings: Settings | None = None,
        *,
        token: str | None = None,
        require_url: bool = True,
        email: str | None = None,
        password: str | None = None,
        new_password: str | None = None,
        **kwargs: Any,
    ) -> ControlApiClient:
        """A client for the target ``settings`` name (default: :func:`load_settings`).

        Local: the running stack's URL and ``api_token``. aws: ``api_url`` and ``token`` if given,
        else the token the load balancer forwarded (``$HTTP_X_AMZN_OIDC_ACCESSTOKEN``), else a
        sign-in with ``email`` and ``password`` if given, else none until :meth:`sign_in`.

        Args:
            require_url: raise when no control API URL is known (else the client waits for one).
            email: aws: the user to sign in as when no token is at hand (ignored locally).
            password: that user's password.
            new_password: replaces the temporary password on the user's first sign-in.

        Raises:
            ValueError: no control API URL is known and ``require_url``; or an ``email`` without
                a ``password``.
            botocore.exceptions.ClientError: Cognito refused the sign-in.
        """
        import os

        settings = settings or load_settings()
        url = settings.control_api_url()
        if not url and require_url:
            raise ValueError(missing_url_hint(settings))
        if email is not None and not password:
            raise ValueError(f"signing in as {email!r} needs the password too")
        if token is None:
            token = (
                settings.api_token if settings.target == "local" else os.environ.get(OIDC_TOKEN_ENV)
            )
        client = cls(url, token, settings=settings, **kwargs)
        if client.token is None and email is not None and password is not None:
            client.sign_in(email, password, new_password=new_password)
        return client

    # -- the token ------------------------------------------------------------------------------
    @property
    def token(self) -> str | None:
        """The bearer token (None until signed in)."""
        return self._token

    @token.setter
    def token(self, value: str | None) -> None:
        """Use ``value`` from now on; its expiry is read from it (a JWT's ``exp``), and it is
        not renewed (only :meth:`sign_in` gives a refresh token)."""
        self._token = value
        self.refresh_token = None
        self.token_expires_at = jwt_expiry(value) if value else None

    def fresh_token(self) -> str | None:
        """The token to send now: renewed first when it expires within ``refresh_margin_s`` and
        a refresh token is at hand.

        Raises:
            NotSignedInError: Cognito refused the refresh token (the session ended), or a token
                that cannot be renewed has expired.
        """
        with self._renewal:
            expires_at = self.token_expires_at
            if self._token is None or expires_at is None:
                return self._token
            now = self.clock()
            if self.refresh_token and now >= expires_at - self.refresh_margin_s:
                self._renew(self.refresh_token)
            elif now >= expires_at:
                ended = datetime.fromtimestamp(expires_at, UTC).strftime("%H:%M UTC")
                raise NotSignedInError(
                    f"the token expired at {ended} and cannot be renewed here: reload the page "
                    "(the hosted dashboard signs you in again) or sign in"
                )
            return self._token

    def _renew(self, refresh_token: str) -> None:
        from botocore.exceptions import ClientError

        from kit.aws import refresh_sign_in

        if self.settings is None:
            raise NotSignedInError("this client has no settings to renew its token with")
        try:
            result = refresh_sign_in(self.settings, refresh_token, client=self._cognito())
        except ClientError as error:
            self._token, self.refresh_token, self.token_expires_at = None, None, None
            reason = error.response.get("Error", {}).get("Message") or str(error)
            raise NotSignedInError(
                f"the session ended: Cognito refused to renew the token ({reason}); sign in again"
            ) from None
        self._use_tokens(result, refresh_token=result.get("RefreshToken") or refresh_token)

    def _use_tokens(self, result: dict[str, Any], *, refresh_token: str | None) -> None:
        self._token = result["IdToken"]
        self.refresh_token = refresh_token
        expires_in = result.get("ExpiresIn")
        self.token_expires_at = (
            self.clock() + float(expires_in) if expires_in else jwt_expiry(self._token)
        )

    def _cognito(self) -> Any:
        if self.cognito is None:
            from botocore import UNSIGNED
            from botocore.config import Config

            if self.settings is None:
                raise ValueError("this client has no settings: create it with from_settings()")
            self.cognito = self.settings.client(
                "cognito-idp", config=Config(signature_version=UNSIGNED)
            )
        return self.cognito

    # -- plumbing ------------------------------------------------------------------------------
    @property
    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def url(self, path: str) -> str:
        """The full URL of ``path`` (its segments percent-encoded).

        Raises:
            BackendUnreachableError: no base URL is known yet.
        """
        if self.base_url is None:
            hint = missing_url_hint(self.settings) if self.settings else "no control API URL"
            raise BackendUnreachableError(hint, path=path)
        return self.base_url + quote(path, safe="/")

    def use_url(self, base_url: str | None) -> None:
        """Talk to ``base_url`` from now on (e.g. the local stack restarted on another port)."""
        self.base_url = _checked_url(base_url)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
        auth: bool = True,
    ) -> Any:
        """Send one request; the answer's JSON.

        Raises:
            NotSignedInError: no token, or a 401.
            BackendUnreachableError: no answer, or a 5xx.
            ControlApiError: any other non-2xx answer.
        """
        sent_headers = dict(headers or {})
        if auth:
            token = self.fresh_token()
            if not token:
                raise NotSignedInError(
                    "not signed in: sign in first (sign_in(email, password), or "
                    "ControlApiClient.from_settings(email=..., password=...))",
                    method=method,
                    path=path,
                    status=None,
                )
            sent_headers["Authorization"] = f"Bearer {token}"
        query = {k: v for k, v in (params or {}).items() if v is not None}
        url = self.url(path)
        try:
            response = self._session.request(
                method,
                url,
                params=query,
                json=json,
                headers=sent_headers,
                timeout=self.timeout_s,
            )
        except requests.RequestException as error:
            raise BackendUnreachableError(
                f"{type(error).__name__}: {_short(error)}", method=method, path=path
            ) from None
        if not response.ok:
            raise _error_from_response(response, method, path)
        try:
            return response.json()
        except ValueError:
            raise BackendUnreachableError(
                f"the answer is not JSON: {response.text[:120]!r}",
                status=response.status_code,
                method=method,
                path=path,
            ) from None

    # -- routes ----------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        """``GET /health`` (no auth): ``status``, ``target``, ``version``, ``time``."""
        return self.request("GET", "/health", auth=False)

    def config(self) -> dict[str, Any]:
        """``GET /config``: the whole ``ControlConfig``."""
        return self.request("GET", "/config")

    def camera_config(self, camera_id: str) -> dict[str, Any]:
        """``GET /config/{camera}``: ``camera_id``, ``revision``, ``settings``, ``overrides``."""
        return self.request("GET", f"/config/{camera_id}")

    def put_camera_config(
        self, camera_id: str, overrides: dict[str, Any], *, revision: int | None = None
    ) -> dict[str, Any]:
        """``PUT /config/{camera}``: replace the camera's overrides; the new camera config.

        Args:
            revision: the config revision the overrides were read at (sent as ``If-Match``; a
                newer config answers 409).
        """
        headers = {"If-Match": str(revision)} if revision is not None else None
        return self.request("PUT", f"/config/{camera_id}", json=overrides, headers=headers)

    def models(self) -> list[dict[str, Any]]:
        """``GET /models``: every model version's metadata."""
        return self.request("GET", "/models")["items"]

    def cameras(self) -> list[dict[str, Any]]:
        """``GET /cameras``: every camera seen or configured."""
        return self.request("GET", "/cameras")["items"]

    def devices(self) -> list[dict[str, Any]]:
        """``GET /devices``: each device's health, heartbeat age, cameras and spool."""
        return self.request("GET", "/devices")["items"]

    def detections(
        self,
        camera_id: str,
        *,
        since: str | None = None,
        limit: int = 100,
        order: str = "desc",
    ) -> list[dict[str, Any]]:
        """``GET /detections``: the camera's payloads since ``since`` (ISO time, inclusive)."""
        params = {"camera": camera_id, "since": since, "limit": limit, "order": order}
        return self.request("GET", "/detections", params=params)["items"]

    def alerts(
        self, *, state: str | None = None, camera_id: str | None = None, limit: int = 50
    ) -> list[dict[str, Any]]:
        """``GET /alerts``: alerts newest first, optionally of one state or camera."""
        params = {"state": state, "camera": camera_id, "limit": limit}
        return self.request("GET", "/alerts", params=params)["items"]

    def acknowledge(self, alert_id: str) -> dict[str, Any]:
        """``POST /alerts/{id}/ack``: ``{alert, changed}``."""
        return self.request("POST", f"/alerts/{alert_id}/ack")

    def latest_frame(self, camera_id: str) -> dict[str, Any]:
        """``GET /frames/latest``: ``frame_key``, ``captured_at`` and a presigned ``url``."""
        return self.request("GET", "/frames/latest", params={"camera": camera_id})

    def fetch_frame(self, url: str) -> bytes:
        """The JPEG bytes behind a presigned frame URL.

        Raises:
            BackendUnreachableError: the store does not answer.
            ControlApiError: the link is refused (expired, missing object).
        """
        try:
            response = self._session.get(url, timeout=FRAME_TIMEOUT_S)
        except requests.RequestException as error:
            raise BackendUnreachableError(
                f"frame store: {type(error).__name__}: {_short(error)}", method="GET", path="frame"
            ) from None
        if not response.ok:
            kind = BackendUnreachableError if response.status_code >= 500 else ControlApiError
            raise kind(
                f"the frame link answered {response.reason}",
                status=response.status_code,
                method="GET",
                path="frame",
            )
        return response.content

    # -- waiting for what a device or the processor makes ----------------------------------
    def wait_for_frame(
        self,
        camera_id: str,
        *,
        since: datetime | None = None,
        timeout_s: float = 60.0,
        poll_s: float = POLL_S,
    ) -> dict[str, Any]:
        """The camera's latest frame (as :meth:`latest_frame`) once it has one captured at or
        after ``since`` (any, when None).

        Raises:
            TimeoutError: no such frame within ``timeout_s``.
            ControlApiError: the API refused the request (other than "no frame yet").
        """

        def newer_frame() -> dict[str, Any] | None:
            frame = self.latest_frame(camera_id)
            captured = frame.get("captured_at")
            if since is None or (captured and parse_stamp(captured) >= since):
                return frame
            return None

        after = f" captured since {stamp(since)}" if since else ""
        return self._wait_for(
            newer_frame,
            what=f"a frame from camera {camera_id!r}{after}",
            hint="is the device running and publishing? (`kit devices`)",
            timeout_s=timeout_s,
            poll_s=poll_s,
        )

    def wait_for_payload(
        self, payload: DetectionPayload, *, timeout_s: float = 60.0, poll_s: float = POLL_S
    ) -> dict[str, Any]:
        """``payload`` as the backend stored it, once the processor has stored it.

        Raises:
            TimeoutError: it was not stored within ``timeout_s``.
            ControlApiError: the API refused the request (other than "unknown camera").
        """

        def stored() -> dict[str, Any] | None:
            items = self.detections(
                payload.camera_id, since=stamp(payload.captured_at), limit=100, order="asc"
            )
            return next((p for p in items if p.get("payload_id") == payload.payload_id), None)

        return self._wait_for(
            stored,
            what=f"payload {payload.payload_id} of camera {payload.camera_id!r} to be stored",
            hint="was it sent to the detections queue, and does the processor run?",
            timeout_s=timeout_s,
            poll_s=poll_s,
        )

    def wait_for_alert(
        self,
        camera_id: str,
        *,
        payload_id: str | None = None,
        state: str = "OPEN",
        timeout_s: float = 60.0,
        poll_s: float = POLL_S,
    ) -> dict[str, Any]:
        """The camera's newest alert in ``state``, once there is one (raised by the payload
        ``payload_id``, when given).

        Raises:
            TimeoutError: no such alert within ``timeout_s``.
            ControlApiError: the API refused the request (other than "unknown camera"), e.g. a
                ``state`` other than OPEN, ACKED or RESOLVED.
        """

        def alert() -> dict[str, Any] | None:
            items = self.alerts(state=state, camera_id=camera_id, limit=50)
            return next(
                (a for a in items if payload_id is None or a.get("payload_id") == payload_id),
                None,
            )

        raised_by = f" raised by payload {payload_id}" if payload_id else ""
        return self._wait_for(
            alert,
            what=f"an alert in state {state} on camera {camera_id!r}{raised_by}",
            hint="does the camera have a rule its payloads breach (GET /config/{camera})?",
            timeout_s=timeout_s,
            poll_s=poll_s,
        )

    def _wait_for(
        self,
        find: Callable[[], T | None],
        *,
        what: str,
        hint: str,
        timeout_s: float,
        poll_s: float,
    ) -> T:
        """Call ``find`` until it returns something; a 404 counts as "not yet"."""
        if timeout_s <= 0 or poll_s <= 0:
            raise ValueError(
                f"timeout_s and poll_s must be > 0 seconds, got {timeout_s!r} and {poll_s!r}"
            )
        deadline = time.monotonic() + timeout_s
        while True:
            not_found: ControlApiError | None = None
            try:
                found = find()
            except ControlApiError as error:
                if error.status != 404:
                    raise
                found, not_found = None, error
            if found is not None:
                return found
            left = deadline - time.monotonic()
            if left <= 0:
                said = f" (the API said: {not_found.message})" if not_found else ""
                raise TimeoutError(
                    f"gave up waiting for {what} after {timeout_s:g} s{said}; {hint}"
                )
            time.sleep(min(poll_s, left))

    # -- sign-in (aws) -----------------------------------------------------------------------
    def sign_in(
        self,
        email: str,
        password: str,
        *,
        new_password: str | None = None,
    ) -> str:
        """Sign in to the stack's Cognito user pool (:func:`kit.aws.sign_in`) and use its ID
        token from now on, renewed with its refresh token before it expires; returns the token.

        Args:
            new_password: replaces the temporary password on the first sign-in.

        Raises:
            ValueError: no settings with Cognito ids, or a new password is needed.
            botocore.exceptions.ClientError: Cognito refused (e.g. a wrong password).
        """
        from kit.aws import sign_in

        if self.settings is None:
            raise ValueError("this client has no settings: create it with from_settings()")
        result = sign_in(
            self.settings, email, password, new_password=new_password, client=self._cognito()
        )
        with self._renewal:
            self._use_tokens(result, refresh_token=result.get("RefreshToken"))
        self.user = email
        return result["IdToken"]


def jwt_expiry(token: str) -> float | None:
    """When a JWT expires (its ``exp`` claim, seconds since the epoch), read without checking
    its signature (the API checks that); None for anything else (e.g. the local bearer token)."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))
        claims = jsonlib.loads(payload)
    except (binascii.Error, ValueError):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    return float(exp) if isinstance(exp, int | float) and not isinstance(exp, bool) else None


def missing_url_hint(settings: Settings) -> str:
    """Why no control API URL is known, and how to get one, for ``settings``' target."""
    if settings.target == "local":
        where = (
            "start the local stack with `kit local up` (it records the URL in "
            f"{settings.local_dir / 'stack.json'})"
        )
    else:
        where = "run `kit aws outputs` after `pulumi up`, or set EVK_API_URL"
    return f"no control API URL for target {settings.target!r} yet: {where}"


def _checked_url(base_url: str | None) -> str | None:
    if base_url is None:
        return None
    if not base_url.startswith(("http://", "https://")):
        raise ValueError(
            f"control API URL {base_url!r} must start with http:// or https://; "
            "start the local stack (`kit local up`) or run `kit aws outputs`"
        )
    return base_url.rstrip("/")


def _short(error: Exception, limit: int = 160) -> str:
    text = str(error)
    return text if len(text) <= limit else text[: limit - 3] + "..."
