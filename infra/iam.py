"""IAM policy documents, built as plain dicts from the backend description.

A :class:`kit.core.backend.Permission` names actions on a logical resource (``table:alerts``,
``queue:detections``, ``topic:alerts``, ``bucket``, ``bucket:frames/``). :func:`permission_resources`
turns the logical resource into ARNs; :func:`permission_statements` turns a function's permissions
into one statement each. Nothing here creates resources, so tests and policies use it directly.

Examples:
    >>> from kit.core.backend import Permission
    >>> arns = ResourceArns(bucket="arn:aws:s3:::demo", tables={}, queues={}, topics={})
    >>> permission_resources(Permission(("s3:GetObject",), "bucket:frames/"), arns)
    ['arn:aws:s3:::demo/frames/*']
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kit.core.backend import BackendSpec, Permission

POLICY_VERSION = "2012-10-17"


@dataclass(frozen=True)
class ResourceArns:
    """Resolved ARNs of the backend's resources, by logical name.

    Attributes:
        bucket: the bucket's ARN.
        tables: table logical name → table ARN.
        queues: queue logical name → queue ARN.
        topics: topic logical name → topic ARN.
        indexed_tables: logical names of tables that have global secondary indexes.
    """

    bucket: str
    tables: Mapping[str, str]
    queues: Mapping[str, str]
    topics: Mapping[str, str]
    indexed_tables: frozenset[str] = field(default_factory=frozenset)


def statement(
    actions: Iterable[str],
    resources: Iterable[str],
    *,
    sid: str | None = None,
    effect: str = "Allow",
    **extra: Any,
) -> dict[str, Any]:
    """One IAM statement; actions and resources sorted so documents are stable."""
    body: dict[str, Any] = {}
    if sid:
        body["Sid"] = sid
    body["Effect"] = effect
    body.update(extra)
    body["Action"] = sorted(set(actions))
    body["Resource"] = sorted(set(resources))
    return body


def document(statements: Sequence[Mapping[str, Any]]) -> str:
    """A policy document as the JSON string IAM takes."""
    return json.dumps({"Version": POLICY_VERSION, "Statement": list(statements)}, sort_keys=True)


def assume_role_policy(*services: str, **conditions: Any) -> str:
    """A trust policy letting ``services`` (e.g. ``lambda.amazonaws.com``) assume the role."""
    body: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"Service": sorted(services)},
        "Action": "sts:AssumeRole",
    }
    if conditions:
        body["Condition"] = conditions
    return json.dumps({"Version": POLICY_VERSION, "Statement": [body]}, sort_keys=True)


def permission_resources(permission: Permission, arns: ResourceArns) -> list[str]:
    """The ARNs a :class:`~kit.core.backend.Permission` covers.

    Raises:
        ValueError: the permission names a resource kind or logical name the backend lacks.
    """
    kind, _, name = permission.resource.partition(":")
    if kind == "bucket":
        if not name:
            return [arns.bucket]
        return [f"{arns.bucket}/{name}*"]
    catalogue = {"table": arns.tables, "queue": arns.queues, "topic": arns.topics}.get(kind)
    if catalogue is None:
        raise ValueError(
            f"permission resource {permission.resource!r}: unknown kind {kind!r}; "
            "expected table:<name>, queue:<name>, topic:<name>, bucket or bucket:<prefix>"
        )
    if name not in catalogue:
        known = ", ".join(sorted(catalogue)) or "none"
        raise ValueError(
            f"permission resource {permission.resource!r}: no {kind} named {name!r}; known: {known}"
        )
    if kind == "table" and name in arns.indexed_tables:
        return [catalogue[name], f"{catalogue[name]}/index/*"]
    return [catalogue[name]]


def sid_for(permission: Permission) -> str:
    """A statement id naming the resource, e.g. ``TableAlerts`` or ``BucketFrames``."""
    words = re.split(r"[^A-Za-z0-9]+", permission.resource)
    return "".join(word[:1].upper() + word[1:] for word in words if word)


def permission_statements(
    permissions: Iterable[Permission], arns: ResourceArns
) -> list[dict[str, Any]]:
    """One statement per permission, only its actions on only its resources."""
    return [
        statement(
            permission.actions, permission_resources(permission, arns), sid=sid_for(permission)
        )
        for permission in permissions
    ]


def resource_arns(spec: BackendSpec, values: Mapping[str, Any]) -> ResourceArns:
    """:class:`ResourceArns` from resolved values keyed ``bucket``, ``table:<n>``, ``queue:<n>``, ``topic:<n>``."""
    return ResourceArns(
        bucket=values["bucket"],
        tables={t.logical: values[f"table:{t.logical}"] for t in spec.tables},
        queues={q.logical: values[f"queue:{q.logical}"] for q in spec.queues if not q.local_only},
        topics={t.logical: values[f"topic:{t.logical}"] for t in spec.topics},
        indexed_tables=frozenset(t.logical for t in spec.tables if t.indexes),
    )


def parse_document(policy: str | Mapping[str, Any]) -> list[dict[str, Any]]:
    """The statements of a policy document (JSON text or dict), with Action/Resource as lists."""
    body = json.loads(policy) if isinstance(policy, str) else dict(policy)
    raw = body.get("Statement", [])
    statements = [raw] if isinstance(raw, Mapping) else list(raw)
    parsed = []
    for item in statements:
        item = dict(item)
        for key in ("Action", "NotAction", "Resource", "NotResource"):
            if key in item and isinstance(item[key], str):
                item[key] = [item[key]]
        parsed.append(item)
    return parsed
