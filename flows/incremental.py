"""Which days a scheduled run fuses, decided from what the region's store already holds.

Rule (also in ``flows/README.md``):

* No store yet, or ``store.overwrite`` (the fuse stage deletes it first): fuse
  ``[time.start, end]``.
* A store whose last day is ``L``: fuse ``[R, end]`` where ``R`` is the first stored
  day some block does not hold as final: provisional (``block_done == 2``: fused
  without a later reference pair, extrapolated from the last pair alone) or not
  written (0, an interrupted run); ``R = L + 1`` when every stored day is final.
  A newer Landsat scene can give provisional days an after-pair:
  the fuse stage (:func:`pipeline.stages.fuse`) re-fuses them (it skips final blocks only) and marks
  them final once they have one. Days before ``R`` are final: never rewritten.
* ``end <= L`` and no day to refresh: nothing to do (the run is a no-op).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.config import RunConfig, TimeSpec
from pipeline.stages import store_url
from pipeline.store.write import DONE, open_store

#: Only the store's last days can be provisional or unwritten; reading this many bounds the cost.
TAIL_DAYS = 120


@dataclass(frozen=True)
class Window:
    """The days a run fuses and why."""

    start: dt.date
    end: dt.date
    reason: str


def _stored_days(url: str) -> tuple[list[dt.date], np.ndarray] | None:
    """The store's last days and, per day, whether any block is not final (None: no store)."""
    try:
        ds = open_store(url)
    except (FileNotFoundError, KeyError, ValueError):
        return None
    tail = ds["block_done"].isel(time=slice(-TAIL_DAYS, None))
    open_days = np.asarray((tail != DONE).any(dim=("yblock", "xblock")).values, bool)
    days = [t.date() for t in pd.DatetimeIndex(tail["time"].values)]
    return days, open_days


def plan_window(cfg: RunConfig, end: dt.date) -> Window | None:
    """The window to fuse for a run through ``end`` (None when the store is up to date)."""
    stored = None if cfg.store.overwrite else _stored_days(store_url(cfg))
    if stored is None:
        return Window(
            cfg.time.start, end, "store.overwrite" if cfg.store.overwrite else "new store"
        )
    days, open_days = stored
    refresh = [d for d, is_open in zip(days, open_days, strict=True) if is_open]
    start = refresh[0] if refresh else days[-1] + dt.timedelta(days=1)
    if start > end:
        return None
    why = f"re-fuse days not final from {start}" if refresh else f"new days after {days[-1]}"
    return Window(max(start, cfg.time.start), end, why)


def window_config(cfg: RunConfig, window: Window) -> RunConfig:
    """``cfg`` restricted to the window's target days (same store, same everything else)."""
    time = TimeSpec(
        start=window.start, end=window.end, search_margin_days=cfg.time.search_margin_days
    )
    return cfg.with_updates(time=time)
