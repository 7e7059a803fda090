"""Prefect in tests: a private PREFECT_HOME, no analytics, set before Prefect is imported."""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="stf-prefect-"))
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
