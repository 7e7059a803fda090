"""Assets that cannot be read, and the STAC items a run leaves out because of them.

A read of the cubes stops at the first unreadable asset, and the error often
names no file (an HTTP 404 arrives as "HTTP response code: 404"). On that
failure path :func:`unreadable_items` opens every asset the run reads (a GDAL
open: the header only), each up to :data:`~pipeline.cube.load.READ_ATTEMPTS`
times, so a transient fault never drops a scene: an asset that fails every
attempt is missing for this run and for every step that reloads the cubes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pystac

from pipeline.cube.load import READ_ATTEMPTS, GeoreferenceError, check_georeferenced, uncached
from pipeline.security import redact_url

#: Assets opened at once while probing (each open is one or two HTTP range requests).
PROBE_THREADS = 8


@dataclass(frozen=True)
class SkippedItem:
    """A STAC item left out of a run because one of its assets cannot be read.

    Attributes
    ----------
    item : STAC item id.
    collection : STAC collection id.
    asset : key of the (first) unreadable asset.
    href : its href, credentials redacted.
    reason : GDAL's error, one line (e.g. ``HTTP response code: 404``).
    """

    item: str
    collection: str
    asset: str
    href: str
    reason: str

    def describe(self) -> str:
        """``ITEM (asset KEY: REASON)``, for warnings and error lines."""
        return f"{self.item} (asset {self.asset}: {self.reason})"


def open_error(href: str, attempts: int = READ_ATTEMPTS) -> str | None:
    """None if ``href`` opens as a georeferenced raster within ``attempts``; else the last error."""
    import rasterio
    from rasterio.errors import RasterioError

    reason = "unreadable"
    for attempt in range(attempts):
        try:
            with uncached(href) if attempt else contextlib.nullcontext(), rasterio.open(href) as ds:
                check_georeferenced(ds)
            return None
        except (RasterioError, GeoreferenceError) as exc:
            text = str(exc).strip()
            reason = text.splitlines()[0] if text else type(exc).__name__
    return reason


def unreadable_items(
    items: Sequence[pystac.Item],
    keys: Iterable[str],
    attempts: int = READ_ATTEMPTS,
    signer: Callable[[str], str] | None = None,
) -> list[SkippedItem]:
    """Items (in their order) with an asset among ``keys`` that does not open, first such asset.

    Parameters
    ----------
    items : STAC items whose assets the run reads.
    keys : asset keys read from every item, in the order they are reported.
    attempts : opens per asset before it counts as unreadable.
    signer : makes an href readable right before it is opened (Planetary Computer);
        the reported href stays the unsigned one.
    """
    keys = list(keys)
    assets = [(it, key, it.assets[key].get_absolute_href() or "") for it in items for key in keys]
    with ThreadPoolExecutor(PROBE_THREADS) as pool:
        sign = signer or str
        errors = list(pool.map(lambda a: open_error(sign(a[2]), attempts), assets))
    skipped: dict[str, SkippedItem] = {}
    for (item, key, href), error in zip(assets, errors, strict=True):
        if error is not None and item.id not in skipped:
            skipped[item.id] = SkippedItem(
                item.id, str(item.collection_id), key, redact_url(href), error
            )
    return list(skipped.values())
