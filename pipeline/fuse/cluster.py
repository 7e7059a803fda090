"""Where the tasks run: a new LocalCluster of processes, or an existing Dask scheduler.

The same code drives both: ``compute.scheduler`` (or ``--scheduler``) names a
running scheduler (dask-kubernetes, Dask Gateway, jobqueue, ``dask scheduler``);
otherwise a LocalCluster of ``n_workers`` processes starts for the run and
stops after it. With ``compute.gpu`` the local workers advertise one ``GPU``
resource each, and model tasks ask for it (remote GPU workers must be started
with ``--resources GPU=1``, as the Kubernetes manifests in ``infra/`` do).
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterator

import dask
from distributed import Client, LocalCluster

from pipeline.config import ComputeSpec
from pipeline.errors import ServiceError

#: glibc malloc settings of the local workers (bytes): allocations below 32 MiB (the
#: largest mmap threshold glibc accepts) come from the heap, and up to 256 MiB of
#: free heap is kept instead of being returned to the system after every task.
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": "33554432", "MALLOC_TRIM_THRESHOLD_": "268435456"}


#: Periodic-callback intervals of the local scheduler, nannies and workers. Dask's
#: defaults (an event-loop tick every 20 ms, a system monitor every 0.5 s, both only for
#: warnings and the dashboard) kept the client process's event loop busy 3.2-4.3 % of the
#: wall time while idle with 2 workers. That loop also runs both nannies, whose memory
#: monitors (100 ms each, a ``psutil`` read of the worker's RSS) were then its largest
#: callbacks: 3.9 of ~14 ms per second with the first two settings. The nannies check
#: every 500 ms (:data:`WORKER_CONFIG` keeps the workers' own spill/pause monitor at
#: Dask's 100 ms): 0.80-0.83 % idle (``benchmarks/scheduler_loop.py``,
#: ``benchmarks/results.md`` "Full chain at growing sizes"). Blocked-loop warnings still
#: fire (after ``distributed.admin.tick.limit``); heartbeats, the worker TTL and the
#: nanny's restart of a dead worker are untouched (``tests/fuse/test_fuse.py`` kills one).
LOOP_CONFIG = {
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "5s",
    "distributed.worker.memory.monitor-interval": "500ms",
}

#: What the worker processes run with over :data:`LOOP_CONFIG`: their own memory monitor
#: (spilling at 70 % of the limit, pausing at 80 %) at Dask's default, so that a worker
#: reacts to its tasks' memory as fast as before; only the nannies' check (restart at
#: 95 %, a last resort behind the worker's pause) is slower.
WORKER_CONFIG = {"distributed.worker.memory.monitor-interval": "100ms"}


def worker_environ() -> dict[str, object]:
    """Dask's pre-spawn worker environment with :data:`MALLOC_ENV` instead of Dask's trim threshold.

    Dask sets ``MALLOC_TRIM_THRESHOLD_=65536``, which also fixes glibc's mmap
    threshold at its 128 KiB default: every large torch temporary is mmap'd and
    unmapped again, page-faulting on each use. Without it (glibc's dynamic
    thresholds) a worker still faulted 5x more than a plain process, since its
    tasks free memory between model calls and the heap is trimmed each time:
    STARFM 256² x 16 days took 2.85 M minor faults and 12.5 CPU s in
    ``predict_days`` against 0.58-0.89 M and 7.6 CPU s with :data:`MALLOC_ENV`
    (``benchmarks/results.md``, pipeline efficiency). The thread caps
    (``OMP_NUM_THREADS`` ...) are kept. The price: up to 256 MiB of freed heap
    stays resident per worker.
    """
    env = dict(dask.config.get("distributed.nanny.pre-spawn-environ", default={}))
    env.pop("MALLOC_TRIM_THRESHOLD_", None)
    return {**env, **MALLOC_ENV}


@contextlib.contextmanager
def open_client(
    compute: ComputeSpec, scheduler: str | None = None, log: Callable[[str], None] = print
) -> Iterator[Client]:
    """A Dask client for the run; prints the dashboard link.

    Parameters
    ----------
    compute : cluster settings (workers, threads, memory, GPU).
    scheduler : address of an existing scheduler; overrides ``compute.scheduler``.
    log : where the dashboard line goes.

    Raises
    ------
    ServiceError : the scheduler cannot be reached.
    """
    address = scheduler or compute.scheduler
    if address:
        try:
            client = Client(address, timeout="20s")
        except OSError as exc:
            raise ServiceError(
                f"cannot reach the Dask scheduler {address}: {exc}; check --scheduler"
            ) from None
        with client:
            log(f"Dask dashboard: {client.dashboard_link}")
            yield client
        return
    with local_cluster(compute) as cluster, Client(cluster) as client:
        log(f"Dask dashboard: {client.dashboard_link}")
        yield client


def local_config() -> dict[str, object]:
    """The Dask settings the local cluster starts under (client process and workers)."""
    return {"distributed.nanny.pre-spawn-environ": worker_environ(), **LOOP_CONFIG}


@contextlib.contextmanager
def local_cluster(compute: ComputeSpec) -> Iterator[LocalCluster]:
    """A LocalCluster of ``compute.n_workers`` processes under :func:`local_config`.

    The nannies (in this process) read :data:`LOOP_CONFIG`; each worker process gets
    this process's configuration with :data:`WORKER_CONFIG` over it (a nanny's
    ``config``, deep-merged here because the nanny merges it shallowly).
    """
    resources = {"GPU": 1} if compute.gpu else None
    with dask.config.set(local_config()):
        workers = dask.config.update(copy.deepcopy(dask.config.config), _nested(WORKER_CONFIG))
        with LocalCluster(
            n_workers=compute.n_workers,
            threads_per_worker=compute.threads_per_worker,
            processes=True,
            memory_limit=compute.memory_limit,
            resources=resources,
            dashboard_address=":0",
            config=workers,
        ) as cluster:
            yield cluster


def _nested(flat: dict[str, str]) -> dict[str, object]:
    """``{"a.b.c": v}`` as ``{"a": {"b": {"c": v}}}`` (Dask's dotted keys, nested)."""
    out: dict[str, object] = {}
    for key, value in flat.items():
        *parents, leaf = key.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})  # type: ignore[assignment]
        node[leaf] = value
    return out
