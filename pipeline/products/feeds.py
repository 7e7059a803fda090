"""Feeds for downstream jobs: Zarr and COG products, per-field and per-pixel GeoParquet tables."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import xarray as xr

from pipeline.products.cropmap import Samples
from pipeline.products.labels import LabelGrid


def write_zarr(ds: xr.Dataset, path: Path, crs: object) -> Path:
    """Write a product Dataset (y, x[, time]) as consolidated Zarr, CRS in ``spatial_ref``."""
    import rioxarray  # noqa: F401  (registers .rio)

    ds = ds.drop_vars("spatial_ref", errors="ignore").rio.write_crs(crs)
    for var in ds.data_vars.values():
        var.encoding.pop("chunks", None)  # chunking of the source store may not fit the product
    ds.to_zarr(path, mode="w-", consolidated=True)
    return path


def write_cog(
    da: xr.DataArray,
    path: Path,
    crs: object,
    nodata: float | int | None = None,
    descriptions: Sequence[str] | None = None,
    colormap: Mapping[int, tuple[int, int, int, int]] | None = None,
    tags: Mapping[str, str] | None = None,
) -> Path:
    """Write a (y, x) or (band, y, x) array as a Cloud-Optimized GeoTIFF (deflate, overviews).

    Parameters
    ----------
    nodata : defaults to NaN for float arrays.
    descriptions : one description per band (GIS tools show them as band names).
    colormap : value -> RGBA colour table of band 1 (uint8 class maps).
    tags : dataset metadata items (e.g. ``CLASS_3=maize``).

    The COG driver writes a file in one pass (it cannot be updated afterwards without
    breaking its layout), so the descriptions and colour table are set on a plain
    GeoTIFF first and copied into the COG with it.
    """
    import rasterio
    import rasterio.shutil
    import rioxarray  # noqa: F401

    da = da.drop_vars("spatial_ref", errors="ignore").rio.write_crs(crs)
    if nodata is None and np.issubdtype(da.dtype, np.floating):
        nodata = np.nan
    if nodata is not None:
        da = da.rio.write_nodata(nodata, encoded=False)
    if descriptions is None and colormap is None and not tags:
        da.rio.to_raster(path, driver="COG", compress="DEFLATE")
        return path
    staging = path.with_name(f".{path.name}.staging.tif")
    try:
        da.rio.to_raster(staging, driver="GTiff", compress="DEFLATE", tiled=True)
        with rasterio.open(staging, "r+") as dst:
            for i, text in enumerate(descriptions or (), start=1):
                dst.set_band_description(i, text)
            if colormap is not None:
                dst.write_colormap(1, dict(colormap))
            if tags:
                dst.update_tags(**tags)
        rasterio.shutil.copy(staging, path, driver="COG", compress="DEFLATE")
    finally:
        staging.unlink(missing_ok=True)
    return path


def pixel_centres(
    grid: xr.DataArray, rows: np.ndarray, cols: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Map coordinates (x, y) in metres of pixel indices on ``grid``."""
    return grid["x"].values[cols], grid["y"].values[rows]


def pixel_table(
    features: xr.DataArray, samples: Samples, class_names: dict[int, str], crs: object
):  # -> gpd.GeoDataFrame
    """One row per sampled pixel: ``geometry`` (point at the pixel centre), ``field_id``,
    ``class_id``, ``crop`` and one float32 column per feature."""
    import geopandas as gpd
    import pandas as pd

    xs, ys = pixel_centres(features, samples.rows, samples.cols)
    cols = pd.DataFrame(samples.x, columns=[str(f) for f in features["feature"].values])
    meta = pd.DataFrame(
        {
            "field_id": samples.groups.astype(np.int32),
            "class_id": samples.y.astype(np.int16),
            "crop": [class_names[int(c)] for c in samples.y],
            "row": samples.rows.astype(np.int32),
            "col": samples.cols.astype(np.int32),
        }
    )
    return gpd.GeoDataFrame(
        pd.concat([meta, cols], axis=1), geometry=gpd.points_from_xy(xs, ys), crs=crs
    )


def field_table(
    features: np.ndarray, names: list[str], labels: LabelGrid, crs: object
):  # -> gpd.GeoDataFrame
    """Zonal statistics per field: mean of every feature over the field's pixels (NaN ignored).

    Parameters
    ----------
    features : (feature, y, x) float32 in memory.
    labels : with ``fields`` polygons (``field_id``, ``class_id``) and the ``groups`` raster.

    Returns
    -------
    GeoDataFrame with the field polygon, ``field_id``, ``class_id``, ``crop``, ``n_pixels``
    and ``<feature>_mean`` columns (float32); fields without a pixel on the grid are dropped.
    """
    import geopandas as gpd
    import pandas as pd

    if labels.fields is None:
        raise ValueError("per-field statistics need field polygons, not a label raster")
    g = labels.groups.ravel()
    inside = g >= 0
    ids, inv = np.unique(g[inside], return_inverse=True)
    flat = features.reshape(features.shape[0], -1)[:, inside]
    finite = np.isfinite(flat)
    sums = np.stack(
        [np.bincount(inv, np.where(f, v, 0.0), ids.size) for v, f in zip(flat, finite, strict=True)]
    )
    counts = np.stack([np.bincount(inv, f, ids.size) for f in finite])
    with np.errstate(invalid="ignore", divide="ignore"):
        means = (sums / counts).T.astype(np.float32)
    stats = pd.DataFrame(means, columns=[f"{n}_mean" for n in names])
    stats.insert(0, "n_pixels", np.bincount(inv, minlength=ids.size).astype(np.int32))
    stats.insert(0, "field_id", ids.astype(np.int64))
    fields = labels.fields[["field_id", "class_id", "geometry"]].copy()
    fields["crop"] = [labels.class_names[int(c)] for c in fields["class_id"]]
    out = fields.merge(stats, on="field_id", how="inner")
    return gpd.GeoDataFrame(out, geometry="geometry", crs=crs)


def write_geoparquet(gdf, path: Path) -> Path:  # gdf: gpd.GeoDataFrame
    """Write GeoParquet (geometry as WKB, CRS in the ``geo`` metadata)."""
    gdf.to_parquet(path, index=False)
    return path
