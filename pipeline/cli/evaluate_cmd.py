"""``stf evaluate MANIFEST --model NAME``: train on the other dates, score the target date.

Every output names the best naive baseline on the same target (and its RMSE
gain), and for learned models their untrained start, the gain of training over
it, the steps taken and the held-back RMSE before and after training.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from pipeline.cli.app import app

#: Result keys printed by ``--json`` (those present).
JSON_KEYS = (
    "model", "dataset", "target_date", "convention", "per_band", "overall", "seconds",
    "refs", "baselines", "best_baseline", "gain_over_best_baseline", "training",
    "coregistration",
)  # fmt: skip


@app.command()
def evaluate(
    manifest: Annotated[Path, typer.Argument(help="YAML manifest of dated fine/coarse rasters.")],
    model: Annotated[str, typer.Option("--model", help="Registered model name, e.g. starfm.")],
    size: Annotated[
        str, typer.Option(help="Size preset: tiny, small (some models) or full.")
    ] = "tiny",
    epochs: Annotated[int | None, typer.Option(help="Training epochs (trainable models).")] = None,
    budget: Annotated[
        float | None,
        typer.Option(help="Training time budget in seconds (default: the preset's CPU/GPU one)."),
    ] = None,
    budget_steps: Annotated[
        int | None,
        typer.Option(
            "--budget-steps",
            help="Optimiser steps per trained model (load-independent; overrides epochs).",
        ),
    ] = None,
    folds: Annotated[
        bool, typer.Option("--folds", help="Predict every date from the others (>= 3 dates).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print exactly one JSON object.")] = False,
    out: Annotated[Path, typer.Option(help="Folder for the PNG figures.")] = Path("evaluate-out"),
    coregister: Annotated[
        str, typer.Option(help="Coarse-fine co-registration: auto, require or off.")
    ] = "auto",
) -> None:
    """Evaluate a fusion model on a manifest's ``predict`` date (trained on the other dates)."""
    params: dict[str, Any] = {} if budget is None else {"budget_s": budget}
    if epochs is not None:
        params["epochs"] = epochs
    if budget_steps is not None:
        params["budget_steps"] = budget_steps
    if folds:
        _folds(manifest, model, size, {**params, "coregister": coregister}, as_json)
        return
    from pipeline.evaluate.runner import evaluate as run

    evaluation = run(
        manifest, model, size=size, progress=not as_json, coregister=coregister, **params
    )
    result = evaluation.result
    warning = result["coregistration"]["warning"]
    if warning:
        typer.echo(f"stf: warning: {warning}", err=True)
    if as_json:
        typer.echo(json.dumps({k: result[k] for k in JSON_KEYS if k in result}))
        return
    _print_table(result)
    _figures(evaluation, out)


def _folds(manifest: Path, model: str, size: str, params: dict[str, Any], as_json: bool) -> None:
    from pipeline.evaluate.folds import evaluate_folds

    result = evaluate_folds(manifest, model, size=size, **params)
    if as_json:
        typer.echo(json.dumps(result))
        return
    for fold in result["folds"]:
        best = fold["best_baseline"]
        typer.echo(
            f"{fold['target_date']} from {', '.join(fold['refs'])}: rmse "
            f"{fold['overall']['rmse']:.4f} cc {fold['overall']['cc']:.4f}; best naive "
            f"{best['model']} rmse {best['rmse']:.4f} cc {best['cc']:.4f}"
        )
    s, b = result["summary"], result["best_baseline"]
    typer.echo(
        f"{model} over {len(result['folds'])} folds: rmse {s['rmse']['mean']:.4f} "
        f"± {s['rmse']['std']:.4f}, cc {s['cc']['mean']:.4f} ± {s['cc']['std']:.4f}; "
        f"best naive rmse {b['rmse']['mean']:.4f} ± {b['rmse']['std']:.4f}"
    )


def _figures(evaluation: Any, out: Path) -> None:
    from pipeline.evaluate.figures import plot_evaluation, plot_training

    result = evaluation.result
    png = out / f"{result['dataset']}-{result['model']}.png"
    title = f"{result['model']} on {result['dataset']} {result['target_date']}"
    plot_evaluation(evaluation.truth, evaluation.prediction.fine, evaluation.bands, title, png)
    typer.echo(f"figure: {png}")
    report = getattr(evaluation.model, "report", None)
    if report is not None and len(getattr(report, "history", [])) > 1:
        curve = out / f"{result['dataset']}-{result['model']}-training.png"
        plot_training(report.history, f"{title}: training", curve)
        typer.echo(f"training curve: {curve}")


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
        f"refs {', '.join(result['refs'])}; train {secs['train']:.1f} s, "
        f"predict {secs['predict']:.1f} s; {result['convention']}"
    )
    from pipeline.coregister import Coregistration

    console.print(Coregistration.from_dict(result["coregistration"]).describe())
    if "best_baseline" in result:
        best = result["best_baseline"]
        console.print(
            f"best naive baseline: {best['model']} rmse {best['rmse']:.4f} cc {best['cc']:.4f}; "
            f"{result['model']} RMSE gain over it {100 * result['gain_over_best_baseline']:+.1f} %"
        )
    if "training" in result:
        t = result["training"]
        console.print(
            f"training: {t['steps']} steps ({t['task']} task, validation on {t['validation']}); "
            f"untrained start rmse {t['start']['rmse']:.4f} cc {t['start']['cc']:.4f}; "
            f"gain of training on the target {100 * t['gain_over_start']:+.1f} %; held-back "
            f"rmse {_f(t['start_val_rmse'])} -> {_f(t['end_val_rmse'])}"
        )


def _f(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"
