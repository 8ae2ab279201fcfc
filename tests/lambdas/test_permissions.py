"""The IAM permissions in kit/core/backend.py are exactly what the handlers call.

Each function runs through scenarios that take every path it has; every AWS API call (and every
presigned URL, which is signed for a call made later by someone else) is recorded from botocore's
``provide-client-params`` event and mapped to its IAM action and logical resource. The recorded
set must equal the function's declared ``permissions``, apart from the few listed, explained
paths that no scenario can take.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import timedelta

import pytest

from kit.core.backend import describe_backend
from kit.core.contracts import utc_now
from kit.core.settings import load_settings
from kit.local.provision import provision
from kit.local.runner import SqsPoller
from lambdas import runtime

IAM_ACTION = {
    ("s3", "ListObjectsV2"): "s3:ListBucket",
    ("sqs", "DeleteMessageBatch"): "sqs:DeleteMessage",
}
NEEDS_NO_PERMISSION = {("sts", "GetCallerIdentity")}
LOCAL_ONLY = {("sqs", "GetQueueUrl")}  # the local event source mapping finds the queue by name

DECLARED_NOT_OBSERVED: dict[tuple[str, str, str], str] = {}
"""(function, resource, action) granted but not seen in the tests, with why it is needed."""


class CallRecorder:
    """(logical resource, IAM action) of every call made through the clients it watches."""

    def __init__(self, settings):
        self.spec = describe_backend(settings)
        self.calls: set[tuple[str, str]] = set()

    def watch(self, *clients) -> None:
        for client in clients:
            client.meta.events.register("provide-client-params.*.*", self._record)

    def _record(self, params, model, **_) -> None:
        service = model.service_model.endpoint_prefix
        if (service, model.name) in NEEDS_NO_PERMISSION | LOCAL_ONLY:
            return
        action = IAM_ACTION.get((service, model.name), f"{service}:{model.name}")
        # A batch call (BatchWriteItem, BatchGetItem) acts on each table it names.
        targets = (
            [{"TableName": table} for table in params["RequestItems"]]
            if "RequestItems" in params
            else [params]
        )
        for target in targets:
            self.calls.add((self._resource(service, target), action))

    def _resource(self, service: str, params: dict) -> str:
        if service == "dynamodb":
            return "table:" + next(
                t.logical for t in self.spec.tables if t.name == params["TableName"]
            )
        if service == "s3":
            return f"bucket:{params['Key'].split('/', 1)[0]}/" if "Key" in params else "bucket"
        if service == "sns":
            name = params["TopicArn"].rsplit(":", 1)[-1]
            return "topic:" + next(t.logical for t in self.spec.topics if t.name == name)
        if service == "sqs":
            name = params["QueueUrl"].rsplit("/", 1)[-1]
            return "queue:" + next(q.logical for q in self.spec.queues if q.name == name)
        raise AssertionError(f"unexpected service {service}")


def declared(function: str, settings) -> set[tuple[str, str]]:
    spec = describe_backend(settings).function(function)
    return {(p.resource, action) for p in spec.permissions for action in p.actions}


def check(
    function: str, recorder: CallRecorder, settings, *, without_trigger: bool = False
) -> None:
    """Compare; ``without_trigger``: the queue permissions are checked apart (they are the event
    source mapping's calls, not the handler's)."""
    expected = declared(function, settings) - {
        (resource, action) for (f, resource, action) in DECLARED_NOT_OBSERVED if f == function
    }
    if without_trigger:
        expected = {(r, a) for r, a in expected if not r.startswith("queue:")}
    missing = sorted(recorder.calls - expected)
    unused = sorted(expected - recorder.calls)
    assert not missing, f"{function} calls what its permissions do not allow: {missing}"
    assert not unused, f"{function} is allowed what it never calls: {unused}"


RULES = {
    "cameras": {
        "shelf-1": {
            "refresh_s": 5,
            "rules": [
                {"type": "count_below", "class_name": "bottle", "threshold": 3, "cooldown_s": 0},
                {"type": "rising_trend", "class_name": "bottle", "window": 4, "min_points": 3},
                {"type": "ppe_violation"},
                {"type": "camera_silent", "cooldown_s": 0},
            ],
        }
    }
}


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_processor_permissions_are_exactly_its_calls(harness, event_json):
    harness.set_config(**RULES)
    recorder = CallRecorder(harness.settings)
    services = harness.services
    recorder.watch(services.dynamodb, services.s3, services.sns)
    frame = "frames/demo-1/shelf-1/a.jpg"
    breach = harness.payload(counts={"bottle": 0}, frame_key=frame)

    harness.process(breach, event_json("sqs_batch.json")["Records"][1]["body"])  # open, heartbeat
    harness.process(breach)  # a duplicate
    harness.process(harness.payload(at=timedelta(seconds=5), counts={"bottle": 9}))  # resolve
    services.dynamodb.delete_table(TableName=harness.settings.resources.alerts_table)
    recorder.calls.discard(("table:alerts", "dynamodb:DeleteTable"))  # the test's own call
    failed = harness.process(harness.payload(at=timedelta(seconds=9), counts={"bottle": 0}))
    assert len(failed["batchItemFailures"]) == 1  # and the idempotency record is released
    provision(describe_backend(harness.settings), harness.settings)

    check("processor", recorder, harness.settings, without_trigger=True)


def test_the_event_source_mapping_permissions_are_what_the_local_poller_calls(harness):
    """The processor's queue permissions serve Lambda's event source mapping; the local runner's
    poller plays that part. (A backend of its own: no other consumer may take the message.)"""
    settings = load_settings(
        prefix="evkesm",
        endpoint_url=harness.settings.endpoint_url,
        state_dir=harness.settings.state_dir,
    )
    spec = describe_backend(settings)
    provision(spec, settings)
    runtime.use_settings(settings)
    poller = SqsPoller(settings, spec.function("processor"))
    queue = poller.sqs.get_queue_url(QueueName=settings.resources.detections_queue)["QueueUrl"]
    poller.sqs.send_message(QueueUrl=queue, MessageBody="not a payload")
    poller.sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(harness.payload()))
    recorder = CallRecorder(settings)
    recorder.watch(poller.sqs)

    outcomes = [poller.poll_once() for _ in range(2)]

    assert sum(o.succeeded for o in outcomes if o) == 1
    assert sum(len(o.failed) for o in outcomes if o) == 1
    queue_permissions = {
        (r, a) for r, a in declared("processor", settings) if r.startswith("queue:")
    }
    # Local only: the runner shows a failed record again after retry_after_s instead of the
    # queue's visibility timeout (minutes); Lambda's event source mapping just waits it out.
    assert ("queue:detections", "sqs:ChangeMessageVisibilityBatch") in recorder.calls
    recorder.calls.discard(("queue:detections", "sqs:ChangeMessageVisibilityBatch"))
    assert recorder.calls == queue_permissions


def test_control_api_permissions_are_exactly_its_calls(harness):
    bucket = harness.settings.resources.bucket
    s3 = harness.services.s3
    s3.put_object(
        Bucket=bucket,
        Key="models/shelf/1/metadata.json",
        Body=json.dumps({"name": "shelf", "version": 1, "classes": ["bottle"], "input_size": 320}),
    )
    harness.set_config(**RULES)
    frame = "frames/demo-1/shelf-1/a.jpg"
    harness.process(harness.payload(counts={"bottle": 0}, frame_key=frame))
    recorder = CallRecorder(harness.settings)
    recorder.watch(harness.services.dynamodb, s3, harness.services.sns)

    alert_id = harness.api("GET", "/alerts?state=OPEN")[1]["items"][0]["alert_id"]
    calls = [
        ("GET", "/health", None),
        ("GET", "/config", None),
        ("PUT", "/config", {**RULES, "defaults": {"model": {"name": "shelf", "version": 1}}}),
        ("PUT", "/config/shelf-2", {"model": {"name": "boats"}}),  # 422: lists the names
        ("GET", "/config/shelf-1", None),
        ("PUT", "/config/shelf-1", {"refresh_s": 9}),
        ("GET", "/models", None),
        ("GET", "/cameras", None),
        ("GET", "/devices", None),
        ("GET", "/detections?camera=shelf-1", None),
        ("GET", "/detections?camera=ghost", None),  # 404: lists the cameras
        ("GET", "/alerts", None),
        ("GET", "/alerts?camera=shelf-1", None),
        ("POST", f"/alerts/{alert_id}/ack", None),
        ("GET", "/frames/latest?camera=shelf-1", None),
    ]
    for method, target, body in calls:
        status, answer = harness.api(method, target, body=body)
        assert status < 500, (method, target, answer)

    check("control-api", recorder, harness.settings)


def test_health_check_permissions_are_exactly_its_calls(harness, event_json):
    harness.set_config(**RULES)
    harness.process(
        harness.payload(counts={"bottle": 5}, frame_key="frames/demo-1/shelf-1/a.jpg"),
        event_json("sqs_batch.json")["Records"][1]["body"],
    )
    last_seen = harness.store.get_camera("shelf-1").last_seen
    recorder = CallRecorder(harness.settings)
    recorder.watch(harness.services.dynamodb, harness.services.s3, harness.services.sns)

    opened = harness.health_check(last_seen + timedelta(seconds=60))  # silent: opens
    slower = {"cameras": {"shelf-1": {**RULES["cameras"]["shelf-1"], "refresh_s": 600}}}
    harness.set_config(**slower)
    recorder.calls.discard(("table:config", "dynamodb:PutItem"))  # the test's own write
    resolved = harness.health_check(last_seen + timedelta(seconds=90))  # limit 1800 s: resolves
    harness.health_check(utc_now() + timedelta(minutes=5))  # the device went OFFLINE

    assert [a["state"] for a in opened["alerts"] + resolved["alerts"]] == ["OPEN", "RESOLVED"]
    check("health-check", recorder, harness.settings)


def test_every_permission_names_a_resource_of_the_backend(backend_settings):
    spec = describe_backend(backend_settings)
    resources = (
        {f"table:{t.logical}" for t in spec.tables}
        | {f"queue:{q.logical}" for q in spec.queues}
        | {f"topic:{t.logical}" for t in spec.topics}
        | {"bucket"}
        | {f"bucket:{p}/" for p in spec.bucket.prefixes}
    )
    by_function = defaultdict(list)
    for function in spec.functions:
        for permission in function.permissions:
            assert permission.resource in resources, (function.logical, permission.resource)
            by_function[function.logical].append(permission.resource)
        assert len(by_function[function.logical]) == len(set(by_function[function.logical]))
