"""What starts each function: SQS event source mappings and EventBridge schedules.

HTTP triggers (the control API) are built by :class:`infra.api.Api`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from kit.core.backend import BackendSpec, ScheduleTrigger, SqsTrigger


@dataclass
class TriggersArgs:
    """Args of :class:`Triggers`.

    Attributes:
        backend: the backend description (each function's trigger).
        functions: function logical name → the Lambda function.
        queue_arns: queue logical name → queue ARN.
        batch_size: SQS records per invocation (overrides the description's default).
        batching_window_s: how long Lambda gathers records before invoking.
        rule_name_prefix: schedules are named ``<prefix>-<function>-schedule``.
    """

    backend: BackendSpec
    functions: Mapping[str, aws.lambda_.Function]
    queue_arns: Mapping[str, pulumi.Input[str]]
    batch_size: int
    batching_window_s: int
    rule_name_prefix: str


class Triggers(pulumi.ComponentResource):
    """Event source mappings (with partial batch failures) and schedules of the functions."""

    def __init__(
        self, name: str, args: TriggersArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("kit:backend:Triggers", name, {}, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.event_source_mappings: dict[str, aws.lambda_.EventSourceMapping] = {}
        self.schedules: dict[str, aws.cloudwatch.EventRule] = {}
        for spec in args.backend.functions:
            function = args.functions[spec.logical]
            trigger = spec.trigger
            if isinstance(trigger, SqsTrigger):
                if trigger.queue not in args.queue_arns:
                    raise ValueError(
                        f"function {spec.logical} reads queue {trigger.queue!r}, which is not "
                        f"built on AWS; built queues: {', '.join(sorted(args.queue_arns))}"
                    )
                self.event_source_mappings[spec.logical] = aws.lambda_.EventSourceMapping(
                    f"{name}-{spec.logical}-sqs",
                    event_source_arn=args.queue_arns[trigger.queue],
                    function_name=function.arn,
                    batch_size=args.batch_size,
                    maximum_batching_window_in_seconds=args.batching_window_s,
                    function_response_types=(
                        ["ReportBatchItemFailures"] if trigger.report_batch_item_failures else []
                    ),
                    enabled=True,
                    opts=child,
                )
            elif isinstance(trigger, ScheduleTrigger):
                rule = aws.cloudwatch.EventRule(
                    f"{name}-{spec.logical}-schedule",
                    name=f"{args.rule_name_prefix}-{spec.logical}-schedule",
                    description=f"runs {spec.logical}: {spec.purpose}"[:512],
                    schedule_expression=trigger.expression,
                    opts=child,
                )
                aws.cloudwatch.EventTarget(
                    f"{name}-{spec.logical}-target",
                    rule=rule.name,
                    arn=function.arn,
                    opts=child,
                )
                aws.lambda_.Permission(
                    f"{name}-{spec.logical}-invoke",
                    action="lambda:InvokeFunction",
                    function=function.name,
                    principal="events.amazonaws.com",
                    source_arn=rule.arn,
                    opts=child,
                )
                self.schedules[spec.logical] = rule
        self.register_outputs({})
