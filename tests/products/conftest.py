"""Fixtures: a small fused store in the contract layout and its field polygons."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.products.storegen import write_fields, write_store


@pytest.fixture(scope="session")
def fused_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 24 x 24 px, 200-day fused store with three crop seasons on 6 x 6 px fields."""
    return write_store(tmp_path_factory.mktemp("store") / "fusion.zarr")


@pytest.fixture(scope="session")
def fields_parquet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fields of :func:`fused_store` as GeoParquet (store CRS)."""
    return write_fields(tmp_path_factory.mktemp("labels") / "fields.parquet")
