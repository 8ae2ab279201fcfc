"""The processor: SQS batches of edge messages -> detections, device health, rules, alerts."""
