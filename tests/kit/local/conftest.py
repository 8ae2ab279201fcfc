"""Fixtures of the local-stack tests: a stack of the test's own, and plain boto3 clients."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest

from kit.core.settings import load_settings
from kit.local import LocalStack


@pytest.fixture
def own_stack(tmp_path):
    """A stack of this test's own (not the session's), always stopped afterwards."""
    stack = LocalStack(
        load_settings(state_dir=tmp_path / "state", local_port=0, api_port=0, prefix="lifecycle")
    )
    yield stack
    stack.down(snapshot=False)


@pytest.fixture
def aws() -> Callable[[str, str], Any]:
    """``aws(service, endpoint)``: a boto3 client with nothing of the kit in between."""

    def client(service: str, endpoint: str, **options: Any) -> Any:
        return boto3.client(
            service,
            endpoint_url=endpoint,
            region_name="eu-west-1",
            aws_access_key_id="x",
            aws_secret_access_key="x",
            **options,
        )

    return client


@pytest.fixture
def control_api(local_stack, backend_settings):
    """(host, port, token) of the session stack's control API, over a freshly provisioned backend."""
    url = urlsplit(local_stack.status().services["runner"]["url"])
    return url.hostname, url.port, backend_settings.api_token
