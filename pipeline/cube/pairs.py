"""Reference pairs: days with a usable Landsat scene and a MODIS scene the same day (or close)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from pipeline.cube.cubes import Cubes

#: A fine scene with less than this clear fraction teaches a model nothing useful.
DEFAULT_MIN_CLEAR = 0.05


@dataclass(frozen=True)
class Pair:
    """A fine/coarse reference pair.

    Attributes
    ----------
    date : day of the fine (Landsat) scene.
    clear_fraction : fraction of fine pixels valid in every band, in [0, 1].
    coarse_clear_fraction : the same for the matched coarse scene.
    coarse_date : day of the matched coarse scene (== ``date`` unless a gap was allowed).
    """

    date: dt.date
    clear_fraction: float
    coarse_clear_fraction: float
    coarse_date: dt.date


def _days(times: Sequence[object]) -> list[dt.date]:
    return [pd.Timestamp(t).date() for t in times]


def match_pairs(
    fine: Sequence[tuple[dt.date, float]],
    coarse: Sequence[tuple[dt.date, float]],
    min_clear: float = DEFAULT_MIN_CLEAR,
    max_gap_days: int = 0,
) -> list[Pair]:
    """Match usable fine days to the nearest usable coarse day within ``max_gap_days``.

    Parameters
    ----------
    fine, coarse : (day, clear fraction) per scene.
    min_clear : both scenes need at least this clear fraction.
    max_gap_days : largest allowed |fine day - coarse day|; ties go to the earlier coarse day.

    Returns
    -------
    Pairs sorted by fine day.
    """
    usable = [(d, c) for d, c in coarse if c >= min_clear]
    pairs = []
    for day, clear in sorted(fine):
        if clear < min_clear:
            continue
        near = [(abs((d - day).days), d, c) for d, c in usable]
        near = [n for n in near if n[0] <= max_gap_days]
        if near:
            _, cday, cclear = min(near)
            pairs.append(Pair(day, float(clear), float(cclear), cday))
    return pairs


def find_pairs(
    cubes: Cubes, *, min_clear: float = DEFAULT_MIN_CLEAR, max_gap_days: int = 0
) -> list[Pair]:
    """Pairs of ``cubes`` from their per-time clear fractions (see :func:`match_pairs`)."""
    fine = list(zip(_days(cubes.fine.time.values), np.asarray(cubes.fine_clear), strict=True))
    coarse = list(zip(_days(cubes.coarse.time.values), np.asarray(cubes.coarse_clear), strict=True))
    return match_pairs(fine, coarse, min_clear, max_gap_days)
