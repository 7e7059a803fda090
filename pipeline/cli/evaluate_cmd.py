"""``stf evaluate MANIFEST --model NAME``: train on the other dates, score the target date."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from pipeline.cli.app import app


@app.command()
def evaluate(
    manifest: Annotated[Path, typer.Argument(help="YAML manifest of dated fine/coarse rasters.")],
    model: Annotated[str, typer.Option("--model", help="Registered model name, e.g. starfm.")],
    size: Annotated[str, typer.Option(help="Model size preset: tiny or full.")] = "tiny",
    epochs: Annotated[int | None, typer.Option(help="Training epochs (trainable models).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print exactly one JSON object.")] = False,
    out: Annotated[Path, typer.Option(help="Folder for the PNG figure.")] = Path("evaluate-out"),
    coregister: Annotated[
        str, typer.Option(help="Coarse-fine co-registration: auto, require or off.")
    ] = "auto",
) -> None:
    """Evaluate a fusion model on a manifest's ``predict`` date (trained on the other dates)."""
    from pipeline.evaluate.runner import evaluate as run

    evaluation = run(
        manifest, model, size=size, epochs=epochs, progress=not as_json, coregister=coregister
    )
    result = evaluation.result
    warning = result["coregistration"]["warning"]
    if warning:
        typer.echo(f"stf: warning: {warning}", err=True)
    if as_json:
        keys = ("model", "dataset", "target_date", "convention", "per_band", "overall", "seconds")
        keys += ("coregistration",)
        typer.echo(json.dumps({k: result[k] for k in keys}))
        return
    _print_table(result)
    from pipeline.evaluate.figures import plot_evaluation

    png = out / f"{result['dataset']}-{result['model']}.png"
    title = f"{result['model']} on {result['dataset']} {result['target_date']}"
    plot_evaluation(evaluation.truth, evaluation.prediction.fine, evaluation.bands, title, png)
    typer.echo(f"figure: {png}")


def _print_table(result: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    metrics = ("rmse", "ssim", "cc", "uiqi", "psnr")
    table = Table(title=f"{result['model']} on {result['dataset']} ({result['target_date']})")
    table.add_column("band")
    for m in (*metrics, "sam_deg", "ergas"):
        table.add_column(m, justify="right")
    for band, values in result["per_band"].items():
        table.add_row(band, *(f"{values[m]:.4f}" for m in metrics), "", "")
    overall = result["overall"]
    table.add_row("overall", *(f"{overall[m]:.4f}" for m in (*metrics, "sam_deg", "ergas")))
    console = Console()
    console.print(table)
    secs = result["seconds"]
    console.print(
        f"train {secs['train']:.1f} s, predict {secs['predict']:.1f} s; {result['convention']}"
    )
    from pipeline.cube.coregister import Coregistration

    console.print(Coregistration.from_dict(result["coregistration"]).describe())
