"""The reference-pair rule: nearest before/after, fitted to the model; one rule everywhere."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from pipeline.fuse.plan import choose_refs as fusion_choice
from pipeline.models.base import Scene
from pipeline.models.pairs import choose_scenes, fit_to_model, nearest_pairs
from pipeline.select import select_model

D = [dt.date(2001, 5, 1) + dt.timedelta(days=16 * k) for k in range(5)]


def test_nearest_before_and_after_and_on_the_day() -> None:
    choice = nearest_pairs(D[2] + dt.timedelta(days=3), [D[0], D[2], D[4]])
    assert (choice.before, choice.after) == (D[2], D[4])
    assert choice.days_to() == (3, 29)
    assert nearest_pairs(D[2], D).dates == (D[2],)  # a pair on the day is both
    edge = nearest_pairs(D[4] + dt.timedelta(days=1), D)
    assert edge.dates == (D[4],) and edge.after is None
    assert choice.record() == {"day": "2001-06-05", "before": "2001-06-02", "after": "2001-07-04"}


@pytest.mark.parametrize(
    ("n_refs", "dates", "expected"),
    [
        ((1, 2), (D[1], D[3]), (D[1], D[3])),
        ((1,), (D[1], D[3]), (D[1],)),  # equal gaps: the earlier one
        ((1,), (D[1], D[4]), (D[1],)),
        ((2,), (D[3],), (D[3], D[3])),
        ((1, 2), (D[3],), (D[3],)),
    ],
)
def test_fitted_to_what_the_model_takes(n_refs, dates, expected) -> None:
    assert fit_to_model(dates, D[2], n_refs) == expected


def _scenes(size: int = 16) -> list[Scene]:
    rng = np.random.default_rng(0)
    out = []
    for k, day in enumerate(D):
        fine = (0.2 + 0.1 * rng.random((1, size, size)) + 0.01 * k).astype(np.float32)
        out.append(Scene(day, np.full_like(fine, float(fine.mean())), fine))
    return out


def test_selection_scores_with_the_references_fusion_uses() -> None:
    scenes = _scenes()
    result = select_model(scenes, ["naive_change", "naive_fine"], ("nir",))
    for row in result.table:
        held = dt.date.fromisoformat(row["held_out"])
        others = [s.date for s in scenes if s.date != held]
        # fusion: the plan's per-block choice (all pairs clear), fitted by the worker
        choice = fusion_choice([held], others, np.ones(len(others), bool))[0]
        fused = fit_to_model(choice.dates, held, (1, 2))
        assert tuple(dt.date.fromisoformat(d) for d in row["refs"]) == fused
    first = next(r for r in result.table if r["held_out"] == D[0].isoformat())
    assert first["refs"] == [D[1].isoformat()]  # one side only: one pair, as in fusion


def test_choose_scenes_never_uses_the_target() -> None:
    scenes = _scenes()
    others = [s for s in scenes if s.date != D[2]]
    assert [s.date for s in choose_scenes(others, D[2], (1, 2))] == [D[1], D[3]]
