"""``stf demo``: its configuration and its report against the synthetic truth (tiny world)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pipeline.config import parse_config
from pipeline.report import DEMO_OVERRIDES, demo_config, write_report
from pipeline.run import run
from tests.test_run import tiny_config


def test_demo_config_is_the_fast_setting(tmp_path: Path) -> None:
    cfg = demo_config(tmp_path / "out")
    assert cfg.stac.url == "demo" and cfg.model.name == "starfm" and cfg.model.size == "tiny"
    assert cfg.bands == tuple(DEMO_OVERRIDES["bands"]) and len(cfg.time.days()) == 45
    assert cfg.output_root == tmp_path / "out" and cfg.store.path == "fusion.zarr"
    assert cfg.products.cropmap and cfg.products.labels is not None


@pytest.mark.slow
def test_report_scores_maps_and_timeseries(
    tiny_world: Any, stac_url: str, cluster: str, tmp_path: Path
) -> None:
    data = tiny_config(tiny_world, stac_url, tmp_path)
    data["model"] = {"name": "naive_change"}
    data["chunks"] = {"y": 256, "x": 256, "time": 16}
    data["products"] = {"ndvi": True}  # the product step of `stf run`, on the same store
    summary = run(parse_config(data), scheduler=cluster, progress=False, log=lambda _m: None)
    assert Path(summary.products["manifest"]).is_file()
    assert Path(summary.products["manifest"]).parent.parent == tmp_path / "products"
    metrics = write_report(summary.store, tiny_world, tmp_path / "report", n_days=3)
    saved = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert saved["mean"] == pytest.approx(metrics["mean"]) and len(saved["days"]) == 3
    assert "ERGAS" in saved["convention"] or "ergas" in saved["convention"].lower()
    assert 0 < saved["mean"]["rmse"] < 0.1 and saved["mean"]["ssim"] > 0.3
    for name in ("maps.png", "ndvi_timeseries.png"):
        assert (tmp_path / "report" / name).stat().st_size > 10_000
