"""``stf select MANIFEST [--candidates a,b,c] [--json]``: pick the best model for a region."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from pipeline.cli.app import app

if TYPE_CHECKING:
    from pipeline.models.base import Scene

DEFAULT_CANDIDATES = "naive_change,starfm,estarfm,fitfc"


def _scenes_and_bands(path: Path) -> tuple[tuple[Scene, ...], tuple[str, ...], float]:
    """Scenes, band names and resolution ratio of an evaluation manifest."""
    import yaml

    from pipeline.errors import InputError

    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from None
    if not isinstance(raw, dict) or "dates" not in raw:
        # A run config needs the run engine's cube -> pairs API, not available yet.
        raise InputError(
            f"{path} is not an evaluation manifest (no 'dates'); stf select supports "
            "manifests only for now (see manifests/*.yaml)"
        )
    from pipeline.evaluate.manifest import load_manifest
    from pipeline.evaluate.rasters import load_dataset

    manifest = load_manifest(path)
    return load_dataset(manifest).scenes, manifest.bands, 1.0 / manifest.ratio


@app.command("select")
def select(
    source: Annotated[Path, typer.Argument(help="Evaluation manifest (YAML) of the region.")],
    candidates: Annotated[
        str, typer.Option(help="Comma-separated registry names to compare.")
    ] = DEFAULT_CANDIDATES,
    size: Annotated[str, typer.Option(help="Model size preset: tiny, small or full.")] = "tiny",
    as_json: Annotated[bool, typer.Option("--json", help="Print exactly one JSON object.")] = False,
) -> None:
    """Leave one clear pair out at a time, score every candidate, print the choice."""
    from pipeline.models.select import select_model

    scenes, bands, ratio = _scenes_and_bands(source)
    names = [c.strip() for c in candidates.split(",") if c.strip()]
    result = select_model(scenes, names, bands, size, ratio=ratio)
    if as_json:
        typer.echo(json.dumps(result.to_dict()))
        return
    for name, row in sorted(result.summary.items(), key=lambda kv: kv[1]["rmse"]):
        mark = "*" if name == result.choice else " "
        typer.echo(f"{mark} {name:14s} rmse {row['rmse']:.4f}  ssim {row['ssim']:.4f}  "
                   f"folds {row['folds']}")  # fmt: skip
    typer.echo(f"choice: {result.choice} ({result.rule})")
