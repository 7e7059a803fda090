"""The store on real Zarr v3 directories: layout, CF, CRS, region writes, extension, conflicts."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from pyproj import CRS

from pipeline.errors import StoreError
from pipeline.store.layout import FUSED, Grid, StoreLayout
from pipeline.store.lock import StoreLock
from pipeline.store.write import (
    DONE,
    done_mask,
    finalize_store,
    open_store,
    prepare_store,
    write_block,
)

DAY0 = dt.date(2024, 6, 1)
BANDS = ("red", "nir")


def _grid(epsg: int = 32632, ny: int = 20, nx: int = 24) -> Grid:
    return Grid(
        y=5_000_000 - 15 - 30 * np.arange(ny, dtype=np.float64),
        x=600_000 + 15 + 30 * np.arange(nx, dtype=np.float64),
        crs_wkt=CRS.from_epsg(epsg).to_wkt(),
    )


def _days(n: int, start: dt.date = DAY0) -> list[dt.date]:
    return [start + dt.timedelta(days=i) for i in range(n)]


LAYOUT = StoreLayout(BANDS, chunk_time=4, chunk_y=16, chunk_x=16)


def _block(n_time: int, ny: int, nx: int, value: float) -> xr.Dataset:
    dims = ("time", "y", "x")
    shape = (n_time, ny, nx)
    ds = xr.Dataset({name: (dims, np.full(shape, value, np.float32)) for name in LAYOUT.packed})
    ds["ref_before_days"] = (dims, np.full(shape, 2, np.int16))
    ds["ref_after_days"] = (dims, np.full(shape, 3, np.int16))
    ds["quality"] = (dims, np.full(shape, FUSED, np.uint8))
    return ds


def _write(url: str, t0: int, t1: int, value: float) -> None:
    region = {"time": slice(t0, t1), "y": slice(0, 16), "x": slice(16, 24)}
    done = np.full(t1 - t0, DONE, np.uint8)
    write_block(url, _block(t1 - t0, 16, 8, value), region, (0, 1), done)


def test_template_region_write_and_cf_metadata(tmp_path: Path) -> None:
    url = str(tmp_path / "s.zarr")
    state = prepare_store(url, _grid(), _days(6), LAYOUT, "r1")
    assert state.created and state.n_days == 6
    _write(url, 0, 4, 0.1234)
    finalize_store(url, {"stf_provenance": json.dumps({"model": {"name": "x"}})})
    ds = open_store(url)
    assert ds["red"].dtype == np.float32 and ds["quality"].dtype == np.uint8
    assert float(ds["red"][0, 0, 20]) == pytest.approx(0.1234, abs=1e-4)
    assert np.isnan(ds["red"][0, 0, 0]) and int(ds["quality"][0, 0, 0]) == 0
    assert int(ds["ref_before_days"][5, 0, 0]) == -1  # unwritten: no pair
    raw = xr.open_zarr(url)["red"]  # layout 2: float32 on disk, on the 1e-4 grid
    assert raw.dtype == np.float32 and float(raw[0, 0, 20]) == np.float32(0.1234)
    assert xr.open_zarr(url)["red"].attrs["grid_mapping"] == "spatial_ref"
    assert ds["quality"].attrs["flag_meanings"] == (
        "observed fused single_pair gap outside_coverage filled"
    )
    assert ds.attrs["Conventions"].startswith("CF-")
    assert done_mask(url, 0, 6)[:, 0, 1].tolist() == [True] * 4 + [False] * 2
    assert not done_mask(url, 0, 6)[:, 0, 0].any()


def test_rioxarray_reads_crs_and_transform(tmp_path: Path) -> None:
    import rioxarray  # noqa: F401  (registers .rio)

    url = str(tmp_path / "s.zarr")
    prepare_store(url, _grid(), _days(2), LAYOUT, "r1")
    ds = xr.open_zarr(url, decode_coords="all")
    assert ds["red"].rio.crs.to_epsg() == 32632
    assert tuple(ds.rio.transform())[:6] == (30.0, 0.0, 600_000.0, 0.0, -30.0, 5_000_000.0)


def test_fresh_process_opens_with_only_xarray_and_zarr(tmp_path: Path) -> None:
    url = str(tmp_path / "s.zarr")
    prepare_store(url, _grid(), _days(4), LAYOUT, "r1")
    _write(url, 0, 4, 0.5)
    finalize_store(url, {"stf_provenance": "{}"})
    code = (
        "import sys, xarray as xr\n"
        f"ds = xr.open_zarr({url!r}, consolidated=True)\n"
        "assert 'pipeline' not in sys.modules\n"
        "print(ds.sizes['time'], round(float(ds['nir'][1, 3, 20]), 4))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run(
        [sys.executable, "-I", "-W", "ignore", "-c", code],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert out.stdout.split() == ["4", "0.5"]


def test_extension_appends_days_and_keeps_old_ones(tmp_path: Path) -> None:
    url = str(tmp_path / "s.zarr")
    prepare_store(url, _grid(), _days(6), LAYOUT, "r1")
    _write(url, 0, 4, 0.25)
    before = open_store(url)["red"][:4].values.copy()
    state = prepare_store(url, _grid(), _days(5, DAY0 + dt.timedelta(days=4)), LAYOUT, "r1")
    assert state.extended and state.n_days == 9 and state.index(DAY0 + dt.timedelta(days=8)) == 8
    ds = open_store(url)
    assert ds.sizes["time"] == 9 and ds.sizes["yblock"] == 2
    np.testing.assert_array_equal(ds["red"][:4].values, before)
    assert not done_mask(url, 6, 9).any()


@pytest.mark.parametrize(
    ("grid", "region", "days", "match"),
    [
        (_grid(), "other", _days(3), "holds region 'r1'"),
        (_grid(nx=32), "r1", _days(3), "different grid"),
        (_grid(epsg=32633), "r1", _days(3), "different grid"),
        (_grid(), "r1", _days(3, DAY0 - dt.timedelta(days=1)), "new store.path"),
    ],
)
def test_conflicting_store_is_refused_and_untouched(
    tmp_path: Path, grid: Grid, region: str, days: list[dt.date], match: str
) -> None:
    url = str(tmp_path / "s.zarr")
    prepare_store(url, _grid(), _days(3), LAYOUT, "r1")
    before = sorted(p.name for p in Path(url).rglob("*"))
    with pytest.raises(StoreError, match=match):
        prepare_store(url, grid, days, LAYOUT, region)
    assert sorted(p.name for p in Path(url).rglob("*")) == before


def test_other_bands_or_chunks_refused(tmp_path: Path) -> None:
    url = str(tmp_path / "s.zarr")
    prepare_store(url, _grid(), _days(3), LAYOUT, "r1")
    with pytest.raises(StoreError, match="other bands or chunks"):
        prepare_store(url, _grid(), _days(3), StoreLayout(("red",), 4, 16, 16), "r1")


def test_sharded_store_round_trips(tmp_path: Path) -> None:
    url = str(tmp_path / "s.zarr")
    layout = StoreLayout(BANDS, chunk_time=4, chunk_y=16, chunk_x=16, sharding=True)
    prepare_store(url, _grid(), _days(4), layout, "r1")
    region = {"time": slice(0, 4), "y": slice(0, 16), "x": slice(16, 24)}
    write_block(url, _block(4, 16, 8, 0.3), region, (0, 1), np.full(4, DONE, np.uint8))
    ds = open_store(url)
    assert xr.open_zarr(url)["red"].encoding["shards"] == (4, 16, 16)
    assert float(ds["red"][3, 15, 23]) == pytest.approx(0.3, abs=1e-4)


def test_lock_refuses_second_writer_and_recovers_stale(tmp_path: Path) -> None:
    url = str(tmp_path / "s.zarr")
    with StoreLock(url), pytest.raises(StoreError, match="locked by pid"):
        StoreLock(url).acquire()
    lock_path = Path(url + ".lock")
    assert not lock_path.exists()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lock_path.write_text(json.dumps({"host": os.uname().nodename, "pid": dead.pid, "since": "x"}))
    with StoreLock(url):  # stale: that pid is gone
        assert json.loads(lock_path.read_text())["pid"] == os.getpid()


def test_unwritable_path_is_a_store_error(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")  # a path below a regular file cannot be created, even by root
    with pytest.raises(StoreError, match="writable"):
        StoreLock(str(not_a_dir / "s.zarr")).acquire()


def test_provenance_keeps_earlier_runs() -> None:
    from pipeline.store.provenance import merge, run_record

    def record(day: dt.date) -> dict[str, object]:
        return run_record(
            config={"region": "r1"},
            fine_items=["b", "a"],
            coarse_items=["c"],
            model={"name": "starfm", "weights_sha256": "0" * 64},
            pair_choice={"rule": "nearest"},
            days=(day, day),
        )

    first = merge(None, record(DAY0))
    second = json.loads(merge(first, record(DAY0 + dt.timedelta(days=1))))
    assert second["days"] == ["2024-06-02", "2024-06-02"]
    assert [r["days"][0] for r in second["previous_runs"]] == ["2024-06-01"]
    assert second["stac_items"]["fine"] == ["a", "b"] and "numpy" in second["software"]


def test_quantize_in_slabs_gives_the_whole_arrays_bits(monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.store import layout

    rng = np.random.default_rng(5)
    values = rng.uniform(-0.1, 1.1, (7, 5, 3)).astype(np.float32)
    values[2, 1] = np.nan
    whole = layout.quantize(values)
    monkeypatch.setattr(layout, "_QUANTIZE_SLAB", 16)  # one or two days a slab
    slabs = layout.quantize(values)
    assert slabs.dtype == np.float32 and slabs.tobytes() == whole.tobytes()
    monkeypatch.setattr(layout, "_QUANTIZE_SLAB", 4)  # a day is larger than the slab
    assert layout.quantize(values).tobytes() == whole.tobytes()
    assert layout.quantize(np.float32(0.12344)) == np.float32(0.1234)
