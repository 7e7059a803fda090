"""Each benchmark function on its smallest size: the plumbing of the figures, not speed."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from benchmarks import cost, pipeline_bench, store_bench, throughput
from benchmarks.common import BANDS
from benchmarks.fuse_run import Case, distributed_pass, raw_pass
from benchmarks.run import COST_BEGIN, write_cost_section
from pipeline.models.registry import create_model


def test_throughput_row_counts_network_flops() -> None:
    assert throughput.matmul_peak("cpu", torch.float32, 64) > 0
    net = throughput._cpu_row("edcstfn", 3, "tiny", 16)
    naive = throughput._cpu_row("naive_change", 6, "tiny", 16)
    assert net["flops_px"] > 0 and net["network"] and net["mpx_s"] > 0
    assert naive["flops_px"] == 0 and not naive["network"]


def test_store_and_disk_speed(tmp_path: Path) -> None:
    store = store_bench.store_speed(tmp_path, 32, 4, 16)
    assert store["pixel_days"] == 32 * 32 * 4
    assert store["disk_bytes"] > 0 and store["write_s"] > 0 and store["read_s"] > 0
    disk = store_bench.disk_speed(tmp_path, 1 << 20)
    assert disk["write_s"] > 0 and disk["read_s"] > 0


def test_distributed_and_raw_pass_cover_the_same_pixel_days() -> None:
    case = Case(32, 4)
    result = distributed_pass(case)
    assert result.pixel_days == 32 * 32 * 4
    assert result.rss_peak_mib > 0 and "predict_days" in result.task_seconds
    wall, cpu = raw_pass(case)
    assert wall > 0 and cpu > 0


def test_per_doubling_is_one_for_linear_time() -> None:
    rows = [{"pixels": 1, "seconds": 2.0}, {"pixels": 4, "seconds": 8.0}]
    assert pipeline_bench.per_doubling(rows, "pixels") == pytest.approx([1.0])


def _throughput() -> dict:
    row = {"model": "resstf", "bands": 6, "mpx_s": 0.01, "flops_px": 1e6, "network": True}
    return {"cpu": [row, {**row, "model": "starfm", "flops_px": 0.0, "network": False}]}


def test_cost_estimates_gpus_only_for_networks() -> None:
    rows = {r["model"]: r for r in cost.model_costs(_throughput(), efficiency=0.5)}
    assert rows["resstf"]["gpu_kind"] == "estimate" and rows["resstf"]["gpu_hours"] > 0
    assert "gpu_hours" not in rows["starfm"]
    core_h = cost.TILE_PX * cost.DAYS / 1e4 / 0.5 / 3600
    assert rows["starfm"]["core_hours"] == pytest.approx(core_h)


def test_cost_section_replaces_the_placeholder_once(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# Infra\n\n## Cost\n\n> placeholder\n\n## After\n\ntext\n")
    starfm_row = {"model": "starfm (tiny)", "worker_env": "pipeline", "efficiency_cpu": 0.5}
    results = {"throughput": _throughput(), "pipeline": {"efficiency": [starfm_row]}}
    write_cost_section(results, readme)
    first = readme.read_text()
    write_cost_section(results, readme)
    assert readme.read_text() == first
    assert "placeholder" not in first and first.count(COST_BEGIN) == 1 and "## After" in first


def test_forward_rate_of_a_network_batch() -> None:
    model = create_model("resstf", BANDS[3], size="tiny", device="cpu")
    rate, flops = throughput.forward_rate(model, 3, tile=16, batch=2, bf16=False, device="cpu")
    assert rate > 0 and flops > 0
