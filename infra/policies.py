"""Guardrails as plain functions over a stack's resources, for tests and for ``pulumi preview``.

Each guardrail is ``validate(resources, report_violation)``: ``resources`` is a sequence of
objects with ``resource_type`` (``aws:s3/bucket:Bucket``), ``props`` (the resource's properties,
camelCase as the engine has them) and optionally ``urn``; ``report_violation(message, urn)`` is
called once per violation. ``infra/policy_pack`` wraps them as stack policies; tests call them
on the resources the program registers under mocks, and on deliberately bad ones.

Examples:
    >>> from types import SimpleNamespace as R
    >>> table = R(resource_type="aws:dynamodb/table:Table", props={"name": "t"}, urn="u")
    >>> violations(pitr_on_every_table, [table])
    ['table t has no point-in-time recovery: set pointInTimeRecovery.enabled = true']
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from infra.api import PUBLIC_ROUTES
from infra.iam import parse_document
from infra.messaging import DEAD_LETTER, QUEUE_ROLE_TAG

ReportViolation = Callable[..., None]

BUCKET_TYPES = {"aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2"}
PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
PUBLIC_ACCESS_FLAGS = (
    "blockPublicAcls",
    "blockPublicPolicy",
    "ignorePublicAcls",
    "restrictPublicBuckets",
)
ENCRYPTION_TYPES = {
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2",
}
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
BUCKET_ACL_TYPES = {"aws:s3/bucketAcl:BucketAcl", "aws:s3/bucketAclV2:BucketAclV2"}
PUBLIC_ACLS = {"public-read", "public-read-write", "authenticated-read"}
QUEUE = "aws:sqs/queue:Queue"
TOPIC = "aws:sns/topic:Topic"
TABLE = "aws:dynamodb/table:Table"
ROUTE = "aws:apigatewayv2/route:Route"
LISTENER_TYPES = {"aws:lb/listener:Listener", "aws:alb/listener:Listener"}
POLICY_DOCUMENT_PROPS = {
    "aws:iam/rolePolicy:RolePolicy": "policy",
    "aws:iam/policy:Policy": "policy",
    "aws:iam/userPolicy:UserPolicy": "policy",
    "aws:iam/groupPolicy:GroupPolicy": "policy",
    "aws:s3/bucketPolicy:BucketPolicy": "policy",
    "aws:sqs/queuePolicy:QueuePolicy": "policy",
    "aws:sns/topicPolicy:TopicPolicy": "policy",
    "aws:kms/key:Key": "policy",
    "aws:iot/policy:Policy": "policy",
}
ADMIN_MANAGED_POLICIES = ("AdministratorAccess", "PowerUserAccess", "IAMFullAccess")


class PolicyResourceLike(Protocol):
    resource_type: str
    props: Mapping[str, Any]


@dataclass(frozen=True)
class Guardrail:
    """A named guardrail: what it checks and the function that checks it."""

    name: str
    description: str
    validate: Callable[[Sequence[PolicyResourceLike], ReportViolation], None]


def _label(resource: PolicyResourceLike, *keys: str) -> str:
    for key in keys:
        value = resource.props.get(key)
        if isinstance(value, str) and value:
            return value
    return getattr(resource, "name", None) or resource.resource_type


def _urn(resource: PolicyResourceLike) -> str | None:
    return getattr(resource, "urn", None)


def _of_type(resources: Iterable[PolicyResourceLike], types: set[str] | str):
    wanted = {types} if isinstance(types, str) else types
    return [r for r in resources if r.resource_type in wanted]


def _bucket_keys(bucket: PolicyResourceLike) -> set[str]:
    keys = {bucket.props.get("bucket"), bucket.props.get("id"), getattr(bucket, "name", None)}
    return {k for k in keys if isinstance(k, str) and k}


def _attached(bucket: PolicyResourceLike, children: Iterable[PolicyResourceLike]):
    keys = _bucket_keys(bucket)
    return [c for c in children if c.props.get("bucket") in keys]


def _statements(raw: Any) -> list[dict[str, Any]]:
    if not raw:
        return []
    try:
        return parse_document(raw)
    except (json.JSONDecodeError, TypeError, AttributeError):
        return []


def _principal_is_anyone(principal: Any) -> bool:
    if principal == "*":
        return True
    if isinstance(principal, Mapping):
        aws = principal.get("AWS")
        return aws == "*" or (isinstance(aws, list) and "*" in aws)
    return False


def no_public_buckets(
    resources: Sequence[PolicyResourceLike], report_violation: ReportViolation
) -> None:
    """Every bucket blocks public access (all four flags), has no public ACL, and its policy
    grants nothing to anyone."""
    blocks = _of_type(resources, PUBLIC_ACCESS_BLOCK)
    for block in blocks:
        off = [flag for flag in PUBLIC_ACCESS_FLAGS if block.props.get(flag) is not True]
        if off:
            report_violation(
                f"public access block of bucket {block.props.get('bucket')} leaves "
                f"{', '.join(off)} off: set all four to true",
                _urn(block),
            )
    for bucket in _of_type(resources, BUCKET_TYPES):
        name = _label(bucket, "bucket")
        if not _attached(bucket, blocks):
            report_violation(
                f"bucket {name} has no public access block: add a BucketPublicAccessBlock "
                "with all four flags true",
                _urn(bucket),
            )
        if bucket.props.get("acl") in PUBLIC_ACLS:
            report_violation(
                f"bucket {name} has the public ACL {bucket.props['acl']}", _urn(bucket)
            )
    for acl in _of_type(resources, BUCKET_ACL_TYPES):
        if acl.props.get("acl") in PUBLIC_ACLS:
            report_violation(
                f"bucket {acl.props.get('bucket')} gets the public ACL {acl.props['acl']}",
                _urn(acl),
            )
    for policy in _of_type(resources, BUCKET_POLICY):
        for item in _statements(policy.props.get("policy")):
            if (
                item.get("Effect") == "Allow"
                and _principal_is_anyone(item.get("Principal"))
                and not item.get("Condition")
            ):
                report_violation(
                    f"bucket policy of {policy.props.get('bucket')} allows "
                    f"{item.get('Action')} to anyone",
                    _urn(policy),
                )


def _denies_insecure_transport(policy: PolicyResourceLike) -> bool:
    for item in _statements(policy.props.get("policy")):
        condition = item.get("Condition", {})
        secure = condition.get("Bool", {}).get("aws:SecureTransport")
        if item.get("Effect") == "Deny" and str(secure).lower() == "false":
            return True
    return False


def _listener_is_encrypted(listener: PolicyResourceLike) -> bool:
    if listener.props.get("protocol") in {"HTTPS", "TLS"}:
        return True
    actions = listener.props.get("defaultActions") or []
    return bool(actions) and all(
        action.get("type") == "redirect"
        and (action.get("redirect") or {}).get("protocol") == "HTTPS"
        for action in actions
    )


def encryption_everywhere(
    resources: Sequence[PolicyResourceLike], report_violation: ReportViolation
) -> None:
    """Data at rest is encrypted (buckets, queues, topics, tables) and in transit (buckets refuse
    plain HTTP, load balancers listen on HTTPS or only redirect to it)."""
    encryption = _of_type(resources, ENCRYPTION_TYPES)
    policies = _of_type(resources, BUCKET_POLICY)
    for bucket in _of_type(resources, BUCKET_TYPES):
        name = _label(bucket, "bucket")
        configured = [
            c
            for c in _attached(bucket, encryption)
            if any(
                (rule.get("applyServerSideEncryptionByDefault") or {}).get("sseAlgorithm")
                for rule in c.props.get("rules") or []
            )
        ]
        if not configured:
            report_violation(
                f"bucket {name} has no default encryption: add a "
                "BucketServerSideEncryptionConfiguration (AES256 or aws:kms)",
                _urn(bucket),
            )
        if not any(_denies_insecure_transport(p) for p in _attached(bucket, policies)):
            report_violation(
                f"bucket {name} accepts requests without TLS: its bucket policy must deny "
                "aws:SecureTransport = false",
                _urn(bucket),
            )
    for queue in _of_type(resources, QUEUE):
        if not (queue.props.get("sqsManagedSseEnabled") or queue.props.get("kmsMasterKeyId")):
            report_violation(
                f"queue {_label(queue, 'name')} is not encrypted: set sqsManagedSseEnabled or "
                "kmsMasterKeyId",
                _urn(queue),
            )
    for topic in _of_type(resources, TOPIC):
        if not topic.props.get("kmsMasterKeyId"):
            report_violation(
                f"topic {_label(topic, 'name')} is not encrypted: set kmsMasterKeyId", _urn(topic)
            )
    for table in _of_type(resources, TABLE):
        if (table.props.get("serverSideEncryption") or {}).get("enabled") is not True:
            report_violation(
                f"table {_label(table, 'name')} does not use a KMS key for encryption at rest: "
                "set serverSideEncryption.enabled = true",
                _urn(table),
            )
    for listener in _of_type(resources, LISTENER_TYPES):
        if not _listener_is_encrypted(listener):
            port = listener.props.get("port")
            if isinstance(port, float) and port.is_integer():
                port = int(port)
            report_violation(
                f"load balancer listener on port {port} serves plain "
                f"{listener.props.get('protocol')}: use HTTPS or only redirect to HTTPS",
                _urn(listener),
            )


def _is_wildcard_action(action: str) -> bool:
    return action == "*" or action.endswith(":*")


def wildcard_statements(document: Any) -> list[dict[str, Any]]:
    """Allow statements in ``document`` granting every action (``*`` or ``service:*``) on every
    resource (``*``), or everything but some actions (``NotAction``)."""
    found = []
    for item in _statements(document):
        if item.get("Effect") != "Allow":
            continue
        actions = item.get("Action", [])
        resources = item.get("Resource", [])
        if "NotAction" in item or (
            any(_is_wildcard_action(a) for a in actions)
            and ("*" in resources or "NotResource" in item)
        ):
            found.append(item)
    return found


def _documents(resource: PolicyResourceLike) -> list[Any]:
    key = POLICY_DOCUMENT_PROPS.get(resource.resource_type)
    if key:
        return [resource.props.get(key)]
    if resource.resource_type == "aws:iam/role:Role":
        return [p.get("policy") for p in resource.props.get("inlinePolicies") or []]
    return []


def no_wildcard_admin(
    resources: Sequence[PolicyResourceLike], report_violation: ReportViolation
) -> None:
    """No policy allows a wildcard action on a wildcard resource, and no role gets an
    administrator's managed policy."""
    for resource in resources:
        for raw in _documents(resource):
            for item in wildcard_statements(raw):
                report_violation(
                    f"{resource.resource_type} {_label(resource, 'name')} allows "
                    f"{item.get('Action') or 'NotAction ' + str(item.get('NotAction'))} on "
                    f"{item.get('Resource') or 'NotResource'}: name the actions or the resources",
                    _urn(resource),
                )
        arns = list(resource.props.get("managedPolicyArns") or [])
        if resource.resource_type == "aws:iam/rolePolicyAttachment:RolePolicyAttachment":
            arns.append(resource.props.get("policyArn") or "")
        for arn in arns:
            if any(arn.endswith(f":policy/{name}") for name in ADMIN_MANAGED_POLICIES):
                report_violation(
                    f"{resource.resource_type} {_label(resource, 'name', 'role')} attaches {arn}",
                    _urn(resource),
                )


def dlq_on_every_queue(
    resources: Sequence[PolicyResourceLike], report_violation: ReportViolation
) -> None:
    """Every queue but a dead-letter queue (tagged ``evk:queue-role = dead-letter``) redrives
    failing messages to a DLQ."""
    for queue in _of_type(resources, QUEUE):
        tags = queue.props.get("tags") or {}
        if tags.get(QUEUE_ROLE_TAG) == DEAD_LETTER:
            continue
        raw = queue.props.get("redrivePolicy")
        try:
            target = json.loads(raw).get("deadLetterTargetArn") if raw else None
        except (json.JSONDecodeError, AttributeError):
            target = None
        if not target:
            report_violation(
                f"queue {_label(queue, 'name')} has no dead-letter queue: set redrivePolicy "
                f"(or tag it {QUEUE_ROLE_TAG}={DEAD_LETTER} if it is one)",
                _urn(queue),
            )


def pitr_on_every_table(
    resources: Sequence[PolicyResourceLike], report_violation: ReportViolation
) -> None:
    """Every DynamoDB table has point-in-time recovery on."""
    for table in _of_type(resources, TABLE):
        if (table.props.get("pointInTimeRecovery") or {}).get("enabled") is not True:
            report_violation(
                f"table {_label(table, 'name')} has no point-in-time recovery: set "
                "pointInTimeRecovery.enabled = true",
                _urn(table),
            )


def jwt_on_every_route(
    resources: Sequence[PolicyResourceLike],
    report_violation: ReportViolation,
    public_routes: frozenset[str] = PUBLIC_ROUTES,
) -> None:
    """Every HTTP API route but the health route requires a JWT (Cognito) authorizer."""
    for route in _of_type(resources, ROUTE):
        key = route.props.get("routeKey")
        if key in public_routes:
            continue
        if route.props.get("authorizationType") != "JWT" or not route.props.get("authorizerId"):
            report_violation(
                f"route {key} is open (authorization {route.props.get('authorizationType')!r}): "
                f"only {', '.join(sorted(public_routes))} may skip the JWT authorizer",
                _urn(route),
            )


GUARDRAILS = (
    Guardrail("no-public-buckets", "S3 buckets are never public", no_public_buckets),
    Guardrail(
        "encryption-everywhere",
        "buckets, queues, topics and tables are encrypted; traffic uses TLS",
        encryption_everywhere,
    ),
    Guardrail(
        "no-wildcard-admin",
        "no policy allows every action on every resource",
        no_wildcard_admin,
    ),
    Guardrail("dlq-on-every-queue", "every work queue has a dead-letter queue", dlq_on_every_queue),
    Guardrail("pitr-on-every-table", "every table has point-in-time recovery", pitr_on_every_table),
    Guardrail(
        "jwt-on-every-route",
        "every control API route but the health route needs a Cognito JWT",
        jwt_on_every_route,
    ),
)


def violations(
    validate: Callable[[Sequence[PolicyResourceLike], ReportViolation], None],
    resources: Sequence[PolicyResourceLike],
) -> list[str]:
    """The messages ``validate`` reports for ``resources``."""
    found: list[str] = []
    validate(resources, lambda message, urn=None: found.append(message))
    return found


def check_all(resources: Sequence[PolicyResourceLike]) -> dict[str, list[str]]:
    """Every guardrail's violations, by guardrail name (empty lists when all pass)."""
    return {guardrail.name: violations(guardrail.validate, resources) for guardrail in GUARDRAILS}
