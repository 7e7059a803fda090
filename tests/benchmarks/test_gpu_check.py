"""The prepared GPU check's CPU dry run: every section runs and reports (plumbing, not speed)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from benchmarks import gpu_check
from benchmarks.gpu_check import Plan


def _fast_plan() -> Plan:
    """The dry run without the real-set training and the end-to-end tile (seconds)."""
    return replace(Plan.dry(("naive_change", "starfm", "edcstfn"), 60.0), manifests=(), world=0)


def test_dry_run_compares_and_times_every_model(tmp_path: Path) -> None:
    result = gpu_check.run(_fast_plan(), tmp_path, "test")
    assert result["peaks"]["fp32"] > 0 and result["peaks"]["bf16"] > 0
    rows = result["correctness"]
    assert {(r["model"], r["dtype"]) for r in rows} == {
        (m, d) for m in ("naive_change", "starfm", "edcstfn") for d in ("fp32", "bf16")
    }
    # on the CPU the "device" run is the CPU run: identical outputs, within tolerance
    assert all(r["ok"] and r["max_abs"] == 0.0 for r in rows)
    speed = {r["model"]: r for r in result["throughput"]}
    assert speed["edcstfn"]["flops_px"] > 0 and speed["edcstfn"]["peak_fraction"] > 0
    assert speed["starfm"]["mpx_s"] > 0 and speed["starfm"]["flops_px"] == 0
    assert result["training"] == [] and "skipped" in result["end_to_end"]
    saved = json.loads((tmp_path / "gpu-check.json").read_text())
    assert saved["command"] == "test" and saved["plan"]["device"] == "cpu"
    report = (tmp_path / "gpu-check.md").read_text()
    for title in ("Matmul peak", "CUDA vs CPU", "Throughput", "Training", "End-to-end"):
        assert title in report


def test_a_failing_section_is_reported_and_the_others_still_run(tmp_path: Path) -> None:
    plan = replace(_fast_plan(), models=("no_such_model",))
    result = gpu_check.run(plan, tmp_path, "test")
    assert "no_such_model" in result["correctness"]["error"]
    assert "peaks" in result and "FAILED" in (tmp_path / "gpu-check.md").read_text()


def test_exhausted_budget_skips_work_instead_of_overrunning(tmp_path: Path) -> None:
    plan = replace(_fast_plan(), budget_s=-1.0)
    result = gpu_check.run(plan, tmp_path, "test")
    assert all(r.get("skipped") == "budget" for r in result["correctness"])


@pytest.mark.slow
def test_full_dry_run_trains_and_fuses_a_tile(tmp_path: Path) -> None:
    code = gpu_check.main(["--dry-run", "--out", str(tmp_path), "--models", "naive_change"])
    assert code == 0
    result = json.loads((tmp_path / "gpu-check.json").read_text())
    tile = result["end_to_end"]
    assert set(tile["stages_s"]) == {"build_world", "search", "cubes", "model", "fuse"}
    assert tile["store_mib"] > 0 and tile["coregistration"]["mode"] == "auto"
    assert {r["model"] for r in result["training"]} == set(gpu_check.TRAINED)
