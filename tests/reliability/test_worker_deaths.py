"""A random Dask worker SIGKILLed at a random moment of the fuse stage, in seeded trials.

Extends ``tests/fuse/test_fuse.py::test_killing_a_worker_mid_run_gives_the_same_store``
(one worker, after the first commit, synthetic cubes) to the whole ``run`` on the
tiny world with a seeded choice of worker and moment.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from pathlib import Path

import pytest
from distributed import Client

from pipeline.config import parse_config
from pipeline.run import run, store_url
from pipeline.synth import World
from tests.reliability.conftest import assert_identical, run_config

SEED = 4242
TRIALS = 3


@pytest.mark.slow
@pytest.mark.parametrize("trial", range(TRIALS))
def test_a_worker_killed_mid_fuse_leaves_an_identical_store(
    trial: int, tiny_world: World, stac_url: str, clean_store: str, cluster: str, tmp_path: Path
) -> None:
    rng = random.Random(SEED + trial)
    with Client(cluster) as client:
        client.wait_for_workers(2, timeout=60)
        victim = rng.choice(sorted(client.run(os.getpid).values()))
    delay = rng.uniform(0.0, 2.0)
    fusing, killed = threading.Event(), threading.Event()

    def log(line: str) -> None:
        if line.startswith("[fuse] ..."):
            fusing.set()

    def killer() -> None:
        if fusing.wait(300):
            time.sleep(delay)
            os.kill(victim, signal.SIGKILL)
            killed.set()

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    cfg = parse_config(run_config(tiny_world, stac_url, tmp_path))
    run(cfg, scheduler=cluster, progress=False, log=log)
    assert killed.is_set(), "the run ended before the worker was killed"
    thread.join(timeout=5)
    with Client(cluster) as client:
        assert victim not in client.run(os.getpid).values()
    assert_identical(store_url(cfg), clean_store)
