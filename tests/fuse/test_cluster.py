"""The local workers' environment: Dask's thread caps with the pipeline's malloc settings."""

from __future__ import annotations

import dask

from pipeline.fuse.cluster import MALLOC_ENV, worker_environ


def test_worker_environ_replaces_the_malloc_trim_threshold_and_keeps_thread_caps() -> None:
    env = {"MALLOC_TRIM_THRESHOLD_": 65536, "OMP_NUM_THREADS": 1}
    with dask.config.set({"distributed.nanny.pre-spawn-environ": env}):
        assert worker_environ() == {"OMP_NUM_THREADS": 1, **MALLOC_ENV}
    assert int(MALLOC_ENV["MALLOC_MMAP_THRESHOLD_"]) <= 32 * 2**20  # glibc ignores larger values


def test_local_cluster_runs_the_slower_idle_callbacks() -> None:
    from pipeline.config import ComputeSpec
    from pipeline.fuse.cluster import open_client

    def intervals(dask_worker=None, dask_scheduler=None) -> tuple[float, float]:
        server = dask_worker or dask_scheduler
        pcs = server.periodic_callbacks
        return pcs["tick"].callback_time, pcs["monitor"].callback_time

    with open_client(ComputeSpec(n_workers=1, threads_per_worker=1), log=lambda _m: None) as c:
        assert c.run_on_scheduler(intervals) == (1000, 5000)
        assert set(c.run(intervals).values()) == {(1000, 5000)}
