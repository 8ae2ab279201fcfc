"""Processor Lambda: an SQS batch of edge messages, with partial-failure reporting.

Triggered by the detections queue (batch size 10, ``ReportBatchItemFailures``): records that
fail come back in ``batchItemFailures`` and return to the queue; the queue's redrive policy moves
a record that keeps failing to the dead-letter queue. The control config is read once a batch,
and the batch's writes are gathered (:class:`lambdas.processor.records.PayloadBatch`).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas import runtime
from lambdas.processor.records import PayloadBatch, logger

processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    services = runtime.services()
    services.idempotency_config.register_lambda_context(context)
    batch = PayloadBatch(services, services.store.get_config())
    batch.open([SQSRecord(record) for record in event.get("Records") or []])
    response = process_partial_response(
        event=event, record_handler=batch.handle, processor=processor, context=context
    )
    batch.close()
    return response
