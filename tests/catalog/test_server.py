"""Live searches through pystac-client against the served tiny world."""

from __future__ import annotations

import datetime as dt
import socket
from pathlib import Path

import pystac_client
import pytest

from pipeline.catalog.server import serve_catalog
from pipeline.errors import ServiceError
from pipeline.synth import World


@pytest.fixture(scope="module")
def client(stac_url: str) -> pystac_client.Client:
    return pystac_client.Client.open(stac_url)


def test_collections_are_served(client: pystac_client.Client) -> None:
    assert {c.id for c in client.get_collections()} == {"landsat-c2-l2", "modis-43A4-061"}


def test_search_by_collection_bbox_and_datetime(
    client: pystac_client.Client, tiny_world: World
) -> None:
    search = client.search(
        collections=["landsat-c2-l2"], bbox=list(tiny_world.bbox), datetime="2024-06-01/2024-06-20"
    )
    dates = sorted(item.datetime.date() for item in search.items())
    assert dates == [d for d in tiny_world.landsat_dates() if d <= dt.date(2024, 6, 20)]


def test_bbox_outside_the_world_finds_nothing(client: pystac_client.Client) -> None:
    assert list(client.search(bbox=[0.0, 0.0, 1.0, 1.0]).items()) == []


def test_search_by_ids(client: pystac_client.Client) -> None:
    found = [item.id for item in client.search(ids=["LC08_L2SP_192029_20240608_02_T1"]).items()]
    assert found == ["LC08_L2SP_192029_20240608_02_T1"]


def test_paging_with_small_limit_returns_every_item(
    client: pystac_client.Client, tiny_world: World
) -> None:
    search = client.search(collections=["modis-43A4-061"], limit=4)
    pages = list(search.pages())
    assert len(pages) > 1
    days = [item.datetime.date() for page in pages for item in page]
    assert sorted(days) == tiny_world.modis_dates()


def test_asset_hrefs_are_local_file_urls(client: pystac_client.Client) -> None:
    item = next(client.search(collections=["landsat-c2-l2"], limit=1).items())
    href = item.assets["red"].href
    assert href.startswith("file:///")
    assert Path(href.removeprefix("file://")).exists()


def test_missing_catalog_is_a_service_error(tmp_path: Path) -> None:
    with pytest.raises(ServiceError, match="build the demo world"), serve_catalog(tmp_path):
        pass


def test_busy_port_is_a_service_error_naming_the_cause(tiny_world: World) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with (
            pytest.raises(ServiceError, match="Address already in use"),
            serve_catalog(tiny_world.stac_dir, port=port),
        ):
            pass
