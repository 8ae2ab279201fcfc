"""The control panel's API: API Gateway HTTP API v2 events routed by Powertools."""
