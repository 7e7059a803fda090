"""The seamless series on the tiny world: covered pixel-days all valued, flags, calibrated sigma."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pipeline.config import parse_config
from pipeline.report import demo_config, write_report
from pipeline.run import run
from pipeline.store.layout import FILLED, FUSED, GAP, OBSERVED, OUTSIDE
from pipeline.store.write import open_store
from tests.test_run import tiny_config


def test_season_option_covers_the_growing_season(tmp_path: Path) -> None:
    days = demo_config(tmp_path, season=True).time.days()
    assert (days[0].isoformat(), days[-1].isoformat(), len(days)) == (
        "2024-04-15",
        "2024-10-15",
        184,
    )


@pytest.mark.slow
def test_tiny_world_store_is_seamless_and_calibrated(
    tiny_world: Any, stac_url: str, tmp_path: Path
) -> None:
    data = tiny_config(tiny_world, stac_url, tmp_path)
    # one block, one window: every day of the series, and the tiny world's pairs are clear in it
    # (a block with no clear pair is not fused: see the limits in benchmarks/seamless.md)
    data["chunks"] = {"y": 128, "x": 128, "time": 16}
    summary = run(parse_config(data), progress=False, log=lambda _m: None)
    ds = open_store(summary.store).load()
    quality = ds["quality"].values
    inside = (quality & OUTSIDE) == 0
    # the bar: >= 99.5 % valued, the rest named by a flag (8: no valid day to fill from)
    assert (quality[inside] & (OBSERVED | FUSED | FILLED | GAP)).all()
    assert ((quality[inside] & GAP) > 0).mean() <= 0.005
    assert np.isnan(ds["red"].values[~inside]).all()
    finite = np.isfinite(ds["red"].values) & np.isfinite(ds["uncertainty"].values)
    assert finite[inside].mean() >= 0.995
    prov = json.loads(ds.attrs["stf_provenance"])
    seamless = prov["model"]["seamless"]
    assert seamless["samples"] > 0 and len(seamless["q"]) == 3
    # per-band factors (RMS 1) and the scale + floor of the fused sigma, fitted on the pairs
    assert len(seamless["band_factors"]) == 3
    assert np.sqrt(np.mean(np.square(seamless["band_factors"]))) == pytest.approx(1.0)
    assert seamless["scale"] > 0 and seamless["floor"] >= 0

    metrics = write_report(summary.store, tiny_world, tmp_path / "report", n_days=3)
    saved = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert saved["seamless"]["finite_value"] >= 0.995
    assert saved["seamless"]["finite_uncertainty"] >= 0.995
    cal = saved["calibration"]
    assert cal["within_1sigma"] == pytest.approx(metrics["calibration"]["within_1sigma"])
    assert cal["count"] > 1000 and set(cal["by_flag"]) == {"fused", "filled"}
    assert 0.0 < cal["within_1sigma"] < cal["within_2sigma"] <= 1.0
    assert set(cal["band_factors"]) == {"green", "red", "nir"} and "pooled_sigma" in cal
    # the sigma ranks the errors: larger sigma where the withheld days' errors are larger
    assert all(rho > 0 for rho in cal["spearman"].values()), cal["spearman"]
    print("tiny world calibration:", json.dumps({k: v for k, v in cal.items() if k != "days"}))
    for name in ("flags.png", "reliability.png", "maps.png"):
        assert (tmp_path / "report" / name).stat().st_size > 10_000
