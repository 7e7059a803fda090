"""CF and ACDD metadata of a store: what generic readers (xarray, GDAL, THREDDS, catalogues) use.

Kept apart from :mod:`pipeline.store.layout` (which decides variables, dtypes and
chunks) so that metadata conventions can evolve without touching the write path.

* CF ``standard_name`` on the fused reflectance (``surface_bidirectional_reflectance``,
  the name of CF's standard-name table for BRDF-normalised surface reflectance) and
  on its ancillaries through CF's standard-name modifiers (``standard_error``,
  ``status_flag``); NDVI has no CF standard name, so it carries ``long_name`` only.
* ``ancillary_variables`` links every value variable to ``quality`` and
  ``uncertainty`` (and the reference-pair distances), so a reader finds the
  per-pixel trust of a value without knowing this project.
* ACDD 1.3 global attributes: title, summary, keywords, spatial and temporal
  coverage (the temporal coverage is refreshed when the store is finalised,
  because extensions grow the time axis).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np

#: CF standard name of fused surface reflectance and its ancillary quantities.
REFLECTANCE = "surface_bidirectional_reflectance"

#: The ancillary variables of every value variable, in the order readers list them.
ANCILLARY = ("quality", "uncertainty", "ref_before_days", "ref_after_days")


def variable_cf(name: str, bands: tuple[str, ...]) -> dict[str, Any]:
    """CF ``standard_name`` / ``ancillary_variables`` of one store variable (may be empty).

    Parameters
    ----------
    name : store variable name.
    bands : the fused reflectance bands of the store.
    """
    if name in bands:
        return {"standard_name": REFLECTANCE, "ancillary_variables": " ".join(ANCILLARY)}
    if name == "ndvi":
        return {"ancillary_variables": " ".join(ANCILLARY)}
    if name == "uncertainty":
        return {"standard_name": f"{REFLECTANCE} standard_error"}
    if name == "quality":
        return {"standard_name": f"{REFLECTANCE} status_flag"}
    return {}


def geospatial_bounds(y: np.ndarray, x: np.ndarray, crs_wkt: str) -> dict[str, float]:
    """ACDD ``geospatial_lat/lon_min/max`` (degrees) of a grid given by pixel centres in metres."""
    from pyproj import CRS, Transformer

    to_lonlat = Transformer.from_crs(CRS.from_wkt(crs_wkt), "EPSG:4326", always_xy=True)
    west, south, east, north = to_lonlat.transform_bounds(
        float(x.min()), float(y.min()), float(x.max()), float(y.max()), densify_pts=21
    )
    return {
        "geospatial_lat_min": round(south, 6),
        "geospatial_lat_max": round(north, 6),
        "geospatial_lon_min": round(west, 6),
        "geospatial_lon_max": round(east, 6),
    }


def global_attrs(region: str, bands: tuple[str, ...], bounds: dict[str, float]) -> dict[str, Any]:
    """CF + ACDD 1.3 global attributes of a new store (time coverage: :func:`time_coverage`)."""
    return {
        "Conventions": "CF-1.10, ACDD-1.3",
        "title": f"Dense daily fused reflectance: {region}",
        "summary": (
            "Daily 30 m surface reflectance fused from Landsat Collection 2 Level-2 (fine) and "
            "MODIS (coarse) by spatiotemporal fusion; per-pixel quality flags, predicted "
            "uncertainty and the distance to the reference pairs used are ancillary variables."
        ),
        "keywords": "spatiotemporal fusion, surface reflectance, NDVI, Landsat, MODIS, "
        + ", ".join(bands),
        "source": "Landsat Collection 2 Level-2 and MODIS, fused by stf",
        "processing_level": "L3 (fused, gridded)",
        "product_version": "1",
        "date_created": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        **bounds,
    }


def time_coverage(times: np.ndarray) -> dict[str, str]:
    """ACDD ``time_coverage_start/end/resolution`` of a daily datetime64 axis."""
    days = np.asarray(times).astype("datetime64[D]")
    return {
        "time_coverage_start": str(days.min()),
        "time_coverage_end": str(days.max()),
        "time_coverage_resolution": "P1D",
    }
