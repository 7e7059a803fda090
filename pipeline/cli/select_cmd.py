"""``stf select CONFIG-or-MANIFEST [--candidates a,b] [--size S] [--folds N] [--json]``.

A run configuration is searched and loaded like ``stf run`` does (the demo
catalog is served when ``stac.url: demo``); its clear pairs are the scenes and
the choice is the one ``model.select: true`` would make. An evaluation manifest
(``dates:``) gives its scenes directly.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from pipeline.cli.app import app

if TYPE_CHECKING:
    from pipeline.select import SelectionResult


def _read_yaml(path: Path) -> Any:
    import yaml

    from pipeline.errors import InputError

    try:
        return yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from None


def _select_manifest(
    path: Path, candidates: tuple[str, ...], size: str, folds: int | None
) -> SelectionResult:
    """Leave-one-pair-out choice over the dates of an evaluation manifest."""
    from pipeline.evaluate.manifest import load_manifest
    from pipeline.evaluate.rasters import load_dataset
    from pipeline.select import select_model

    manifest = load_manifest(path)
    scenes = load_dataset(manifest).scenes
    return select_model(
        scenes, candidates, manifest.bands, size, ratio=1.0 / manifest.ratio, max_folds=folds
    )


def _select_config(
    path: Path,
    raw: dict[str, Any],
    candidates: tuple[str, ...] | None,
    size: str | None,
    folds: int | None,
) -> SelectionResult:
    """Search + cubes of a run config, then the choice ``model.select`` would make on its pairs.

    ``candidates`` / ``size`` / ``folds`` override ``model.candidates`` / ``model.size`` /
    ``model.select_folds`` when given (validated like the file's own values).
    """
    from pipeline import stages
    from pipeline.config import parse_config
    from pipeline.train import pair_scenes, select_for

    given = {"candidates": candidates, "size": size, "select_folds": folds}
    changes = {k: v for k, v in given.items() if v is not None}
    if changes and isinstance(raw.get("model", {}), dict):
        raw = {**raw, "model": {**raw.get("model", {}), **changes}}
    cfg = parse_config(raw, source=str(path), base_dir=path.parent.resolve())
    cube_set = stages.cubes(cfg, stages.search(cfg))  # the search and cubes stages of stf run
    return select_for(cfg, pair_scenes(cube_set.cubes))


@app.command("select")
def select(
    source: Annotated[
        Path, typer.Argument(help="Run configuration or evaluation manifest (YAML) of the region.")
    ],
    candidates: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated registry names to compare (default: the config's "
            "model.candidates; for a manifest naive_change,starfm,estarfm,fitfc)."
        ),
    ] = None,
    size: Annotated[
        str | None,
        typer.Option(
            help="Model size preset tiny, small or full (default: the config's model.size; "
            "tiny for a manifest)."
        ),
    ] = None,
    folds: Annotated[
        int | None,
        typer.Option(
            help="Hold out at most this many pairs, spread over the dates (default: the "
            "config's model.select_folds; every pair for a manifest)."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print exactly one JSON object.")] = False,
) -> None:
    """Leave one clear pair out at a time, score every candidate, print the choice."""
    from pipeline.config import SELECT_CANDIDATES
    from pipeline.errors import InputError

    names = tuple(c.strip() for c in candidates.split(",") if c.strip()) if candidates else None
    raw = _read_yaml(source)
    if not isinstance(raw, dict):
        raise InputError(f"{source}: expected a run configuration or an evaluation manifest")
    if "dates" in raw:
        result = _select_manifest(source, names or SELECT_CANDIDATES, size or "tiny", folds)
    else:
        result = _select_config(source, raw, names, size, folds)
    if as_json:
        typer.echo(json.dumps(result.to_dict()))
        return
    for name, row in sorted(result.summary.items(), key=lambda kv: kv[1]["rmse"]):
        mark = "*" if name == result.choice else " "
        typer.echo(f"{mark} {name:14s} rmse {row['rmse']:.4f}  ssim {row['ssim']:.4f}  "
                   f"folds {row['folds']}")  # fmt: skip
    typer.echo(f"choice: {result.choice} ({result.rule})")
