"""Which AWS API calls a piece of Python code makes, read statically (no import, no AWS).

Used to check the IAM roles against the code they run: for a Lambda handler, the functions
reachable from it (by name, an over-approximation) are scanned for boto3 calls — methods such as
``put_item`` / ``send_message`` / ``publish`` called with boto3's PascalCase keyword arguments,
``get_paginator("scan").paginate(...)``, ``generate_presigned_url("get_object", ...)`` — and for
Powertools' idempotency (``idempotent_function`` over a ``DynamoDBPersistenceLayer``). Each call
becomes an IAM action and, when an argument names a resource of the backend
(``settings.resources.alerts_table``, ``names.detections_table``), that resource.

Examples:
    >>> import ast
    >>> calls = calls_in_tree(ast.parse(
    ...     "client.put_item(TableName=names.alerts_table, Item=item)"), "example.py")
    >>> [(c.action, c.resource) for c in calls]
    [('dynamodb:PutItem', 'table:alerts')]
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from kit.core.backend import describe_backend
from kit.core.settings import Settings

GREENGRASS_DEPLOYMENT_IOT_ACTIONS = (
    "iot:CancelJob",
    "iot:CreateJob",
    "iot:DeleteThingShadow",
    "iot:DescribeJob",
    "iot:DescribeThing",
    "iot:DescribeThingGroup",
    "iot:GetThingShadow",
    "iot:UpdateJob",
    "iot:UpdateThingShadow",
)
"""What AWS requires besides ``greengrass:CreateDeployment`` (Greengrass developer guide,
"Create deployments"): the deployment is IoT jobs and shadows on the target."""

API_METHODS: dict[str, tuple[str, ...]] = {
    # DynamoDB (client and Table resource)
    "get_item": ("dynamodb:GetItem",),
    "put_item": ("dynamodb:PutItem",),
    "update_item": ("dynamodb:UpdateItem",),
    "delete_item": ("dynamodb:DeleteItem",),
    "query": ("dynamodb:Query",),
    "scan": ("dynamodb:Scan",),
    "batch_get_item": ("dynamodb:BatchGetItem",),
    "batch_write_item": ("dynamodb:BatchWriteItem",),
    "transact_get_items": ("dynamodb:GetItem",),
    "describe_table": ("dynamodb:DescribeTable",),
    # SQS
    "send_message": ("sqs:SendMessage",),
    "send_message_batch": ("sqs:SendMessage",),
    "receive_message": ("sqs:ReceiveMessage",),
    "delete_message": ("sqs:DeleteMessage",),
    "delete_message_batch": ("sqs:DeleteMessage",),
    "get_queue_url": ("sqs:GetQueueUrl",),
    "get_queue_attributes": ("sqs:GetQueueAttributes",),
    "change_message_visibility": ("sqs:ChangeMessageVisibility",),
    "change_message_visibility_batch": ("sqs:ChangeMessageVisibility",),
    "purge_queue": ("sqs:PurgeQueue",),
    # SNS
    "publish": ("sns:Publish",),
    "publish_batch": ("sns:Publish",),
    "create_topic": ("sns:CreateTopic",),
    "subscribe": ("sns:Subscribe",),
    "list_subscriptions_by_topic": ("sns:ListSubscriptionsByTopic",),
    # S3
    "get_object": ("s3:GetObject",),
    "head_object": ("s3:GetObject",),
    "download_file": ("s3:GetObject",),
    "download_fileobj": ("s3:GetObject",),
    "put_object": ("s3:PutObject",),
    "upload_file": ("s3:PutObject",),
    "upload_fileobj": ("s3:PutObject",),
    "copy_object": ("s3:GetObject", "s3:PutObject"),
    "delete_object": ("s3:DeleteObject",),
    "delete_objects": ("s3:DeleteObject",),
    "list_objects_v2": ("s3:ListBucket",),
    "list_objects": ("s3:ListBucket",),
    "head_bucket": ("s3:ListBucket",),
    # Greengrass v2 and AWS IoT (camelCase parameters)
    "create_component_version": ("greengrass:CreateComponentVersion",),
    "describe_component": ("greengrass:DescribeComponent",),
    "list_component_versions": ("greengrass:ListComponentVersions",),
    "create_deployment": ("greengrass:CreateDeployment", *GREENGRASS_DEPLOYMENT_IOT_ACTIONS),
    "get_deployment": ("greengrass:GetDeployment",),
    "list_deployments": ("greengrass:ListDeployments",),
    "get_core_device": ("greengrass:GetCoreDevice",),
    "list_core_devices": ("greengrass:ListCoreDevices",),
    "list_installed_components": ("greengrass:ListInstalledComponents",),
    "list_effective_deployments": ("greengrass:ListEffectiveDeployments",),
    "describe_thing": ("iot:DescribeThing",),
    "describe_thing_group": ("iot:DescribeThingGroup",),
}
"""boto3 method → the IAM actions it needs (with the actions AWS requires alongside, e.g. the IoT
jobs a Greengrass deployment drives). STS GetCallerIdentity needs none and is not listed."""
TRANSFER_METHODS = {"download_file", "download_fileobj", "upload_file", "upload_fileobj"}
"""S3 transfer methods: boto3 code calls them with positional ``(bucket, key, file)`` arguments
as often as with keywords."""
TRANSACT_ACTIONS = {
    "Put": "dynamodb:PutItem",
    "Update": "dynamodb:UpdateItem",
    "Delete": "dynamodb:DeleteItem",
    "ConditionCheck": "dynamodb:ConditionCheckItem",
}
IDEMPOTENCY_ACTIONS = (
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
)
"""What Powertools' DynamoDBPersistenceLayer does on its table."""
IDEMPOTENCY_DECORATORS = {"idempotent", "idempotent_function"}
RESOURCE_KEYWORDS = {"TableName", "QueueUrl", "QueueName", "TopicArn", "Bucket", "table_name"}
OBJECT_ACTIONS = {"s3:GetObject", "s3:PutObject", "s3:DeleteObject"}
ANY_PREFIX = "bucket:*"
"""The resource of an object call whose key prefix the code does not show."""


@dataclass(frozen=True)
class AwsCall:
    """One IAM action the code needs, on a resource when the code names it.

    Attributes:
        action: e.g. ``dynamodb:PutItem``.
        resource: ``table:<logical>``, ``queue:<logical>``, ``topic:<logical>``, ``bucket``,
            ``bucket:*`` (an object, prefix unknown) or None (not named in the code).
        location: ``file:line`` of the call.
    """

    action: str
    resource: str | None
    location: str


def resource_fields() -> dict[str, str]:
    """Settings field (``alerts_table``) → logical resource (``table:alerts``).

    Physical names are not unique across kinds (``<prefix>-alerts`` is a table and the topic), so
    the field's suffix says the kind.
    """
    settings = Settings()
    spec = describe_backend(settings)
    kinds = {
        "_table": {t.name: f"table:{t.logical}" for t in spec.tables},
        "_queue": {q.name: f"queue:{q.logical}" for q in spec.queues},
        "_topic": {t.name: f"topic:{t.logical}" for t in spec.topics},
    }
    fields = {"bucket": "bucket"}
    for field, name in settings.resources.model_dump().items():
        for suffix, by_name in kinds.items():
            if field.endswith(suffix) and name in by_name:
                fields[field] = by_name[name]
    return fields


_FIELDS = resource_fields()


def _named_resource(node: ast.AST | None) -> str | None:
    if node is None:
        return None
    for child in ast.walk(node):
        if isinstance(child, ast.Attribute) and child.attr in _FIELDS:
            return _FIELDS[child.attr]
    return None


def _constant(node: ast.AST | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _looks_like_boto(call: ast.Call) -> bool:
    """boto3 parameters are PascalCase (most services) or camelCase (Greengrass, IoT); ours are
    snake_case."""
    return any(
        k.arg is None or k.arg[:1].isupper() or (k.arg[:1].islower() and not k.arg.islower())
        for k in call.keywords
    )


def _call_resource(call: ast.Call) -> str | None:
    for keyword in call.keywords:
        if keyword.arg in RESOURCE_KEYWORDS:
            found = _named_resource(keyword.value)
            if found:
                return found
        if keyword.arg == "Params" and isinstance(keyword.value, ast.Dict):
            for key, value in zip(keyword.value.keys, keyword.value.values, strict=True):
                if _constant(key) in RESOURCE_KEYWORDS:
                    found = _named_resource(value)
                    if found:
                        return found
    return None


def _resource_for(action: str, resource: str | None) -> str | None:
    if action in OBJECT_ACTIONS and resource in (None, "bucket"):
        return ANY_PREFIX
    return resource


def _transact_actions(call: ast.Call) -> list[str]:
    actions = []
    for child in ast.walk(call):
        if isinstance(child, ast.Dict):
            actions += [
                TRANSACT_ACTIONS[k] for k in map(_constant, child.keys) if k in TRANSACT_ACTIONS
            ]
    return actions or list(TRANSACT_ACTIONS.values())


def _idempotency_table(tree_nodes: Iterable[ast.AST]) -> str | None:
    for node in tree_nodes:
        for child in ast.walk(node):
            if isinstance(child, ast.Call) and _name_of(child.func) == "DynamoDBPersistenceLayer":
                for keyword in child.keywords:
                    if keyword.arg == "table_name":
                        return _named_resource(keyword.value)
    return None


def _name_of(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def calls_in_tree(
    tree: ast.AST, filename: str, *, idempotency_table: str | None = "table:idempotency"
) -> list[AwsCall]:
    """Every AWS call in ``tree`` (a module, a function …) as :class:`AwsCall` records."""
    found: list[AwsCall] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        where = f"{filename}:{node.lineno}"
        func = node.func
        method = func.attr if isinstance(func, ast.Attribute) else None
        if _name_of(func) in IDEMPOTENCY_DECORATORS:
            found += [AwsCall(a, idempotency_table, where) for a in IDEMPOTENCY_ACTIONS]
            continue
        if method == "paginate" and isinstance(func.value, ast.Call):
            inner = func.value
            operation = (
                _constant(inner.args[0])
                if inner.args and _name_of(inner.func) == "get_paginator"
                else None
            )
            for action in API_METHODS.get(operation or "", ()):
                found.append(AwsCall(action, _resource_for(action, _call_resource(node)), where))
            continue
        if method == "generate_presigned_url":
            operation = _constant(node.args[0]) if node.args else None
            for keyword in node.keywords:
                if keyword.arg == "ClientMethod":
                    operation = _constant(keyword.value)
            for action in API_METHODS.get(operation or "", ()):
                found.append(AwsCall(action, _resource_for(action, _call_resource(node)), where))
            continue
        if method == "transact_write_items" and _looks_like_boto(node):
            found += [AwsCall(a, None, where) for a in _transact_actions(node)]
            continue
        if method in TRANSFER_METHODS and (len(node.args) >= 3 or _looks_like_boto(node)):
            for action in API_METHODS[method]:
                found.append(AwsCall(action, ANY_PREFIX, where))
            continue
        if method in API_METHODS and _looks_like_boto(node):
            resource = _call_resource(node)
            for action in API_METHODS[method]:
                found.append(AwsCall(action, _resource_for(action, resource), where))
    return found


@dataclass
class _Module:
    name: str
    path: Path
    tree: ast.Module


def _load_modules(package_dir: Path, repo_root: Path) -> dict[str, _Module]:
    modules = {}
    paths = [package_dir] if package_dir.is_file() else sorted(package_dir.rglob("*.py"))
    for path in paths:
        if "__pycache__" in path.parts:
            continue
        relative = path.relative_to(repo_root).with_suffix("")
        parts = list(relative.parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = _Module(".".join(parts), path, ast.parse(path.read_text()))
    return modules


def _module_level(module: _Module) -> list[ast.stmt]:
    return [
        node
        for node in module.tree.body
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
    ]


def _referenced_names(node: ast.AST) -> set[str]:
    names = set()
    for child in ast.walk(node):
        if isinstance(child, ast.Name):
            names.add(child.id)
        elif isinstance(child, ast.Attribute):
            names.add(child.attr)
    return names


def _imported_modules(module: _Module, modules: dict[str, _Module]) -> set[str]:
    """The modules among ``modules`` that ``module`` imports anywhere, with their packages."""
    named = set()
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Import):
            named |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            named.add(node.module)
            named |= {f"{node.module}.{alias.name}" for alias in node.names}
    found = set()
    for name in named:
        parts = name.split(".")
        found |= {".".join(parts[:end]) for end in range(1, len(parts) + 1)}
    return found & set(modules)


def _import_closure(entry_module: str, modules: dict[str, _Module]) -> list[_Module]:
    """``entry_module`` and every module it imports, directly or through others."""
    seen, pending = set(), [entry_module]
    while pending:
        name = pending.pop()
        if name not in seen:
            seen.add(name)
            pending += _imported_modules(modules[name], modules) - seen
    return [modules[name] for name in sorted(seen)]


def reachable_calls(
    package_dirs: Path | Sequence[Path],
    entry: str,
    *,
    repo_root: Path | None = None,
) -> list[AwsCall]:
    """AWS calls of the code reachable from ``entry`` (``lambdas.processor.handler.handler``).

    ``package_dirs`` is every folder (or module file) the deployed code holds (for a Lambda
    function: ``lambdas`` and ``kit/core``), so calls made in a shared module count for the
    function that reaches them.

    Reachability goes by name: a function or method is reached when a reached piece of code
    mentions its name (calls it, passes it, reads it as an attribute) and its module is one the
    entry's module imports, directly or not (imports inside functions included). That
    over-approximates (two methods with one name are both reached) but never misses a call made
    by name. The entry module's decorated functions (routes, exception handlers) and every
    reached module's top-level statements are reached too.

    Raises:
        ValueError: ``entry`` is not a function defined in ``package_dirs``.
    """
    dirs = [package_dirs] if isinstance(package_dirs, Path) else list(package_dirs)
    repo_root = repo_root or dirs[0].parent
    modules: dict[str, _Module] = {}
    for package_dir in dirs:
        modules.update(_load_modules(package_dir, repo_root))
    module_name, _, function_name = entry.rpartition(".")
    if module_name not in modules:
        raise ValueError(f"entry {entry!r}: no module {module_name} under {dirs}")
    functions: dict[str, list[tuple[_Module, ast.AST]]] = {}
    classes: dict[str, list[tuple[_Module, ast.ClassDef]]] = {}
    for module in _import_closure(module_name, modules):
        for node in ast.walk(module.tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                functions.setdefault(node.name, []).append((module, node))
            elif isinstance(node, ast.ClassDef):
                classes.setdefault(node.name, []).append((module, node))
    entry_module = modules[module_name]
    roots = [
        (entry_module, node)
        for node in entry_module.tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and (node.name == function_name or node.decorator_list)
    ]
    if not any(node.name == function_name for _, node in roots):
        raise ValueError(f"entry {entry!r}: {module_name} defines no function {function_name}")
    reached: dict[int, tuple[_Module, ast.AST]] = {}
    reached_modules: set[str] = set()
    pending = list(roots)
    while pending:
        module, node = pending.pop()
        if id(node) in reached:
            continue
        reached[id(node)] = (module, node)
        if module.name not in reached_modules:
            reached_modules.add(module.name)
            pending += [(module, stmt) for stmt in _module_level(module)]
        for name in _referenced_names(node):
            pending += functions.get(name, [])
            for class_module, class_node in classes.get(name, []):
                pending += [
                    (class_module, item)
                    for item in class_node.body
                    if isinstance(item, ast.FunctionDef)
                    and item.name in {"__init__", "__post_init__", "__call__"}
                ]
    idempotency = _idempotency_table(module.tree for module in modules.values())
    calls: list[AwsCall] = []
    seen: set[tuple[str, str | None, str]] = set()
    for module, node in reached.values():
        filename = module.path.relative_to(repo_root).as_posix()
        wrapper = node if isinstance(node, ast.Module) else ast.Module(body=[node], type_ignores=[])
        for call in calls_in_tree(wrapper, filename, idempotency_table=idempotency):
            key = (call.action, call.resource, call.location)
            if key not in seen:
                seen.add(key)
                calls.append(call)
    return sorted(calls, key=lambda c: (c.action, c.resource or "", c.location))


def calls_in_package(package_dir: Path, *, repo_root: Path | None = None) -> list[AwsCall]:
    """Every AWS call anywhere in ``package_dir`` (for code with no single entry, e.g. edge_app)."""
    repo_root = repo_root or package_dir.parent
    calls = []
    for module in _load_modules(package_dir, repo_root).values():
        calls += calls_in_tree(module.tree, module.path.relative_to(repo_root).as_posix())
    return sorted(calls, key=lambda c: (c.action, c.resource or "", c.location))
