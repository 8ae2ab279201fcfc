"""How the control config is stored in the config table: one codec for its writer and its readers.

The control API writes the config (:class:`lambdas.store.Store`); devices on aws read the same
item with their IAM role (:class:`edge_app.control.ControlClient`). Both go through this module,
so the items' layout is written down once:

- key ``config_id = "current"`` (:data:`CONFIG_ID`): the config as last written;
- key ``config_id = "last-good"`` (:data:`LAST_GOOD_ID`): a copy of the newest config that was
  valid when written, which readers fall back on when ``current`` fails validation (an item
  edited by hand, or written before a contract was tightened);
- in each: ``config``, the whole :class:`~kit.core.contracts.ControlConfig` as JSON text;
  ``revision`` (number), ``updated_at`` and ``updated_by`` (text), copied out of the config for
  the writer's conditional check (``revision = :expected``) and for people reading the table.

Examples:
    >>> from kit.core.contracts import ControlConfig
    >>> item = encode_config_item(ControlConfig(revision=3))
    >>> item["config_id"], item["revision"]
    ({'S': 'current'}, {'N': '3'})
    >>> decode_config_item(item).revision
    3
    >>> stored_revision({"revision": {"S": "three"}}) is None
    True
"""

from __future__ import annotations

from typing import Any

from kit.core.contracts import ContractError, ControlConfig, parse
from kit.core.timefmt import stamp

CONFIG_ID = "current"
"""The key of the config as last written."""
LAST_GOOD_ID = "last-good"
"""The key of the newest config that was valid when written."""
CONFIG_ATTRIBUTE = "config"
"""The attribute holding the config's JSON."""
CONFIG_KEY: dict[str, dict[str, str]] = {"config_id": {"S": CONFIG_ID}}
"""The current item's key in DynamoDB's low-level (typed) form."""
LAST_GOOD_KEY: dict[str, dict[str, str]] = {"config_id": {"S": LAST_GOOD_ID}}
"""The last good copy's key."""


def encode_config_item(config: ControlConfig, config_id: str = CONFIG_ID) -> dict[str, Any]:
    """The config table item (low-level DynamoDB attribute values) holding ``config``."""
    return {
        "config_id": {"S": config_id},
        "revision": {"N": str(config.revision)},
        "updated_at": {"S": stamp(config.updated_at)},
        "updated_by": {"S": config.updated_by},
        CONFIG_ATTRIBUTE: {"S": config.model_dump_json()},
    }


def decode_config_item(item: dict[str, Any] | None) -> ControlConfig | None:
    """The config an item holds; None when there is no item (or it holds no config yet).

    Raises:
        kit.core.contracts.ContractError: the stored config breaks its contract (the message
            names each bad field), or its attribute is not text.
    """
    if not item or CONFIG_ATTRIBUTE not in item:
        return None
    text = item[CONFIG_ATTRIBUTE].get("S") if isinstance(item[CONFIG_ATTRIBUTE], dict) else None
    if text is None:
        kind = next(iter(item[CONFIG_ATTRIBUTE]), "?") if item[CONFIG_ATTRIBUTE] else "?"
        raise ContractError(
            "ControlConfig",
            [
                {
                    "field": f"<item attribute {CONFIG_ATTRIBUTE}>",
                    "value": f"a DynamoDB value of type {kind}",
                    "allowed": "the config's JSON as a string (S)",
                }
            ],
        )
    return parse(ControlConfig, text)


def stored_revision(item: dict[str, Any] | None) -> int | None:
    """The item's ``revision`` attribute when it is a whole number; None otherwise."""
    raw = (item or {}).get("revision")
    text = raw.get("N") if isinstance(raw, dict) else None
    if text is None:
        return None
    try:
        number = float(text)
    except ValueError:
        return None
    return int(number) if number.is_integer() else None
