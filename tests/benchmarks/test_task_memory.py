"""The fuse-task memory benchmark runs a task's write step and reports its memory."""

from __future__ import annotations

import numpy as np

from benchmarks import task_memory
from pipeline.store.layout import FUSED, GAP, OBSERVED


def test_synthetic_days_hold_every_kind_of_pixel_day() -> None:
    days = task_memory.synthetic_days(6, 16)
    kinds = set(np.unique(np.stack([d["quality"] for d in days])).tolist())
    assert kinds == {OBSERVED, FUSED, GAP}
    assert days[3]["values"].shape == (1, 16, 16)  # the all-gap day's placeholder
    assert np.isnan(days[0]["sigma"][:, days[0]["quality"] != FUSED]).all()


def test_child_row_reports_memory_and_a_digest() -> None:
    row = task_memory.child(days=5, size=16)
    assert row["peak_mib"] >= row["held_mib"] > 0 and row["working_mib"] >= 0
    assert len(row["digest"]) == 16 and row["days"] == 5
    assert row == {**task_memory.child(days=5, size=16), "held_mib": row["held_mib"],
                   "peak_mib": row["peak_mib"], "working_mib": row["working_mib"],
                   "cpu_s": row["cpu_s"]}  # fmt: skip
