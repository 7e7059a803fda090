"""Cubes from the live tiny world: both backends agree, grids align, bad assets are named."""

from __future__ import annotations

import shutil
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import pytest

from pipeline.catalog.search import SearchResult
from pipeline.config import RunConfig
from pipeline.cube.cubes import CubeFacts, Cubes, load_cubes
from pipeline.errors import InputError, ServiceError
from pipeline.synth import World


@pytest.fixture(scope="module")
def cubes_odc(tiny_cfg: RunConfig, tiny_result: SearchResult) -> Cubes:
    return load_cubes(tiny_cfg, tiny_result, backend="odc")


def test_cube_layout(cubes_odc: Cubes, tiny_cfg: RunConfig, tiny_world: World) -> None:
    fine, coarse = cubes_odc.fine, cubes_odc.coarse
    assert fine.dims == coarse.dims == ("time", "band", "y", "x")
    assert fine.dtype == coarse.dtype == np.float32
    assert isinstance(fine.data, da.Array) and isinstance(cubes_odc.coarse_on_fine.data, da.Array)
    assert list(fine.band.values) == ["red", "nir"]
    # the inset bbox snaps back out to exactly the world's 30 m grid
    assert cubes_odc.geobox.crs.epsg == tiny_world.epsg
    assert tuple(cubes_odc.geobox.affine)[:6] == tuple(tiny_world.grid.transform)[:6]
    assert fine.shape[2:] == (96, 96) and coarse.shape[2:] == (6, 6)
    # reads of whole 64 px blocks up to FINE_READ_PX (pipeline.cube.chunking): one 96 px chunk;
    # the coarse cube's chunks lie under the fine ones and hold up to COARSE_DAYS days
    assert fine.chunks[2] == (96,) and coarse.chunks[2] == (6,)
    assert fine.chunks[0] == (1,) * fine.sizes["time"]
    assert coarse.chunks[0] == (coarse.sizes["time"],)
    assert [str(t)[:10] for t in fine.time.values] == ["2024-06-08", "2024-06-16"]
    assert fine.sizes["time"] == cubes_odc.fine_clear.size


def test_reflectance_is_scaled_and_masked(cubes_odc: Cubes) -> None:
    fine = cubes_odc.fine.values
    valid = fine[np.isfinite(fine)]
    assert valid.min() >= 0.0 and valid.max() <= 1.0
    nir_over_red = np.nanmean(fine[:, 1]) / np.nanmean(fine[:, 0])
    assert nir_over_red > 1.5  # summer farmland: vegetation dominates
    clear = np.isfinite(fine).all(axis=1).mean(axis=(1, 2))
    np.testing.assert_allclose(cubes_odc.fine_clear.values, clear)


def test_coarse_on_fine_is_block_replication(cubes_odc: Cubes) -> None:
    coarse = cubes_odc.coarse.isel(time=slice(0, 3)).values
    up = cubes_odc.coarse_on_fine.isel(time=slice(0, 3)).values
    np.testing.assert_array_equal(up, coarse.repeat(16, axis=-2).repeat(16, axis=-1))
    assert cubes_odc.coarse_on_fine.x.equals(cubes_odc.fine.x)


def test_pairs_are_same_day_and_clear(cubes_odc: Cubes) -> None:
    assert cubes_odc.pairs, "the tiny world has clear Landsat days with MODIS the same day"
    coarse_days = {str(t)[:10] for t in cubes_odc.coarse.time.values}
    for pair in cubes_odc.pairs:
        assert pair.date == pair.coarse_date and pair.date.isoformat() in coarse_days
        assert pair.clear_fraction >= 0.05


def test_stackstac_gives_the_same_cube(
    cubes_odc: Cubes, tiny_cfg: RunConfig, tiny_result: SearchResult
) -> None:
    calls: list[tuple[int, int]] = []
    other = load_cubes(
        tiny_cfg, tiny_result, backend="stackstac", progress=lambda *c: calls.append(c)
    )
    assert calls and calls[-1][0] == calls[-1][1] > 0  # the progress bar reaches its total
    assert other.fine.shape == cubes_odc.fine.shape
    np.testing.assert_array_equal(other.fine.x.values, cubes_odc.fine.x.values)
    np.testing.assert_array_equal(other.fine.values, cubes_odc.fine.values)  # exact, NaN included
    # coarse cells average sinusoidal pixels; the two warpers round the last digit differently
    np.testing.assert_allclose(other.coarse.values, cubes_odc.coarse.values, atol=2e-4)
    assert other.pairs == cubes_odc.pairs


def test_unreadable_asset_is_named(
    tiny_cfg: RunConfig, tiny_result: SearchResult, tmp_path: Path
) -> None:
    item = tiny_result.fine[0].clone()
    source = Path(item.assets["red"].get_absolute_href().removeprefix("file://"))
    copy = shutil.copytree(source.parent, tmp_path / "scene")
    for asset in item.assets.values():
        asset.href = (copy / Path(asset.href).name).as_uri()
    (copy / source.name).unlink()
    broken = SearchResult([item], tiny_result.coarse[:3], tiny_result.url)
    for backend in ("odc", "stackstac"):
        with pytest.raises(ServiceError, match=source.name) as info:
            load_cubes(tiny_cfg, broken, backend=backend)
        assert "\n" not in str(info.value)


def test_unknown_backend_and_missing_coarse_band(
    tiny_cfg: RunConfig, tiny_result: SearchResult
) -> None:
    with pytest.raises(InputError, match="unknown backend 'gdal'"):
        load_cubes(tiny_cfg, tiny_result, backend="gdal")
    cfg = tiny_cfg.with_updates(
        collections={"coarse": "modis-09Q1-061"}, bands=("red", "nir", "blue")
    )
    with pytest.raises(InputError, match="modis-09Q1-061 has no band"):
        load_cubes(cfg, tiny_result)


def _no_compute(*_args: object, **_kwargs: object) -> None:
    raise AssertionError("the cubes were read although their facts were given")


def test_facts_rebuild_the_same_cubes_without_reading(
    cubes_odc: Cubes, tiny_cfg: RunConfig, tiny_result: SearchResult
) -> None:
    facts = CubeFacts.from_dict(CubeFacts.of(cubes_odc).to_dict())  # the cubes.json round trip
    with dask.config.set(scheduler=_no_compute):
        again = load_cubes(tiny_cfg, tiny_result, facts=facts)
    assert again.pairs == cubes_odc.pairs
    assert (again.fine_ids, again.coarse_ids) == (cubes_odc.fine_ids, cubes_odc.coarse_ids)
    np.testing.assert_array_equal(again.fine_clear, cubes_odc.fine_clear)
    np.testing.assert_array_equal(again.coarse_clear, cubes_odc.coarse_clear)
    np.testing.assert_array_equal(
        again.fine.isel(time=0).values, cubes_odc.fine.isel(time=0).values
    )


def test_facts_of_another_search_are_refused(
    cubes_odc: Cubes, tiny_cfg: RunConfig, tiny_result: SearchResult
) -> None:
    facts = CubeFacts.of(cubes_odc)
    stale = CubeFacts(facts.fine_clear[:-1], facts.coarse_clear)
    with pytest.raises(InputError, match="rerun the cubes step"):
        load_cubes(tiny_cfg, tiny_result, facts=stale)
