"""The demo side's wiring: where the demo world lives, its building, its serving as ``demo``.

The production catalog (:mod:`pipeline.catalog`) knows only STAC API URLs; the
endpoint name ``demo`` is resolved here, on the composition floor, by building (or
reusing) the synthetic world of :mod:`pipeline.synth` and serving it on 127.0.0.1.
This module is the only one of the library that imports :mod:`pipeline.synth`
(an import-linter contract in ``pyproject.toml`` keeps it so), and it does so lazily:
importing :mod:`pipeline.run` does not load the world generator.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.config import DEMO_ENDPOINT, StacSpec

if TYPE_CHECKING:
    from pipeline.synth import World

#: Environment variable naming the demo world's directory.
DEMO_WORLD_ENV = "STF_DEMO_WORLD"


def demo_world_root(root: Path | None = None) -> Path:
    """``root``, else ``$STF_DEMO_WORLD``, else ``./demo-world``."""
    return root or Path(os.environ.get(DEMO_WORLD_ENV, "demo-world"))


def build_demo_world(root: Path | None = None, *, tiny: bool = False) -> World:
    """Build the demo world under :func:`demo_world_root` (reused if complete with that spec).

    Parameters
    ----------
    root : world directory; default :func:`demo_world_root`.
    tiny : the 96 x 96 px, five-week world of the tests instead of the full one.
    """
    from pipeline.synth import WorldSpec, build_world

    return build_world(demo_world_root(root), WorldSpec.tiny() if tiny else WorldSpec())


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
