"""Asset links are signed when read, never at search; credentials reach GDAL on every worker."""

from __future__ import annotations

import importlib.util
import os

import pytest
from distributed import Client, LocalCluster

from pipeline.catalog import signing
from pipeline.catalog.gdal_env import CREDENTIAL_VARS, configure_client, read_settings
from pipeline.catalog.search import search_items
from pipeline.config import StacSpec
from pipeline.cube.cubes import load_cubes
from pipeline.cube.unreadable import unreadable_items
from pipeline.errors import InputError
from pipeline.synth import World
from tests.catalog.test_search import tiny_config

PC = {"url": "https://planetarycomputer.microsoft.com/api/stac/v1", "signing": "planetary-computer"}


@pytest.fixture
def signed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Planetary Computer's signer replaced by one that records every href it signs."""
    calls: list[str] = []

    def sign(href: str) -> str:
        calls.append(href)
        return href  # the tiny world's file:// links need no token

    monkeypatch.setitem(signing.SIGNERS, "planetary-computer", sign)
    return calls


@pytest.mark.parametrize("backend", ["odc", "stackstac"])
def test_links_are_signed_by_the_read_not_by_the_search(
    tiny_world: World, stac_url: str, signed: list[str], backend: str
) -> None:
    cfg = tiny_config(tiny_world, stac={"signing": "planetary-computer", "retries": 0})
    cfg = cfg.with_updates(bands=("red", "nir"))
    result = search_items(cfg, stac_url)
    assert signed == []  # the search hands on (and items.json keeps) the unsigned links
    load_cubes(cfg, result, backend=backend)
    read = {h.removeprefix("file://") for h in signed}
    red = {it.assets["red"].get_absolute_href().removeprefix("file://") for it in result.fine}
    assert red <= read  # every Landsat red asset was signed on its way into GDAL


def test_unreadable_probe_opens_the_signed_link_and_names_the_unsigned(
    tiny_world: World, stac_url: str
) -> None:
    result = search_items(tiny_config(tiny_world), stac_url)
    item = result.fine[0]
    skipped = unreadable_items([item], ["red"], attempts=1, signer=lambda h: h + ".gone")
    assert [s.item for s in skipped] == [item.id]
    assert skipped[0].href == item.assets["red"].get_absolute_href()  # no signed form shown
    assert unreadable_items([item], ["red"], attempts=1, signer=lambda h: h) == []


def test_missing_signing_package_is_named_before_the_search(tiny_world: World) -> None:
    if importlib.util.find_spec("planetary_computer") is not None:
        pytest.skip("planetary-computer is installed here (not a test dependency)")
    cfg = tiny_config(tiny_world, stac={"signing": "planetary-computer", "retries": 0})
    with pytest.raises(InputError, match=r"pip install 'stf-pipeline\[planetary\]'"):
        search_items(cfg, "http://127.0.0.1:9")


def test_signer_covers_every_endpoint_that_signs() -> None:
    mixed = StacSpec(url="https://earth-search.aws.element84.com/v1", coarse=PC)
    assert signing.asset_signer(mixed).schemes == ("planetary-computer",)
    assert not signing.asset_signer(StacSpec(url="https://earth-search.aws.element84.com/v1"))


def test_requester_pays_and_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in CREDENTIAL_VARS:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    plain, creds = read_settings(StacSpec(url="https://x.example/stac"))
    assert "AWS_REQUEST_PAYER" not in plain and creds == {"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE"}
    fine = {"url": "https://earth-search.aws.element84.com/v1", "requester_pays": True}
    settings, _ = read_settings(StacSpec(url=PC["url"], fine=fine))
    assert settings["AWS_REQUEST_PAYER"] == "requester"


def _worker_env() -> dict[str, str | None]:
    from rasterio.env import get_gdal_config

    return {
        "AWS_REQUEST_PAYER": get_gdal_config("AWS_REQUEST_PAYER", normalize=False),
        "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID"),
        "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY"),
    }


def test_workers_get_requester_pays_and_missing_credentials(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Workers started without credentials get the client's; GDAL there sends the payer header."""
    for key in (*CREDENTIAL_VARS, "AWS_REQUEST_PAYER"):
        monkeypatch.delenv(key, raising=False)
    with (
        LocalCluster(
            n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "example-secret")
        stac = StacSpec(url="https://earth-search.aws.element84.com/v1", requester_pays=True)
        configure_client(client, *read_settings(stac))
        seen = list(client.run(_worker_env).values())
    assert seen == [
        {
            "AWS_REQUEST_PAYER": "requester",
            "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
            "AWS_SECRET_ACCESS_KEY": "example-secret",
        }
    ]
