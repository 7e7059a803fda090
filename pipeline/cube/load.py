"""Loader backends: STAC items -> raw, native-dtype rasters on a given GeoBox (lazy, dask).

Both backends honour one :class:`Reader` protocol, so the cube builder takes
any reader (a test can inject its own) and every backend gives the same raw
Dataset: one variable per asset key, dims (time, y, x), one time step per item
in the order given, the asset's native dtype, ``nodata`` where nothing was read.
Scaling and masking happen afterwards in :mod:`pipeline.cube.mask`. The cubes of the
odc backend are built by :mod:`pipeline.cube.scene_read` instead (one task per cube
chunk, through :class:`RetryingRioDriver`); :func:`read_odc` stays the per-asset
odc-stac reader it is checked against.

A read that fails (missing file, HTTP error after GDAL's retries) raises: odc-stac
with ``fail_on_error=True``; stackstac with ``errors_as_nodata=()`` (its default
turns HTTP 404 into silent nodata).

Retries above GDAL: GDAL retries HTTP 5xx and resets itself, but not a response
body cut short ("Read failed"), and a cut-short *header* can even open as a
dataset without georeferencing (libtiff drops the GeoTIFF tags it could not
read), which would be read as "no overlap" = nodata. Both readers therefore
check what they read (the odc reader: the window its public read returned
against the item's STAC grid; the stackstac reader: :func:`check_georeferenced`
on an open just before) and retry a failed read up to :data:`READ_ATTEMPTS`
times, inside the read task, so the retry works on any Dask scheduler (the
local one of the cube stage and the cluster's workers). Only public APIs are
used: odc-loader's reader-driver classes, stackstac's reader ``close()``, GDAL
configuration options.
"""

from __future__ import annotations

import contextlib
import functools
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit

import numpy as np
import pystac
import rasterio
import xarray as xr
from odc.geo.geobox import GeoBox
from odc.geo.xr import xr_coords
from odc.loader import RioDriver, RioReader
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from stackstac.rio_reader import AutoParallelRioReader

from pipeline.catalog.gdal_env import stackstac_env
from pipeline.errors import InputError

# rasterio.warp warns NotGeoreferenced about the in-memory destination of a warped
# read (odc-loader's reproject into a numpy array); every *source* is checked by
# check_georeferenced before it is read, so that warning says nothing here.
warnings.filterwarnings("ignore", category=NotGeoreferencedWarning, module="rasterio.warp")

#: Reads of one asset window (first try + retries) before the read error is raised;
#: also the opens of an asset before :mod:`pipeline.cube.unreadable` calls it unreadable.
READ_ATTEMPTS = 3

T = TypeVar("T")


def _nothing() -> None:
    """No action (the default ``on_retry``)."""


class GeoreferenceError(RasterioError):
    """An asset opened without a CRS or geotransform (e.g. its header arrived cut short)."""


def check_georeferenced(ds: Any) -> None:
    """GeoreferenceError unless the open dataset ``ds`` has a CRS and a geotransform (or GCPs)."""
    if ds.gcps[0]:
        return
    if ds.crs is None or ds.transform.is_identity:
        raise GeoreferenceError("no georeferencing (CRS or geotransform missing)")


def with_retries(read: Callable[[], T], href: str, on_retry: Callable[[], None] = _nothing) -> T:
    """``read()`` up to READ_ATTEMPTS times; every try after the first bypasses GDAL's cache.

    ``read`` must check what it opened (:func:`check_georeferenced`); ``on_retry`` runs
    before each new try (e.g. to drop a dataset handle the reader keeps).
    """
    attempt = 1
    while True:
        try:
            with uncached(href) if attempt > 1 else contextlib.nullcontext():
                return read()
        except (RasterioError, RuntimeError):  # stackstac wraps rasterio's errors
            if attempt == READ_ATTEMPTS:
                raise
            attempt += 1
            on_retry()


#: GDAL's virtual file system prefix per URL scheme (https://gdal.org/en/stable/user/virtual_file_systems.html).
_VSI_PREFIX = {
    "http": "/vsicurl/",
    "https": "/vsicurl/",
    "s3": "/vsis3/",
    "gs": "/vsigs/",
    "az": "/vsiaz/",
}


def gdal_name(href: str) -> str:
    """GDAL's name of the file at ``href``: ``/vsicurl/https://...``, ``/vsis3/bucket/key``, a path.

    This is the form GDAL's ``CPL_VSIL_CURL_NON_CACHED`` option matches its prefixes against.
    """
    scheme, sep, rest = href.partition("://")
    if not sep:
        return href
    if scheme == "file":
        return urlsplit(href).path  # as rasterio opens it (no unquoting)
    if scheme.lower() in _VSI_PREFIX:
        prefix = _VSI_PREFIX[scheme.lower()]
        return prefix + (href if prefix == "/vsicurl/" else rest)
    return href


def uncached(href: str) -> rasterio.Env:
    """A GDAL environment in which ``href`` bypasses /vsicurl/'s cache of downloaded ranges.

    A response cut short can leave a short header range in that process-wide cache,
    and every later open of the file would read the same broken header; with
    ``CPL_VSIL_CURL_NON_CACHED`` the file is fetched anew and its cached ranges are
    dropped when the handle closes. The option takes GDAL's name of the file
    (:func:`gdal_name`).
    """
    return rasterio.Env(CPL_VSIL_CURL_NON_CACHED=gdal_name(href))


def _expected_roi(src: Any, cfg: Any, dst_geobox: GeoBox) -> tuple[Any, ...] | None:
    """Where the asset's STAC footprint (``proj:*``) lands on ``dst_geobox``, as odc computes it.

    None when the item declares no grid (the read's result cannot be checked then).
    """
    from odc.geo.overlap import compute_reproject_roi

    if not isinstance(src.geobox, GeoBox):
        return None
    ttol = 0.9 if cfg.nearest else 0.05  # odc-loader's tolerance: nearest ignores sub-pixel shifts
    return tuple(compute_reproject_roi(src.geobox, dst_geobox, ttol=ttol).roi_dst)


class _RetryingRioReader(RioReader):
    """odc-loader's public rasterio reader, its result checked and the read retried.

    A header cut short opens without a CRS (odc-loader then fails an internal
    assertion) or without a geotransform (the pixels would land elsewhere): both are
    turned into :class:`GeoreferenceError` by comparing the window the read returned
    with the one the item's STAC grid gives (and, when they differ, whether the file
    itself lost its georeferencing), and retried by :func:`with_retries` with the
    file's GDAL cache bypassed. Items without a STAC grid get a
    georeferencing check on a separate open instead.
    """

    def __init__(self, src: Any, ctx: Any) -> None:
        super().__init__(src, ctx)
        self.source = src  # our own handle: RioReader keeps it in a private attribute

    def read(self, cfg: Any, dst_geobox: GeoBox, *, dst: Any = None, selection: Any = None) -> Any:
        return with_retries(lambda: self._checked(cfg, dst_geobox, dst, selection), self.source.uri)

    def _checked(self, cfg: Any, dst_geobox: GeoBox, dst: Any, selection: Any) -> Any:
        expected = _expected_roi(self.source, cfg, dst_geobox)
        if expected is None:
            with rasterio.open(self.source.uri, sharing=False) as ds:
                check_georeferenced(ds)
        try:
            roi, pixels = super().read(cfg, dst_geobox, dst=dst, selection=selection)
        except (AssertionError, ValueError) as exc:  # odc-loader on a dataset without a CRS
            raise GeoreferenceError(f"no usable georeferencing ({exc!r})") from None
        if expected is not None and tuple(roi) != expected:
            # Lost georeferencing (a header cut short) is a fault to retry; a file that is
            # georeferenced, only not as its STAC item says, is read on its own grid as any
            # GDAL reader does (odc-loader reprojects from it), never retried as a fault.
            with rasterio.open(self.source.uri, sharing=False) as ds:
                try:
                    check_georeferenced(ds)
                except GeoreferenceError:
                    raise GeoreferenceError(
                        f"the read covered {roi}, the item's grid gives {expected} "
                        "(geotransform lost)"
                    ) from None
        return roi, pixels


class RetryingRioDriver(RioDriver):
    """odc-loader's rasterio driver whose readers check and retry (pickled into the Dask graph).

    ``signer`` (e.g. :class:`pipeline.catalog.signing.AssetSigner`) signs each href in
    :meth:`open`, which odc-loader calls inside the read task: links are signed when read.
    """

    def __init__(self, signer: Callable[[str], str] | None = None) -> None:
        super().__init__()
        self.signer = signer

    def open(self, src: Any, ctx: Any) -> RioReader:
        if self.signer:
            src = src.patch(uri=self.signer(src.uri))
        return _RetryingRioReader(src, ctx)


class _RetryingStackstacReader(AutoParallelRioReader):
    """stackstac's reader with :func:`with_retries` around each window read (re-opens on retry).

    stackstac opens the file itself (once per thread), so the georeferencing check
    runs on a separate open just before the read: weaker than the odc reader's.
    stackstac creates its readers in a task of the graph, so ``signer`` signs the href
    at compute time, not when the graph is built.
    """

    def __init__(self, *, url: str, signer: Callable[[str], str] | None = None, **kw: Any) -> None:
        super().__init__(url=signer(url) if signer else url, **kw)

    def read(self, window: Any, **kwargs: Any) -> np.ndarray:
        def once() -> np.ndarray:
            with rasterio.open(self.url, sharing=False) as ds:
                check_georeferenced(ds)
            return super(_RetryingStackstacReader, self).read(window, **kwargs)

        # close(): the next read re-opens the file (under the retry's uncached GDAL env)
        return with_retries(once, self.url, self.close)


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
    signer: Callable[[str], str] | None = None,
) -> xr.Dataset:
    """Read with odc-stac (handles sinusoidal MODIS WKT2 without an EPSG code).

    ``signer`` makes each asset href readable when it is read (Planetary Computer).
    """
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
        driver=RetryingRioDriver(signer),
        stac_cfg={c: {"assets": per_asset} for c in collections},
    )
    return ds.drop_vars("time")


def read_stackstac(
    items: Sequence[pystac.Item],
    assets: Sequence[AssetSpec],
    geobox: GeoBox,
    chunks: Mapping[str, int],
    signer: Callable[[str], str] | None = None,
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
            chunksize=(chunks.get("time", 1), 1, chunks["y"], chunks["x"]),
            dtype=np.dtype(spec.dtype),
            fill_value=np.dtype(spec.dtype).type(spec.nodata),  # its check needs a typed scalar
            rescale=False,
            sortby_date=False,
            xy_coords="center",
            properties=False,
            band_coords=False,
            gdal_env=env,
            errors_as_nodata=(),
            reader=functools.partial(_RetryingStackstacReader, signer=signer),
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
