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
from collections.abc import Callable, Iterator

import dask
from distributed import Client, LocalCluster

from pipeline.config import ComputeSpec
from pipeline.errors import ServiceError

#: glibc malloc settings of the local workers (bytes): allocations below 32 MiB (the
#: largest mmap threshold glibc accepts) come from the heap, and up to 256 MiB of
#: free heap is kept instead of being returned to the system after every task.
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": "33554432", "MALLOC_TRIM_THRESHOLD_": "268435456"}


#: Periodic-callback intervals of the local scheduler and workers. Dask's defaults (an
#: event-loop tick every 20 ms, a system monitor every 0.5 s, both only for warnings and
#: the dashboard) kept the scheduler's event loop busy 4.8 % of the wall time while idle
#: with 2 workers; 1.5 % with these (``benchmarks/results.md``, "Full chain at growing
#: sizes"). Blocked-loop warnings still fire (after ``distributed.admin.tick.limit``).
LOOP_CONFIG = {
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "5s",
}


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
    resources = {"GPU": 1} if compute.gpu else None
    with (
        dask.config.set({"distributed.nanny.pre-spawn-environ": worker_environ(), **LOOP_CONFIG}),
        LocalCluster(
            n_workers=compute.n_workers,
            threads_per_worker=compute.threads_per_worker,
            processes=True,
            memory_limit=compute.memory_limit,
            resources=resources,
            dashboard_address=":0",
        ) as cluster,
        Client(cluster) as client,
    ):
        log(f"Dask dashboard: {client.dashboard_link}")
        yield client
