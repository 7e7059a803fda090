"""``stf catalog build-demo`` / ``stf catalog serve``: the embedded demo world and its STAC API."""

from __future__ import annotations

import datetime as dt
import os
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from pipeline.cli.app import catalog_app

if TYPE_CHECKING:
    from pipeline.synth import WorldSpec

#: Where the demo world lives unless ``--root`` says otherwise.
DEMO_WORLD_ENV = "STF_DEMO_WORLD"

RootOption = Annotated[
    Path | None,
    typer.Option("--root", help=f"world directory (default: ${DEMO_WORLD_ENV} or ./demo-world)"),
]


def demo_world_root(root: Path | None = None) -> Path:
    """``root``, else ``$STF_DEMO_WORLD``, else ``./demo-world``."""
    return root or Path(os.environ.get(DEMO_WORLD_ENV, "demo-world"))


def _parse_size(text: str) -> tuple[int, int]:
    """``"1024"`` or ``"1024x512"`` (width x height) in pixels."""
    from pipeline.errors import InputError

    parts = text.lower().split("x")
    try:
        width, height = (int(parts[0]), int(parts[-1])) if len(parts) <= 2 else (0, 0)
    except ValueError:
        width = height = 0
    if width <= 0 or height <= 0:
        raise InputError(f"--size {text!r} is not N or WxH in pixels; use e.g. --size 1024")
    return width, height


def _demo_spec(
    tiny: bool,
    size: str | None,
    start: dt.datetime | None,
    end: dt.datetime | None,
    seed: int | None,
    cloudiness: float | None,
) -> WorldSpec:
    """The world to build: the default (or tiny) spec with the options given replacing fields."""
    from pipeline.errors import InputError
    from pipeline.synth import WorldSpec

    changes: dict[str, object] = {}
    if size is not None:
        changes["width"], changes["height"] = _parse_size(size)
    if start is not None:
        changes["start"] = start.date()
    if end is not None:
        changes["end"] = end.date()
    if seed is not None:
        changes["seed"] = seed
    if cloudiness is not None:
        changes["cloudiness"] = cloudiness
    try:
        return WorldSpec.tiny(**changes) if tiny else WorldSpec(**changes)  # type: ignore[arg-type]
    except ValueError as err:
        fix = "change --size/--start/--end/--cloudiness"
        raise InputError(f"bad demo world: {err}; {fix}") from err


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

    Scenes are generated and written one day at a time, so memory follows the world's
    area (a few bytes per pixel of generator state), never the season's length.
    """
    from pipeline.synth import build_world

    spec = _demo_spec(tiny, size, start, end, seed, cloudiness)
    began = time.monotonic()
    world = build_world(demo_world_root(root), spec)
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
