"""The scheduled regional run: search -> cubes -> model -> fuse -> products -> feeds.

``regional_run(region_file)`` reads a region file (:mod:`flows.regions`), decides
which days are new for the region's store (:mod:`flows.incremental`) and runs
the pipeline steps for that window only, each a cached, retried Prefect task
(:mod:`flows.tasks`). The tasks run in this flow process, in threads: their
artefacts (items, cubes, the saved model, products) live in the run directory on
this machine. The heavy work inside them goes to the Dask cluster the pipeline
uses, ``compute.scheduler`` or its own LocalCluster; the fuse stage ships the
model to the workers itself, so no worker needs this machine's disk (tested on
a cluster of separate hosts in ``tests/cluster``).

Run it locally (Prefect's ephemeral server starts by itself)::

    python -m flows.regional_run flows/regions/demo.yaml [--until 2024-07-05]
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.task_runners import ThreadPoolTaskRunner

from flows import tasks
from flows.incremental import plan_window, window_config
from flows.regions import load_region
from pipeline.config import ProductsSpec, RunConfig
from pipeline.stages import run_dir, store_url


def workdir_of(cfg: RunConfig) -> Path:
    """Where a region's stage artefacts (items, cubes) live: the run directory."""
    return run_dir(cfg)


@flow(name="fuse-window", log_prints=True)
def fuse_window(cfg: RunConfig, run_id: str, resume: bool = True) -> dict[str, Any]:
    """All stages for ``cfg``'s time window; returns the store URL and product paths.

    ``resume`` is ``stf run --resume/--no-resume``: False re-fuses every day of the window.
    """
    work = workdir_of(cfg)
    items = tasks.search(cfg, work)
    cube_set = tasks.cubes(cfg, items, work)
    model_dir = tasks.model(cfg, cube_set)
    store = tasks.fuse(cfg, cube_set, model_dir, resume)
    analysis = cfg.products.model_copy(update={"feeds": False})
    outputs = tasks.products(store, analysis, cfg.output_root, run_id)
    if cfg.products.feeds:
        feeds_only = ProductsSpec(ndvi=False, feeds=True, labels=cfg.products.labels)
        outputs = {**outputs, **tasks.feeds(store, feeds_only, cfg.output_root, run_id)}
    return {"store": store, "outputs": outputs}


def run_window(cfg: RunConfig, run_id: str, resume: bool = True) -> dict[str, Any]:
    """:func:`fuse_window` as a subflow whose tasks run in threads of this process.

    Not on the Dask cluster: a task there would write its artefacts to a worker's
    disk, where the next task (on another worker or pod) cannot find them.
    """
    runner = ThreadPoolTaskRunner(max_workers=2)
    return fuse_window.with_options(task_runner=runner)(cfg, run_id, resume)


@flow(name="regional-run", log_prints=True)
def regional_run(
    region_file: str, until: dt.date | None = None, resume: bool = True
) -> dict[str, Any]:
    """Fuse a region's new days into its store, then refresh its products and feeds.

    Parameters
    ----------
    region_file : path of a region file (``flows/regions/*.yaml``).
    until : last day to fuse; default today minus ``schedule.latency_days``,
        never beyond the region's ``time.end``.
    resume : skip blocks the store marks final (``stf run --no-resume`` is False).
    """
    logger = get_run_logger()
    region = load_region(region_file)
    end = (
        region.target_end(dt.date.today()) if until is None else min(until, region.config.time.end)
    )
    window = plan_window(region.config, end)
    if window is None:
        logger.info("%s: store is up to date through %s", region.name, end)
        return {"store": store_url(region.config), "outputs": {}}
    logger.info("%s: fusing %s..%s (%s)", region.name, window.start, window.end, window.reason)
    cfg = window_config(region.config, window)
    return run_window(cfg, run_id=f"through-{window.end}", resume=resume)


def main() -> None:
    """``python -m flows.regional_run REGION_FILE [--until DATE]``."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("region_file")
    parser.add_argument("--until", type=dt.date.fromisoformat, default=None)
    args = parser.parse_args()
    print(regional_run(args.region_file, args.until))


if __name__ == "__main__":
    main()
