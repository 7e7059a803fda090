"""The full-chain scaling benchmark's plumbing: rows, growth figures, rendering, cost, budget."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from distributed import Client, LocalCluster

from benchmarks import scaling, task_budget
from benchmarks.chain_case import COUNTER, TaskCounter, _scheduler_done, config_for
from pipeline.synth import World


def _row(size: int, cpu: float, rss: float, model: str = "starfm") -> dict:
    return {
        "size": size,
        "days": 16,
        "model": model,
        "pixels": size**2,
        "pixel_days": size**2 * 16,
        "fine_items": 2,
        "coarse_items": 24,
        "stages_s": {"world": 1.0, "search": 1.0, "cubes": 10.0, "model": 5.0, "fuse": 50.0},
        "wall_s": 70.0,
        "cpu_s": cpu,
        "main_rss_peak_mib": 500.0,
        "worker_rss_peak_mib": rss,
        "tasks_cubes": 500,
        "tasks_fuse": 2000,
        "scheduler_cpu_s": 1.0,
        "scheduler_share": 0.02,
        "store_mib": 10.0,
    }


def test_growth_is_one_for_linear_cpu_and_renders(tmp_path: Path) -> None:
    rows = [_row(512, 100.0, 1000.0), _row(1024, 400.0, 1100.0)]
    result = scaling.summary(rows)
    (g,) = result["growth"]
    assert g["cpu_per_doubling"] == pytest.approx(1.0)
    assert g["worker_rss_ratio"] == pytest.approx(1.1)
    text = "\n".join(scaling.section(result))
    assert "| 1024² | 16 | starfm |" in text and "1.00× beyond linear" in text
    (cost,) = scaling.cost_lines(result)
    assert "starfm" in cost and "µs" in cost
    scaling.figure(result, tmp_path / "chain.png")
    assert (tmp_path / "chain.png").stat().st_size > 0


def test_runs_of_other_days_compare_memory_not_cpu() -> None:
    short = {**_row(2048, 900.0, 1150.0), "days": 4, "pixel_days": 2048**2 * 4}
    result = scaling.summary([_row(512, 100.0, 1000.0), short])
    (g,) = result["growth"]
    assert g["cpu_per_doubling"] is None and g["worker_rss_ratio"] == pytest.approx(1.15)
    result["profile"] = ["a profile line"]
    text = "\n".join(scaling.section(result))
    assert "not compared (16 vs 4 days)" in text and "1.15×" in text
    assert "### Fuse stage profile" in text and "a profile line" in text


def test_runs_compare_with_the_same_days_and_span_the_series() -> None:
    def row(size: int, days: int, cpu: float, rss: float) -> dict:
        return {**_row(size, cpu, rss), "days": days, "pixel_days": size**2 * days}

    rows = [row(512, 184, 300.0, 4000.0), row(1024, 184, 1200.0, 4400.0)]
    rows += [row(512, 60, 100.0, 1000.0), row(1024, 60, 400.0, 1100.0)]
    rows += [row(2048, 60, 1600.0, 1150.0), {**row(1024, 60, 1.0, 1.0), "model": "resstf"}]
    result = scaling.summary(rows)
    pairs = {(g["model"], g["from"], g["to"], g["days"]) for g in result["growth"]}
    assert pairs == {("starfm", 512, 1024, (184, 184)), ("starfm", 512, 1024, (60, 60)),
                     ("starfm", 1024, 2048, (60, 60))}  # fmt: skip
    assert all(g["cpu_per_doubling"] == pytest.approx(1.0) for g in result["growth"])
    (span,) = result["spans"]  # only the 60-day series has three sizes
    assert (span["from"], span["to"]) == (512, 2048)
    assert span["worker_rss_ratio"] == pytest.approx(1.15)
    result["task_memory"] = ["a task line"]
    text = "\n".join(scaling.section(result))
    assert "512² → 2048² × 60 d: peak worker RSS **1.15×**" in text
    assert "### Fuse task memory" in text and "a task line" in text


def test_series_are_compared_within_themselves_and_the_goal_span_stops_at_2048(
    tmp_path: Path,
) -> None:
    def row(size: int, cpu: float, rss: float, series: str = "") -> dict:
        return {**_row(size, cpu, rss), "series": series} if series else _row(size, cpu, rss)

    rows = [row(512, 100.0, 1000.0), row(1024, 400.0, 1100.0), row(2048, 1600.0, 1200.0)]
    new = [row(512, 100.0, 1000.0, "b"), row(2048, 1600.0, 1300.0, "b")]
    new += [row(1024, 400.0, 1250.0, "b"), row(4096, 6400.0, 1310.0, "b")]
    result = scaling.summary(rows + new)
    pairs = {(g["series"], g["from"], g["to"]) for g in result["growth"]}
    assert pairs == {("", 512, 1024), ("", 1024, 2048), ("b", 512, 1024), ("b", 1024, 2048),
                     ("b", 2048, 4096)}  # fmt: skip
    spans = {(g["series"], g["from"], g["to"]): g["worker_rss_ratio"] for g in result["spans"]}
    assert spans == {("", 512, 2048): pytest.approx(1.2), ("b", 512, 2048): pytest.approx(1.3)}
    text = "\n".join(scaling.section(result))
    assert "starfm 2048² → 4096² × 16 d (b): " in text and "4096² × 16 d (b)" in text
    assert "512² → 2048² × 16 d (b): peak worker RSS **1.30×**" in text
    scaling.figure(result, tmp_path / "chain.png")
    assert (tmp_path / "chain.png").stat().st_size > 0


def test_rows_survive_in_the_jsonl_file(tmp_path: Path) -> None:
    runs = tmp_path / "runs.jsonl"
    assert scaling.read_rows(runs) == []
    runs.write_text('{"a": 1}\n\n{"a": 2}\n')
    assert scaling.read_rows(runs) == [{"a": 1}, {"a": 2}]


def test_plans_name_the_issue_sizes(tmp_path: Path) -> None:
    sizes = {(s, d) for s, d, _ in scaling.FULL_PLAN}
    assert {(512, 184), (1024, 184), (2048, 60)} <= sizes
    case = scaling.case_for(2048, 60, "starfm", tmp_path, tmp_path)
    assert case.world_days == 60 and case.start == case.world_start == "2024-06-01"


def test_config_covers_the_world(tiny_world: World) -> None:
    from benchmarks.chain_case import ChainCase

    case = ChainCase(96, 8, "starfm", str(tiny_world.root), "/tmp/x", start="2024-06-01")
    cfg = config_for(case, tiny_world, "http://127.0.0.1:1")
    assert len(cfg.time.days()) == 8 and cfg.model.params == {"window": 5}
    assert cfg.compute.n_workers == 2 and cfg.store.overwrite


def test_scheduler_plugin_counts_finished_tasks() -> None:
    cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=False)
    with cluster, Client(cluster) as client:
        client.register_plugin(TaskCounter())
        client.gather(client.map(lambda x: x + 1, range(5)))
        assert client.run_on_scheduler(_scheduler_done) == 5
        assert COUNTER in client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.plugins)


def test_tile_year_projection_scales_per_chunk_counts() -> None:
    per = {"clear_fine": 1.0, "clear_coarse": 1.0, "fine": 1.0, "coarse": 1.0}
    row = {"after": {"per_chunk": per}, "before": {"per_chunk": per}}
    after, before = task_budget.project(row, "after"), task_budget.project(row, "before")
    # one task per chunk: the projection is the chunk count, far smaller after the rules
    assert after["fine"] == task_budget._tile_chunks("after")["fine"]
    assert after["total"] < before["total"] / 10


def test_budget_section_names_before_after_and_the_projection() -> None:
    per = {"clear_fine": 2.0, "clear_coarse": 2.0, "fine": 2.0, "coarse": 2.0}
    counts = {"shape": [544, 544], "days": 45, "fine_scenes": 4, "coarse_days": 53}
    counts |= {"clear": 10, "fine": 20, "coarse": 30, "fuse": 40, "per_chunk": per}
    row = {"after": counts, "before": {**counts, "clear": 100}}
    row["tile_year"] = {"after": task_budget.project(row), "before": task_budget.project(row)}
    text = "\n".join(task_budget.section([row]))
    assert "| 544² | 45 | 4 + 53 | 100 → 10 |" in text and "tile-year (7000²" in text


def test_scene_reader_projection_counts_chunks_of_all_bands() -> None:
    # a scene-reader chunk holds every band: a tile-year's fine cube is scenes x windows
    assert task_budget._tile_chunks("after")["fine"] == 46 * 14**2
    assert task_budget._tile_chunks("assets")["fine"] == 6 * 46 * 14**2


def test_budget_section_shows_three_builds_and_unmeasured_ones() -> None:
    per = {"clear_fine": 1.0, "clear_coarse": 1.0, "fine": 1.0, "coarse": 1.0}
    counts = {"shape": [544, 544], "days": 45, "fine_scenes": 4, "coarse_days": 53}
    counts |= {"clear": 10, "fine": 20, "coarse": 30, "fuse": 40, "per_chunk": per}
    full = {"after": counts, "assets": {**counts, "clear": 50}, "before": {**counts, "clear": 99}}
    big = {"after": {**counts, "shape": [2048, 2048]}, "assets": counts}
    for row in (full, big):
        row["tile_year"] = {w: task_budget.project(row, w) for w in row if w != "tile_year"}
    text = "\n".join(task_budget.section([full, big]))
    assert "| 544² | 45 | 4 + 53 | 99 → 50 → 10 |" in text
    assert "| 2048² | 45 | 4 + 53 | — → 10 → 10 |" in text
    # each build projected from the largest row that has it
    assert "from the 544² × 45-day row" in text
    assert "after" in text and "from the 2048² × 45-day row" in text


def test_a_case_overrides_compute_settings(tiny_world: World) -> None:
    from benchmarks.chain_case import ChainCase

    case = ChainCase(96, 8, "starfm", str(tiny_world.root), "/tmp/x", compute={"window_mib": 64})
    cfg = config_for(case, tiny_world, "http://127.0.0.1:1")
    assert cfg.compute.window_mib == 64 and cfg.compute.n_workers == 2


def _child_peak(queue: object) -> None:
    from benchmarks.chain_case import _rusage

    queue.put(_rusage()["rss_peak_mib"])  # type: ignore[attr-defined]


def test_a_spawned_process_reports_its_own_peak_not_its_parents() -> None:
    import multiprocessing

    import numpy as np

    from benchmarks.chain_case import _rusage

    held = np.ones(300 * 2**20, np.uint8)  # the parent's peak: at least 300 MiB more
    ctx = multiprocessing.get_context("spawn")  # as Dask's nannies start workers
    queue = ctx.Queue()
    child = ctx.Process(target=_child_peak, args=(queue,))
    child.start()
    peak = queue.get(timeout=60)
    child.join()
    assert _rusage()["rss_peak_mib"] > peak + 250 and held.sum() > 0


def test_a_row_reports_the_groups_and_the_source_chunks_they_held() -> None:
    from benchmarks.chain_case import _held
    from pipeline.fuse.engine import FuseOutcome
    from pipeline.stages.artefacts import FusedStore

    outcome = FuseOutcome(tasks=4, tasks_skipped=0, pixel_days=10, groups=3)
    fused = FusedStore("s.zarr", replace(outcome, peak_window_bytes=3 * 2**20))
    assert _held(fused) == {"fuse_groups": 3, "held_peak_mib": 3.0}
    assert _held(FusedStore("s.zarr")) == {}  # loaded, not fused here
