"""``stf info STORE``: days, bands, completion, coverage and provenance of a fused store."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from pipeline.cli.app import app

if TYPE_CHECKING:
    from pipeline.store.info import StoreInfo


def _lines(info: StoreInfo) -> list[str]:
    prov = info.provenance
    lines = [
        f"store        {info.url}",
        f"days         {info.first_day} .. {info.last_day} ({info.n_days} days)",
        f"bands        {', '.join(info.bands)}",
        f"variables    {', '.join(info.variables)}",
        f"grid         {info.shape[0]} x {info.shape[1]} px, {info.crs}",
        f"chunks       {' x '.join(str(c) for c in info.chunks)} (time x y x x)",
        f"completion   {info.done:.1%} final, {info.provisional:.1%} provisional "
        "(day x block cells)",
        f"coverage     {info.observed:.1%} observed, {info.fused:.1%} fused, "
        f"{info.gap:.1%} gap (pixel-days)",
    ]
    if prov:
        lines += [
            f"model        {prov['model']} (weights sha256 {prov['weights_sha256'] or '-'})",
            f"last run     {prov['created']} over {' .. '.join(prov['run_days'] or [])}, "
            f"stf {prov['stf_version']}, {prov['earlier_runs']} earlier run(s)",
            f"skipped      {prov['skipped_items']} STAC item(s) unreadable",
        ]
    else:
        lines.append("provenance   none (the run that wrote this store did not finish)")
    return lines


@app.command()
def info(
    store: Annotated[str, typer.Argument(help="fused Zarr store (path or fsspec URL)")],
) -> None:
    """Summarise a fused store: days, bands, completion, coverage and provenance."""
    from pipeline.errors import InputError
    from pipeline.store.info import store_info
    from pipeline.store.write import store_exists

    if not store_exists(store):
        raise InputError(
            f"no fused store at {store} (no zarr.json); pass the folder `stf run` wrote, "
            "e.g. demo-out/fusion.zarr"
        )
    try:
        summary = store_info(store)
    except KeyError as exc:
        raise InputError(
            f"{store} is a Zarr store but not one written by stf (missing {exc}); "
            "pass a store written by `stf run`"
        ) from None
    for line in _lines(summary):
        typer.echo(line)
