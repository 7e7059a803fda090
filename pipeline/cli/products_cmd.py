"""``stf ndvi|phenology|cropmap|feeds``: products of a fused store, in versioned run folders.

Outputs go to ``<out>/products/<run_id>/`` (``--out`` defaults to the store's folder);
an existing run id is refused unless ``--overwrite``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipeline.cli.app import app

# str, not Path: a Path would turn s3://bucket/x into s3:/bucket/x.
Store = Annotated[
    str,
    typer.Argument(help="fused Zarr store written by `stf run` / `stf demo` (path or fsspec URL)"),
]
Out = Annotated[
    str | None,
    typer.Option("--out", help="output root, path or URL (default: the store's folder)"),
]
RunId = Annotated[
    str | None, typer.Option("--run-id", help="products run id (default: UTC timestamp)")
]
Overwrite = Annotated[
    bool, typer.Option("--overwrite", help="replace an existing run with the same id")
]
Smooth = Annotated[str, typer.Option("--smooth", help="whittaker | savgol")]
Lam = Annotated[float, typer.Option("--lambda", help="Whittaker smoothness (larger = smoother)")]
Labels = Annotated[
    Path,
    typer.Option(
        "--labels", help="field polygons (.parquet/.geojson, store CRS) or a class raster"
    ),
]


def _start(
    store: str, out: str | None, run_id: str | None, overwrite: bool, smooth: str, lam: float
):
    from pipeline.errors import InputError
    from pipeline.products.runner import start

    if smooth not in ("whittaker", "savgol"):
        raise InputError(f"--smooth {smooth!r} is not known; use whittaker or savgol")
    return start(store, out, run_id, overwrite, smooth, lam)  # type: ignore[arg-type]


def _report(outputs: dict[str, Path]) -> None:
    typer.echo(f"products written to {outputs['manifest'].parent}")
    for name, path in outputs.items():
        typer.echo(f"  {name}: {path}")


@app.command("ndvi")
def ndvi_cmd(
    store: Store,
    smooth: Smooth = "whittaker",
    lam: Lam = 400.0,
    out: Out = None,
    run_id: RunId = None,
    overwrite: Overwrite = False,
) -> None:
    """Daily NDVI/EVI/NDWI with quality weights, gap-filled and smoothed -> indices.zarr."""
    from pipeline.products.runner import finish, step_ndvi

    run = _start(store, out, run_id, overwrite, smooth, lam)
    step_ndvi(run)
    _report(finish(run))


@app.command("phenology")
def phenology_cmd(
    store: Store,
    smooth: Smooth = "whittaker",
    lam: Lam = 400.0,
    out: Out = None,
    run_id: RunId = None,
    overwrite: Overwrite = False,
) -> None:
    """Per-pixel start/peak/end of season, amplitude, length, integral -> Zarr + COGs."""
    from pipeline.products.runner import finish, step_phenology

    run = _start(store, out, run_id, overwrite, smooth, lam)
    step_phenology(run)
    _report(finish(run))


@app.command("cropmap")
def cropmap_cmd(
    store: Store,
    labels: Labels,
    classifier: Annotated[str, typer.Option(help="hgb | rf | tcn")] = "hgb",
    smooth: Smooth = "whittaker",
    lam: Lam = 400.0,
    seed: int = 0,
    out: Out = None,
    run_id: RunId = None,
    overwrite: Overwrite = False,
) -> None:
    """Crop-type map (uint8 COG + probabilities) and field-split accuracy report."""
    from pipeline.errors import InputError
    from pipeline.products.cropmap import CLASSIFIERS
    from pipeline.products.runner import finish, step_cropmap

    if classifier not in CLASSIFIERS:
        raise InputError(
            f"--classifier {classifier!r} is not known; use one of {', '.join(CLASSIFIERS)}"
        )
    run = _start(store, out, run_id, overwrite, smooth, lam)
    step_cropmap(run, labels, classifier, seed)  # type: ignore[arg-type]
    _report(finish(run))
    acc = run.params["accuracy"]
    typer.echo(f"held-out fields: OA {acc['overall_accuracy']:.3f}, kappa {acc['kappa']:.3f}")


@app.command("feeds")
def feeds_cmd(
    store: Store,
    labels: Labels,
    smooth: Smooth = "whittaker",
    lam: Lam = 400.0,
    seed: int = 0,
    out: Out = None,
    run_id: RunId = None,
    overwrite: Overwrite = False,
) -> None:
    """Per-pixel and per-field GeoParquet feature tables + STAC items for downstream classifiers."""
    from pipeline.products.runner import finish, step_feeds

    run = _start(store, out, run_id, overwrite, smooth, lam)
    step_feeds(run, labels, seed)
    _report(finish(run))
