"""STAC search against a live rustac server (the tiny demo world) and the recorded real items."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from pipeline.catalog.search import (
    SearchResult,
    _to_item,
    item_datetime,
    search_items,
)
from pipeline.config import RunConfig, parse_config
from pipeline.demo import open_endpoint
from pipeline.errors import InputError, ServiceError
from pipeline.synth import World
from tests.local_http import serve_local

STAC = Path(__file__).resolve().parents[1] / "data" / "stac"


def tiny_config(world: World, **changes: Any) -> RunConfig:
    """A config over the tiny world's first two weeks (bbox inset so the grid is the world's)."""
    w, s, e, n = world.bbox
    data = {
        "region": {"name": "tiny", "bbox": [w + 1e-3, s + 1e-3, e - 1e-3, n - 1e-3]},
        "time": {"start": "2024-06-05", "end": "2024-06-18", "search_margin_days": 0},
        "stac": {"retries": 0, "timeout_s": 5},
    }
    if "time" in changes:
        changes = {**changes, "time": {**data["time"], **changes["time"]}}
    return parse_config({**data, **changes})


def test_live_search_returns_sorted_items_with_epsg(tiny_world: World, stac_url: str) -> None:
    cfg = tiny_config(tiny_world)
    result = search_items(cfg, stac_url)
    assert isinstance(result, SearchResult) and result.url == stac_url
    assert [it.collection_id for it in result.fine] == ["landsat-c2-l2"] * len(result.fine)
    assert len(result.fine) == 2  # 8-day revisit: 06-08 and 06-16
    times = [item_datetime(it) for it in result.coarse]
    assert times == sorted(times)
    # nominal MODIS days within the window widened by COARSE_EXTRA_DAYS (4)
    assert {t.date().isoformat() for t in times} >= {"2024-06-05", "2024-06-18"}
    assert min(times).date().isoformat() == "2024-06-01"
    assert max(times).date().isoformat() == "2024-06-22"
    # stackstac needs proj:epsg; pystac alone would have rewritten it to proj:code
    assert result.fine[0].properties["proj:epsg"] == tiny_world.epsg


def test_cloud_cover_is_filtered_on_the_client(tiny_world: World, stac_url: str) -> None:
    cfg = tiny_config(tiny_world, time={"start": "2024-06-01", "end": "2024-07-05"})
    every = search_items(cfg, stac_url).fine
    cloudy = [it.id for it in every if it.properties["eo:cloud_cover"] > 10]
    assert cloudy, "the tiny world should hold at least one cloudy scene"
    kept = search_items(cfg.with_updates(max_cloud_cover=10), stac_url).fine
    assert {it.id for it in kept} == {it.id for it in every} - set(cloudy)


@pytest.mark.parametrize(
    ("changes", "error", "needle"),
    [
        ({"collections": {"coarse": "modis-09Q1-061"}}, InputError, "offers: landsat-c2-l2"),
        ({"region": {"bbox": [11.0, 45.0, 11.1, 45.1]}}, InputError, "no landsat-c2-l2 items"),
        ({"time": {"start": "2025-01-01", "end": "2025-01-09"}}, InputError, "2025-01-01"),
        (
            {"max_cloud_cover": 0, "time": {"start": "2024-06-20", "end": "2024-06-28"}},
            InputError,
            "raise max_cloud_cover",
        ),
    ],
)
def test_bad_searches_say_what_was_searched(
    tiny_world: World, stac_url: str, changes: dict, error: type, needle: str
) -> None:
    with pytest.raises(error, match=needle) as info:
        search_items(tiny_config(tiny_world, **changes), stac_url)
    assert "\n" not in str(info.value)


def test_unreachable_endpoint_is_a_service_error(tiny_world: World) -> None:
    with pytest.raises(ServiceError, match=r"http://127\.0\.0\.1:9 did not answer") as info:
        search_items(tiny_config(tiny_world), "http://127.0.0.1:9")
    assert info.value.exit_code == 3


class _FlakyProxy(BaseHTTPRequestHandler):
    """Answers 503 to the first ``failures`` requests, then forwards to ``upstream``."""

    upstream = ""
    failures = 0
    seen: list[int]

    def _handle(self) -> None:
        self.seen.append(1)
        if len(self.seen) <= self.failures:
            self.send_error(503, "try again")
            return
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)) or None
        req = urllib.request.Request(self.upstream + self.path, data=body, method=self.command)
        req.add_header("Content-Type", self.headers.get("Content-Type", "application/json"))
        with urllib.request.urlopen(req, timeout=5) as resp:
            payload = resp.read().replace(self.upstream.encode(), self._own_url().encode())
            self.send_response(resp.status)
            self.send_header("Content-Type", resp.headers["Content-Type"])
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    def _own_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    do_GET = do_POST = _handle

    def log_message(self, *args: object) -> None:  # keep pytest output clean
        pass


@pytest.fixture
def flaky_url(stac_url: str) -> Iterator[tuple[str, list[int]]]:
    seen: list[int] = []
    handler = type("Flaky", (_FlakyProxy,), {"upstream": stac_url, "failures": 2, "seen": seen})
    with serve_local(handler) as url:
        yield url, seen


def test_transient_503s_are_retried(tiny_world: World, flaky_url: tuple[str, list[int]]) -> None:
    url, seen = flaky_url
    with pytest.raises(ServiceError):  # no retries configured: the first 503 is fatal
        search_items(tiny_config(tiny_world), url)
    seen.clear()
    cfg = tiny_config(tiny_world, stac={"retries": 3, "timeout_s": 5})
    result = search_items(cfg, url)
    assert len(result.fine) == 2
    assert len(seen) > 2  # the two 503s were retried


def test_open_endpoint_passes_real_urls_through(tiny_world: World) -> None:
    cfg = tiny_config(tiny_world, stac={"url": "https://earth-search.aws.element84.com/v1"})
    with open_endpoint(cfg.stac) as url:
        assert url == "https://earth-search.aws.element84.com/v1"


def test_open_endpoint_serves_an_existing_demo_world(
    tiny_world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STF_DEMO_WORLD", str(tiny_world.root))
    cfg = tiny_config(tiny_world, stac={"url": "demo", "retries": 0})
    with open_endpoint(cfg.stac) as url:
        assert url.startswith("http://127.0.0.1:")
        assert len(search_items(cfg, url).fine) == 2


@pytest.mark.parametrize("name", ["landsat-c2-l2-items.json", "modis-061-items.json"])
def test_recorded_real_items_parse(name: str) -> None:
    for feature in json.loads((STAC / name).read_text())["features"]:
        item = _to_item(feature)
        assert item_datetime(item).tzinfo is not None
        epsg = feature["properties"].get("proj:epsg")
        assert item.properties.get("proj:epsg") == epsg  # kept for stackstac (None for MODIS)
        if epsg is None:
            assert "Sinusoidal" in item.properties["proj:wkt2"]
