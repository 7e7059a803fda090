"""A flaky asset server (5xx, stalls, resets, truncations) and a permanently missing asset."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pipeline.catalog.server import serve_catalog
from pipeline.cli import main
from pipeline.config import parse_config
from pipeline.run import run, store_url
from pipeline.synth import World
from tests.reliability.conftest import assert_identical, http_catalog, quiet, run_config
from tests.reliability.flaky_server import FaultPlan, serve_flaky


@pytest.mark.slow
def test_transient_faults_at_20_percent_leave_an_identical_store(
    tiny_world: World, clean_store: str, cluster: str, tmp_path: Path
) -> None:
    # GDAL retries these; a truncated body is not retried by GDAL 3.10 (see
    # benchmarks/reliability.md), so "truncate" is left out of the mix here.
    kinds = ("500", "502", "503", "stall", "reset")
    plan = FaultPlan(rate=0.2, seed=7, kinds=kinds, stall_s=1.0)
    with (
        serve_flaky(tiny_world.root, plan) as assets,
        serve_catalog(http_catalog(tiny_world, assets, tmp_path / "stac")) as api,
    ):
        cfg = parse_config(run_config(tiny_world, api, tmp_path / "out"))
        run(cfg, scheduler=cluster, progress=False, log=quiet)
    faults = sum(plan.counts[k] for k in kinds)
    assert faults >= 20 and all(plan.counts[k] for k in kinds), plan.counts
    assert_identical(store_url(cfg), clean_store)


def test_a_permanently_missing_asset_is_one_line_exit_3_and_nothing_is_written(
    tiny_world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lost = next(tiny_world.root.glob("data/landsat/*/*_SR_B4.TIF")).relative_to(tiny_world.root)
    plan = FaultPlan(missing=frozenset({f"/{lost}"}))
    with (
        serve_flaky(tiny_world.root, plan) as assets,
        serve_catalog(http_catalog(tiny_world, assets, tmp_path / "stac")) as api,
    ):
        cfg_path = tmp_path / "run.yaml"
        cfg_path.write_text(yaml.safe_dump(run_config(tiny_world, api, tmp_path / "out")))
        code = main(["run", str(cfg_path)])
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 3 and plan.counts["missing"] > 0
    assert line.startswith("stf: error: cannot read asset") and lost.name in line, line
    assert not [p for p in (tmp_path / "out").rglob("*")]  # no store, no zeros, no lock
