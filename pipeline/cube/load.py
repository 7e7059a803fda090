"""Loader backends: STAC items -> raw, native-dtype rasters on a given GeoBox (lazy, dask).

Both backends honour one :class:`Reader` protocol, so the cube builder takes
any reader (a test can inject its own) and every backend gives the same raw
Dataset: one variable per asset key, dims (time, y, x), one time step per item
in the order given, the asset's native dtype, ``nodata`` where nothing was read.
Scaling and masking happen afterwards in :mod:`pipeline.cube.mask`.

A read that fails (missing file, HTTP error after GDAL's retries) raises: odc-stac
with ``fail_on_error=True``; stackstac with ``errors_as_nodata=()`` (its default
turns HTTP 404 into silent nodata).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pystac
import xarray as xr
from odc.geo.geobox import GeoBox
from odc.geo.xr import xr_coords

from pipeline.catalog.gdal_env import stackstac_env
from pipeline.errors import InputError


@dataclass(frozen=True)
class AssetSpec:
    """One asset to read.

    Attributes
    ----------
    key : STAC asset key.
    dtype : native data type (e.g. ``"uint16"``).
    nodata : fill value where the asset has no data or does not cover the grid.
    resampling : GDAL resampling name (``"nearest"``, ``"average"``).
    """

    key: str
    dtype: str
    nodata: int
    resampling: str


class Reader(Protocol):
    """Reads ``assets`` of ``items`` onto ``geobox``: Dataset of (time, y, x), one step per item."""

    def __call__(
        self,
        items: Sequence[pystac.Item],
        assets: Sequence[AssetSpec],
        geobox: GeoBox,
        chunks: Mapping[str, int],
    ) -> xr.Dataset: ...


def read_odc(
    items: Sequence[pystac.Item],
    assets: Sequence[AssetSpec],
    geobox: GeoBox,
    chunks: Mapping[str, int],
) -> xr.Dataset:
    """Read with odc-stac (handles sinusoidal MODIS WKT2 without an EPSG code)."""
    import odc.stac

    collections = {str(it.collection_id) for it in items}
    per_asset = {a.key: {"data_type": a.dtype, "nodata": a.nodata} for a in assets}
    ds = odc.stac.load(
        list(items),
        bands=[a.key for a in assets],
        geobox=geobox,
        groupby="id",  # one time step per item, in our order; we merge same-day scenes ourselves
        preserve_original_order=True,
        resampling={a.key: a.resampling for a in assets},
        chunks=dict(chunks),
        fail_on_error=True,
        stac_cfg={c: {"assets": per_asset} for c in collections},
    )
    return ds.drop_vars("time")


def read_stackstac(
    items: Sequence[pystac.Item],
    assets: Sequence[AssetSpec],
    geobox: GeoBox,
    chunks: Mapping[str, int],
) -> xr.Dataset:
    """Read with stackstac on exactly ``geobox`` (explicit epsg, bounds and resolution)."""
    import stackstac
    from rasterio.enums import Resampling

    epsg = geobox.crs.epsg if geobox.crs is not None else None
    if epsg is None:
        raise InputError(f"grid.crs: the stackstac backend needs an EPSG code, got {geobox.crs}")
    left, bottom, right, top = geobox.boundingbox
    dicts = [stackstac_item_dict(it) for it in items]
    env = stackstac_env()
    out = {}
    for spec in assets:
        arr = stackstac.stack(
            dicts,
            assets=[spec.key],
            epsg=epsg,
            resolution=abs(geobox.resolution.x),
            bounds=(left, bottom, right, top),
            snap_bounds=False,
            resampling=Resampling[spec.resampling],
            chunksize=(1, 1, chunks["y"], chunks["x"]),
            dtype=np.dtype(spec.dtype),
            fill_value=np.dtype(spec.dtype).type(spec.nodata),  # its check needs a typed scalar
            rescale=False,
            sortby_date=False,
            xy_coords="center",
            properties=False,
            band_coords=False,
            gdal_env=env,
            errors_as_nodata=(),
        )
        if arr.shape[-2:] != geobox.shape.yx:
            raise RuntimeError(f"stackstac grid {arr.shape[-2:]} differs from {geobox.shape.yx}")
        out[spec.key] = (("time", "y", "x"), arr.data[:, 0])
    return xr.Dataset(out, coords=xr_coords(geobox))


def stackstac_item_dict(item: pystac.Item) -> dict:
    """``item`` as stackstac wants it: absolute asset hrefs and ``proj:epsg`` restored.

    pystac >= 1.12 rewrites ``proj:epsg`` into ``proj:code`` on read; stackstac only
    knows ``proj:epsg`` and without it silently builds a grid shifted by a pixel.
    """
    data = item.to_dict(include_self_link=False, transform_hrefs=False)
    for key, asset in item.assets.items():
        data["assets"][key]["href"] = asset.get_absolute_href() or asset.href
        _restore_epsg(data["assets"][key])
    _restore_epsg(data["properties"])
    return data


def _restore_epsg(fields: dict) -> None:
    code = fields.get("proj:code")
    if fields.get("proj:epsg") is None and isinstance(code, str) and code.startswith("EPSG:"):
        fields["proj:epsg"] = int(code.split(":", 1)[1])


#: Backends selectable by name (``stf cube --backend``).
READERS: dict[str, Reader] = {"odc": read_odc, "stackstac": read_stackstac}
