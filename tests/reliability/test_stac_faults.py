"""The STAC API going away in the middle of a paged search: retried, then one line, exit 3.

``tests/catalog/test_search.py::test_transient_503s_are_retried`` fails the first
requests; here page 1 of every search is served and the *later* pages fail.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
import yaml

from pipeline.catalog.search import search_items
from pipeline.cli import main
from pipeline.config import parse_config
from pipeline.synth import World
from tests.local_http import serve_local
from tests.reliability.conftest import run_config


class _PagingOutage(BaseHTTPRequestHandler):
    """Forwards to ``upstream``; later pages (``skip`` > 0) answer 503 ``outage`` times first."""

    upstream = ""
    outage = 0
    failed: list[int]

    def do_GET(self) -> None:
        self._forward(None)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if json.loads(body or b"{}").get("skip", 0) and len(self.failed) < self.outage:
            self.failed.append(1)
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self._forward(body)

    def _forward(self, body: bytes | None) -> None:
        req = urllib.request.Request(self.upstream + self.path, data=body, method=self.command)
        req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=10) as resp:
            own = f"http://127.0.0.1:{self.server.server_address[1]}"
            payload = resp.read().replace(self.upstream.encode(), own.encode())
            self.send_response(resp.status)
            self.send_header("Content-Type", resp.headers["Content-Type"])
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def paging_outage(upstream: str, outage: int) -> Iterator[tuple[str, list[int]]]:
    """A proxy on 127.0.0.1 in front of ``upstream`` failing later pages ``outage`` times."""
    failed: list[int] = []
    attrs = {"upstream": upstream, "outage": outage, "failed": failed}
    with serve_local(type("Outage", (_PagingOutage,), attrs)) as url:
        yield url, failed


def _cfg(world: World, url: str, root: Path) -> dict:
    return run_config(world, url, root, stac={"url": url, "retries": 2, "page_size": 4})


def test_a_transient_outage_between_pages_is_retried(
    tiny_world: World, stac_url: str, tmp_path: Path
) -> None:
    direct = search_items(parse_config(_cfg(tiny_world, stac_url, tmp_path)), stac_url)
    with paging_outage(stac_url, outage=2) as (url, failed):
        paged = search_items(parse_config(_cfg(tiny_world, url, tmp_path)), url)
    assert len(failed) == 2
    assert [it.id for it in paged.coarse] == [it.id for it in direct.coarse]
    assert len(direct.coarse) > 4  # really more than one page


def test_an_api_gone_mid_search_is_one_line_exit_3(
    tiny_world: World, stac_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with paging_outage(stac_url, outage=10_000) as (url, failed):
        cfg_path = tmp_path / "run.yaml"
        cfg_path.write_text(yaml.safe_dump(_cfg(tiny_world, url, tmp_path / "out")))
        code = main(["run", str(cfg_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 3 and len(failed) == 3  # the first try and 2 retries
    assert err[-1].startswith("stf: error: STAC API") and "did not answer" in err[-1]
    assert not [p for p in (tmp_path / "out").rglob("*")]  # no store, no lock left behind
