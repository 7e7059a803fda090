"""Fixtures of the offline checks of infra/: the parsed Kubernetes manifests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

INFRA = Path(__file__).resolve().parents[2] / "infra"


@pytest.fixture(scope="session")
def k8s_docs() -> list[dict[str, Any]]:
    """Every document of every YAML file under infra/k8s, in file order."""
    docs = []
    for path in sorted((INFRA / "k8s").glob("*.yaml")):
        docs.extend(doc for doc in yaml.safe_load_all(path.read_text()) if doc)
    return docs


@pytest.fixture(scope="session")
def k8s_by_kind(k8s_docs: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """Manifests keyed by (kind, metadata.name)."""
    return {(d["kind"], d.get("metadata", {}).get("name", "")): d for d in k8s_docs}
