"""The local workers' environment: Dask's thread caps without its malloc trim threshold."""

from __future__ import annotations

import dask

from pipeline.fuse.cluster import worker_environ


def test_worker_environ_drops_the_malloc_trim_threshold_and_keeps_thread_caps() -> None:
    env = {"MALLOC_TRIM_THRESHOLD_": 65536, "OMP_NUM_THREADS": 1}
    with dask.config.set({"distributed.nanny.pre-spawn-environ": env}):
        assert worker_environ() == {"OMP_NUM_THREADS": 1}
