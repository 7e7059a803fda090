"""Open the fused Zarr store (layout of docs/CONTRACTS.md) and check it can serve a product."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import xarray as xr

from pipeline.errors import InputError

#: Variables every product needs: NDVI needs red + nir, weights need the quality flags.
REQUIRED_VARS: tuple[str, ...] = ("red", "nir", "quality")

#: Quality bit flags written by the store (docs/CONTRACTS.md).
OBSERVED, FUSED, SINGLE_PAIR, GAP = 1, 2, 4, 8


def open_fused(store: str | Path, required: Iterable[str] = REQUIRED_VARS) -> xr.Dataset:
    """Open a fused store lazily (dask) and check it has what products need.

    Parameters
    ----------
    store : path of the Zarr store written by ``stf run`` / ``stf demo``.
    required : data variables that must be present.

    Returns
    -------
    xarray.Dataset
        Variables (time, y, x): bands as float32 reflectance (NaN = no value),
        ``quality`` uint8, ``ref_before_days``/``ref_after_days`` int16; ``spatial_ref``
        decoded so ``ds.rio.crs`` is the grid CRS.

    Raises
    ------
    InputError
        The store is missing, is not Zarr, lacks a variable, or has no CRS.
    """
    path = Path(store)
    if not path.exists():
        raise InputError(
            f"fused store not found: {path}; run `stf run` or `stf demo` first, or pass its path"
        )
    try:
        ds = xr.open_zarr(path, decode_coords="all")
    except Exception as exc:  # zarr raises several unrelated types for "not a store"
        raise InputError(
            f"cannot open {path} as a Zarr store ({type(exc).__name__}); pass a fused .zarr"
        ) from None
    missing = [v for v in required if v not in ds.data_vars]
    if missing:
        raise InputError(
            f"store {path} lacks variable(s) {', '.join(missing)}; "
            "re-run fusion with bands red and nir (a contract-layout store)"
        )
    if {"time", "y", "x"} - set(ds.dims):
        raise InputError(
            f"store {path} has dims {tuple(ds.dims)}, expected (time, y, x); is it a fused store?"
        )
    _require_crs(ds, path)
    return ds


def _require_crs(ds: xr.Dataset, path: Path) -> None:
    import rioxarray  # noqa: F401  (registers the .rio accessor)

    if ds.rio.crs is None:
        raise InputError(
            f"store {path} has no grid CRS (spatial_ref); re-write it with the contract layout"
        )


def working_chunks(ds: xr.Dataset, space: int = 128) -> xr.Dataset:
    """Rechunk so each task holds whole time series of a ``space`` x ``space`` pixel tile.

    Smoothing and phenology act along time per pixel, so time must be one chunk.
    """
    return ds.chunk({"time": -1, "y": space, "x": space})
