"""Training labels on the store grid: field polygons (GeoParquet/GeoJSON) or a class raster.

Each labelled pixel carries a class id and a *group* id: the field it belongs to
(polygons) or a square spatial block (rasters, no fields known). Splits are made
by group so that no field (block) is in both training and test sets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from pipeline.errors import InputError

#: Columns tried, in order, for the crop label and the field id of a polygon file.
LABEL_COLUMNS = ("class_id", "crop", "crop_type", "class_name", "class", "label")
ID_COLUMNS = ("field_id", "id", "parcel_id")


@dataclass(frozen=True)
class LabelGrid:
    """Labels rasterised on the store grid.

    Attributes
    ----------
    classes : (y, x) int16 class id, -1 = unlabelled.
    groups : (y, x) int32 field (or spatial block) id, -1 = none.
    class_names : class id -> name.
    fields : the polygons (GeoDataFrame with ``field_id``, ``class_id``, ``crop``) or None.
    """

    classes: np.ndarray
    groups: np.ndarray
    class_names: dict[int, str]
    fields: object | None = field(default=None, compare=False)


def load_labels(
    path: str | Path, grid: xr.DataArray, column: str | None = None, block: int = 32
) -> LabelGrid:
    """Read labels from polygons (.parquet/.geojson/.gpkg) or a raster, onto ``grid``'s pixels.

    Parameters
    ----------
    path : label file. Polygons in any CRS are reprojected to the grid's; a raster in another
        CRS or on another grid is resampled onto it (nearest class); a raster without a CRS
        must have the grid's shape (it is taken to be on the grid).
    grid : any (y, x) DataArray of the store (coords in metres, ``rio.crs`` set).
    column : label column of a polygon file (default: first of :data:`LABEL_COLUMNS`).
    block : side (px) of the spatial blocks used as groups for raster labels.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(
            f"labels not found: {path}; pass field polygons (.parquet/.geojson) or a class raster"
        )
    if path.suffix.lower() in (".parquet", ".geoparquet", ".geojson", ".json", ".gpkg"):
        return _from_polygons(path, grid, column)
    return _from_raster(path, grid, block)


def _read_polygons(path: Path):  # -> gpd.GeoDataFrame
    import geopandas as gpd

    try:
        if path.suffix.lower() in (".parquet", ".geoparquet"):
            return gpd.read_parquet(path)
        return gpd.read_file(path)
    except Exception as exc:  # pyarrow/pyogrio raise many types for unreadable files
        raise InputError(
            f"cannot read labels {path} ({type(exc).__name__}); pass GeoParquet or GeoJSON"
        ) from None


def _from_polygons(path: Path, grid: xr.DataArray, column: str | None) -> LabelGrid:
    gdf = _read_polygons(path)
    crs = grid.rio.crs
    if gdf.crs is None:
        raise InputError(
            f"labels {path.name} have no CRS; set it (GeoDataFrame.set_crs) to the store's {crs}"
        )
    if not gdf.crs.equals(crs):
        gdf = gdf.to_crs(crs)  # the grid's CRS decides; vertices are transformed, not pixels
    col = column or next((c for c in LABEL_COLUMNS if c in gdf.columns), None)
    if col is None or col not in gdf.columns:
        raise InputError(
            f"labels {path.name} have no label column (tried {', '.join(LABEL_COLUMNS)}); "
            "rename the crop column to 'crop'"
        )
    gdf = gdf.copy()
    gdf["class_id"], names = _class_ids(gdf, col)
    id_col = next((c for c in ID_COLUMNS if c in gdf.columns), None)
    gdf["field_id"] = gdf[id_col].astype(int) if id_col else np.arange(len(gdf))
    shape, transform = (grid.sizes["y"], grid.sizes["x"]), grid.rio.transform()
    classes = _burn(gdf.geometry, gdf["class_id"], shape, transform).astype(np.int16)
    groups = _burn(gdf.geometry, gdf["field_id"], shape, transform)
    if (classes >= 0).sum() == 0:
        raise InputError(
            f"labels {path.name} do not overlap the store grid; check their extent and CRS"
        )
    return LabelGrid(classes, groups, dict(sorted(names.items())), gdf)


def _class_ids(gdf, col: str) -> tuple[np.ndarray, dict[int, str]]:
    """Integer class ids of each polygon and the id -> name table.

    Integer columns are kept as ids (names from a ``crop``/``class_name`` column when
    present); text columns are numbered in sorted order.
    """
    if gdf[col].dtype.kind in "iu":
        ids = gdf[col].to_numpy().astype(int)
        name_col = next((c for c in ("crop", "crop_type", "class_name") if c in gdf.columns), None)
        labels = gdf[name_col].astype(str) if name_col else pd.Series(ids).astype(str)
        return ids, {int(i): str(n) for i, n in sorted(zip(ids, labels, strict=True))}
    text = gdf[col].astype(str)
    names = dict(enumerate(sorted(text.unique())))
    return text.map({n: i for i, n in names.items()}).to_numpy().astype(int), names


def _burn(geoms, values, shape: tuple[int, int], transform) -> np.ndarray:
    """Rasterise polygon ``values`` onto the grid (pixel-centre rule), -1 outside: (y, x) int32."""
    from rasterio.features import rasterize

    pairs = zip(geoms, values.astype(int), strict=True)
    return rasterize(pairs, out_shape=shape, transform=transform, fill=-1, dtype="int32")


def _from_raster(path: Path, grid: xr.DataArray, block: int) -> LabelGrid:
    import rasterio

    try:
        with rasterio.open(path) as src:
            data, nodata, crs, transform = src.read(1), src.nodata, src.crs, src.transform
    except rasterio.errors.RasterioIOError:
        raise InputError(
            f"cannot read label raster {path}; pass a GeoTIFF/ENVI class map"
        ) from None
    shape = (grid.sizes["y"], grid.sizes["x"])
    classes = data.astype(np.int16)
    if nodata is not None:
        classes[data == nodata] = -1
    same_grid = data.shape == shape and (crs is None or transform == grid.rio.transform())
    if crs is not None and (crs != grid.rio.crs or not same_grid):
        classes = _warp_classes(classes, crs, transform, grid)
    elif data.shape != shape:
        raise InputError(
            f"label raster {path.name} is {data.shape} px without a CRS, the store grid {shape}; "
            "give it a CRS or resample it onto the grid"
        )
    return LabelGrid(
        classes,
        block_groups(shape, block, classes >= 0),
        {int(c): str(c) for c in np.unique(classes[classes >= 0])},
    )


def _warp_classes(classes: np.ndarray, crs, transform, grid: xr.DataArray) -> np.ndarray:
    """Resample an int16 class raster onto the store grid (nearest: classes are not averaged)."""
    from rasterio.warp import Resampling, reproject

    out = np.full((grid.sizes["y"], grid.sizes["x"]), -1, np.int16)
    reproject(
        classes,
        out,
        src_transform=transform,
        src_crs=crs,
        src_nodata=-1,
        dst_transform=grid.rio.transform(),
        dst_crs=grid.rio.crs,
        dst_nodata=-1,
        resampling=Resampling.nearest,
    )
    return out


def block_groups(shape: tuple[int, int], block: int, mask: np.ndarray | None = None) -> np.ndarray:
    """(y, x) int32 id of the ``block`` x ``block`` square of each pixel (-1 outside ``mask``)."""
    yy, xx = np.indices(shape)
    n_bx = -(-shape[1] // block)
    groups = ((yy // block) * n_bx + xx // block).astype(np.int32)
    return groups if mask is None else np.where(mask, groups, -1).astype(np.int32)
