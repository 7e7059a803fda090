"""Shared fixtures: the tiny demo world and a live STAC API serving it (once per session)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.catalog.server import serve_catalog
from pipeline.synth import World, WorldSpec, build_world


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory: pytest.TempPathFactory) -> World:
    """The tiny demo world (96 x 96 px, 5 weeks; ~3 s to build), shared by the whole session."""
    return build_world(tmp_path_factory.mktemp("demo-world") / "tiny", WorldSpec.tiny())


@pytest.fixture(scope="session")
def stac_url(tiny_world: World) -> Iterator[str]:
    """Root URL of ``rustac serve`` on 127.0.0.1 serving :func:`tiny_world`'s catalog."""
    with serve_catalog(tiny_world.stac_dir) as url:
        yield url


#: The small real test sets kept in the repository (see ``tests/data/README.md``).
TEST_DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real test data in the repository: recorded STAC items and the real rasters."""
    return TEST_DATA
