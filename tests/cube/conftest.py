"""Cube fixtures: a small run config over the tiny demo world and its live search result."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.catalog.search import SearchResult, item_datetime, search_items
from pipeline.config import RunConfig, parse_config
from pipeline.synth import World


def tiny_config(world: World, **changes: Any) -> RunConfig:
    """Two bands over ten days of the tiny world; bbox inset so the grid is exactly the world's."""
    w, s, e, n = world.bbox
    data: dict[str, Any] = {
        "region": {"name": "tiny", "bbox": [w + 1e-3, s + 1e-3, e - 1e-3, n - 1e-3]},
        "time": {"start": "2024-06-06", "end": "2024-06-17", "search_margin_days": 0},
        "bands": ["red", "nir"],
        "chunks": {"y": 64, "x": 64},
        "stac": {"retries": 0, "timeout_s": 5},
    }
    return parse_config({**data, **changes})


@pytest.fixture(scope="session")
def tiny_cfg(tiny_world: World) -> RunConfig:
    """:func:`tiny_config` without changes."""
    return tiny_config(tiny_world)


@pytest.fixture(scope="session")
def tiny_result(tiny_cfg: RunConfig, stac_url: str) -> SearchResult:
    """Items of :func:`tiny_cfg` from the live server: 2 Landsat, the MODIS days around them.

    MODIS is trimmed to the Landsat days +-1 (6 of ~20 items) to keep reads cheap on
    two cores; the full search is tested in tests/catalog.
    """
    result = search_items(tiny_cfg, stac_url)
    fine_days = {item_datetime(it).date() for it in result.fine}
    near = [
        it
        for it in result.coarse
        if any(abs((item_datetime(it).date() - d).days) <= 1 for d in fine_days)
    ]
    return SearchResult(result.fine, near, result.url)
