"""``stf cube CONFIG``: search, load the analysis-ready cubes, report scenes, pairs and grid."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from pipeline.cli.app import app


@app.command("cube")
def cube(
    config: Annotated[Path, typer.Argument(help="Run configuration (YAML).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print exactly one JSON object.")] = False,
    backend: Annotated[
        str, typer.Option("--backend", help="Loader: odc (odc-stac) or stackstac.")
    ] = "odc",
    min_clear: Annotated[
        float, typer.Option("--min-clear", min=0.0, max=1.0, help="Clear fraction a pair needs.")
    ] = 0.05,
) -> None:
    """Search the STAC endpoint and summarise the fine/coarse cubes, their clear days and pairs."""
    import warnings
    from dataclasses import asdict

    from pipeline import stages
    from pipeline.config import load_config
    from pipeline.cube.cubes import load_cubes
    from pipeline.cube.summary import summarize
    from pipeline.stages.size import check_size

    # odc-geo/shapely/affine deprecations say nothing about the user's data.
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=PendingDeprecationWarning)
    cfg = load_config(config)
    items = stages.search(cfg)
    sized = stages.size(cfg, items)
    check_size(cfg, sized)  # before any read: a continent-sized box is refused, not loaded
    with _progress_bar(enabled=not as_json) as progress:
        cubes = load_cubes(cfg, items.result, backend, min_clear=min_clear, progress=progress)
    summary = {**summarize(cfg, items.result, cubes), "size": asdict(sized)}
    if cubes.coregistration is not None and cubes.coregistration.warning:
        typer.echo(f"stf: warning: {cubes.coregistration.warning}", err=True)
    if as_json:
        typer.echo(json.dumps(summary))
    else:
        # on a bad input stdout stays empty: the refusal line itself carries the estimate
        typer.echo(f"size: {sized.describe()}")
        _print_summary(summary)


@contextmanager
def _progress_bar(enabled: bool) -> Iterator[Callable[[int, int], None] | None]:
    """A rich progress bar on stderr fed by ``progress(done, total)`` calls (None if disabled)."""
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    columns = (TextColumn("reading clear fractions"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("read", total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


def _print_summary(s: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    grid = s["grid"]
    console.print(
        f"[bold]{s['region']}[/] {s['time']['start']} .. {s['time']['end']}  via {s['endpoint']}"
    )
    (h, w), (hc, wc) = grid["shape"], grid["coarse_shape"]
    console.print(
        f"grid {grid['crs']}  {h} x {w} px at {grid['resolution_m']:g} m; "
        f"coarse {hc} x {wc} px at {grid['coarse_resolution_m']:g} m"
    )
    chunks = s["chunks"]
    console.print(f"chunks fine {chunks['fine']}  coarse {chunks['coarse']};  MB {s['size_mb']}")
    for role in ("fine", "coarse"):
        scenes = s[role]
        table = Table(title=f"{role}: {scenes['collection']} ({scenes['items_found']} items)")
        table.add_column("date")
        table.add_column("clear", justify="right")
        for day, clear in zip(scenes["dates"], scenes["clear_fraction"], strict=True):
            table.add_row(day, f"{clear:.1%}")
        console.print(table)
    pairs = Table(title=f"{len(s['pairs'])} reference pairs")
    for col in ("date", "fine clear", "coarse date", "coarse clear"):
        pairs.add_column(col)
    for p in s["pairs"]:
        pairs.add_row(
            p["date"],
            f"{p['clear_fraction']:.1%}",
            p["coarse_date"],
            f"{p['coarse_clear_fraction']:.1%}",
        )
    console.print(pairs)
    for item in s["skipped"]:
        console.print(
            f"[yellow]skipped[/] {item['item']} (asset {item['asset']}: {item['reason']})"
        )
    coreg = s.get("coregistration")
    if coreg:
        console.print(f"co-registration: {coreg['summary']}")
