"""The example configurations work: each validates, and its search stage runs offline.

``configs/examples/*.yaml`` point at Planetary Computer and Earth Search. Here each is
loaded as a user would, its endpoints are pointed at loopback STAC APIs serving the
recorded real items in the endpoints' shapes (:mod:`tests.catalog.recorded`), its region
and dates moved onto the recorded scene, and the search stage is run: every other field
(collections, signing, requester-pays, alternate links, bands) is the example's own.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from pipeline import stages
from pipeline.catalog import signing
from pipeline.catalog.gdal_env import read_settings
from pipeline.catalog.server import serve_catalog
from pipeline.config import load_config, parse_config
from tests.catalog.recorded import REGION, SCENE, TIME, USGS_S3, build_catalog

EXAMPLES = Path(__file__).resolve().parents[2] / "configs" / "examples"
PC = "https://planetarycomputer.microsoft.com/api/stac/v1"
ES = "https://earth-search.aws.element84.com/v1"


@pytest.fixture(scope="module")
def endpoints(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Real endpoint URL -> a loopback STAC API serving the recorded items in its shape."""
    root = tmp_path_factory.mktemp("recorded")
    pc_dir = build_catalog(root / "pc", "planetary-computer")
    es_dir = build_catalog(root / "es", "earth-search")
    with serve_catalog(pc_dir) as pc, serve_catalog(es_dir) as es:
        yield {PC: pc, ES: es}


@pytest.fixture
def fake_signer(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Planetary Computer's signer replaced by one that records each href it signs."""
    calls: list[str] = []

    def sign(href: str) -> str:
        calls.append(href)
        return href

    monkeypatch.setitem(signing.SIGNERS, "planetary-computer", sign)
    return calls


def _offline(path: Path, endpoints: dict[str, str], tmp_path: Path) -> dict:
    """The example's YAML with its endpoints, region, dates and output root moved here."""
    text = path.read_text()
    for real, local in endpoints.items():
        text = text.replace(real, local)
    data = yaml.safe_load(text)
    data["stac"]["retries"] = 0
    return {**data, "region": REGION, "time": TIME, "output_root": str(tmp_path / "out")}


@pytest.mark.parametrize("name", ["planetary-computer.yaml", "earth-search.yaml"])
def test_example_validates_and_writes_under_the_working_directory(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = load_config(EXAMPLES / name)
    assert cfg.output_root == tmp_path / "out"  # not configs/examples/out in the repository
    assert cfg.stac.endpoint("coarse").url == PC
    assert cfg.stac.endpoint("coarse").signing == "planetary-computer"


def test_earth_search_example_reads_landsat_from_the_requester_pays_bucket(
    endpoints: dict[str, str], fake_signer: list[str], tmp_path: Path
) -> None:
    cfg = parse_config(_offline(EXAMPLES / "earth-search.yaml", endpoints, tmp_path))
    items = stages.search(cfg)
    assert [it.id for it in items.result.fine] == [SCENE]
    assert items.result.url == endpoints[ES] and items.result.coarse_url == endpoints[PC]
    red = items.result.fine[0].assets["red"].href
    assert red.startswith(USGS_S3) and red.endswith("_SR_B4.TIF")  # the s3 alternate
    assert [it.collection_id for it in items.result.coarse] == ["modis-43A4-061"]
    settings, _ = read_settings(cfg.stac)
    assert settings["AWS_REQUEST_PAYER"] == "requester"
    assert fake_signer == []  # nothing signed at search time


def test_planetary_computer_example_keeps_unsigned_links(
    endpoints: dict[str, str], fake_signer: list[str], tmp_path: Path
) -> None:
    cfg = parse_config(_offline(EXAMPLES / "planetary-computer.yaml", endpoints, tmp_path))
    items = stages.search(cfg)
    assert [it.id for it in items.result.fine] == [SCENE]
    assert items.result.coarse_url is None  # one endpoint serves both
    saved = items.save(tmp_path / "work")
    hrefs = [
        asset["href"]
        for role in ("fine", "coarse")
        for item in json.loads(saved.read_text())[role]
        for asset in item["assets"].values()
    ]
    blobs = [h for h in hrefs if ".blob.core.windows.net/" in h]
    assert blobs and not [h for h in blobs if "?" in h]  # no SAS token is cached
    assert fake_signer == []
    assert "AWS_REQUEST_PAYER" not in read_settings(cfg.stac)[0]


def test_earth_search_alone_has_no_modis(endpoints: dict[str, str], tmp_path: Path) -> None:
    """The old single-endpoint Earth Search example fails in one line naming the fix."""
    data = _offline(EXAMPLES / "earth-search.yaml", endpoints, tmp_path)
    data["stac"] = {"url": endpoints[ES], "retries": 0}
    with pytest.raises(Exception, match=r"stac\.coarse\.url") as info:
        stages.search(parse_config(data))
    assert info.value.exit_code == 2  # type: ignore[attr-defined]
