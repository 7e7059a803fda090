"""``stf catalog build-demo`` / ``stf catalog serve``: the embedded demo world and its STAC API."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Annotated

import typer

from pipeline.cli.app import catalog_app

#: Where the demo world lives unless ``--root`` says otherwise.
DEMO_WORLD_ENV = "STF_DEMO_WORLD"

RootOption = Annotated[
    Path | None,
    typer.Option("--root", help=f"world directory (default: ${DEMO_WORLD_ENV} or ./demo-world)"),
]


def demo_world_root(root: Path | None = None) -> Path:
    """``root``, else ``$STF_DEMO_WORLD``, else ``./demo-world``."""
    return root or Path(os.environ.get(DEMO_WORLD_ENV, "demo-world"))


@catalog_app.command("build-demo")
def build_demo(
    root: RootOption = None,
    tiny: Annotated[
        bool, typer.Option("--tiny", help="96 x 96 px, five weeks (for tests)")
    ] = False,
) -> None:
    """Build the demo world (COGs + STAC catalog); reuses a complete one with the same spec."""
    from pipeline.synth import WorldSpec, build_world

    spec = WorldSpec.tiny() if tiny else WorldSpec()
    start = time.monotonic()
    world = build_world(demo_world_root(root), spec)
    typer.echo(f"demo world ready at {world.root} ({time.monotonic() - start:.1f} s)")
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
    from pipeline.synth import WorldSpec, build_world, open_world
    from pipeline.synth.world import MARKER

    path = demo_world_root(root)
    if (path / MARKER).exists():
        world = open_world(path)
    else:
        world = build_world(path, WorldSpec.tiny() if tiny else WorldSpec())
    # SIGTERM (service managers, `timeout`) must also stop the rustac child: treat it as Ctrl-C.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with serve_catalog(world.stac_dir, port=port) as url:
        typer.echo(f"STAC API of the demo world at {url} (Ctrl-C to stop)")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            typer.echo("stopped")
