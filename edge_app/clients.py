"""AWS clients for a device, made when first needed and tried again with backoff until they can be.

Making a boto3 client resolves credentials. On the local target they are the fixed test
credentials :meth:`kit.core.settings.Settings.client` injects; on aws they come from botocore's
default chain: on a Greengrass core, the token-exchange service that
``AWS_CONTAINER_CREDENTIALS_FULL_URI`` (with ``AWS_CONTAINER_AUTHORIZATION_TOKEN``) names. A
device that boots without network cannot reach that service, and botocore then refuses to make
the client at all. :class:`BackendClients` makes each client on first use; while credentials
cannot be had it raises :class:`CredentialsUnavailableError` at once and tries again no sooner
than a backoff delay (doubling up to ``retry_max_s``), so the device keeps analysing and
spooling, and the credentials service is not asked on every call. Credentials once had are
refreshed by botocore before they expire.

Examples:
    >>> from kit.core.settings import load_settings
    >>> clients = BackendClients(load_settings(target="local"))
    >>> clients.client("sqs").meta.service_model.service_name
    'sqs'
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError

from kit.core.settings import Settings

log = logging.getLogger(__name__)

RETRY_MIN_S = 1.0
"""The first wait before credentials are asked for again."""


class CredentialsUnavailableError(RuntimeError):
    """AWS credentials cannot be had now (credentials service unreachable, none configured)."""


class BackendClients:
    """The device's boto3 clients, one per service, shared by its threads.

    Args:
        settings: the target, region and endpoint the clients are for.
        retry_min_s: the first wait after a failed attempt.
        retry_max_s: the longest wait between two attempts.
        clock: seconds from a monotonic clock.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        retry_min_s: float = RETRY_MIN_S,
        retry_max_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.settings = settings
        self.retry_min_s = retry_min_s
        self.retry_max_s = retry_max_s
        self.clock = clock
        self.failures = 0
        self.last_error: str | None = None
        self._clients: dict[str, Any] = {}
        self._retry_at: float | None = None
        self._lock = threading.Lock()

    def client(self, service: str) -> Any:
        """The client for ``service``, made on first use.

        Raises:
            CredentialsUnavailableError: credentials cannot be had now, or were not had at the
                last attempt and the backoff delay has not passed yet.
        """
        with self._lock:
            made = self._clients.get(service)
            if made is not None:
                return made
            now = self.clock()
            if self._retry_at is not None and now < self._retry_at:
                raise CredentialsUnavailableError(
                    f"{self.last_error} (next attempt in {self._retry_at - now:.0f} s)"
                )
            try:
                self._check_credentials()
                made = self.settings.client(service)
            except (BotoCoreError, CredentialsUnavailableError, OSError) as error:
                self._failed(error)
                raise CredentialsUnavailableError(self.last_error) from error
            if self.failures:
                log.info("AWS credentials obtained after %d failed attempt(s)", self.failures)
            self.failures, self.last_error, self._retry_at = 0, None, None
            self._clients[service] = made
            return made

    def _check_credentials(self) -> None:
        """Resolve credentials the way the aws target's clients will (the local target has its
        own): in boto3's default session, which ``boto3.client`` (what `Settings.client` calls)
        uses, so the credentials found here are the ones those clients sign with."""
        if self.settings.target == "local":
            return
        import boto3

        if boto3.DEFAULT_SESSION is None:
            boto3.setup_default_session()
        if boto3.DEFAULT_SESSION.get_credentials() is None:
            raise CredentialsUnavailableError(
                "no AWS credentials found (environment, config files, container or instance "
                "role; on Greengrass: the token-exchange service)"
            )

    def _failed(self, error: Exception) -> None:
        self.failures += 1
        delay = min(self.retry_min_s * 2 ** (self.failures - 1), self.retry_max_s)
        self._retry_at = self.clock() + delay
        message = f"AWS credentials unavailable: {error}"
        if message != self.last_error:
            log.warning(
                "%s; the device keeps analysing and spooling, next attempt in %.0f s",
                message,
                delay,
            )
        self.last_error = message


class LazyClient:
    """One service's client from :class:`BackendClients`, for code that takes a client object
    before one can be made (such as :class:`kit.core.registry.RegistryReader`): each attribute
    is looked up on the client made on first use.

    Args:
        clients: where the client comes from.
        service: the boto3 service name (``s3``, ``sqs``, ...).
    """

    def __init__(self, clients: BackendClients, service: str):
        self._clients = clients
        self._service = service

    def __getattr__(self, name: str) -> Any:
        return getattr(self._clients.client(self._service), name)
