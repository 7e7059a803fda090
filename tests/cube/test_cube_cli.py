"""``stf cube`` end to end on the tiny demo world: the summary, and one line per bad input."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline.cli import main
from pipeline.synth import World


def _write_config(path: Path, world: World, url: str, **changes: Any) -> Path:
    w, s, e, n = world.bbox
    data: dict[str, Any] = {
        "region": {"name": "tiny", "bbox": [w + 1e-3, s + 1e-3, e - 1e-3, n - 1e-3]},
        "time": {"start": "2024-06-07", "end": "2024-06-09", "search_margin_days": 0},
        "bands": ["red", "nir"],
        "chunks": {"y": 64, "x": 64},
        "stac": {"url": url, "retries": 0, "timeout_s": 5},
    }
    for key, value in changes.items():
        data[key] = {**data[key], **value} if isinstance(data.get(key), dict) else value
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in an empty directory so "nothing written" can be checked."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_json_summary_from_the_demo_endpoint(
    tiny_world: World, in_tmp: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv("STF_DEMO_WORLD", str(tiny_world.root))
    config = _write_config(in_tmp / "tiny.yaml", tiny_world, "demo")
    assert main(["cube", str(config), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)  # exactly one JSON object
    assert summary["fine"]["dates"] == ["2024-06-08"]
    assert summary["pairs"] == [
        {
            "date": "2024-06-08",
            "clear_fraction": 1.0,
            "coarse_date": "2024-06-08",
            "coarse_clear_fraction": 1.0,
        }
    ]
    assert summary["grid"]["crs"] == f"EPSG:{tiny_world.epsg}"
    assert summary["grid"]["shape"] == [96, 96] and summary["grid"]["coarse_shape"] == [6, 6]
    # the fine cube reads whole store blocks up to pipeline.cube.chunking.FINE_READ_PX a side:
    # the 96 px grid of 64 px blocks is one chunk
    assert summary["chunks"]["fine"]["y"] == 96
    assert summary["size_mb"]["fine"] == pytest.approx(1 * 2 * 96 * 96 * 4 / 1e6, abs=1e-3)


def test_human_summary_with_stackstac(
    tiny_world: World, stac_url: str, in_tmp: Path, capsys: pytest.CaptureFixture
) -> None:
    config = _write_config(in_tmp / "tiny.yaml", tiny_world, stac_url)
    assert main(["cube", str(config), "--backend", "stackstac"]) == 0
    out = capsys.readouterr().out
    assert "1 reference pairs" in out and "EPSG:32632" in out and "2024-06-08" in out


BAD_INPUTS = [
    (
        "outside world",
        {"region": {"bbox": [11.0, 46.0, 11.1, 46.1]}},
        [],
        2,
        "no landsat-c2-l2 items",
    ),
    ("invalid bbox", {"region": {"bbox": [10.1, 45.0, 10.0, 45.1]}}, [], 2, "region.bbox"),
    (
        "end before start",
        {"time": {"start": "2024-06-09", "end": "2024-06-01"}},
        [],
        2,
        "before start",
    ),
    (
        "missing collection",
        {"collections": {"coarse": "modis-09Q1-061"}},
        [],
        2,
        "no collection 'modis-09Q1-061'",
    ),
    (
        "zero items",
        {"time": {"start": "2023-06-01", "end": "2023-06-09"}},
        [],
        2,
        "no landsat-c2-l2 items",
    ),
    (
        "clouded by limit",
        {"max_cloud_cover": 0, "time": {"start": "2024-06-23", "end": "2024-06-25"}},
        [],
        2,
        "eo:cloud_cover above 0%",
    ),
    (
        "clouded scenes",
        {"time": {"start": "2024-06-23", "end": "2024-06-25"}},
        ["--min-clear", "0.99"],
        2,
        "under 99% clear",
    ),
    ("unreachable", {"stac": {"url": "http://127.0.0.1:9"}}, [], 3, "http://127.0.0.1:9"),
    ("unknown band", {"bands": ["red", "thermal"]}, [], 2, "unknown band"),
    ("resolution", {"grid": {"resolution": 45}}, [], 2, "not a multiple"),
    ("backend", {}, ["--backend", "gdal"], 2, "unknown backend"),
]


@pytest.mark.parametrize(
    ("changes", "extra", "code", "needle"),
    [case[1:] for case in BAD_INPUTS],
    ids=[case[0] for case in BAD_INPUTS],
)
def test_bad_input_is_one_line_and_writes_nothing(
    tiny_world: World,
    stac_url: str,
    in_tmp: Path,
    capsys: pytest.CaptureFixture,
    changes: dict,
    extra: list[str],
    code: int,
    needle: str,
) -> None:
    config = _write_config(in_tmp / "bad.yaml", tiny_world, stac_url, **changes)
    assert main(["cube", str(config), *extra]) == code
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("stf: error: "), captured.err
    assert needle in lines[0]
    assert captured.out == ""
    assert sorted(os.listdir(in_tmp)) == ["bad.yaml"]
