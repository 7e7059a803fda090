"""The reference-pair rule: which clear pairs a target day is fused from.

One rule for every caller, so that what is scored is what is produced:
fusion (:mod:`pipeline.fuse.plan` per block, :mod:`pipeline.fuse.worker`),
evaluation (:mod:`pipeline.evaluate.runner`, fold-wise too), model selection
(:mod:`pipeline.select`) and the two-stream blends of the models.

Rule
----
1. Of the pairs *usable* for the block (clear enough there), take the nearest
   on or before the day and the nearest on or after it (:func:`nearest_pairs`);
   a pair on the day itself is both.
2. Fit that choice to what the model accepts (:func:`fit_to_model`): a model
   that takes one pair gets the nearer one (the earlier on a tie); a model that
   takes only two gets the one available pair twice; two-pair-capable models
   get one pair only when the other side has none (the store flags that day
   ``single_pair``). Evaluation passes the pairs *other than* the held-out date,
   so a held-out date is predicted like a fused day between two clear scenes.

The choice is recorded (:meth:`PairChoice.record`) in evaluation results,
selection tables and the store (``ref_before_days`` / ``ref_after_days``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pipeline.models.base import Scene


@dataclass(frozen=True)
class PairChoice:
    """The reference pairs of one target day (None = no usable pair on that side)."""

    day: dt.date
    before: dt.date | None
    after: dt.date | None

    @property
    def dates(self) -> tuple[dt.date, ...]:
        """Distinct reference dates, ordered."""
        return tuple(sorted({d for d in (self.before, self.after) if d is not None}))

    def days_to(self) -> tuple[int, int]:
        """(days back to ``before``, days forward to ``after``), -1 where none."""
        back = (self.day - self.before).days if self.before else -1
        fwd = (self.after - self.day).days if self.after else -1
        return back, fwd

    def record(self) -> dict[str, str | None]:
        """JSON-ready record of the choice (ISO dates)."""
        iso = {k: getattr(self, k) for k in ("day", "before", "after")}
        return {k: (v.isoformat() if v else None) for k, v in iso.items()}


def nearest_pairs(day: dt.date, usable: Iterable[dt.date]) -> PairChoice:
    """Nearest usable pair date on/before and on/after ``day`` (rule step 1)."""
    usable = list(usable)
    before = max((p for p in usable if p <= day), default=None)
    after = min((p for p in usable if p >= day), default=None)
    return PairChoice(day, before, after)


def fit_to_model(
    dates: Sequence[dt.date], day: dt.date, n_refs: tuple[int, ...]
) -> tuple[dt.date, ...]:
    """Adapt the chosen dates to the counts a model accepts (rule step 2)."""
    dates = tuple(sorted(dates))
    if not dates or len(dates) in n_refs:
        return dates
    if 1 in n_refs:
        return (min(dates, key=lambda d: (abs((d - day).days), d)),)
    return (dates * max(n_refs))[: max(n_refs)]


def choose_scenes(
    pairs: Sequence[Scene], target: dt.date, n_refs: tuple[int, ...]
) -> tuple[Scene, ...]:
    """The reference scenes for ``target`` from clear ``pairs`` (both rule steps).

    ``pairs`` must not contain the target date when it is being held out.
    """
    by_date = {s.date: s for s in pairs}
    choice = nearest_pairs(target, by_date)
    return tuple(by_date[d] for d in fit_to_model(choice.dates, target, n_refs))
