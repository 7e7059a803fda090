"""The local cluster: the workers' environment and the Dask settings it starts under."""

from __future__ import annotations

import os

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

    def memory_monitor(dask_worker) -> float:
        return dask_worker.periodic_callbacks["memory_monitor"].callback_time

    with open_client(ComputeSpec(n_workers=2, threads_per_worker=1), log=lambda _m: None) as c:
        assert c.run_on_scheduler(intervals) == (1000, 5000)
        assert set(c.run(intervals).values()) == {(1000, 5000)}
        # the nannies (in this process) check the worker's RSS every 500 ms, the
        # workers their own memory (spill, pause) every 100 ms as with Dask's defaults
        nannies = c.cluster.workers.values()
        assert {n.periodic_callbacks["memory_monitor"].callback_time for n in nannies} == {500}
        assert set(c.run(memory_monitor).values()) == {100}
        # the worker processes keep the rest of the pipeline's settings
        env = c.run(lambda: {k: os.environ.get(k) for k in MALLOC_ENV})
        assert all(e == MALLOC_ENV for e in env.values())
    # the settings apply to the local cluster only, not to the caller's configuration
    assert dask.config.get("distributed.admin.tick.interval") != "1s"


def test_nested_spells_dotted_keys_as_dasks_nested_config() -> None:
    from pipeline.fuse.cluster import _nested

    flat = {"a.b.c": "1s", "a.b.d": 2, "e": 3}
    assert _nested(flat) == {"a": {"b": {"c": "1s", "d": 2}}, "e": 3}
