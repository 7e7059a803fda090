"""STAC search: fine (Landsat) and coarse (MODIS) items for a run's region and dates.

Any STAC API works (Planetary Computer, Earth Search, the embedded demo world
served by ``rustac serve``); this module only ever sees its URL (the ``demo`` endpoint
name is resolved on the demo side, :func:`pipeline.demo.open_endpoint`). The fine and the
coarse collection may come from different APIs (``stac.fine`` / ``stac.coarse``). Items
keep the catalogue's unsigned asset hrefs: links are signed when an asset is read
(:mod:`pipeline.catalog.signing`), so a saved or cached search never holds a token
that expires. Cloud cover is
filtered here, on the client, because not every API implements the ``query``/``filter``
extensions (rustac's in-memory backend silently returns nothing for CQL2 filters).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pystac
import requests
from pystac_client import Client
from pystac_client.exceptions import APIError
from pystac_client.stac_api_io import StacApiIO
from urllib3.util.retry import Retry

from pipeline.catalog.signing import check_signers
from pipeline.config import RunConfig
from pipeline.errors import InputError, ServiceError
from pipeline.security import redact_url

#: Coarse items are searched this many days beyond the fine window: half an
#: 8-day composite, so every composite covering a day of the window is kept.
COARSE_EXTRA_DAYS = 4

#: HTTP statuses worth retrying: rate limiting and transient server/gateway failures.
RETRY_STATUSES = (429, 500, 502, 503, 504)


@dataclass(frozen=True)
class SearchResult:
    """Items found for a run, sorted by time then id.

    Attributes
    ----------
    fine : Landsat items, cloud cover <= the configured maximum.
    coarse : MODIS items.
    url : the STAC API searched for the fine items.
    coarse_url : the STAC API searched for the coarse items, None when it is ``url``.
    """

    fine: list[pystac.Item]
    coarse: list[pystac.Item]
    url: str
    coarse_url: str | None = None


def open_client(cfg: RunConfig, url: str) -> Client:
    """A pystac-client ``Client`` with retries/backoff and timeout (no signing: see the module).

    Raises
    ------
    ServiceError
        The endpoint cannot be reached or does not answer as a STAC API.
    """
    retry = Retry(
        total=cfg.stac.retries,
        backoff_factor=0.5,
        status_forcelist=RETRY_STATUSES,
        allowed_methods=None,  # searches are POSTs; they are idempotent reads
        raise_on_status=False,
    )
    stac_io = StacApiIO(max_retries=retry, timeout=cfg.stac.timeout_s)
    try:
        return Client.open(url, stac_io=stac_io)
    except (requests.RequestException, APIError, pystac.STACError, ValueError) as exc:
        raise ServiceError(_unreachable(url, cfg, exc)) from None


def _unreachable(url: str, cfg: RunConfig, exc: Exception) -> str:
    reason = type(exc).__name__
    return (
        f"STAC API {redact_url(url)} did not answer after {cfg.stac.retries} retries ({reason}); "
        "check stac.url and the network"
    )


def search_items(cfg: RunConfig, url: str, coarse_url: str | None = None) -> SearchResult:
    """Search fine and coarse items for ``cfg``'s region and (widened) dates.

    Fine items: the time range widened by ``time.search_margin_days`` on both
    sides, cloud cover <= ``max_cloud_cover``, from ``url``. Coarse items: the fine
    window plus :data:`COARSE_EXTRA_DAYS`, from ``coarse_url`` (``url`` when None).

    Raises
    ------
    InputError
        A collection the endpoint lacks, or nothing usable found.
    ServiceError
        The endpoint is unreachable or fails after retries.
    """
    check_signers(cfg.stac)
    coarse_url = None if coarse_url in (None, url) else coarse_url
    fine_client = open_client(cfg, url)
    coarse_client = fine_client if coarse_url is None else open_client(cfg, coarse_url)
    _check_collection(fine_client, "fine", cfg.collections.fine, cfg, url)
    _check_collection(coarse_client, "coarse", cfg.collections.coarse, cfg, coarse_url or url)
    margin = dt.timedelta(days=cfg.time.search_margin_days)
    start, end = cfg.time.start - margin, cfg.time.end + margin
    fine = _search(fine_client, cfg, cfg.collections.fine, (start, end), url)
    extra = dt.timedelta(days=COARSE_EXTRA_DAYS)
    window = (start - extra, end + extra)
    coarse = _search(coarse_client, cfg, cfg.collections.coarse, window, coarse_url or url)
    fine = use_alternate(fine, cfg.stac.endpoint("fine").alternate)
    coarse = use_alternate(coarse, cfg.stac.endpoint("coarse").alternate)
    clear = [it for it in fine if _cloud_cover(it) <= cfg.max_cloud_cover]
    if not clear:
        raise InputError(
            f"all {len(fine)} {cfg.collections.fine} items have eo:cloud_cover above "
            f"{cfg.max_cloud_cover:g}%; raise max_cloud_cover or widen the dates"
        )
    return SearchResult(fine=clear, coarse=coarse, url=url, coarse_url=coarse_url)


def _check_collection(client: Client, role: str, wanted: str, cfg: RunConfig, url: str) -> None:
    try:
        offered = sorted(c.id for c in client.get_collections())
    except (requests.RequestException, APIError) as exc:
        raise ServiceError(_unreachable(url, cfg, exc)) from None
    if wanted not in offered:
        shown = ", ".join(offered[:20]) + (" ..." if len(offered) > 20 else "")
        raise InputError(
            f"collections.{role}: {redact_url(url)} has no collection {wanted!r}; "
            f"it offers: {shown} (give the collection its own endpoint: stac.{role}.url)"
        )


def _search(
    client: Client, cfg: RunConfig, collection: str, window: tuple[dt.date, dt.date], url: str
) -> list[pystac.Item]:
    start, end = window
    search = client.search(
        collections=[collection],
        intersects=cfg.region.geometry(),
        datetime=f"{start.isoformat()}T00:00:00Z/{end.isoformat()}T23:59:59Z",
        limit=cfg.stac.page_size,
        max_items=cfg.stac.max_items,
    )
    try:
        # Plain dicts first: pystac rewrites proj:epsg on read, stackstac needs the original.
        items = [_to_item(d) for d in search.items_as_dicts()]
    except (requests.RequestException, APIError) as exc:
        raise ServiceError(_unreachable(url, cfg, exc)) from None
    # APIs match an item whose start/end range overlaps the window (a 16-day MCD43A4
    # window); keep only items whose nominal day falls in it.
    items = [it for it in items if start <= item_datetime(it).date() <= end]
    if not items:
        w, s, e, n = cfg.region.bounds()
        raise InputError(
            f"no {collection} items at {redact_url(url)} for bbox [{w:g}, {s:g}, {e:g}, {n:g}] "
            f"from {start} to {end}; check region and time"
        )
    return sorted(items, key=lambda it: (item_datetime(it), it.id))


def _to_item(data: dict[str, Any]) -> pystac.Item:
    item = pystac.Item.from_dict(data, preserve_dict=True)
    epsg = data.get("properties", {}).get("proj:epsg")
    if epsg is not None and "proj:epsg" not in item.properties:
        item.properties["proj:epsg"] = epsg
    return item


def use_alternate(items: list[pystac.Item], name: str | None) -> list[pystac.Item]:
    """``items`` with each asset's ``alternate.<name>`` href as its href, where it has one.

    Earth Search serves Landsat with https links to USGS LandsatLook (a login is
    needed) and the same file in the requester-pays ``usgs-landsat`` bucket as the
    ``s3`` alternate (STAC Alternate Assets extension): the readers only read ``href``.
    """
    if name is None:
        return items
    for item in items:
        for asset in item.assets.values():
            link = (asset.extra_fields.get("alternate") or {}).get(name) or {}
            if link.get("href"):
                asset.href = link["href"]
    return items


def _cloud_cover(item: pystac.Item) -> float:
    # Items without eo:cloud_cover are kept: their QA band still masks clouds.
    value = item.properties.get("eo:cloud_cover")
    return 0.0 if value is None else float(value)


def item_datetime(item: pystac.Item) -> dt.datetime:
    """The nominal acquisition time: ``datetime``, or the middle of a composite's range (UTC)."""
    if item.datetime is not None:
        return item.datetime
    start = pystac.utils.str_to_datetime(item.properties["start_datetime"])
    end = pystac.utils.str_to_datetime(item.properties["end_datetime"])
    return start + (end - start) / 2
