"""Pair finding: usable fine days matched to the nearest usable coarse day."""

from __future__ import annotations

import datetime as dt

import pytest

from pipeline.cube.pairs import Pair, match_pairs

D = dt.date
FINE = [(D(2024, 6, 8), 0.9), (D(2024, 6, 16), 0.01), (D(2024, 6, 24), 0.5)]
COARSE = [(D(2024, 6, 7), 1.0), (D(2024, 6, 8), 0.02), (D(2024, 6, 9), 0.8), (D(2024, 6, 24), 0.7)]


@pytest.mark.parametrize(
    ("min_clear", "gap", "expected"),
    [
        (0.05, 0, [Pair(D(2024, 6, 24), 0.5, 0.7, D(2024, 6, 24))]),
        # the same-day coarse scene is clouded: nearest usable within one day, earlier wins ties
        (
            0.05,
            1,
            [
                Pair(D(2024, 6, 8), 0.9, 1.0, D(2024, 6, 7)),
                Pair(D(2024, 6, 24), 0.5, 0.7, D(2024, 6, 24)),
            ],
        ),
        (
            0.01,
            0,
            [
                Pair(D(2024, 6, 8), 0.9, 0.02, D(2024, 6, 8)),
                Pair(D(2024, 6, 24), 0.5, 0.7, D(2024, 6, 24)),
            ],
        ),
        (0.95, 3, []),
    ],
)
def test_match_pairs(min_clear: float, gap: int, expected: list[Pair]) -> None:
    assert match_pairs(FINE, COARSE, min_clear=min_clear, max_gap_days=gap) == expected
