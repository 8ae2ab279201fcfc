"""AWS Lambda handlers: processor (SQS), control_api (HTTP API), health check (schedule)."""
