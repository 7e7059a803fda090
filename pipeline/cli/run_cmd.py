"""``stf run CONFIG`` and ``stf demo``: the whole chain into a dense daily Zarr store."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from pipeline.cli.app import app

Scheduler = Annotated[
    str | None,
    typer.Option(
        "--scheduler", help="address of a running Dask scheduler (default: a LocalCluster)"
    ),
]


def _print_summary(summary: Any) -> None:
    """The run's table on stdout; one ``stf: warning:`` line per skipped item on stderr."""
    import sys

    from rich.console import Console
    from rich.table import Table

    from pipeline.coregister import Coregistration

    table = Table(title="stf run", show_header=False)
    table.add_column(no_wrap=True)
    table.add_column(overflow="fold")  # long paths wrap whole, never cut to "…"
    rows = [
        ("store", summary.store),
        ("store size", f"{summary.store_bytes / 2**20:.1f} MiB"),
        ("days", str(summary.days)),
        ("pixel-days written", f"{summary.pixel_days:,}"),
        ("tasks run / skipped (already in store)", f"{summary.tasks} / {summary.tasks_skipped}"),
        ("wall time", f"{summary.wall_s:.1f} s"),
        ("throughput", f"{summary.pixels_per_s:,.0f} pixel-days/s"),
        ("model", f"{summary.model} (weights sha256 {summary.weights_sha256[:12]}...)"),
    ]
    rows += [(f"product {name}", path) for name, path in summary.products.items()]
    rows += [("skipped (asset unreadable)", item.describe()) for item in summary.skipped]
    coreg = Coregistration.from_dict(summary.coregistration)
    if coreg is not None:
        rows.append(("co-registration", coreg.describe()))
    for key, value in rows:
        table.add_row(key, value)
    # off a terminal rich assumes 80 columns; a log file has room for whole paths
    Console(width=None if sys.stdout.isatty() else 240).print(table)
    for item in summary.skipped:
        print(f"stf: warning: skipped {item.describe()}", file=sys.stderr)
    if coreg is not None and coreg.warning:
        print(f"stf: warning: {coreg.warning}", file=sys.stderr)


def _log(line: str) -> None:
    """Stage lines of a run, through logging (``--quiet`` hides them, ``--log-file`` keeps them)."""
    import logging

    logging.getLogger("pipeline.run").info(line)


@app.command("run")
def run_cmd(
    config: Annotated[Path, typer.Argument(help="run configuration (YAML)")],
    scheduler: Scheduler = None,
    resume: Annotated[
        bool, typer.Option("--resume/--no-resume", help="skip blocks the store marks complete")
    ] = True,
) -> None:
    """Search, load cubes, train or load the model, fuse every day into the Zarr store."""
    from pipeline.config import load_config
    from pipeline.run import run

    summary = run(load_config(config), scheduler=scheduler, resume=resume, log=_log)
    _print_summary(summary)


@app.command("demo")
def demo_cmd(
    out: Annotated[Path, typer.Option("--out", help="output folder")] = Path("demo-out"),
    scheduler: Scheduler = None,
    season: Annotated[
        bool, typer.Option("--season", help="the full season 2024-04-15..10-15 (184 days)")
    ] = False,
) -> None:
    """Build + serve the demo world, run the chain on it, and report against its truth."""
    from pipeline.demo import build_demo_world
    from pipeline.report import demo_config, write_report
    from pipeline.run import run, store_url

    start = time.perf_counter()
    cfg = demo_config(out, season=season)
    summary = run(cfg, scheduler=scheduler, log=_log)
    _print_summary(summary)
    metrics = write_report(store_url(cfg), build_demo_world(), out / "report")
    (out / "report" / "run_summary.json").write_text(json.dumps(summary.to_dict(), indent=1))
    mean = metrics["mean"]
    typer.echo(
        f"report: {out / 'report'} (RMSE {mean['rmse']:.4f}, SSIM {mean['ssim']:.3f} "
        f"on {len(metrics['days'])} days without Landsat); "
        f"demo took {time.perf_counter() - start:.0f} s"
    )
