"""The Typer application object that every command module adds to."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="stf",
    help="Distributed spatiotemporal fusion: Landsat + MODIS -> dense daily 30 m Zarr time series.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

#: ``stf catalog ...`` sub-commands (serve the demo STAC API, search).
catalog_app = typer.Typer(
    help="STAC catalog: serve the embedded demo world, search endpoints.", no_args_is_help=True
)
app.add_typer(catalog_app, name="catalog")


@app.command()
def version() -> None:
    """Print the software version."""
    import pipeline

    typer.echo(pipeline.__version__)
