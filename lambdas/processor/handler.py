"""Processor Lambda: an SQS batch of edge messages, with partial-failure reporting.

Triggered by the detections queue (batch size 10, ``ReportBatchItemFailures``): records that
fail come back in ``batchItemFailures`` and return to the queue; the queue's redrive policy moves
a record that keeps failing to the dead-letter queue. The control config is read once a batch.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas import runtime
from lambdas.processor.records import handle_record, logger

processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    services = runtime.services()
    services.idempotency_config.register_lambda_context(context)
    record_handler = partial(handle_record, services=services, config=services.store.get_config())
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
