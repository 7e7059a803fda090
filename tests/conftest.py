"""Shared fixtures, each built once per session: the tiny demo world, a live STAC API serving
it, one Dask cluster for the runs that accept a scheduler, and the clean fault-trial store.

Starting a 2-process LocalCluster (and importing torch in its workers) and fusing the
fault-trial run are the dearest set-ups of the suite; they are shared read-only by every
test that only needs *a* cluster or *the* clean reference (a test that kills a worker
leaves a restarted one behind, as a real cluster would).
"""

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


@pytest.fixture(scope="session")
def cluster() -> Iterator[str]:
    """Address of a real 2-process LocalCluster (1 thread each) shared by the session's runs."""
    from distributed import LocalCluster  # imported here: collection stays light

    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as cl:
        yield cl.scheduler_address


@pytest.fixture(scope="session")
def clean_store(
    tiny_world: World, stac_url: str, cluster: str, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """The local store of an undisturbed fault-trial run: the reference every faulty trial
    (``tests/reliability``) and every object-store run (``tests/objstore``) must equal."""
    from pipeline.config import parse_config
    from pipeline.run import run, store_url
    from tests.reliability.conftest import quiet, run_config

    cfg = parse_config(run_config(tiny_world, stac_url, tmp_path_factory.mktemp("clean")))
    run(cfg, scheduler=cluster, progress=False, log=quiet)
    return store_url(cfg)


#: The small real test sets kept in the repository (see ``tests/data/README.md``).
TEST_DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real test data in the repository: recorded STAC items and the real rasters."""
    return TEST_DATA
