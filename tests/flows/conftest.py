"""Prefect in tests: a private PREFECT_HOME, no analytics, set before Prefect is imported."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator

import pytest

os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="stf-prefect-"))
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"


@pytest.fixture(scope="session")
def harness() -> Iterator[None]:
    """One Prefect test server for every flow test of the session."""
    from prefect.testing.utilities import prefect_test_harness

    # its start took 53 s on a loaded 2-core machine (~8 s idle)
    with prefect_test_harness(server_startup_timeout=180):
        yield
