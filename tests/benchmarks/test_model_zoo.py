"""The model-zoo benchmark's bookkeeping: a partial run replaces only its own rows."""

from __future__ import annotations

from benchmarks.model_zoo import merge, run_lines


def _row(dataset: str, model: str, rmse: float, run: dict | None = None) -> dict:
    row = {"dataset": dataset, "model": model, "rmse": rmse}
    return {**row, "run": run} if run is not None else row


def test_partial_run_keeps_the_other_datasets_rows() -> None:
    old = {
        "command": "model_zoo.py --steps 30", "date": "2026-11-28 05:35 UTC", "steps": 30,
        "rows": [_row("estarfm-2001", "stfdiff", 0.0081), _row("lgc-2004", "stfdiff", 0.0221),
                 _row("synthetic-season", "ganstfm", 0.0077)],
    }  # fmt: skip
    header = {"command": "model_zoo.py --datasets estarfm-2001", "date": "later", "steps": 150}
    new = {"rows": [_row("estarfm-2001", "stfdiff", 0.0066, header),
                    _row("estarfm-2001", "swinstfm", 0.0067, header)]}  # fmt: skip
    merged = merge(old, new)
    keys = [(r["dataset"], r["model"], r["rmse"]) for r in merged["rows"]]
    assert keys == [
        ("synthetic-season", "ganstfm", 0.0077),  # untouched, ordered by dataset then model
        ("estarfm-2001", "swinstfm", 0.0067),
        ("estarfm-2001", "stfdiff", 0.0066),  # replaced
        ("lgc-2004", "stfdiff", 0.0221),
    ]
    assert merged["rows"][0]["run"]["steps"] == 30  # the old run's header travels with its rows
    assert [r["steps"] for r in merged["runs"]] == [30, 150]
    assert merge(merged, new) == merged  # idempotent (a re-render of the same parts)
    lines = run_lines(merged)
    assert len(lines) == 2 and "--datasets estarfm-2001" in lines[1]


def test_linear_start_lines_show_start_closed_form_and_end() -> None:
    from benchmarks.model_zoo import linear_lines

    row = {**_row("synthetic-season", "stfdiff", 0.0056), "validation": "date 2024-07-10",
           "held_back_rmse": [0.0072, 0.0061],
           "notes": {"linear_start": {"kept": True, "val_rmse": 0.00607}}}  # fmt: skip
    skipped = {**_row("lgc-2004", "stfdiff", 0.02), "notes": {}}
    lines = linear_lines([row, skipped])
    assert len(lines) == 3 and "| 0.0072 | 0.0061 (yes) | 0.0061 |" in lines[2]
