"""Stage artefacts save without the STAC API they came from.

``stf demo`` stops its embedded STAC API after the search; the run then saves the
items beside the cubes (for the notebooks). pystac's default ``Item.to_dict`` resolves
the item's root link over HTTP to make hrefs relative, so saving failed with
"does not resolve to a STAC object" once the API was gone.
"""

from __future__ import annotations

import datetime as dt
import json
import socket
from pathlib import Path

import pystac

from pipeline.catalog.search import SearchResult
from pipeline.stages.artefacts import Items


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _item(name: str, api: str) -> pystac.Item:
    item = pystac.Item(
        id=name,
        geometry={"type": "Point", "coordinates": [0.0, 0.0]},
        bbox=[0.0, 0.0, 0.0, 0.0],
        datetime=dt.datetime(2024, 6, 1, tzinfo=dt.UTC),
        properties={},
    )
    item.add_link(pystac.Link("root", api, media_type="application/json"))
    item.add_link(pystac.Link("self", f"{api}collections/c/items/{name}"))
    return item


def test_items_save_after_the_api_is_gone(tmp_path: Path) -> None:
    api = f"http://127.0.0.1:{_closed_port()}/"
    result = SearchResult(fine=[_item("f", api)], coarse=[_item("c", api)], url=api, coarse_url=api)
    path = Items(result).save(tmp_path)
    data = json.loads(path.read_text())
    assert [d["id"] for d in data["fine"]] == ["f"]
    assert Items.load(path).result.coarse[0].id == "c"
