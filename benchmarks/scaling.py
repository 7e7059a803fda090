"""The full chain at growing sizes: one measured run per (size, days, model), each its own process.

Every run is :mod:`benchmarks.chain_case` (STAC API on loopback, COG reads, cubes, model,
fuse, store); the rows are appended to a JSON-lines file as they finish, so a series cut
short by a deadline keeps what it measured. :func:`section` renders them for
``benchmarks/results.md``, :func:`figure` plots them, :func:`cost_lines` turns the CPU
seconds per pixel-day into the CPU cost of a tile-year (``infra/README.md``).

Usage::

    python -m benchmarks.scaling --worlds /tmp/worlds --runs runs.jsonl [--quick]
    python -m benchmarks.run --only chain        # the same, merged into results.md
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from benchmarks.chain_case import ChainCase
from benchmarks.cost import CORE_HOUR_USD, DAYS, TILE_PX

#: (size px, days, model, world days from 2024-04-15 or 2024-06-01) of the full plan: the
#: issue's sizes; a full season at 512 and 1024 px, 60 days at 2048 px.
FULL_PLAN = (
    (512, 184, "starfm"),
    (512, 184, "resstf"),
    (1024, 184, "starfm"),
    (1024, 184, "resstf"),
    (2048, 60, "starfm"),
    (2048, 60, "resstf"),
)
#: A smoke plan for tests and ``--quick``: the tiny sizes of the same chain.
QUICK_PLAN = ((96, 8, "starfm"),)


def case_for(size: int, days: int, model: str, worlds: Path, out: Path) -> ChainCase:
    """The :class:`ChainCase` of one plan entry (full season from 04-15; short ones from 06-01)."""
    season = days > 60
    start = "2024-04-15" if season else "2024-06-01"
    return ChainCase(
        size=size,
        days=days,
        model=model,
        world_root=str(worlds / f"w{size}-{start}-{days}"),
        out=str(out / f"run-{size}-{days}-{model}"),
        start=start,
        world_start=start,
        world_days=days,
    )


def run_case(case: ChainCase, runs: Path, timeout_s: float | None = None) -> dict[str, Any] | None:
    """Run one case in a fresh process; append its row to ``runs`` (JSON lines); None on failure."""
    cmd = [sys.executable, "-m", "benchmarks.chain_case", json.dumps(asdict(case))]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=True)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as err:
        print(f"[scaling] {case.size}px {case.days}d {case.model}: failed ({err})", flush=True)
        return None
    row = json.loads(done.stdout.strip().splitlines()[-1])
    with runs.open("a") as f:
        f.write(json.dumps(row) + "\n")
    return row


def read_rows(runs: Path) -> list[dict[str, Any]]:
    """The rows of a JSON-lines file (missing file: none)."""
    if not runs.exists():
        return []
    return [json.loads(line) for line in runs.read_text().splitlines() if line.strip()]


#: The issue's memory goal is set over this span of sizes (px): larger runs show the plateau.
GOAL_SPAN = (512, 2048)


def _series(r: dict[str, Any]) -> str:
    """A row's series label: runs of one code state measured together ("" for the first)."""
    return str(r.get("series", ""))


def _pair(a: dict[str, Any], b: dict[str, Any], model: str) -> dict[str, Any]:
    """Growth figures from run ``a`` to the larger run ``b`` of the same model."""
    work = b["pixel_days"] / a["pixel_days"]
    same_days = a["days"] == b["days"] and work > 1
    return {
        "model": model,
        "series": _series(b),
        "from": a["size"],
        "to": b["size"],
        "days": (a["days"], b["days"]),
        "cpu_per_doubling": (b["cpu_s"] / a["cpu_s"] / work) ** (1 / math.log2(work))
        if same_days
        else None,
        "worker_rss_ratio": b["worker_rss_peak_mib"] / a["worker_rss_peak_mib"],
        "tasks_ratio": (b["tasks_cubes"] + b["tasks_fuse"]) / (a["tasks_cubes"] + a["tasks_fuse"]),
    }


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Rows plus the growth figures between successive sizes of each model and series.

    Each run is compared with the next smaller run of the same model, series and days
    (fixed costs per day, e.g. the calibration's windows, would blur CPU time otherwise;
    a task's memory grows with its days), else with the next smaller run of any days of
    that series (then memory and tasks only). ``spans``: each (model, days, series) of
    three sizes or more, from its smallest size to its largest within :data:`GOAL_SPAN`
    (the goals are set from 512² to 2048²; larger runs are in ``growth``).
    """
    growth, spans = [], []
    for model, series in sorted({(r["model"], _series(r)) for r in rows}):
        mine = [r for r in rows if (r["model"], _series(r)) == (model, series)]
        mine = sorted(mine, key=lambda r: r["pixels"])
        for i, b in enumerate(mine):
            smaller = [a for a in mine[:i] if a["pixels"] < b["pixels"]]
            same = [a for a in smaller if a["days"] == b["days"]]
            if same or smaller:
                growth.append(_pair((same or smaller)[-1], b, model))
        for days in sorted({r["days"] for r in mine}):
            runs = [r for r in mine if r["days"] == days]
            within = [r for r in runs if r["size"] <= GOAL_SPAN[1]]
            if len({r["pixels"] for r in runs}) >= 3 and len(within) >= 2:
                spans.append(_pair(within[0], within[-1], model))
    return {"rows": rows, "growth": growth, "spans": spans}


def run(
    quick: bool = False, worlds: Path | None = None, runs: Path | None = None
) -> dict[str, Any]:
    """Run the plan (or the quick one) and return :func:`summary` of every row in ``runs``."""
    import tempfile

    scratch = Path(tempfile.mkdtemp(prefix="stf-scaling-"))
    worlds = worlds or scratch / "worlds"
    runs = runs or scratch / "runs.jsonl"
    for size, days, model in QUICK_PLAN if quick else FULL_PLAN:
        run_case(case_for(size, days, model, worlds, scratch), runs)
    return summary(read_rows(runs))


def _row(r: dict[str, Any]) -> str:
    s = r["stages_s"]
    return (
        f"| {r['size']}² | {r['days']} | {r['model']} | {r['fine_items']}+{r['coarse_items']} | "
        f"{r['wall_s']:.0f} | {r['cpu_s']:.0f} | {r['cpu_s'] / r['pixel_days'] * 1e6:.1f} | "
        f"{s['search']:.1f} / {s['cubes']:.0f} / {s['model']:.0f} / {s['fuse']:.0f} | "
        f"{r['worker_rss_peak_mib']:.0f} | {r['main_rss_peak_mib']:.0f} | "
        f"{r['tasks_cubes']} + {r['tasks_fuse']} | {r['scheduler_cpu_s']:.1f} "
        f"({r['scheduler_share']:.1%}) | {r['store_mib']:.1f} | {r.get('commit', '—')} |"
    )


def section(result: dict[str, Any]) -> list[str]:
    """Markdown lines of the full-chain scaling section of ``benchmarks/results.md``."""
    lines = [
        "## Full chain at growing sizes",
        "",
        "STAC API (`rustac`) on loopback → COG reads → cubes → model → fuse → Zarr store, "
        "one process per run (`benchmarks/chain_case.py`), 2 Dask workers × 1 thread, "
        "green/red/NIR; STARFM 5×5 window, ResStf (the default CNN) tiny, 1 epoch. "
        "CPU = this process + both workers; µs/px-day = CPU per pixel-day; "
        "tasks = clear-fraction pass (local scheduler) + fuse stage (distributed scheduler); "
        "scheduler = CPU of the scheduler's event-loop thread in the fuse stage (shared with "
        "the client's comms: an upper bound) and its share of the fuse wall time.",
        "",
        *(f"- {note}" for note in result.get("notes", [])),
        "",
        "| size | days | model | items (fine+coarse) | wall s | CPU s | µs/px-day | "
        "search / cubes / model / fuse s | worker peak RSS MiB | client peak RSS MiB | "
        "tasks | scheduler CPU s | store MiB | code |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        *(_row(r) for r in result["rows"]),
        "",
    ]
    for g in result["growth"]:
        days = g.get("days", ("?", "?"))
        cpu = (
            f"CPU time per doubling of pixel-days {g['cpu_per_doubling']:.2f}× beyond linear "
            "(goal ≤ 1.1)"
            if g["cpu_per_doubling"] is not None
            else f"CPU per doubling not compared ({days[0]} vs {days[1]} days)"
        )
        span = f" × {days[1]} d" if days[0] == days[1] else ""
        span += f" ({g['series']})" if g.get("series") else ""
        lines.append(
            f"- {g['model']} {g['from']}² → {g['to']}²{span}: {cpu}, peak worker RSS "
            f"{g['worker_rss_ratio']:.2f}× (goal ≤ 1.2 to 2048²), tasks {g['tasks_ratio']:.2f}×."
        )
    for g in result.get("spans", []):
        doubling = g["cpu_per_doubling"]
        label = f" ({g['series']})" if g.get("series") else ""
        lines.append(
            f"- {g['model']} {g['from']}² → {g['to']}² × {g['days'][1]} d{label}: peak worker RSS "
            f"**{g['worker_rss_ratio']:.2f}×** (goal ≤ 1.2), CPU time per doubling of pixels "
            f"{doubling:.2f}× beyond linear, tasks {g['tasks_ratio']:.2f}×."
        )
    if result.get("task_memory"):
        lines += ["", "### Fuse task memory", "", *(f"- {p}" for p in result["task_memory"])]
    if result.get("profile"):
        lines += ["", "### Fuse stage profile", "", *(f"- {p}" for p in result["profile"])]
    return lines


def cost_lines(result: dict[str, Any]) -> list[str]:
    """CPU core-hours and cost of a tile-year from each model's largest measured chain run."""
    lines = []
    for model in sorted({r["model"] for r in result["rows"]}):
        row = max((r for r in result["rows"] if r["model"] == model), key=lambda r: r["pixels"])
        per_px_day = row["cpu_s"] / row["pixel_days"]
        core_h = per_px_day * TILE_PX * DAYS / 3600
        lines.append(
            f"| {model} (full chain, {row['size']}² × {row['days']} d, 3 bands) | "
            f"{per_px_day * 1e6:.1f} µs | {core_h:,.1f} | ${core_h * CORE_HOUR_USD:,.2f} |"
        )
    return lines


def figure(result: dict[str, Any], path: Path) -> None:
    """CPU seconds and peak worker RSS against pixel-days, one line per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(9, 3.6))
    # one line per model, days and series: sizes at the same days (memory follows days)
    keys = sorted({(r["model"], r["days"], _series(r)) for r in result["rows"]})
    for model, days, series in keys:
        mine = [
            r
            for r in result["rows"]
            if (r["model"], r["days"], _series(r)) == (model, days, series)
        ]
        rows = sorted(mine, key=lambda r: r["pixels"])
        x = [r["pixel_days"] / 1e6 for r in rows]
        label = f"{model}, {days} d" + (f", {series}" if series else "")
        ax_t.loglog(x, [r["cpu_s"] for r in rows], "o-", label=label)
        ax_m.semilogx(x, [r["worker_rss_peak_mib"] for r in rows], "o-", label=label)
    ax_t.set(xlabel="Mpx-days", ylabel="CPU s (client + workers)", title="full chain: CPU time")
    ax_m.set(xlabel="Mpx-days", ylabel="MiB", title="peak RSS per worker")
    ax_m.set_ylim(bottom=0)
    for ax in (ax_t, ax_m):  # labels on the decades only: minor ones overlap on a short axis
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax_t.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    """Command line: run the plan, or ``--render`` the rows of ``--runs`` only."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worlds", type=Path, help="where the worlds are built (reused)")
    parser.add_argument("--runs", type=Path, required=True, help="JSON-lines file of the rows")
    parser.add_argument("--quick", action="store_true", help="the tiny smoke plan")
    parser.add_argument("--render", action="store_true", help="print the section of --runs")
    args = parser.parse_args(argv)
    result = (
        summary(read_rows(args.runs)) if args.render else run(args.quick, args.worlds, args.runs)
    )
    print("\n".join(section(result)))


if __name__ == "__main__":
    main()
