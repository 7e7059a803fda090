"""One measured pass of the distributed fusion path, and the raw forward pass it is compared with.

:func:`distributed_pass` runs :func:`pipeline.fuse.engine.fuse_into_store` (plan,
streamed source chunks, halo windows, Dask tasks, Zarr region writes, provenance)
on a fresh LocalCluster and samples the RSS of every worker process while it runs.
:func:`raw_pass` fuses the same days and pixels with ``model.predict`` on the
whole in-memory image in this process, on one thread: the floor the
distributed path is measured against.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dask
import numpy as np
import psutil
import torch
from distributed import Client, LocalCluster

from benchmarks import synthetic
from benchmarks.common import BANDS, load
from pipeline.fuse.cluster import worker_environ
from pipeline.fuse.engine import WINDOW_MIB, FuseRequest, fuse_into_store
from pipeline.fuse.plan import choose_refs
from pipeline.fuse.tiles import fuse_tiled
from pipeline.fuse.worker import ModelPayload
from pipeline.models.base import FusionInput, FusionModel, Scene
from pipeline.models.registry import create_model

#: A group budget (MiB per worker) larger than any benchmark region: one group, no streaming.
WHOLE_REGION = 1e9


@dataclass(frozen=True)
class Case:
    """What to fuse: a ``size``² region over ``n_days`` with a model, on ``workers`` processes.

    ``worker_env`` names the workers' environment (:data:`WORKER_ENVS`): the
    pipeline's (:func:`pipeline.fuse.cluster.worker_environ`) or one of the
    "befores" of the malloc fixes recorded in the results. ``window_mib`` is the group
    budget per worker (:mod:`pipeline.fuse.stream`); :data:`WHOLE_REGION` makes
    one group of the whole region, i.e. every scene persisted over the whole
    region at once, as the pipeline did before it streamed.
    """

    size: int
    n_days: int
    model: str = "naive_change"
    model_size: str = "full"
    workers: int = 1
    chunk: int = 128
    n_bands: int = 3
    worker_env: str = "pipeline"
    window_mib: float = WINDOW_MIB

    def build_model(self) -> FusionModel:
        return create_model(self.model, BANDS[self.n_bands], size=self.model_size, device="cpu")


class RssSampler:
    """Samples the resident memory of some processes every ``interval`` s in a thread."""

    def __init__(self, pids: list[int], interval: float = 0.05) -> None:
        self.procs = [psutil.Process(p) for p in pids]
        self.peak: dict[int, int] = defaultdict(int)
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            for proc in self.procs:
                try:
                    self.peak[proc.pid] = max(self.peak[proc.pid], proc.memory_info().rss)
                except psutil.NoSuchProcess:
                    continue
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class PassResult:
    """Wall and CPU seconds, pixel-days, per-worker peak RSS idle/fusing, task seconds per function.

    ``cpu_seconds`` is the CPU time of the worker processes and of this process
    (client and scheduler) together: on a loaded machine it moves far less with
    the load than the wall time does. ``groups`` and ``window_peak_mib`` are the
    run's task groups and the most source-chunk MiB it held on the cluster at once.
    """

    seconds: float
    cpu_seconds: float
    pixel_days: int
    rss_idle_mib: float
    rss_peak_mib: float
    groups: int = 0
    window_peak_mib: float = 0.0
    task_seconds: dict[str, float] = field(default_factory=dict)
    load: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "mpx_days_s": self.pixel_days / self.seconds / 1e6}


def _payload(model: FusionModel, folder: Path) -> ModelPayload:
    model.save(folder / "model")
    return ModelPayload.from_dir(folder / "model")


def _task_seconds(stream: list[dict[str, Any]]) -> dict[str, float]:
    """Compute seconds summed per task function (Dask key prefix)."""
    totals: dict[str, float] = defaultdict(float)
    for task in stream:
        name = str(task["key"]).strip("('").split("-")[0]
        for part in task["startstops"]:
            if part["action"] == "compute":
                totals[name] += part["stop"] - part["start"]
    return {k: round(v, 3) for k, v in sorted(totals.items(), key=lambda kv: -kv[1])}


def _dask_default() -> dict[str, object]:
    return dict(dask.config.get("distributed.nanny.pre-spawn-environ", default={}))


def _glibc_dynamic() -> dict[str, object]:
    return {k: v for k, v in _dask_default().items() if k != "MALLOC_TRIM_THRESHOLD_"}


#: Worker environments: the pipeline's, Dask's default (trim threshold 64 KiB, fixed
#: mmap threshold) and Dask's without its trim threshold (glibc's dynamic thresholds).
WORKER_ENVS: dict[str, Callable[[], dict[str, object]]] = {
    "pipeline": worker_environ,
    "dask default": _dask_default,
    "glibc dynamic": _glibc_dynamic,
}


@contextlib.contextmanager
def _client(case: Case) -> Iterator[Client]:
    """A fresh LocalCluster whose workers start with exactly ``case.worker_env``'s malloc settings.

    Dask's nanny writes the pre-spawn environment into this process's
    ``os.environ`` and leaves it there, so an earlier cluster's ``MALLOC_*``
    variables would reach the next cluster's workers: they are removed first.
    """
    for name in [k for k in os.environ if k.startswith("MALLOC_")]:
        del os.environ[name]
    with (
        dask.config.set({"distributed.nanny.pre-spawn-environ": WORKER_ENVS[case.worker_env]()}),
        LocalCluster(
            n_workers=case.workers, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def _cpu_seconds(procs: list[psutil.Process]) -> float:
    return sum(p.cpu_times().user + p.cpu_times().system for p in procs)


def distributed_pass(case: Case) -> PassResult:
    """Fuse ``case`` into a new store under a temporary folder; cluster start-up not timed."""
    from distributed import get_task_stream

    sources = synthetic.make_sources(case.size, case.n_days, case.n_bands, case.chunk)
    with tempfile.TemporaryDirectory(prefix="stf-bench-") as tmp, _client(case) as client:
        request = FuseRequest(
            url=str(Path(tmp) / "bench.zarr"),
            region="bench",
            days=tuple(synthetic.days(case.n_days)),
            bands=BANDS[case.n_bands],
            chunks=(366, case.chunk, case.chunk),
            window_mib=case.window_mib,
        )
        payload = _payload(case.build_model(), Path(tmp))
        pids = list(client.run(os.getpid).values())
        time.sleep(0.5)
        with RssSampler(pids) as idle:
            time.sleep(0.3)
        grid = synthetic.grid(case.size)
        procs = [psutil.Process(p) for p in [*pids, os.getpid()]]
        cpu0 = _cpu_seconds(procs)
        with RssSampler(pids) as busy, get_task_stream(client) as stream:
            start = time.perf_counter()
            outcome = fuse_into_store(client, sources, grid, payload, request, {}, progress=False)
            seconds = time.perf_counter() - start
        return PassResult(
            seconds=seconds,
            cpu_seconds=_cpu_seconds(procs) - cpu0,
            pixel_days=outcome.pixel_days,
            rss_idle_mib=max(idle.peak.values()) / 2**20,
            rss_peak_mib=max(busy.peak.values()) / 2**20,
            groups=outcome.groups,
            window_peak_mib=outcome.peak_window_bytes / 2**20,
            task_seconds=_task_seconds(stream.data),
            load=load(),
        )


def raw_inputs(case: Case) -> list[FusionInput]:
    """The whole-image model inputs of every day (the refs the plan chooses, coarse on fine)."""
    sources = synthetic.make_sources(case.size, case.n_days, case.n_bands, case.chunk)
    fine = {d: a for d, a in zip(sources.dates("fine"), sources.fine.values, strict=True)}
    f = synthetic.FACTOR
    coarse = {
        d: a.repeat(f, -2).repeat(f, -1)
        for d, a in zip(sources.dates("coarse"), sources.coarse.values, strict=True)
    }
    clear = np.ones(len(sources.pairs), bool)
    refs = choose_refs(synthetic.days(case.n_days), sources.pairs, clear)
    bands = BANDS[case.n_bands]
    return [
        FusionInput(
            tuple(Scene(d, coarse[d], fine[d]) for d in r.dates), Scene(r.day, coarse[r.day]), bands
        )
        for r in refs
    ]


def raw_pass(case: Case, tiled: bool = False) -> tuple[float, float]:
    """Wall and CPU seconds of ``model.predict`` over every day of ``case``, in memory, 1 thread.

    ``tiled``: predict block by block on the store's ``case.chunk``² blocks with the
    model's halo (:func:`pipeline.fuse.tiles.fuse_tiled`), as the distributed path
    does, but in this process without Dask, reads or writes.
    """
    torch.set_num_threads(1)
    model = case.build_model()
    inputs = raw_inputs(case)
    chunk = (case.chunk, case.chunk)

    def predict(item: FusionInput) -> object:
        return fuse_tiled(model, item, chunk) if tiled else model.predict(item)

    predict(inputs[0])
    start, cpu = time.perf_counter(), time.process_time()
    for item in inputs:
        predict(item)
    return time.perf_counter() - start, time.process_time() - cpu
