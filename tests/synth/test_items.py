"""The demo world's STAC items and collections have the shapes of the real recorded ones."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pystac
import pytest

from pipeline.sensors import LANDSAT_C2_L2, MODIS_43A4
from pipeline.synth import World
from tests.synth.helpers import world_items


def _real(shared_data: Path, name: str, collection: str) -> list[dict[str, Any]]:
    features = json.loads((shared_data / "stac" / name).read_text())["features"]
    return [f for f in features if f["collection"] == collection]


@pytest.mark.parametrize(
    ("collection", "recorded"),
    [("landsat-c2-l2", "landsat-c2-l2-items.json"), ("modis-43A4-061", "modis-061-items.json")],
)
def test_item_key_sets_match_the_real_items(
    tiny_world: World, shared_data: Path, collection: str, recorded: str
) -> None:
    real = _real(shared_data, recorded, collection)[0]
    ours = world_items(tiny_world, collection)[0]
    assert set(ours) == set(real)
    assert set(ours["properties"]) == set(real["properties"])
    assert ours["stac_extensions"] == real["stac_extensions"]
    # Only the assets the world writes; each keeps the real asset's fields.
    assert set(ours["assets"]) <= set(real["assets"])
    for key, asset in ours["assets"].items():
        assert set(asset) - {"href"} <= set(real["assets"][key]) - {"href"}, key
        for field in ("raster:bands", "eo:bands"):
            if field in real["assets"][key]:
                assert set(asset[field][0]) == set(real["assets"][key][field][0]), (key, field)
        assert asset["href"].startswith("file:///")


def test_items_cover_every_sensor_asset(tiny_world: World) -> None:
    landsat = world_items(tiny_world, "landsat-c2-l2")[0]
    assert {*LANDSAT_C2_L2.assets.values(), "qa_pixel"} <= set(landsat["assets"])
    assert landsat["properties"]["proj:epsg"] == 32632
    modis = world_items(tiny_world, "modis-43A4-061")[0]
    assert {*MODIS_43A4.assets.values(), *MODIS_43A4.qa_per_band.values()} <= set(modis["assets"])
    assert (
        modis["properties"]["proj:epsg"] is None
        and "Sinusoidal" in modis["properties"]["proj:wkt2"]
    )


def test_items_and_collections_read_with_pystac(tiny_world: World, shared_data: Path) -> None:
    for collection in ("landsat-c2-l2", "modis-43A4-061"):
        folder = tiny_world.stac_dir / collection
        coll = json.loads((folder / "collection.json").read_text())
        real = json.loads((shared_data / "stac" / f"{collection}-collection.json").read_text())
        assert set(coll) <= set(real)
        pystac.Collection.from_dict(coll)
        items = [pystac.Item.from_dict(d) for d in world_items(tiny_world, collection)]
        assert all(item.collection_id == collection for item in items)


def test_landsat_ids_look_real_and_alternate_platforms(tiny_world: World) -> None:
    items = world_items(tiny_world, "landsat-c2-l2")
    platforms = [i["properties"]["platform"] for i in items]
    assert set(platforms) == {"landsat-8", "landsat-9"}
    assert all(a != b for a, b in itertools.pairwise(platforms))
    for item in items:
        mission, level, path_row, date, *_ = item["id"].split("_")
        assert mission in ("LC08", "LC09") and level == "L2SP" and path_row == "192029"
        assert item["properties"]["datetime"].startswith(f"{date[:4]}-{date[4:6]}-{date[6:]}")
