"""The store's template: created whole or not at all, extended so a resume can finish it.

Readers open a store through its consolidated metadata (the ``consolidated_metadata``
entry of the root ``zarr.json``), so that entry is the publication mark:

* A new template is written without it (every array's metadata and the
  coordinates), then consolidated as the last step. A run killed before that
  leaves a *partial* template: readers see no store, and the next run removes
  it and writes it again (nothing can be committed in it: blocks are written
  only after the template is whole).
* A longer time axis is made by resizing every ``time`` array to the new
  length, writing the whole time coordinate, then consolidating. Each step is
  idempotent, so a run killed half-way is completed by the next one; until the
  consolidation readers keep seeing the old, consistent axis.

Works on local paths and fsspec URLs alike (no rename, which object stores lack).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import warnings
from collections.abc import Iterator
from typing import Any, Literal

import numpy as np
import pandas as pd
import xarray as xr
import zarr

from pipeline.errors import StoreError
from pipeline.store.faults import kill_point

TemplateState = Literal["absent", "partial", "whole"]


@contextlib.contextmanager
def quiet_consolidated() -> Iterator[None]:
    """Silence zarr's warning that consolidated metadata is outside the Zarr v3 spec.

    Consolidation is a deliberate choice here (one read opens a store on an
    object store, and it is the publication mark); zarr-python and xarray read it,
    other readers ignore it.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Consolidated metadata is currently not part")
        yield


def _fs_path(url: str) -> tuple[Any, str]:
    import fsspec

    fs, path = fsspec.core.url_to_fs(url)
    return fs, path.rstrip("/")


def root_metadata(url: str) -> dict[str, Any] | None:
    """The root ``zarr.json`` of ``url`` as a dict, None if there is none (read uncached)."""
    fs, path = _fs_path(url)
    try:
        raw = fs.cat_file(f"{path}/zarr.json")
    except FileNotFoundError:
        return None
    try:
        return dict(json.loads(raw))
    except ValueError:  # a root cut short while being written: not whole
        return {}


def template_state(url: str) -> TemplateState:
    """``absent`` (no root), ``partial`` (root without consolidated metadata) or ``whole``."""
    root = root_metadata(url)
    if root is None:
        return "absent"
    return "whole" if root.get("consolidated_metadata") else "partial"


def create_template(url: str, ds: xr.Dataset, encoding: dict[str, dict[str, Any]]) -> None:
    """Write the template ``ds`` (metadata and coordinates only), publishing it last.

    Parameters
    ----------
    url : where no store exists yet (a partial one is removed first by the caller).
    ds : the lazy template of :func:`pipeline.store.layout.build_template`.
    encoding : its ``to_zarr`` encodings.
    """
    kill_point("template-begin")
    ds.to_zarr(url, mode="w-", compute=False, consolidated=False, zarr_format=3, encoding=encoding)
    kill_point("template-arrays")
    with quiet_consolidated():
        zarr.consolidate_metadata(url, zarr_format=3)
    kill_point("template-done")


def remove_partial(url: str) -> None:
    """Remove an unpublished template left by a killed run, after checking it is one.

    Raises
    ------
    StoreError : the store holds committed blocks or is not an stf store (kept as is).
    """
    root = root_metadata(url) or {}
    attrs = root.get("attributes") or {}
    foreign = bool(attrs) and "stf_layout_version" not in attrs
    if foreign or _committed_chunks(url) > 0:
        raise StoreError(
            f"{url} holds a Zarr store without consolidated metadata that stf did not leave "
            "unfinished; move it away or choose another store.path"
        )
    remove_store(url)


def _committed_chunks(url: str) -> int:
    try:
        done = zarr.open_group(url, mode="r", use_consolidated=False)["block_done"]
        return int(done.nchunks_initialized) if isinstance(done, zarr.Array) else 0
    except (KeyError, FileNotFoundError, ValueError):  # not created yet: nothing committed
        return 0


def remove_store(url: str) -> None:
    """Delete the store at ``url`` (path or fsspec URL) if it exists."""
    fs, path = _fs_path(url)
    fs.invalidate_cache()  # object-store listings are cached per process
    if fs.exists(path):
        fs.rm(path, recursive=True)
    fs.invalidate_cache()


def extend_time(url: str, days: list[dt.date]) -> None:
    """Give every ``time`` array of the store the axis ``days``, then publish it.

    Parameters
    ----------
    url : a whole store whose time axis is a prefix of ``days``.
    days : the consecutive days of the whole new axis, from the store's first day.
    """
    group = zarr.open_group(url, mode="r+", use_consolidated=False)
    n = len(days)
    for _name, array in group.arrays():
        dims = getattr(array.metadata, "dimension_names", None) or ()  # Zarr v3 arrays
        if dims and dims[0] == "time" and array.shape[0] != n:
            array.resize((n, *array.shape[1:]))
    kill_point("extend-resized")
    time = group["time"]
    assert isinstance(time, zarr.Array), "the store's time coordinate is not an array"
    units = str(time.attrs.get("units", "days since 1970-01-01"))
    calendar = str(time.attrs.get("calendar", "proleptic_gregorian"))
    stamps = pd.DatetimeIndex([pd.Timestamp(d) for d in days]).as_unit("ns")
    encoded, _, _ = xr.coding.times.encode_cf_datetime(stamps, units, calendar, time.dtype)
    time[...] = np.asarray(encoded, dtype=time.dtype)
    with quiet_consolidated():
        zarr.consolidate_metadata(url, zarr_format=3)
