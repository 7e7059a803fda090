"""Open the fused store for products, through :mod:`pipeline.store` (local path or URL).

Products never open the Zarr themselves: :func:`pipeline.store.read.open_checked`
is the one reader, and the quality flags are the store's own (imported, not copied).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import xarray as xr

from pipeline.store.read import FILLED, FUSED, GAP, OBSERVED, OUTSIDE, SINGLE_PAIR, open_checked

#: Variables every product needs: NDVI needs red + nir, weights need the quality flags.
REQUIRED_VARS: tuple[str, ...] = ("red", "nir", "quality")

__all__ = [
    "FILLED",
    "FUSED",
    "GAP",
    "OBSERVED",
    "OUTSIDE",
    "REQUIRED_VARS",
    "SINGLE_PAIR",
    "band_factors",
    "open_fused",
    "working_chunks",
]


def open_fused(store: str | Path, required: Iterable[str] = REQUIRED_VARS) -> xr.Dataset:
    """Open a fused store lazily (dask) and check it has what products need.

    Parameters
    ----------
    store : path or fsspec URL (``s3://...``) of the Zarr store written by ``stf run`` /
        ``stf demo``.
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
        The store is missing, unpublished, not Zarr, lacks a variable, or has no CRS.
    """
    return open_checked(str(store), required)


def working_chunks(ds: xr.Dataset, space: int = 128) -> xr.Dataset:
    """Rechunk so each task holds whole time series of a ``space`` x ``space`` pixel tile.

    Smoothing and phenology act along time per pixel, so time must be one chunk.
    """
    return ds.chunk({"time": -1, "y": space, "x": space})


def band_factors(ds: xr.Dataset) -> dict[str, float]:
    """Per band, its 1-sigma over the store's ``uncertainty`` (RMS over bands), as the run's
    calibration recorded it (provenance ``model.seamless.band_factors``); empty when absent."""
    try:
        seamless = json.loads(ds.attrs.get("stf_provenance", "{}"))["model"]["seamless"]
        factors = [float(v) for v in seamless.get("band_factors") or ()]
        bands = list(ds.attrs.get("stf_bands", ()))
    except (KeyError, TypeError, ValueError):
        return {}
    return dict(zip(bands, factors, strict=True)) if len(bands) == len(factors) else {}
