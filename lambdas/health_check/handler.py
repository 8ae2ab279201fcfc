"""Health-check Lambda, on a schedule (EventBridge ``rate(1 minute)``).

Evaluates the ``camera_silent`` rules (alerting on cameras that stopped sending) and stores each
device's health when it changes. The scheduled event's ``time`` is the check's "now".
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from kit.core.contracts import utc_now
from kit.core.timefmt import parse_stamp
from lambdas import runtime
from lambdas.health import run_health_check

logger = Logger(service="health-check")


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    now = parse_stamp(event["time"]) if event.get("time") else utc_now()
    result = run_health_check(runtime.services(), now)
    if result["alerts"] or result["devices"]:
        logger.info("health check changed something", extra=result)
    return result
