"""DynamoDB tables from the backend description: on-demand, point-in-time recovery, TTL, keys, GSIs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from kit.core.backend import TableSpec


@dataclass
class TablesArgs:
    """Args of :class:`Tables`.

    Attributes:
        tables: the tables of the backend description.
        deletion_protection: refuse to delete tables (turn on for production data).
    """

    tables: Sequence[TableSpec]
    deletion_protection: bool = False


class Tables(pulumi.ComponentResource):
    """One DynamoDB table per table of the backend description."""

    def __init__(
        self, name: str, args: TablesArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("kit:backend:Tables", name, {}, opts)
        self.tables: dict[str, aws.dynamodb.Table] = {}
        for spec in args.tables:
            self.tables[spec.logical] = aws.dynamodb.Table(
                f"{name}-{spec.logical}",
                opts=pulumi.ResourceOptions(parent=self),
                **table_arguments(spec, deletion_protection=args.deletion_protection),
            )
        self.register_outputs({"names": {k: t.name for k, t in self.tables.items()}})


def table_arguments(spec: TableSpec, *, deletion_protection: bool = False) -> dict[str, Any]:
    """The ``aws.dynamodb.Table`` arguments for ``spec``."""
    arguments: dict[str, Any] = {
        "name": spec.name,
        "billing_mode": "PAY_PER_REQUEST",
        "hash_key": spec.hash_key.name,
        "attributes": [{"name": n, "type": t} for n, t in sorted(spec.attributes.items())],
        "point_in_time_recovery": {"enabled": True},
        "server_side_encryption": {"enabled": True},
        "deletion_protection_enabled": deletion_protection,
    }
    if spec.range_key:
        arguments["range_key"] = spec.range_key.name
    if spec.ttl_attribute:
        arguments["ttl"] = {"attribute_name": spec.ttl_attribute, "enabled": True}
    if spec.indexes:
        arguments["global_secondary_indexes"] = [
            {
                "name": index.name,
                "key_schemas": [{"attribute_name": index.hash_key.name, "key_type": "HASH"}]
                + (
                    [{"attribute_name": index.range_key.name, "key_type": "RANGE"}]
                    if index.range_key
                    else []
                ),
                "projection_type": "ALL",
            }
            for index in spec.indexes
        ]
    return arguments
