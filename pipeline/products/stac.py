"""STAC items and a collection for every product, so downstream jobs discover them like inputs.

Items carry ``proj:code``/``proj:shape``/``proj:transform`` (projection extension) plus
``proj:epsg`` where the CRS has an EPSG code (stackstac reads only that one; odc-stac reads
either; pystac drops it when *reading* an item -- its projection v2 migration -- so give
stackstac the item JSON, ``pystac_client``'s ``items_as_dicts()``, or ``epsg=``) and, for
rasters, ``raster:bands``; the crop map adds ``classification:classes``.
The fused store itself gets an item with the datacube extension. The catalog is saved
self-contained: links and asset hrefs are relative, so a run directory can be moved or
synced to object storage as a whole.
"""

from __future__ import annotations

import datetime as dt
import json
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
    epsg = crs.to_epsg() if hasattr(crs, "to_epsg") else None
    if epsg:  # projection v1 field, still what stackstac reads
        item.properties["proj:epsg"] = int(epsg)
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
        # pystac's reader drops proj:epsg (projection v2 migration): check the file itself
        raw = json.loads(Path(item.get_self_href() or "").read_text())["properties"]
        if str(props.get("proj:code", "")).startswith("EPSG:") and "proj:epsg" not in raw:
            problems.append(f"{item.id}: no proj:epsg (stackstac cannot load it)")
        for key, asset in item.assets.items():
            if not Path(asset.get_absolute_href()).exists():
                problems.append(f"{item.id}/{key}: asset {asset.href} does not exist")
            if asset.href.endswith(".tif") and "raster:bands" not in asset.extra_fields:
                problems.append(f"{item.id}/{key}: no raster:bands")
    return problems


def add_classes(
    asset: pystac.Asset,
    class_names: dict[int, str],
    colours: dict[int, tuple[int, int, int, int]],
) -> None:
    """Name the values of a class-map asset (``classification:classes`` with colour hints)."""
    from pystac.extensions.classification import Classification, ClassificationExtension

    ext = ClassificationExtension.ext(asset, add_if_missing=True)
    ext.classes = [
        Classification.create(
            value=int(c),
            name=name,
            description=name,
            color_hint="{:02X}{:02X}{:02X}".format(*colours[int(c)][:3]),
        )
        for c, name in sorted(class_names.items())
    ]


def store_item(store: str, ds: Any, period: tuple[dt.datetime, dt.datetime]) -> pystac.Item:
    """An item for the fused Zarr store (datacube extension: dimensions and variables).

    Parameters
    ----------
    store : the store's path or URL; ``ds`` the opened store (time, y, x) with ``rio.crs``.
    period : (start, end) of its time axis (UTC).
    """
    from pystac.extensions.datacube import DatacubeExtension, Dimension, Variable

    crs = ds.rio.crs
    g = ds["quality"].isel(time=0, drop=True)
    item = make_item(
        "fusion-store",
        {},
        crs,
        g.rio.bounds(),
        period,
        shape=(g.sizes["y"], g.sizes["x"]),
        transform=g.rio.transform(),
    )
    item.add_asset(
        "zarr",
        pystac.Asset(
            store if "://" in store else str(Path(store).resolve()),
            media_type=MEDIA[".zarr"],
            roles=["data"],
            extra_fields={"xarray:open_kwargs": {"consolidated": True, "decode_coords": "all"}},
        ),
    )
    cube = DatacubeExtension.ext(item, add_if_missing=True)
    ref = crs.to_epsg() or crs.to_wkt()
    x, y, t = ds["x"].values, ds["y"].values, ds["time"].values
    res = float(abs(x[1] - x[0])) if x.size > 1 else 30.0
    cube.dimensions = {
        "time": Dimension.from_dict(
            {"type": "temporal", "extent": [str(t[0])[:10], str(t[-1])[:10]], "step": "P1D"}
        ),
        "x": Dimension.from_dict(
            {
                "type": "spatial",
                "axis": "x",
                "extent": [float(x.min()), float(x.max())],
                "step": res,
                "reference_system": ref,
            }
        ),
        "y": Dimension.from_dict(
            {
                "type": "spatial",
                "axis": "y",
                "extent": [float(y.min()), float(y.max())],
                "step": -res,
                "reference_system": ref,
            }
        ),
    }
    cube.variables = {
        name: Variable.from_dict(
            {
                "dimensions": list(var.dims),
                "type": "data",
                "description": str(var.attrs.get("long_name", name)),
                **({"unit": var.attrs["units"]} if "units" in var.attrs else {}),
            }
        )
        for name, var in ds.data_vars.items()
    }
    return item
