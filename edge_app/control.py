"""Following the backend's control config: poll it, keep the last good one, survive outages.

The config comes from the control API (``GET /config`` with the local token) on the local target
when the local API runs, else (and always on aws, where devices have an IAM role, not a user's
Cognito token) straight from the config table, read with the same codec the API writes with
(:mod:`kit.core.config_record`). The last config received is cached on disk, so a
device restarted while offline runs with what it last knew. A config that fails validation is
logged and ignored: the device keeps the previous one.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import requests

from edge_app.clients import BackendClients, CredentialsUnavailableError
from kit.core.config_record import CONFIG_KEY, decode_config_item
from kit.core.contracts import ContractError, ControlConfig, parse
from kit.core.settings import Settings

log = logging.getLogger(__name__)


class ControlSourceError(RuntimeError):
    """The control config could not be fetched (backend unreachable, or a bad answer)."""


class ControlClient:
    """Fetches the control config; :meth:`poll` returns it when its revision changed.

    Args:
        settings: where the backend is (``api_url`` + ``api_token``, or the config table).
        source: ``api``, ``table``, ``none`` (only ``initial``), or ``auto`` (api if ``api_url`` is set).
        cache_file: where the last good config is kept across restarts.
        initial: used when nothing was ever fetched nor cached.
        timeout_s: how long a request to the control API may take.
        clients: where the DynamoDB client comes from (default: made from ``settings``).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        source: str = "auto",
        cache_file: Path | None = None,
        initial: ControlConfig | None = None,
        timeout_s: float = 5.0,
        clients: BackendClients | None = None,
    ):
        if source == "auto":
            # On aws the API wants a user's Cognito token; devices read the table with their role.
            source = "api" if settings.target == "local" and settings.control_api_url() else "table"
        if source not in {"api", "table", "none"}:
            raise ValueError(
                f"control source must be 'auto', 'api', 'table' or 'none', not {source!r}"
            )
        self.settings = settings
        self.source = source
        self.cache_file = cache_file
        self.timeout_s = timeout_s
        self.current: ControlConfig = self._load_cache() or initial or ControlConfig()
        self.last_error: str | None = None
        self.clients = clients or BackendClients(settings)

    def fetch(self) -> ControlConfig:
        """The backend's config now.

        Raises:
            ControlSourceError: when it cannot be reached or answers something invalid.
        """
        if self.source == "none":
            return self.current
        try:
            config = self._fetch_api() if self.source == "api" else self._fetch_table()
        except ContractError as error:
            raise ControlSourceError(
                f"the backend's control config is invalid, keeping the previous one: {error}"
            ) from None
        except (requests.RequestException, OSError, CredentialsUnavailableError) as error:
            raise ControlSourceError(f"control config unreachable: {error}") from None
        except Exception as error:  # botocore's endpoint and client errors
            if type(error).__module__.startswith(("botocore", "boto3", "urllib3")):
                raise ControlSourceError(f"control config unreachable: {error}") from None
            raise
        return config if config is not None else self.current

    def poll(self) -> ControlConfig | None:
        """Fetch; return the new config if its revision differs from the current one, else None.

        Failures are logged (once per distinct error) and return None: the device keeps running
        with the config it has.
        """
        try:
            config = self.fetch()
        except ControlSourceError as error:
            if str(error) != self.last_error:
                log.warning("%s", error)
            self.last_error = str(error)
            return None
        if self.last_error:
            log.info("control config reachable again")
        self.last_error = None
        if config.revision == self.current.revision and config == self.current:
            return None
        log.info("control config revision %d -> %d", self.current.revision, config.revision)
        self.current = config
        self._save_cache(config)
        return config

    def _fetch_api(self) -> ControlConfig | None:
        response = requests.get(
            f"{self.settings.control_api_url().rstrip('/')}/config",
            headers={"Authorization": f"Bearer {self.settings.api_token}"},
            timeout=self.timeout_s,
        )
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise ControlSourceError(
                f"GET /config answered {response.status_code}: {response.text[:200]}"
            )
        return parse(ControlConfig, response.text)

    def _fetch_table(self) -> ControlConfig | None:
        dynamodb = self.clients.client("dynamodb")
        item = dynamodb.get_item(
            TableName=self.settings.resources.config_table, Key=CONFIG_KEY, ConsistentRead=True
        ).get("Item")
        return decode_config_item(item)

    def _load_cache(self) -> ControlConfig | None:
        if self.cache_file is None or not self.cache_file.is_file():
            return None
        try:
            return parse(ControlConfig, self.cache_file.read_text())
        except (ContractError, OSError) as error:
            log.warning("ignoring the cached control config %s: %s", self.cache_file, error)
            return None

    def _save_cache(self, config: ControlConfig) -> None:
        """Keep ``config`` for a restart; a disk that refuses (full, read-only) is logged: the
        config is followed all the same."""
        if self.cache_file is None:
            return
        tmp = self.cache_file.with_suffix(".tmp")
        try:
            self.cache_file.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(config.model_dump(mode="json")))
            tmp.replace(self.cache_file)
        except OSError as error:
            log.warning(
                "control config revision %d not cached in %s (%s): a restart before the backend "
                "is reachable starts from an older one",
                config.revision,
                self.cache_file,
                error.strerror or error,
            )
