"""A flaky asset server (5xx, stalls, resets, truncations) and a permanently missing asset."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import xarray as xr
import yaml

from pipeline.catalog.server import serve_catalog
from pipeline.cli import main
from pipeline.config import parse_config
from pipeline.run import run, store_url
from pipeline.store.layout import OBSERVED
from pipeline.synth import World
from tests.reliability.conftest import (
    assert_identical,
    http_catalog,
    provenance,
    quiet,
    run_config,
)
from tests.reliability.flaky_server import KINDS, FaultPlan, serve_flaky


@pytest.mark.slow
def test_transient_faults_at_20_percent_leave_an_identical_store(
    tiny_world: World, clean_store: str, cluster: str, tmp_path: Path
) -> None:
    # 5xx, stalls and resets are retried by GDAL; truncated bodies (and the header cut
    # short that opens without georeferencing) by the loader (pipeline/cube/load.py)
    plan = FaultPlan(rate=0.2, seed=7, kinds=KINDS, stall_s=1.0)
    with (
        serve_flaky(tiny_world.root, plan) as assets,
        serve_catalog(http_catalog(tiny_world, assets, tmp_path / "stac")) as api,
    ):
        cfg = parse_config(run_config(tiny_world, api, tmp_path / "out"))
        summary = run(cfg, scheduler=cluster, progress=False, log=quiet)
    faults = sum(plan.counts[k] for k in KINDS)
    assert faults >= 20 and all(plan.counts[k] for k in KINDS), plan.counts
    assert summary.skipped == ()  # a transient fault never drops a scene
    assert_identical(store_url(cfg), clean_store)


def _without_item(catalog: Path, item_id: str) -> Path:
    """``catalog`` (an :func:`http_catalog` copy) with the item ``item_id`` removed."""
    for items in catalog.glob("*/items.json"):
        data = json.loads(items.read_text())
        data["features"] = [f for f in data["features"] if f["id"] != item_id]
        items.write_text(json.dumps(data))
    return catalog


@pytest.mark.slow
def test_a_permanently_missing_asset_drops_its_scene_and_names_it(
    tiny_world: World, cluster: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the red band of the 06-16 Landsat scene (a pair and an observed day) answers 404
    scene = next(tiny_world.root.glob("data/landsat/*_20240616_*"))
    lost = next(scene.glob("*_SR_B4.TIF")).relative_to(tiny_world.root)
    item_id = next(p["id"] for p in _items(tiny_world) if "_20240616_" in p["id"])
    plan = FaultPlan(missing=frozenset({f"/{lost}"}))
    with (
        serve_flaky(tiny_world.root, plan) as assets,
        serve_catalog(http_catalog(tiny_world, assets, tmp_path / "stac")) as api,
    ):
        data = run_config(tiny_world, api, tmp_path / "out")
        cfg_path = tmp_path / "run.yaml"
        cfg_path.write_text(yaml.safe_dump(data))
        code = main(["run", str(cfg_path), "--scheduler", cluster])
        out, err = capsys.readouterr()
        # the reference: a clean run on a catalog that never had the item
        clean = _without_item(http_catalog(tiny_world, assets, tmp_path / "ref-stac"), item_id)
        with serve_catalog(clean) as ref_api:
            ref = parse_config(run_config(tiny_world, ref_api, tmp_path / "ref"))
            run(ref, scheduler=cluster, progress=False, log=quiet)
    assert code == 0 and plan.counts["missing"] > 0, err
    warning = f"stf: warning: skipped {item_id} (asset red: "
    assert [line for line in err.splitlines() if line.startswith(warning)], err
    assert "404" in err and item_id in out  # the summary table names it too
    url = store_url(parse_config(data))
    skipped = provenance(url)["skipped_items"]
    assert [(s["item"], s["asset"], s["collection"]) for s in skipped] == [
        (item_id, "red", "landsat-c2-l2")
    ]
    assert skipped[0]["href"].endswith(lost.name) and "404" in skipped[0]["reason"]
    assert item_id not in provenance(url)["stac_items"]["fine"]
    assert_identical(url, store_url(ref))  # no zeros, no observed flag on 06-16
    quality = xr.open_zarr(url)["quality"].sel(time="2024-06-16").values
    assert not (quality.astype(int) & OBSERVED).any()


def _items(world: World) -> list[dict]:
    """The Landsat STAC items of ``world`` (as JSON)."""
    path = next(world.stac_dir.glob("landsat*/items.json"))
    return list(json.loads(path.read_text())["features"])
