"""A JSON-ready summary of loaded cubes: scenes, clear fractions, pairs, grid, chunks, sizes."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from pipeline.catalog.search import SearchResult
from pipeline.config import RunConfig
from pipeline.cube.cubes import Cubes


def _scenes(cube: xr.DataArray, collection: str, found: int) -> dict[str, Any]:
    days = [pd.Timestamp(t).date().isoformat() for t in cube.time.values]
    clear = [round(float(c), 4) for c in np.asarray(cube["clear_fraction"])]
    return {
        "collection": collection,
        "items_found": found,
        "scenes": len(days),
        "dates": days,
        "clear_fraction": clear,
    }


def _chunks(cube: xr.DataArray) -> dict[str, int]:
    """Largest chunk length per dimension (time, band, y, x)."""
    sizes = zip(cube.dims, cube.chunks or (), strict=True)
    return {str(dim): int(max(lengths)) for dim, lengths in sizes}


def _coregistration(cubes: Cubes, resolution_m: float) -> dict[str, Any] | None:
    """The co-registration record plus a one-line ``summary`` (None if the cubes have none)."""
    record = cubes.coregistration
    if record is None:
        return None
    return {**record.to_dict(), "summary": record.describe(resolution_m)}


def summarize(cfg: RunConfig, result: SearchResult, cubes: Cubes) -> dict[str, Any]:
    """Everything ``stf cube`` reports, as plain JSON types.

    Sizes are of the float32 cubes in MB (10^6 bytes) if fully loaded.
    """
    fine_box, coarse_box = cubes.geobox, cubes.coarse_geobox
    return {
        "endpoint": result.url,
        "region": cfg.region.name,
        "time": {"start": cfg.time.start.isoformat(), "end": cfg.time.end.isoformat()},
        "bands": list(cfg.bands),
        "fine": _scenes(cubes.fine, cfg.collections.fine, len(result.fine)),
        "coarse": _scenes(cubes.coarse, cfg.collections.coarse, len(result.coarse)),
        "skipped": [asdict(item) for item in cubes.skipped],
        "coregistration": _coregistration(cubes, abs(fine_box.resolution.x)),
        "pairs": [
            {
                "date": p.date.isoformat(),
                "clear_fraction": round(p.clear_fraction, 4),
                "coarse_date": p.coarse_date.isoformat(),
                "coarse_clear_fraction": round(p.coarse_clear_fraction, 4),
            }
            for p in cubes.pairs
        ],
        "grid": {
            "crs": str(fine_box.crs),
            "shape": list(fine_box.shape.yx),
            "resolution_m": abs(fine_box.resolution.x),
            "coarse_shape": list(coarse_box.shape.yx),
            "coarse_resolution_m": abs(coarse_box.resolution.x),
            "bounds": [float(v) for v in fine_box.boundingbox],
        },
        "chunks": {"fine": _chunks(cubes.fine), "coarse": _chunks(cubes.coarse)},
        "size_mb": {
            "fine": round(cubes.fine.nbytes / 1e6, 3),
            "coarse": round(cubes.coarse.nbytes / 1e6, 3),
            "coarse_on_fine": round(cubes.coarse_on_fine.nbytes / 1e6, 3),
        },
    }
