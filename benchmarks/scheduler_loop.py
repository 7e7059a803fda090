"""What the local cluster's event loop costs: idle, and per task, under Dask settings.

The fuse stage's "scheduler share" (:mod:`benchmarks.chain_case`) is the CPU time of
the thread that runs the LocalCluster's event loop in the client process. That one
loop serves the scheduler, the client and, with worker processes, both nannies, so its
idle cost is the sum of every periodic callback of those servers. This script opens a
LocalCluster of 2 worker processes x 1 thread (what the chain benchmark and the demo
run) under one set of Dask settings, leaves it idle for ``--idle`` seconds, then runs
``--tasks`` no-op tasks, and reports the loop thread's CPU share while idle and its CPU
per task. Each setting runs in a fresh process (settings apply when servers start).

``python -m benchmarks.scheduler_loop [--idle 30] [--tasks 2000] [NAME ...]`` prints one
JSON row per setting (names: :data:`SETTINGS`; default all).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

#: Settings compared, each over Dask's defaults. ``main`` is the local cluster's before
#: this measurement; ``pipeline`` is :data:`pipeline.fuse.cluster.LOOP_CONFIG` now.
SETTINGS: dict[str, dict[str, str]] = {
    "dask": {},
    "main": {
        "distributed.admin.tick.interval": "1s",
        "distributed.admin.system-monitor.interval": "5s",
    },
    "pipeline": {},  # filled from the pipeline in the child process
    "no-disk": {
        "distributed.admin.tick.interval": "1s",
        "distributed.admin.system-monitor.interval": "5s",
        "distributed.admin.system-monitor.disk": "false",
    },
    "nanny-500ms": {
        "distributed.admin.tick.interval": "1s",
        "distributed.admin.system-monitor.interval": "5s",
        "distributed.worker.memory.monitor-interval": "500ms",
    },
    "stealing-5s": {
        "distributed.admin.tick.interval": "1s",
        "distributed.admin.system-monitor.interval": "5s",
        "distributed.scheduler.work-stealing-interval": "5s",
    },
    "amm-off": {
        "distributed.admin.tick.interval": "1s",
        "distributed.admin.system-monitor.interval": "5s",
        "distributed.scheduler.active-memory-manager.start": "false",
    },
}


def _thread_cpu(tid: int) -> float:
    """CPU seconds (user + system) of thread ``tid`` of this process."""
    fields = Path(f"/proc/self/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _noop(i: int) -> int:
    return i


def _timed_callbacks(cluster: Any, client: Any) -> dict[str, float]:
    """Wrap every periodic callback of the in-process servers with a CPU-time counter.

    The scheduler, both nannies and the client run their periodic callbacks on the loop
    thread; each wrapper adds the thread CPU its synchronous part took to the returned
    dict (keys ``server:callback``), and the scheduler's worker-heartbeat handler too.
    """
    spent: dict[str, float] = {}

    def wrap(key: str, fn: Any) -> Any:
        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[key] = spent.get(key, 0.0) + time.thread_time() - t0

        return timed

    servers = {"scheduler": cluster.scheduler}
    servers.update({f"nanny{i}": n for i, n in enumerate(cluster.workers.values())})
    for name, server in servers.items():
        for cb_name, pc in server.periodic_callbacks.items():
            pc.callback = wrap(f"{name}:{cb_name}", pc.callback)
    for cb_name, pc in client._periodic_callbacks.items():
        pc.callback = wrap(f"client:{cb_name}", pc.callback)
    handlers = cluster.scheduler.handlers
    handlers["heartbeat_worker"] = wrap("scheduler:heartbeat_worker", handlers["heartbeat_worker"])
    return spent


def measure(name: str, idle_s: float, n_tasks: int) -> dict[str, Any]:
    """One setting in this process: idle share and per-task CPU of the loop thread.

    Returns
    -------
    dict : ``idle_share`` (loop CPU s / wall s while idle), ``idle_cpu_s``,
        ``task_ms`` (loop CPU ms per no-op task, idle cost of the same wall removed),
        ``tasks_wall_s``, the setting's name and values.
    """
    import dask
    from distributed import Client, LocalCluster

    from pipeline.config import ComputeSpec
    from pipeline.fuse.cluster import LOOP_CONFIG, local_cluster, worker_environ

    compute = ComputeSpec(n_workers=2, threads_per_worker=1)
    settings = dict(LOOP_CONFIG) if name == "pipeline" else SETTINGS[name]
    env = {"distributed.nanny.pre-spawn-environ": worker_environ()}
    with contextlib.ExitStack() as stack:
        if name == "pipeline":  # exactly what the pipeline's local cluster runs
            cluster = stack.enter_context(local_cluster(compute))
        else:
            stack.enter_context(dask.config.set({**env, **settings}))
            cluster = stack.enter_context(
                LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=":0")
            )
        client = stack.enter_context(Client(cluster))
        tid = client.run_on_scheduler(threading.get_native_id)
        time.sleep(3)  # let start-up work finish
        spent = _timed_callbacks(cluster, client)
        t0, c0 = time.perf_counter(), _thread_cpu(tid)
        time.sleep(idle_s)
        t1, c1 = time.perf_counter(), _thread_cpu(tid)
        idle_parts = dict(spent)
        client.gather(client.map(_noop, range(n_tasks), pure=False))
        t2, c2 = time.perf_counter(), _thread_cpu(tid)
    idle_share = (c1 - c0) / (t1 - t0)
    task_cpu = (c2 - c1) - idle_share * (t2 - t1)
    return {
        "setting": name,
        "values": settings,
        "idle_s": round(t1 - t0, 1),
        "idle_cpu_s": round(c1 - c0, 3),
        "idle_share": round(idle_share, 4),
        "tasks": n_tasks,
        "tasks_wall_s": round(t2 - t1, 2),
        "task_ms": round(1000 * task_cpu / n_tasks, 3),
        "idle_parts_ms_per_s": {
            k: round(1000 * v / (t1 - t0), 3)
            for k, v in sorted(idle_parts.items(), key=lambda kv: -kv[1])
        },
        "load": round(os.getloadavg()[0], 2),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.node()}: {os.cpu_count()} CPUs, {platform.processor() or '?'}",
    }


def main(argv: list[str] | None = None) -> None:
    """Each named setting in a fresh interpreter, one after the other; JSON rows on stdout."""
    args = list(sys.argv[1:] if argv is None else argv)
    opts = {"--idle": 30.0, "--tasks": 2000.0}
    for flag in opts:
        if flag in args:
            i = args.index(flag)
            opts[flag] = float(args[i + 1])
            del args[i : i + 2]
    unknown = [n for n in (args[1:2] if args[:1] == ["--one"] else args) if n not in SETTINGS]
    if unknown:
        raise SystemExit(f"unknown setting {unknown[0]!r}; choose from {', '.join(SETTINGS)}")
    if args[:1] == ["--one"]:
        row = measure(args[1], opts["--idle"], int(opts["--tasks"]))
        print(json.dumps(row), flush=True)
        return
    for name in args or list(SETTINGS):
        cmd = [sys.executable, "-m", "benchmarks.scheduler_loop", "--one", name]
        cmd += ["--idle", str(opts["--idle"]), "--tasks", str(int(opts["--tasks"]))]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        print(out.strip().splitlines()[-1], flush=True)


if __name__ == "__main__":
    main()
