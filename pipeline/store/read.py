"""Reading a store: the one way products, reports and notebooks open it, local or remote.

Readers see only a published store (consolidated metadata, see
:mod:`pipeline.store.template`); packed variables come back as float32. The
quality flags are defined once, in :mod:`pipeline.store.layout`, and
re-exported here for readers.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import xarray as xr

from pipeline.errors import InputError, StoreError
from pipeline.store.layout import FILLED, FUSED, GAP, OBSERVED, OUTSIDE, SINGLE_PAIR
from pipeline.store.lock import is_local, local_path
from pipeline.store.template import quiet_consolidated, template_state

#: ``quality`` bit flags by name (0 = not written yet).
QUALITY_FLAGS: dict[str, int] = {
    "observed": OBSERVED,
    "fused": FUSED,
    "single_pair": SINGLE_PAIR,
    "gap": GAP,
    "outside_coverage": OUTSIDE,
    "filled": FILLED,
}

__all__ = [
    "FILLED",
    "FUSED",
    "GAP",
    "OBSERVED",
    "OUTSIDE",
    "QUALITY_FLAGS",
    "SINGLE_PAIR",
    "open_checked",
    "open_store",
    "store_parent",
]


def open_store(url: str) -> xr.Dataset:
    """Open a store lazily (consolidated metadata, CF decoding, values as float32).

    Layout 2 stores hold float32 already; stores of layout 1 (int16 packed,
    decoded to float64 by xarray because Zarr's JSON attributes cannot type
    ``scale_factor``) are cast back, which is exact for 1e-4 steps.

    Parameters
    ----------
    url : store path or fsspec URL (``s3://...``; endpoint and credentials from the environment).

    Raises
    ------
    StoreError : ``url`` holds only an unpublished template (a run is creating it or was killed).
    """
    if template_state(url) == "partial":
        raise StoreError(
            f"store {url} is not published yet (no consolidated metadata): a run is creating "
            "it or was killed; rerun `stf run` on it to finish it"
        )
    with quiet_consolidated():
        ds = xr.open_zarr(url, consolidated=True, decode_coords="all")
    wide = [n for n, v in ds.data_vars.items() if v.dtype == np.float64]
    return ds.assign({n: ds[n].astype(np.float32) for n in wide})


def open_checked(url: str, required: Iterable[str]) -> xr.Dataset:
    """:func:`open_store`, checked to hold ``required`` variables on ``(time, y, x)`` with a CRS.

    Returns
    -------
    Dataset: bands, ``ndvi``, ``uncertainty`` float32 (NaN = no value), ``quality``
    uint8, ``ref_before_days`` / ``ref_after_days`` int16, all ``(time, y, x)``;
    ``spatial_ref`` decoded so ``ds.rio.crs`` is the grid CRS.

    Raises
    ------
    InputError : no published store at ``url``, not Zarr, a variable, a dim or the CRS missing.
    """
    state = template_state(url)
    if state == "absent":
        raise InputError(
            f"fused store not found: {url}; run `stf run` or `stf demo` first, or pass its path"
        )
    try:
        ds = open_store(url)
    except StoreError as exc:
        raise InputError(str(exc)) from None
    except Exception as exc:  # zarr raises several unrelated types for "not a store"
        raise InputError(
            f"cannot open {url} as a Zarr store ({type(exc).__name__}); pass a fused .zarr"
        ) from None
    missing = [v for v in required if v not in ds.data_vars]
    if missing:
        raise InputError(
            f"store {url} lacks variable(s) {', '.join(missing)}; "
            "re-run fusion with bands red and nir (a contract-layout store)"
        )
    if {"time", "y", "x"} - set(ds.dims):
        raise InputError(
            f"store {url} has dims {tuple(ds.dims)}, expected (time, y, x); is it a fused store?"
        )
    import rioxarray  # noqa: F401  (registers the .rio accessor)

    if ds.rio.crs is None:
        raise InputError(
            f"store {url} has no grid CRS (spatial_ref); re-write it with the contract layout"
        )
    return ds


def store_parent(url: str) -> str:
    """The folder (local path) or prefix (URL) holding the store: where products go by default."""
    if is_local(url):
        return str(local_path(url).resolve().parent)
    return url.rstrip("/").rsplit("/", 1)[0]
