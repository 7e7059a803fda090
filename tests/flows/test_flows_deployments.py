"""Region files parse with the pipeline's schema and become deployments offline."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml

from flows.deployments import build_deployments
from flows.regions import REGIONS_DIR, load_region, region_files
from pipeline.errors import ConfigError

INFRA_PREFECT = REGIONS_DIR.parents[1] / "infra" / "k8s" / "prefect-worker.yaml"


def test_every_region_file_is_a_run_config_with_a_schedule() -> None:
    paths = region_files()
    assert {p.name for p in paths} >= {"demo.yaml"}
    assert any(p.name.startswith("example-") for p in paths)
    for path in paths:
        region = load_region(path)
        assert region.config.region.name == region.name
        assert len(region.schedule.cron.split()) == 5


def test_deployments_carry_cron_parameters_and_pool() -> None:
    deployments = build_deployments()
    regions = [load_region(p) for p in region_files()]
    assert len(deployments) == 2 * len(regions)
    scheduled = {d.name: d for d in deployments if d.flow_name == "regional-run"}
    for region in regions:
        d = scheduled[region.name]
        (schedule,) = d.schedules
        assert schedule.schedule.cron == region.schedule.cron
        assert schedule.schedule.timezone == region.schedule.timezone
        assert d.work_pool_name == region.schedule.work_pool
        assert d.parameters == {"region_file": f"flows/regions/{region.path.name}"}
        assert d.entrypoint == "flows/regional_run.py:regional_run"
        assert d.job_variables["service_account_name"] == "stf-runner"
        assert d.paused is (not region.schedule.active)


def test_backfill_deployments_are_unscheduled() -> None:
    backfills = [d for d in build_deployments() if d.flow_name == "backfill"]
    assert backfills and all(not d.schedules for d in backfills)
    assert all(d.entrypoint == "flows/backfill.py:backfill" for d in backfills)


def test_work_pool_is_the_one_the_cluster_worker_polls() -> None:
    docs = yaml.safe_load_all(INFRA_PREFECT.read_text())
    settings = next(d for d in docs if d["kind"] == "ConfigMap")["data"]
    pools = {load_region(p).schedule.work_pool for p in region_files()}
    assert pools == {settings["STF_WORK_POOL"]}


def test_target_end_respects_latency_and_season_end() -> None:
    region = load_region(REGIONS_DIR / "example-po-valley.yaml")
    latency = region.schedule.latency_days
    assert region.target_end(dt.date(2025, 6, 10)) == dt.date(2025, 6, 10 - latency)
    assert region.target_end(dt.date(2026, 1, 1)) == region.config.time.end


def test_invalid_schedule_is_one_config_error_line(tmp_path: Path) -> None:
    text = (REGIONS_DIR / "demo.yaml").read_text().replace('cron: "0 6 * * *"', 'cron: "daily"')
    (tmp_path / "bad.yaml").write_text(text)
    with pytest.raises(ConfigError, match=r"schedule\.cron"):
        load_region(tmp_path / "bad.yaml")
