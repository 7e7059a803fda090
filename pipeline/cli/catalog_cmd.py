"""``stf catalog build-demo`` / ``stf catalog serve``: the embedded demo world and its STAC API."""

from __future__ import annotations

import datetime as dt
import signal
import time
from pathlib import Path
from typing import Annotated

import typer

from pipeline.cli.app import catalog_app
from pipeline.demo import DEMO_WORLD_ENV

RootOption = Annotated[
    Path | None,
    typer.Option("--root", help=f"world directory (default: ${DEMO_WORLD_ENV} or ./demo-world)"),
]


@catalog_app.command("build-demo")
def build_demo(
    root: RootOption = None,
    tiny: Annotated[
        bool, typer.Option("--tiny", help="96 x 96 px, five weeks (for tests)")
    ] = False,
    size: Annotated[
        str | None,
        typer.Option("--size", help="N or WxH pixels of 30 m, multiples of 16 (default 512)"),
    ] = None,
    start: Annotated[
        dt.datetime | None,
        typer.Option("--start", formats=["%Y-%m-%d"], help="first day (default 2024-04-01)"),
    ] = None,
    end: Annotated[
        dt.datetime | None,
        typer.Option("--end", formats=["%Y-%m-%d"], help="last day (default 2024-10-31)"),
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="random seed (default 42)")] = None,
    cloudiness: Annotated[
        float | None,
        typer.Option("--cloudiness", help="mean daily cloud fraction in [0, 1] (default 0.4)"),
    ] = None,
) -> None:
    """Build the demo world (COGs + STAC catalog); reuses a complete one with the same spec.

    Scenes are generated and written one day at a time and, within a day, one strip of
    rows at a time, so memory follows neither the season's length nor the world's area.
    """
    from pipeline.demo import build_demo_world, demo_world_changes

    changes = demo_world_changes(size, start, end, seed, cloudiness)
    began = time.monotonic()
    world = build_demo_world(root, tiny=tiny, changes=changes)
    spec = world.spec
    typer.echo(
        f"demo world {spec.width}x{spec.height} px, {spec.start}..{spec.end} ready at "
        f"{world.root} ({time.monotonic() - began:.1f} s)"
    )
    typer.echo(f"  STAC catalog: {world.stac_dir}; bbox {[round(v, 5) for v in world.bbox]}")


@catalog_app.command("serve")
def serve(
    root: RootOption = None,
    port: Annotated[
        int | None, typer.Option("--port", help="TCP port (default: a free one)")
    ] = None,
    tiny: Annotated[
        bool, typer.Option("--tiny", help="build the tiny world if none exists")
    ] = False,
) -> None:
    """Serve the demo world as a STAC API on 127.0.0.1 until Ctrl-C (builds it if missing)."""
    from pipeline.catalog.server import serve_catalog
    from pipeline.demo import demo_world

    world = demo_world(root, tiny=tiny)
    # SIGTERM (service managers, `timeout`) must also stop the rustac child: treat it as Ctrl-C.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with serve_catalog(world.stac_dir, port=port) as url:
        typer.echo(f"STAC API of the demo world at {url} (Ctrl-C to stop)")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            typer.echo("stopped")
