"""STAC items and a collection for every product, so downstream jobs discover them like inputs.

Items carry ``proj:code``/``proj:shape``/``proj:transform`` (projection extension) and, for
rasters, ``raster:bands``. The catalog is saved self-contained: links and asset hrefs are
relative, so a run directory can be moved or synced to object storage as a whole.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pystac
from pystac.extensions.projection import ProjectionExtension
from pystac.extensions.raster import RasterBand, RasterExtension

MEDIA = {
    ".tif": pystac.MediaType.COG,
    ".parquet": "application/vnd.apache.parquet",
    ".zarr": "application/vnd+zarr",
    ".png": pystac.MediaType.PNG,
    ".json": pystac.MediaType.JSON,
}


def _footprint(bounds: tuple[float, float, float, float], crs: Any) -> tuple[list[float], dict]:
    """(bbox, GeoJSON polygon) in EPSG:4326 of native ``bounds`` (left, bottom, right, top)."""
    from rasterio.warp import transform_bounds

    w, s, e, n = transform_bounds(crs, "EPSG:4326", *bounds, densify_pts=21)
    ring = [[w, s], [e, s], [e, n], [w, n], [w, s]]
    return [w, s, e, n], {"type": "Polygon", "coordinates": [ring]}


def make_item(
    item_id: str,
    assets: dict[str, Path],
    crs: Any,
    bounds: tuple[float, float, float, float],
    period: tuple[dt.datetime, dt.datetime],
    shape: tuple[int, int] | None = None,
    transform: Any = None,
    bands: list[dict[str, Any]] | None = None,
    properties: dict[str, Any] | None = None,
) -> pystac.Item:
    """An item for product files sharing one footprint and period.

    Parameters
    ----------
    assets : asset key -> file (absolute path); media type from the suffix.
    crs : the grid CRS; ``bounds`` native (left, bottom, right, top) in metres.
    period : (start, end) of the data (UTC); ``shape``/``transform`` of the raster grid.
    bands : ``raster:bands`` entries (``nodata``, ``data_type``, ...) for GeoTIFF assets.
    """
    bbox, geom = _footprint(bounds, crs)
    start, end = period
    item = pystac.Item(
        item_id, geom, bbox, None, {**(properties or {})}, start_datetime=start, end_datetime=end
    )
    proj = ProjectionExtension.ext(item, add_if_missing=True)
    proj.code = crs.to_string() if hasattr(crs, "to_string") else str(crs)
    proj.bbox = list(bounds)
    if shape is not None:
        proj.shape = list(shape)
    if transform is not None:
        proj.transform = list(transform)[:6]
    for key, path in assets.items():
        asset = pystac.Asset(
            str(Path(path).resolve()), media_type=MEDIA.get(Path(path).suffix), roles=["data"]
        )
        item.add_asset(key, asset)
        if bands is not None and Path(path).suffix == ".tif":
            RasterExtension.ext(asset, add_if_missing=True).bands = [
                RasterBand.create(**b) for b in bands
            ]
    return item


def write_collection(
    root: Path, collection_id: str, description: str, items: list[pystac.Item]
) -> Path:
    """Save ``items`` under ``root/stac`` as a self-contained collection; return its path."""
    boxes = np.array([i.bbox for i in items], dtype=float)
    spatial = pystac.SpatialExtent([[*boxes[:, :2].min(0).tolist(), *boxes[:, 2:].max(0).tolist()]])
    start = min(i.common_metadata.start_datetime for i in items)
    end = max(i.common_metadata.end_datetime for i in items)
    extent = pystac.Extent(spatial, pystac.TemporalExtent([[start, end]]))
    coll = pystac.Collection(collection_id, description, extent, license="proprietary")
    for item in items:
        coll.add_item(item)
    stac_dir = root / "stac"
    coll.normalize_hrefs(str(stac_dir))
    coll.make_all_asset_hrefs_relative()
    coll.save(pystac.CatalogType.SELF_CONTAINED)
    return stac_dir / "collection.json"


def check_collection(path: Path) -> list[str]:
    """Read a saved collection back and list what a consumer would miss (empty = fine).

    Checks each item for the required STAC fields and our conventions (assets exist on
    disk, ``proj:code``, ``raster:bands`` on GeoTIFF assets); JSON-schema validation
    needs the schemas online, so it is not done here.
    """
    coll = pystac.Collection.from_file(str(path))
    problems = []
    for item in coll.get_items(recursive=True):
        props = item.properties
        if item.geometry is None or item.bbox is None:
            problems.append(f"{item.id}: no geometry/bbox")
        if item.datetime is None and not ("start_datetime" in props and "end_datetime" in props):
            problems.append(f"{item.id}: no datetime or start/end_datetime")
        if not (props.get("proj:code") or props.get("proj:epsg")):
            problems.append(f"{item.id}: no proj:code")
        for key, asset in item.assets.items():
            if not Path(asset.get_absolute_href()).exists():
                problems.append(f"{item.id}/{key}: asset {asset.href} does not exist")
            if asset.href.endswith(".tif") and "raster:bands" not in asset.extra_fields:
                problems.append(f"{item.id}/{key}: no raster:bands")
    return problems
