"""The local workers' environment: Dask's thread caps with the pipeline's malloc settings."""

from __future__ import annotations

import dask

from pipeline.fuse.cluster import MALLOC_ENV, worker_environ


def test_worker_environ_replaces_the_malloc_trim_threshold_and_keeps_thread_caps() -> None:
    env = {"MALLOC_TRIM_THRESHOLD_": 65536, "OMP_NUM_THREADS": 1}
    with dask.config.set({"distributed.nanny.pre-spawn-environ": env}):
        assert worker_environ() == {"OMP_NUM_THREADS": 1, **MALLOC_ENV}
    assert int(MALLOC_ENV["MALLOC_MMAP_THRESHOLD_"]) <= 32 * 2**20  # glibc ignores larger values
