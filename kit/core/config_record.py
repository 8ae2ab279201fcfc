"""How the control config is stored in the config table: one codec for its writer and its readers.

The control API writes the config (:class:`lambdas.store.Store`); devices on aws read the same
item with their IAM role (:class:`edge_app.control.ControlClient`). Both go through this module,
so the item's layout is written down once:

- key ``config_id = "current"`` (:data:`CONFIG_ID`);
- ``config``: the whole :class:`~kit.core.contracts.ControlConfig` as JSON text;
- ``revision`` (number), ``updated_at`` and ``updated_by`` (text), copied out of the config for
  the writer's conditional check (``revision = :expected``) and for people reading the table.

Examples:
    >>> from kit.core.contracts import ControlConfig
    >>> item = encode_config_item(ControlConfig(revision=3))
    >>> item["config_id"], item["revision"]
    ({'S': 'current'}, {'N': '3'})
    >>> decode_config_item(item).revision
    3
"""

from __future__ import annotations

from typing import Any

from kit.core.contracts import ControlConfig, parse
from kit.core.timefmt import stamp

CONFIG_ID = "current"
"""The config table's only item key."""
CONFIG_ATTRIBUTE = "config"
"""The attribute holding the config's JSON."""
CONFIG_KEY: dict[str, dict[str, str]] = {"config_id": {"S": CONFIG_ID}}
"""The item's key in DynamoDB's low-level (typed) form."""


def encode_config_item(config: ControlConfig) -> dict[str, Any]:
    """The config table item (low-level DynamoDB attribute values) holding ``config``."""
    return {
        **CONFIG_KEY,
        "revision": {"N": str(config.revision)},
        "updated_at": {"S": stamp(config.updated_at)},
        "updated_by": {"S": config.updated_by},
        CONFIG_ATTRIBUTE: {"S": config.model_dump_json()},
    }


def decode_config_item(item: dict[str, Any] | None) -> ControlConfig | None:
    """The config an item holds; None when there is no item (or it holds no config yet).

    Raises:
        kit.core.contracts.ContractError: the stored config breaks its contract (the message
            names each bad field).
    """
    if not item or CONFIG_ATTRIBUTE not in item:
        return None
    return parse(ControlConfig, item[CONFIG_ATTRIBUTE]["S"])
