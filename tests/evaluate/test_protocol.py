"""Evaluation protocol: baselines beside every model, folds, degenerate inputs refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.cli import main
from pipeline.evaluate import evaluate
from pipeline.evaluate.folds import evaluate_folds
from pipeline.evaluate.manifest import load_manifest
from tests.evaluate.test_manifest import _tif, _world, _write

torch.set_num_threads(1)


def test_every_result_names_the_best_naive_baseline(tmp_path: Path) -> None:
    result = evaluate(_write(tmp_path, _world(tmp_path)), "naive_fine").result
    rows = result["baselines"]
    assert {"naive_change", "smoothed_change", "smoothed_change_blend"} <= set(rows)
    best = result["best_baseline"]
    assert best["rmse"] == min(r["rmse"] for r in rows.values())
    expected = 1 - result["overall"]["rmse"] / best["rmse"]
    assert result["gain_over_best_baseline"] == pytest.approx(expected)
    assert result["refs"] == ["2020-06-01", "2020-07-03"]


def test_learned_model_reports_start_gain_and_steps(tmp_path: Path, capsys) -> None:
    path = _write(tmp_path, _world(tmp_path))
    code = main(["evaluate", str(path), "--model", "resstf", "--json"])
    result = json.loads(capsys.readouterr().out)
    assert code == 0
    training = result["training"]
    assert training["steps"] > 0 and training["start"]["rmse"] > 0
    assert training["start_val_rmse"] is not None and training["end_val_rmse"] is not None
    expected = 1 - result["overall"]["rmse"] / training["start"]["rmse"]
    assert training["gain_over_start"] == pytest.approx(expected)


def test_budget_steps_flag_sets_the_steps(tmp_path: Path, capsys) -> None:
    path = _write(tmp_path, _world(tmp_path))
    args = ["evaluate", str(path), "--model", "resstf_prior", "--budget-steps", "3", "--json"]
    code = main(args)
    assert code == 0 and json.loads(capsys.readouterr().out)["training"]["steps"] == 3


def test_fitfc_takes_the_manifest_ratio(tmp_path: Path) -> None:
    path = _write(tmp_path, _world(tmp_path, coarse_size=4))  # 8 fine px per coarse px
    assert load_manifest(path).ratio == 8
    assert evaluate(path, "fitfc", baselines=False).model.ratio == 8
    assert evaluate(path, "fitfc", baselines=False, ratio=3).model.ratio == 3


def test_training_curve_png(tmp_path: Path, capsys) -> None:
    path = _write(tmp_path, _world(tmp_path))
    code = main(["evaluate", str(path), "--model", "edcstfn", "--out", str(tmp_path / "o")])
    out = capsys.readouterr().out
    assert code == 0 and "best naive baseline" in out and "training:" in out
    assert (tmp_path / "o" / "toy-edcstfn-training.png").stat().st_size > 1000


def test_fold_wise_mean_and_spread(tmp_path: Path, capsys) -> None:
    path = _write(tmp_path, _world(tmp_path))
    result = evaluate_folds(path, "naive_change")
    assert [f["target_date"] for f in result["folds"]] == ["2020-06-01", "2020-06-17", "2020-07-03"]
    rmse = [f["overall"]["rmse"] for f in result["folds"]]
    assert result["summary"]["rmse"]["mean"] == pytest.approx(np.mean(rmse))
    assert result["summary"]["rmse"]["std"] == pytest.approx(np.std(rmse, ddof=1))
    assert main(["evaluate", str(path), "--model", "naive_change", "--folds"]) == 0
    assert "over 3 folds" in capsys.readouterr().out


def test_folds_need_three_dates(tmp_path: Path, capsys) -> None:
    manifest = _world(tmp_path)
    manifest["dates"] = manifest["dates"][:2]
    manifest["predict"] = "2020-06-01"
    code = main(["evaluate", str(_write(tmp_path, manifest)), "--model", "naive_fine", "--folds"])
    err = capsys.readouterr().err
    assert code == 2 and "3 dates" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("date_index", "value", "message"),
    [(1, 2000, "constant"), (1, 0, "no valid pixel"), (0, 1500, "reference")],
)
def test_degenerate_inputs_refused_in_one_line(
    tmp_path: Path, capsys, date_index: int, value: int, message: str
) -> None:
    manifest = _world(tmp_path)
    manifest["fine"]["nodata"] = 0
    name = manifest["dates"][date_index]["fine"]
    _tif(tmp_path / name, np.full((2, 32, 32), value, np.int16))
    code = main(["evaluate", str(_write(tmp_path, manifest)), "--model", "naive_change"])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
