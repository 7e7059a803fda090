"""STAC catalogues built from the recorded real items of ``tests/data/stac``, served offline.

Two endpoints shaped as the real ones:

* ``planetary-computer``: the recorded Planetary Computer Landsat C2 L2 items as
  recorded (unsigned Azure blob hrefs) and the recorded MCD43A4 item.
* ``earth-search``: the same Landsat items in Earth Search's shape, derived here and
  never stored: each asset's href on USGS LandsatLook (https) and the same file in the
  requester-pays ``usgs-landsat`` bucket as its ``alternate.s3`` link, as Earth Search
  (which copies the USGS STAC records) serves them.

The recorded MCD43A4 item (a tile in Brazil, 2022) is moved onto the first recorded
Landsat scene (Australia, 2025-07-22): geometry, bbox and dates only, so one search
finds both sensors. That is enough for what these catalogues test (endpoints, collection
names, asset links, signing), not for reading pixels.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path
from typing import Any

STAC = Path(__file__).resolve().parents[1] / "data" / "stac"

#: The recorded Landsat scene the MODIS item is moved onto, and a region inside it.
SCENE = "LC09_L2SR_084082_20250722_02_T1"
REGION = {"name": "recorded", "bbox": [159.6, -31.9, 159.8, -31.7]}
TIME = {"start": "2025-07-21", "end": "2025-07-23", "search_margin_days": 0}

PC_BLOB = "https://landsateuwest.blob.core.windows.net/landsat-c2/"
USGS_HTTPS = "https://landsatlook.usgs.gov/data/collection02/"
USGS_S3 = "s3://usgs-landsat/collection02/"


def _features(name: str) -> list[dict[str, Any]]:
    return json.loads((STAC / name).read_text())["features"]


def _landsat() -> list[dict[str, Any]]:
    return _features("landsat-c2-l2-items.json")


def _earth_search(item: dict[str, Any]) -> dict[str, Any]:
    item = copy.deepcopy(item)
    for asset in item["assets"].values():
        href = asset["href"]
        if href.startswith(PC_BLOB):
            key = href.removeprefix(PC_BLOB)
            asset["href"] = USGS_HTTPS + key
            asset["alternate"] = {"s3": {"href": USGS_S3 + key, "storage:requester_pays": True}}
    return item


def _moved_modis(onto: dict[str, Any]) -> dict[str, Any]:
    modis = next(
        f for f in _features("modis-061-items.json") if f["collection"] == "modis-43A4-061"
    )
    modis = copy.deepcopy(modis)
    props = modis["properties"]
    old = dt.datetime.fromisoformat(props["datetime"].replace("Z", "+00:00"))
    new = dt.datetime(2025, 7, 22, tzinfo=dt.UTC)
    for key in ("datetime", "start_datetime", "end_datetime"):
        moved = dt.datetime.fromisoformat(props[key].replace("Z", "+00:00")) + (new - old)
        props[key] = moved.isoformat().replace("+00:00", "Z")
    modis["geometry"], modis["bbox"] = onto["geometry"], onto["bbox"]
    return modis


def _write(root: Path, collection: str, items: list[dict[str, Any]]) -> None:
    folder = root / collection
    folder.mkdir(parents=True, exist_ok=True)
    record = json.loads((STAC / f"{collection}-collection.json").read_text())
    # The recorded links point at the recording's own item files; the items come from here.
    record["links"] = [ln for ln in record.get("links", []) if ln.get("rel") == "license"]
    (folder / "collection.json").write_text(json.dumps(record))
    links = [{"rel": "collection", "href": "./collection.json"}]
    features = [{**it, "links": links} for it in items]
    (folder / "items.json").write_text(
        json.dumps({"type": "FeatureCollection", "features": features})
    )


def build_catalog(root: Path, shape: str) -> Path:
    """Write the ``planetary-computer`` or ``earth-search`` catalogue under ``root``.

    Earth Search gets no MODIS collection (it serves none), Planetary Computer both.
    """
    landsat = _landsat()
    if shape == "earth-search":
        _write(root, "landsat-c2-l2", [_earth_search(it) for it in landsat])
        return root
    scene = next(it for it in landsat if it["id"] == SCENE)
    _write(root, "landsat-c2-l2", landsat)
    _write(root, "modis-43A4-061", [_moved_modis(scene)])
    return root
