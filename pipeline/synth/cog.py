"""Cloud-optimised GeoTIFF writer used for every synthetic asset."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import rasterio

from pipeline.synth.grid import Grid


class _SmallBlocks(logging.Filter):
    """Drop GDAL's notice that COG blocks under 128 px are unusual.

    The demo's MODIS rasters are a few dozen pixels wide: 16 px blocks give them
    overviews, and GDAL honours the value; the notice came once per file.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return "BLOCKSIZE creation option" not in record.getMessage()


_RASTERIO_GDAL_LOG = logging.getLogger("rasterio._env")


def write_cog(
    path: Path, data: np.ndarray, grid: Grid, nodata: float | None, blocksize: int = 64
) -> None:
    """Write one band (y, x) as a COG (tiled, deflate, internal overviews when larger than a block).

    ``blocksize`` must be a multiple of 16; small blocks give the small demo rasters overviews.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if not any(isinstance(f, _SmallBlocks) for f in _RASTERIO_GDAL_LOG.filters):
        _RASTERIO_GDAL_LOG.addFilter(_SmallBlocks())
    profile = {
        "driver": "COG",
        "width": grid.width,
        "height": grid.height,
        "count": 1,
        "dtype": data.dtype.name,
        "crs": grid.crs,
        "transform": grid.transform,
        "nodata": nodata,
        "compress": "deflate",
        "blocksize": blocksize,
        # Nearest keeps QA bit fields and DN classes intact in the overviews.
        "overview_resampling": "nearest",
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data, 1)
