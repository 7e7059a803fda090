"""Create, check, extend and fill a store; completion decided from the store itself.

Rules (also in the README, "Store layout"):

* A new store is written as a template with the whole time axis first
  (metadata and coordinates only), then filled by region writes.
* A store that exists must hold the same region name, grid, bands, chunks and
  layout version, else the run refuses (StoreError) and writes nothing.
* Later days extend it: every ``time`` array is resized to the longer axis
  (metadata only); old days are never rewritten. Days before the first stored
  day cannot be added (new store).
* A store is *published* by its consolidated metadata, written last: a run
  killed while writing the template or growing the time axis leaves readers
  the old view (or none), and the next run finishes the job
  (:mod:`pipeline.store.template`).
* Each region write puts the values first, ``quality`` second and
  ``block_done`` last, so a block is complete iff ``block_done`` says so:
  :data:`DONE` (1), or :data:`PROVISIONAL` (2) for a day fused without a
  later pair (extrapolated from the last pair), which a later run over that
  day re-fuses because a newer scene may now give it an after-pair.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from pipeline.errors import StoreError
from pipeline.store.cf import time_coverage
from pipeline.store.faults import kill_point
from pipeline.store.layout import LAYOUT_VERSION, Grid, StoreLayout, build_template, quantize
from pipeline.store.read import open_store
from pipeline.store.template import (
    create_template,
    extend_time,
    quiet_consolidated,
    remove_partial,
    template_state,
)

__all__ = [
    "DONE",
    "PROVISIONAL",
    "StoreState",
    "done_mask",
    "finalize_store",
    "open_store",  # the reader, kept importable from here for existing callers
    "prepare_store",
    "store_exists",
    "write_block",
]

#: ``block_done`` values: written and final / written from the last pair only.
DONE, PROVISIONAL = 1, 2


@dataclass(frozen=True)
class StoreState:
    """Where a run's days sit in the store.

    Attributes
    ----------
    url : the store path or fsspec URL.
    first_day : the store's day at time index 0.
    n_days : length of the store's time axis after preparation.
    created, extended : whether this preparation created the store / grew its time axis.
    time_chunk : days per Zarr chunk of the store (at most the time axis it was created
        with); time windows of tasks split at its multiples. None: the layout's.
    """

    url: str
    first_day: dt.date
    n_days: int
    created: bool = False
    extended: bool = False
    time_chunk: int | None = None

    def index(self, day: dt.date) -> int:
        """Time index of ``day``."""
        return (day - self.first_day).days


def store_exists(url: str) -> bool:
    """Whether a published store (root ``zarr.json`` with consolidated metadata) is at ``url``.

    An unpublished template left by a killed run does not count: the next run
    removes and rewrites it.
    """
    return template_state(url) == "whole"


def check_region(url: str, region: str) -> None:
    """StoreError early if a published store at ``url`` holds another region than ``region``.

    The grid, bands and chunks are checked when the store is prepared
    (:func:`prepare_store`); the region name is checked before any work starts.
    """
    if not store_exists(url):
        return
    found = open_store(url).attrs.get("stf_region")
    if found != region:
        raise StoreError(
            f"store {url} holds region {found!r}, not {region!r}; use another store.path"
        )


def _check_compatible(existing: xr.Dataset, grid: Grid, layout: StoreLayout, region: str) -> None:
    attrs = existing.attrs
    found = attrs.get("stf_region")
    if found != region:
        raise StoreError(f"store holds region {found!r}, not {region!r}; choose another store.path")
    wkt = existing["spatial_ref"].attrs.get("crs_wkt", "")
    old_grid = Grid(np.asarray(existing["y"].values), np.asarray(existing["x"].values), wkt)
    if not old_grid.same_as(grid):
        raise StoreError(
            "store holds a different grid (CRS, extent or resolution); choose another store.path"
        )
    same = (
        attrs.get("stf_layout_version") == LAYOUT_VERSION
        and list(attrs.get("stf_bands", [])) == list(layout.bands)
        and list(attrs.get("stf_chunks", [])) == [layout.chunk_time, layout.chunk_y, layout.chunk_x]
    )
    if not same:
        raise StoreError(
            "store has other bands or chunks; use the same settings or another store.path"
        )


def _write_template(url: str, ds: xr.Dataset, layout: StoreLayout, grid: Grid) -> None:
    try:
        create_template(url, ds, layout.encoding(ds.sizes["time"], grid))
    except PermissionError as exc:
        raise StoreError(
            f"cannot write store {url}: {exc.strerror}; choose a writable store.path"
        ) from None
    except OSError as exc:
        raise StoreError(
            f"cannot write store {url}: {exc}; check the path and free space"
        ) from None


def _extend(url: str, first: dt.date, last: dt.date) -> None:
    days = [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
    try:
        extend_time(url, days)
    except OSError as exc:
        raise StoreError(
            f"cannot extend store {url}: {exc}; check the path and free space, then rerun"
        ) from None


def prepare_store(
    url: str, grid: Grid, days: list[dt.date], layout: StoreLayout, region: str
) -> StoreState:
    """Create the store, check an existing one, or extend its time axis to cover ``days``.

    Parameters
    ----------
    url : store path or fsspec URL (the caller holds the :class:`StoreLock`).
    grid, layout, region : what the store must hold.
    days : the run's consecutive target days.

    Raises
    ------
    StoreError : the store holds another region/grid/layout, ``days`` start
        before the store's first day, or the path cannot be written.
    """
    state = template_state(url)
    if state == "partial":  # left by a run killed while writing the template
        remove_partial(url)
    if state != "whole":
        _write_template(url, build_template(grid, days, layout, region), layout, grid)
        chunk = layout.store_chunk_time(len(days))
        return StoreState(url, days[0], len(days), created=True, time_chunk=chunk)
    existing = open_store(url)
    _check_compatible(existing, grid, layout, region)
    times = pd.DatetimeIndex(existing["time"].values)
    first, last = times[0].date(), times[-1].date()
    if days[0] < first:
        raise StoreError(
            f"store starts on {first}; days before it ({days[0]}) need a new store.path"
        )
    chunk = _time_chunk(existing, layout)
    if days[-1] <= last:
        return StoreState(url, first, len(times), time_chunk=chunk)
    _extend(url, first, days[-1])
    return StoreState(url, first, (days[-1] - first).days + 1, extended=True, time_chunk=chunk)


def _time_chunk(existing: xr.Dataset, layout: StoreLayout) -> int:
    """Days per Zarr chunk (or shard) of an existing store's value variables."""
    enc = existing[layout.packed[0]].encoding
    outer = enc.get("shards") or enc.get("chunks") or (layout.chunk_time,)
    return int(outer[0])


def done_mask(url: str, t0: int, t1: int) -> np.ndarray:
    """Final completion of store time indices ``[t0, t1)``: (time, yblock, xblock) bool.

    True only for :data:`DONE`; not-yet-written and :data:`PROVISIONAL` days are to do.
    """
    ds = xr.open_zarr(url, consolidated=False)
    return np.asarray(ds["block_done"].isel(time=slice(t0, t1)).values == DONE)


def write_block(
    url: str,
    block: xr.Dataset,
    region: dict[str, slice],
    block_index: tuple[int, int],
    done: np.ndarray,
) -> None:
    """Write one block's window: values, then ``quality``, then ``block_done`` (the commit).

    Parameters
    ----------
    url : the prepared store.
    block : (time, y, x) variables of the layout, decoded (float32 NaN / ints).
    region : ``{"time": slice, "y": slice, "x": slice}`` indices of ``block`` in the store.
    block_index : (yblock, xblock) of the block.
    done : (time,) uint8 commit value per day: :data:`DONE` or :data:`PROVISIONAL`.
    """
    values = block.drop_vars(["quality", *block.coords])
    floats = [n for n, v in values.data_vars.items() if v.dtype.kind == "f"]
    kwargs: dict[str, Any] = {"mode": "r+", "consolidated": False, "zarr_format": 3}
    by, bx = block_index
    marks = done.astype(np.uint8)[:, None, None]
    done_ds = xr.Dataset({"block_done": (("time", "yblock", "xblock"), marks)})
    done_region = {"time": region["time"], "yblock": slice(by, by + 1), "xblock": slice(bx, bx + 1)}
    try:
        if len(values.data_vars) > len(floats):
            values.drop_vars(floats).to_zarr(url, region=region, **kwargs)
        for name in floats:  # one quantised copy at a time, not one of every variable at once
            one = xr.Dataset({name: (values[name].dims, quantize(values[name].values))})
            one.to_zarr(url, region=region, **kwargs)
        kill_point("block-values")
        block[["quality"]].drop_vars(list(block.coords)).to_zarr(url, region=region, **kwargs)
        kill_point("block-quality")
        done_ds.to_zarr(url, region=done_region, **kwargs)
        kill_point("block-committed")
    except OSError as exc:  # disk full, quota, permissions: the block stays uncommitted
        raise StoreError(
            f"cannot write store {url}: {exc.strerror or exc}; free space or choose another "
            "store.path, then rerun (finished blocks are kept)"
        ) from None


def finalize_store(url: str, attrs: dict[str, Any]) -> None:
    """Set global attrs (provenance, ACDD time coverage) and re-consolidate the metadata."""
    import zarr

    kill_point("finalize")
    try:
        group = zarr.open_group(url, mode="r+", zarr_format=3)
        times = xr.open_zarr(url, consolidated=False)["time"].values
        group.attrs.update({**time_coverage(times), **attrs})
        with quiet_consolidated():
            zarr.consolidate_metadata(url, zarr_format=3)
    except OSError as exc:
        raise StoreError(
            f"cannot write the metadata of store {url}: {exc.strerror or exc}; free space "
            "or choose another store.path, then rerun"
        ) from None
