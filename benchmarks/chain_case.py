"""One full-chain run measured: STAC API on loopback, COG reads, cubes, model, fuse, store.

Run in its own process (``python -m benchmarks.chain_case JSON``, as
:mod:`benchmarks.scaling` does) so that peak RSS figures belong to this run alone.
The chain is the one users run (:mod:`pipeline.stages`, the functions ``stf run``
composes), on a demo world served by ``rustac`` on 127.0.0.1. Measured:

* wall seconds per stage, CPU seconds of this process and of every Dask worker;
* peak RSS of this process (client, cubes stage, model) and of each worker;
* tasks: the clear-fraction pass of the cubes stage (local scheduler, counted by a
  dask callback) and every task the distributed scheduler ran in the fuse stage
  (a scheduler plugin counts ``processing -> memory`` transitions);
* scheduler time: CPU seconds of the thread running the scheduler's event loop
  (the LocalCluster's scheduler lives in this process; the client's comms share
  that loop, so it is an upper bound);
* the store's size on disk;
* the fuse stage's groups and the peak bytes of source chunks they held on the
  cluster (all workers; bounded by ``compute.window_mib`` x workers per group, two
  groups open at a time).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import resource
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dask.callbacks import Callback
from distributed.diagnostics.plugin import SchedulerPlugin

#: Registered name of :class:`TaskCounter` on the scheduler.
COUNTER = "stf-task-counter"


@dataclass(frozen=True)
class ChainCase:
    """One run of the scaling series.

    Attributes
    ----------
    size : world side in 30 m px (multiple of 16); the region is the world.
    days : target days fused, from ``start``.
    model, model_size, epochs : the fusion model (``epochs`` only for networks).
    world_root : where the world is (built there first when absent).
    start : first target day (ISO).
    world_start, world_days : the world's season (it must hold the run's days).
    out : run directory (store, models, work).
    compute : settings over the series' ``compute`` section (e.g. ``{"window_mib": 64}``).
    """

    size: int
    days: int
    model: str
    world_root: str
    out: str
    model_size: str = "tiny"
    epochs: int = 1
    start: str = "2024-04-15"
    world_start: str = "2024-04-15"
    world_days: int = 184
    compute: dict[str, Any] = field(default_factory=dict)


class TaskCounter(SchedulerPlugin):
    """Counts tasks the scheduler ran to completion (``processing -> memory``)."""

    name = COUNTER

    def __init__(self) -> None:
        self.done = 0

    def transition(self, key: Any, start: str, finish: str, *args: Any, **kwargs: Any) -> None:
        if start == "processing" and finish == "memory":
            self.done += 1


class _LocalTasks(Callback):
    """Counts tasks run by the local (threaded) scheduler, e.g. the clear-fraction pass."""

    def __init__(self) -> None:
        super().__init__()
        self.done = 0

    def _posttask(self, key: Any, result: Any, dsk: Any, state: Any, id: Any) -> None:
        self.done += 1


def _thread_cpu(tid: int) -> float:
    """CPU seconds (user + system) of thread ``tid`` of this process."""
    import os

    fields = Path(f"/proc/self/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _peak_rss_mib() -> float:
    """Peak RSS (MiB) of this process's own memory: ``VmHWM`` of ``/proc/self/status``.

    Not ``ru_maxrss``: Linux carries it over an ``exec`` from the memory the process was
    started from, so a spawned Dask worker reported its parent's peak when that was higher
    (a ResStf 2048² run: 3,047 MiB on both workers, the client's peak after training,
    while sampling their RSS every 10 s never saw more than 1,437 MiB).
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _rusage() -> dict[str, float]:
    """CPU seconds and peak RSS (MiB) of the calling process (runs on workers too)."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return {"cpu_s": ru.ru_utime + ru.ru_stime, "rss_peak_mib": _peak_rss_mib()}


def _scheduler_done(dask_scheduler: Any) -> int:
    return dask_scheduler.plugins[COUNTER].done


def world_for(case: ChainCase) -> Any:
    """The case's demo world: reused when complete with the same spec, else built."""
    from pipeline.synth import WorldSpec, build_world

    start = dt.date.fromisoformat(case.world_start)
    end = start + dt.timedelta(days=case.world_days - 1)
    spec = WorldSpec(width=case.size, height=case.size, start=start, end=end)
    return build_world(Path(case.world_root), spec)


def config_for(case: ChainCase, world: Any, url: str) -> Any:
    """The run configuration: the whole world, green/red/NIR, the case's model and days."""
    from pipeline.config import parse_config

    w, s, e, n = world.bbox
    start = dt.date.fromisoformat(case.start)
    model: dict[str, Any] = {"name": case.model, "size": case.model_size, "epochs": case.epochs}
    if case.model == "starfm":
        model["params"] = {"window": 5}  # the demo's setting
    return parse_config(
        {
            "region": {
                "name": f"scale-{case.size}",
                "bbox": [w + 1e-3, s + 1e-3, e - 1e-3, n - 1e-3],
            },
            "time": {
                "start": start.isoformat(),
                "end": (start + dt.timedelta(days=case.days - 1)).isoformat(),
                "search_margin_days": 0,
            },
            "bands": ["green", "red", "nir"],
            "stac": {"url": url},
            "model": model,
            "compute": {
                "n_workers": 2,
                "threads_per_worker": 1,
                "max_run_gib": 1024,
                **case.compute,
            },
            "output_root": case.out,
            "store": {"path": "fusion.zarr", "overwrite": True},
        }
    )


def _timed(seconds: dict[str, float], name: str, fn: Any) -> Any:
    start = time.perf_counter()
    value = fn()
    seconds[name] = round(time.perf_counter() - start, 2)
    return value


def _fuse(cfg: Any, cube_set: Any, trained: Any, seconds: dict[str, float]) -> dict[str, Any]:
    """The fuse stage on a fresh LocalCluster, with its task count, scheduler and worker figures."""
    from pipeline import stages
    from pipeline.fuse.cluster import open_client

    with open_client(cfg.compute, None, log=lambda _m: None) as client:
        client.register_plugin(TaskCounter())
        tid = client.run_on_scheduler(threading.get_native_id)
        loop0 = _thread_cpu(tid)
        fused = _timed(seconds, "fuse", lambda: stages.fuse(cfg, cube_set, trained, client=client))
        loop_cpu = _thread_cpu(tid) - loop0
        tasks = client.run_on_scheduler(_scheduler_done)
        workers = list(client.run(_rusage).values())
    return {"fused": fused, "tasks": tasks, "loop_cpu": loop_cpu, "workers": workers}


def measure(case: ChainCase) -> dict[str, Any]:
    """Build (or reuse) the world, run the chain once, return the figures of the run."""
    from pipeline import stages
    from pipeline.catalog.server import serve_catalog

    seconds: dict[str, float] = {}
    world = _timed(seconds, "world", lambda: world_for(case))
    cpu0, wall0 = _rusage()["cpu_s"], time.perf_counter()
    with serve_catalog(world.stac_dir) as url:
        cfg = config_for(case, world, url)
        items = _timed(seconds, "search", lambda: stages.search(cfg))
    local = _LocalTasks()
    with local:
        cube_set = _timed(seconds, "cubes", lambda: stages.cubes(cfg, items))
    trained = _timed(seconds, "model", lambda: stages.model(cfg, cube_set))
    fuse = _fuse(cfg, cube_set, trained, seconds)
    wall = time.perf_counter() - wall0
    main = _rusage()
    store = Path(fuse["fused"].url)
    return {
        **asdict(case),
        "pixels": case.size**2,
        "pixel_days": case.size**2 * case.days,
        "fine_items": len(items.result.fine),
        "coarse_items": len(items.result.coarse),
        "stages_s": seconds,
        "wall_s": round(wall, 2),
        "cpu_s": round(main["cpu_s"] - cpu0 + sum(w["cpu_s"] for w in fuse["workers"]), 2),
        # the workers only live for the fuse stage: its calibration, clear pass and tasks
        "worker_cpu_s": round(sum(w["cpu_s"] for w in fuse["workers"]), 2),
        "main_rss_peak_mib": round(main["rss_peak_mib"], 1),
        "worker_rss_peak_mib": round(max(w["rss_peak_mib"] for w in fuse["workers"]), 1),
        "tasks_cubes": local.done,
        "tasks_fuse": fuse["tasks"],
        "scheduler_cpu_s": round(fuse["loop_cpu"], 2),
        "scheduler_share": round(fuse["loop_cpu"] / seconds["fuse"], 4),
        "store_mib": round(
            sum(p.stat().st_size for p in store.rglob("*") if p.is_file()) / 2**20, 1
        ),
        **_held(fuse["fused"]),
    }


def _held(fused: Any) -> dict[str, Any]:
    """The fuse stage's groups and peak MiB of source chunks held on the cluster (if known)."""
    outcome = getattr(fused, "outcome", None)
    if outcome is None:
        return {}
    return {
        "fuse_groups": outcome.groups,
        "held_peak_mib": round(outcome.peak_window_bytes / 2**20, 1),
    }


def _commit() -> str:
    """Short commit of the checkout ``pipeline`` is imported from ("unknown" outside git)."""
    import subprocess

    import pipeline

    try:
        out = subprocess.run(
            ["git", "-C", str(Path(pipeline.__file__).parent), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return out.stdout.strip()


def main(argv: list[str] | None = None) -> None:
    """``python -m benchmarks.chain_case '{"size": 96, ...}'``: prints the figures as JSON."""
    args = sys.argv[1:] if argv is None else argv
    case = ChainCase(**json.loads(args[0]))
    start = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    row = {**measure(case), "commit": _commit(), "started": start, "load": os.getloadavg()[0]}
    print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
