"""The demo side's wiring: where the demo world lives, its building, its serving as ``demo``.

The production catalog (:mod:`pipeline.catalog`) knows only STAC API URLs; the
endpoint name ``demo`` is resolved here, on the composition floor, by building (or
reusing) the synthetic world of :mod:`pipeline.synth` and serving it on 127.0.0.1.
This module is the only one of the library that imports :mod:`pipeline.synth`
(an import-linter contract in ``pyproject.toml`` keeps it so), and it does so lazily:
importing :mod:`pipeline.run` does not load the world generator.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.config import DEMO_ENDPOINT, StacSpec

if TYPE_CHECKING:
    from pipeline.synth import World

#: Environment variable naming the demo world's directory.
DEMO_WORLD_ENV = "STF_DEMO_WORLD"


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


def demo_world_changes(
    size: str | None,
    start: dt.datetime | dt.date | None,
    end: dt.datetime | dt.date | None,
    seed: int | None,
    cloudiness: float | None,
) -> dict[str, Any]:
    """The :class:`~pipeline.synth.WorldSpec` fields that command-line options replace."""
    changes: dict[str, Any] = {}
    if size is not None:
        changes["width"], changes["height"] = _parse_size(size)
    if start is not None:
        changes["start"] = start.date() if isinstance(start, dt.datetime) else start
    if end is not None:
        changes["end"] = end.date() if isinstance(end, dt.datetime) else end
    if seed is not None:
        changes["seed"] = seed
    if cloudiness is not None:
        changes["cloudiness"] = cloudiness
    return changes


def build_demo_world(
    root: Path | None = None, *, tiny: bool = False, changes: dict[str, Any] | None = None
) -> World:
    """Build the demo world under :func:`demo_world_root` (reused if complete with that spec).

    Parameters
    ----------
    root : world directory; default :func:`demo_world_root`.
    tiny : start from the 96 x 96 px, five-week world of the tests instead of the full one.
    changes : spec fields replaced (:func:`demo_world_changes`); a bad value is an
        :class:`~pipeline.errors.InputError` naming the options to change.
    """
    from pipeline.errors import InputError
    from pipeline.synth import WorldSpec, build_world

    changes = changes or {}
    try:
        spec = WorldSpec.tiny(**changes) if tiny else WorldSpec(**changes)
    except ValueError as err:
        fix = "change --size/--start/--end/--cloudiness"
        raise InputError(f"bad demo world: {err}; {fix}") from err
    return build_world(demo_world_root(root), spec)


def demo_world(root: Path | None = None, *, tiny: bool = False) -> World:
    """The complete world already under ``root`` whatever its spec, else a newly built one.

    A world built for the tests (tiny) is reused as it is; only a missing or
    incomplete world is (re)built, with the default spec unless ``tiny``.
    """
    from pipeline.errors import InputError
    from pipeline.synth import open_world

    try:
        return open_world(demo_world_root(root))
    except InputError:
        return build_demo_world(root, tiny=tiny)


@contextmanager
def open_endpoint(stac: StacSpec) -> Iterator[str]:
    """Yield the STAC API URL to search; for ``stac.url: demo`` serve the demo world.

    A real URL passes through unchanged. For ``demo`` the world of :func:`demo_world`
    is served on 127.0.0.1 (``rustac serve``) for the duration of the ``with`` block.
    """
    if stac.url != DEMO_ENDPOINT:
        yield stac.url
        return
    from pipeline.catalog.server import serve_catalog

    with serve_catalog(demo_world().stac_dir) as url:
        yield url


def withheld_landsat(truth: Any, day: dt.date) -> Any:
    """A clear Landsat observation of the world's ``truth`` on ``day`` that no run saw.

    Truth (band, y, x) reflectance plus the world's OLI-like noise
    (:func:`pipeline.synth.sensors_sim.landsat_noise`), seeded by the day so the
    report is reproducible.
    """
    import numpy as np

    from pipeline.synth.sensors_sim import landsat_noise

    return landsat_noise(truth, np.random.default_rng(day.toordinal()))
