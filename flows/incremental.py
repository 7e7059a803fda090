"""Which days a scheduled run fuses, decided from what the region's store already holds.

Rule (also in ``flows/README.md``):

* No store yet: fuse ``[time.start, end]``.
* A store whose last day is ``L``: fuse ``[R, end]`` where ``R`` is the first stored
  day fused without a later reference pair (``ref_after_days == -1`` somewhere in
  the image), or ``L + 1`` when every stored day had one. Those days were
  extrapolated from the last pair alone; a newer Landsat scene can give them a
  second (after) pair, so they belong to the window. Days before ``R`` already sit
  between two pairs that later scenes cannot change: they are never rewritten.
  Note: ``pipeline.run.fuse_step`` resumes (skips blocks the store marks complete),
  so today days ``R..L`` keep their one-pair values and only days after ``L`` are
  written; re-fusing them needs a refresh option in ``fuse_step``.
* ``end <= L`` and no day to refresh: nothing to do (the run is a no-op).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.config import RunConfig, TimeSpec
from pipeline.run import store_url
from pipeline.store.write import open_store

#: Only the store's last days can lack an after-pair; reading this many bounds the cost.
TAIL_DAYS = 120


@dataclass(frozen=True)
class Window:
    """The days a run fuses and why."""

    start: dt.date
    end: dt.date
    reason: str


def _stored_days(url: str) -> tuple[list[dt.date], np.ndarray] | None:
    """Stored days and, per day, whether any pixel lacks an after-pair (None: no store)."""
    try:
        ds = open_store(url)
    except (FileNotFoundError, KeyError, ValueError):
        return None
    tail = ds["ref_after_days"].isel(time=slice(-TAIL_DAYS, None))
    lacks_after = np.asarray((tail == -1).any(dim=("y", "x")).values, dtype=bool)
    days = [t.date() for t in pd.DatetimeIndex(tail["time"].values)]
    return days, lacks_after


def plan_window(cfg: RunConfig, end: dt.date) -> Window | None:
    """The window to fuse for a run through ``end`` (None when the store is up to date)."""
    stored = _stored_days(store_url(cfg))
    if stored is None:
        return Window(cfg.time.start, end, "new store")
    days, lacks_after = stored
    refresh = [d for d, lacks in zip(days, lacks_after, strict=True) if lacks]
    start = refresh[0] if refresh else days[-1] + dt.timedelta(days=1)
    if start > end:
        return None
    why = f"re-fuse from {start} (no after-pair)" if refresh else f"new days after {days[-1]}"
    return Window(max(start, cfg.time.start), end, why)


def window_config(cfg: RunConfig, window: Window) -> RunConfig:
    """``cfg`` restricted to the window's target days (same store, same everything else)."""
    time = TimeSpec(
        start=window.start, end=window.end, search_margin_days=cfg.time.search_margin_days
    )
    return cfg.with_updates(time=time)
