"""Backfill: fuse a past season of a region into its own store.

A store's time axis only grows forward (days before its first day would need a
new store), so a past season goes to ``<store stem>_<start>_<end>.zarr`` next to
the region's store. The run is resumable: rerunning the same backfill skips the
completed steps (task cache) and the completed blocks (the store's record).

    python -m flows.backfill flows/regions/demo.yaml 2023-04-01 2023-10-31
"""

from __future__ import annotations

import argparse
import datetime as dt
from typing import Any

from prefect import flow

from flows.regional_run import run_window
from flows.regions import load_region
from pipeline.config import RunConfig, TimeSpec


def season_config(cfg: RunConfig, start: dt.date, end: dt.date) -> RunConfig:
    """``cfg`` for the season ``start..end`` with a store of its own."""
    stem = cfg.store.path.removesuffix("/").removesuffix(".zarr")
    store = cfg.store.model_copy(update={"path": f"{stem}_{start}_{end}.zarr"})
    time = TimeSpec(start=start, end=end, search_margin_days=cfg.time.search_margin_days)
    return cfg.with_updates(time=time, store=store)


@flow(name="backfill", log_prints=True)
def backfill(region_file: str, start: dt.date, end: dt.date) -> dict[str, Any]:
    """Fuse ``start..end`` (inclusive) of the region in ``region_file``, with its products."""
    cfg = season_config(load_region(region_file).config, start, end)
    return run_window(cfg, run_id=f"backfill-{start}-{end}")


def main() -> None:
    """``python -m flows.backfill REGION_FILE START END`` (ISO dates)."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("region_file")
    parser.add_argument("start", type=dt.date.fromisoformat)
    parser.add_argument("end", type=dt.date.fromisoformat)
    args = parser.parse_args()
    print(backfill(args.region_file, args.start, args.end))


if __name__ == "__main__":
    main()
