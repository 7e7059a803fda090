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


def worker_environ() -> dict[str, object]:
    """Dask's pre-spawn worker environment without ``MALLOC_TRIM_THRESHOLD_``.

    Setting that variable (Dask's default, 65536) also switches off glibc's
    dynamic mmap threshold, so every large torch temporary is mmap'd and
    unmapped again, page-faulting on each use: STARFM ran 1.7x slower in a
    worker than in a plain process (``benchmarks/results.md``, pipeline
    efficiency). The thread caps (``OMP_NUM_THREADS`` ...) are kept.
    """
    env = dict(dask.config.get("distributed.nanny.pre-spawn-environ", default={}))
    env.pop("MALLOC_TRIM_THRESHOLD_", None)
    return env


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
        dask.config.set({"distributed.nanny.pre-spawn-environ": worker_environ()}),
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
