"""Fixtures of the fusion tests: a real 2-process LocalCluster and small synthetic cubes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import numpy as np
import pytest
import xarray as xr
from distributed import Client
from pyproj import CRS

from pipeline.config import ComputeSpec
from pipeline.fuse.cluster import local_cluster
from pipeline.fuse.dispatch import Sources
from pipeline.store.layout import Grid

DAY0 = dt.date(2024, 6, 1)
SHAPE = (40, 36)  # fine pixels (y, x); not a multiple of the test chunks on purpose
FACTOR = 4


@pytest.fixture(scope="session")
def client() -> Iterator[Client]:
    """Two worker processes with one thread each (the machine has 2 cores), under the
    pipeline's local-cluster settings (so the killed-worker test runs with them)."""
    with (
        local_cluster(ComputeSpec(n_workers=2, threads_per_worker=1)) as cl,
        Client(cl, set_as_default=False) as c,
    ):
        yield c


def _truth(n_days: int, rng: np.random.Generator) -> np.ndarray:
    """(day, band, y, x) float32: 3 bands of fields whose brightness drifts day by day."""
    fields = rng.integers(0, 5, size=(SHAPE[0] // 4, SHAPE[1] // 4)).repeat(4, 0).repeat(4, 1)
    base = 0.05 + 0.08 * fields[None].astype(np.float32) + np.linspace(0, 0.1, 3)[:, None, None]
    drift = 0.01 * np.arange(n_days)[:, None, None, None] * (1 + fields[None, None] % 2)
    return (base[None] + drift).astype(np.float32)


def make_sources(
    n_days: int = 12, fine_days: tuple[int, ...] = (0, 5, 11), cloud: bool = True
) -> Sources:
    """Dask-backed fine scenes on ``fine_days`` (small clouds) and daily coarse block means."""
    rng = np.random.default_rng(0)
    truth = _truth(n_days, rng)
    fine = truth[list(fine_days)].copy()
    if cloud:
        fine[1, :, 2:6, 3:9] = np.nan  # a small cloud on the middle scene
    t, b, ny, nx = truth.shape
    coarse = truth.reshape(t, b, ny // FACTOR, FACTOR, nx // FACTOR, FACTOR).mean(axis=(3, 5))
    days = [DAY0 + dt.timedelta(days=i) for i in range(n_days)]

    def cube(data: np.ndarray, when: list[dt.date], chunk: int) -> xr.DataArray:
        times = [np.datetime64(d, "ns") for d in when]
        coords = {"time": times, "band": ["green", "red", "nir"]}
        da = xr.DataArray(data, dims=("time", "band", "y", "x"), coords=coords)
        return da.chunk({"time": 1, "y": chunk, "x": chunk})

    return Sources(
        fine=cube(fine, [days[i] for i in fine_days], 16),
        coarse=cube(coarse.astype(np.float32), days, 4),
        factor=FACTOR,
        pairs=tuple(days[i] for i in fine_days),
    )


def grid() -> Grid:
    """The 30 m UTM 32N grid of the synthetic cubes."""
    return Grid(
        y=5_000_000 - 15 - 30 * np.arange(SHAPE[0], dtype=np.float64),
        x=600_000 + 15 + 30 * np.arange(SHAPE[1], dtype=np.float64),
        crs_wkt=CRS.from_epsg(32632).to_wkt(),
    )


@pytest.fixture
def sources() -> Sources:
    return make_sources()
