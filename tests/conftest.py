"""Shared fixtures. Tests never touch the developer's own settings, state dir or local stack:
EVK_CONFIG and EVK_STATE_DIR point into a session temp dir and the moto server gets a free port."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

_SESSION_DIR = Path(tempfile.mkdtemp(prefix="evk-tests-"))
# Removed when the session ends (models, stacks and settings of up to ~100 MB per run).
atexit.register(shutil.rmtree, _SESSION_DIR, ignore_errors=True)
for _key in [k for k in os.environ if k.startswith("EVK_")]:
    del os.environ[_key]
(_SESSION_DIR / "evk.yaml").write_text("# the tests' own settings file: defaults only\n")
os.environ["EVK_CONFIG"] = str(_SESSION_DIR / "evk.yaml")
os.environ["EVK_STATE_DIR"] = str(_SESSION_DIR / "state")
os.environ["EVK_LOCAL_PORT"] = "0"
os.environ["EVK_API_PORT"] = "0"

from kit.offline import configure_ultralytics  # noqa: E402

configure_ultralytics(_SESSION_DIR / "ultralytics")

from kit.core.backend import describe_backend  # noqa: E402
from kit.core.settings import Settings, load_settings  # noqa: E402
from kit.local import LocalStack  # noqa: E402
from kit.local.provision import provision  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory) -> LocalStack:
    """One moto server process for the whole session, with the kit's backend provisioned."""
    settings = load_settings(
        state_dir=tmp_path_factory.mktemp("stack"), local_port=0, prefix="evktest"
    )
    stack = LocalStack(settings)
    stack.up()
    yield stack
    stack.down(snapshot=False)


@pytest.fixture
def backend_settings(local_stack) -> Settings:
    """Settings pointing at the session's moto server, with a clean, freshly provisioned backend."""
    import requests

    endpoint = local_stack.endpoint_url
    requests.post(f"{endpoint}/moto-api/reset", timeout=10).raise_for_status()
    settings = local_stack.settings.model_copy(update={"endpoint_url": endpoint})
    provision(describe_backend(settings), settings)
    return settings


@pytest.fixture(scope="session")
def wait_until():
    """:func:`tests.support.wait.wait_until`: the one way tests wait for a condition."""
    from tests.support.wait import wait_until

    return wait_until
