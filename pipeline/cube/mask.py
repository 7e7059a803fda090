"""Raw digital numbers -> float32 reflectance with NaN where unusable, done in our own code.

Loaders return native DNs (uint16 Landsat, int16 MODIS) and native QA; neither
odc-stac nor stackstac applies ``raster:bands`` scale/offset the way we need
(odc-stac's float output even keeps the raw nodata value), so conversion and
masking happen here, once, for every backend. All functions are elementwise
xarray operations and stay lazy on dask-backed input.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from pipeline.sensors import Sensor


def to_reflectance(dn: xr.DataArray, sensor: Sensor) -> xr.DataArray:
    """DN -> reflectance (unitless, float32), NaN where ``dn == sensor.nodata``."""
    refl = dn.astype(np.float32) * np.float32(sensor.scale) + np.float32(sensor.offset)
    return refl.where(dn != sensor.nodata).astype(np.float32)


def qa_assets(sensor: Sensor, bands: tuple[str, ...]) -> dict[str, str]:
    """Canonical band -> the QA asset that masks it (one shared asset, or one per band)."""
    if sensor.qa_per_band:
        return {b: sensor.qa_per_band[b] for b in bands}
    if sensor.qa_asset is None:
        return {}
    return dict.fromkeys(bands, sensor.qa_asset)


def masked_cube(raw: xr.Dataset, sensor: Sensor, bands: tuple[str, ...]) -> xr.DataArray:
    """Stack raw assets into masked reflectance.

    Parameters
    ----------
    raw : Dataset of native-dtype DataArrays (time, y, x), one per asset key.
    sensor : how to scale and which QA bits are invalid.
    bands : canonical band names, in output order.

    Returns
    -------
    DataArray (time, band, y, x) float32: reflectance, NaN = nodata, cloud, shadow, snow, fill.
    """
    qa_of = qa_assets(sensor, bands)
    layers = []
    for band in bands:
        refl = to_reflectance(raw[sensor.asset_for(band)], sensor)
        if band in qa_of:
            refl = refl.where(~_invalid(raw[qa_of[band]], sensor))
        layers.append(refl.astype(np.float32))
    cube = xr.concat(layers, dim=xr.Variable("band", list(bands)), coords="minimal")
    return cube.transpose("time", "band", ...)


def _invalid(qa: xr.DataArray, sensor: Sensor) -> xr.DataArray:
    """The sensor's numpy QA decoder applied blockwise (lazy on dask)."""
    return xr.apply_ufunc(sensor.invalid_from_qa, qa, dask="parallelized", output_dtypes=[bool])


def clear_mask(cube: xr.DataArray) -> xr.DataArray:
    """True where every band is valid: (time, band, y, x) -> (time, y, x) bool."""
    return cube.notnull().all("band")


def clear_fraction(cube: xr.DataArray) -> xr.DataArray:
    """Fraction of pixels valid in every band, per time: (time,) float64 in [0, 1] (lazy)."""
    return clear_mask(cube).mean(("y", "x"))


def merge_same_day(cube: xr.DataArray, day: xr.DataArray) -> xr.DataArray:
    """Merge scenes sharing a ``day`` label: per pixel, the first valid value in time order.

    Adjacent Landsat scenes of one overpass (same path, consecutive rows) are
    masked *before* merging, so a clear pixel of one scene is not hidden by a
    cloudy pixel of the other.

    Parameters
    ----------
    cube : (time, band, y, x) masked reflectance, sorted by time.
    day : (time,) datetime64[ns] day labels (midnight).

    Returns
    -------
    (time, band, y, x) with one entry per distinct day, ``time`` = that day.
    """
    if len(np.unique(day.values)) == cube.sizes["time"]:
        return cube.assign_coords(time=day.values)
    merged = cube.assign_coords(day=("time", day.values)).groupby("day").first(skipna=True)
    return merged.rename(day="time").transpose("time", "band", ...)
