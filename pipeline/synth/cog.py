"""Cloud-optimised GeoTIFF writer used for every synthetic asset."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import rasterio
import rasterio.shutil
from rasterio.windows import Window

from pipeline.synth.grid import Grid


class _SmallBlocks(logging.Filter):
    """Drop GDAL's notice that COG blocks under 128 px are unusual.

    The demo's MODIS rasters are a few dozen pixels wide: 16 px blocks give them
    overviews, and GDAL honours the value; the notice came once per file.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return "BLOCKSIZE creation option" not in record.getMessage()


_RASTERIO_GDAL_LOG = logging.getLogger("rasterio._env")


def _quiet_small_blocks() -> None:
    if not any(isinstance(f, _SmallBlocks) for f in _RASTERIO_GDAL_LOG.filters):
        _RASTERIO_GDAL_LOG.addFilter(_SmallBlocks())


def _cog_options(blocksize: int) -> dict[str, object]:
    # Nearest keeps QA bit fields and DN classes intact in the overviews.
    return {"compress": "deflate", "blocksize": blocksize, "overview_resampling": "nearest"}


def write_cog(
    path: Path, data: np.ndarray, grid: Grid, nodata: float | None, blocksize: int = 64
) -> None:
    """Write one band (y, x) as a COG (tiled, deflate, internal overviews when larger than a block).

    ``blocksize`` must be a multiple of 16; small blocks give the small demo rasters overviews.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    _quiet_small_blocks()
    profile = {
        "driver": "COG",
        "width": grid.width,
        "height": grid.height,
        "count": 1,
        "dtype": data.dtype.name,
        "crs": grid.crs,
        "transform": grid.transform,
        "nodata": nodata,
        **_cog_options(blocksize),
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data, 1)


class StripCog:
    """One band written a strip of rows at a time, then made a COG like :func:`write_cog`.

    Strips go into an uncompressed tiled GeoTIFF beside ``path`` (windowed writes, so
    the whole raster is never in memory); :meth:`close` converts it to the COG (GDAL
    streams the copy and builds the overviews within its block cache) and removes it.
    """

    def __init__(
        self, path: Path, grid: Grid, dtype: str, nodata: float | None, blocksize: int = 64
    ) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path, self.blocksize = path, blocksize
        self._tmp = path.with_name(path.name + ".strips.tif")
        self._dst = rasterio.open(
            self._tmp,
            "w",
            driver="GTiff",
            width=grid.width,
            height=grid.height,
            count=1,
            dtype=dtype,
            crs=grid.crs,
            transform=grid.transform,
            nodata=nodata,
            tiled=True,
            blockxsize=blocksize,
            blockysize=blocksize,
        )

    def write(self, row0: int, data: np.ndarray) -> None:
        """Write (rows, x) ``data`` at world rows ``row0..row0 + rows``."""
        window = Window(0, row0, data.shape[1], data.shape[0])
        self._dst.write(data, 1, window=window)

    def close(self) -> None:
        """Finish the COG at ``path`` and drop the temporary strips file."""
        self._dst.close()
        _quiet_small_blocks()
        rasterio.shutil.copy(self._tmp, self.path, driver="COG", **_cog_options(self.blocksize))
        self._tmp.unlink()
