"""Model selection: the known-best candidate wins on a constructed case; JSON; CLI errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from pipeline.cli import main
from pipeline.errors import InputError
from pipeline.models.base import Scene
from pipeline.select import RULE, choose, held_out_indices, select_model
from tests.models.test_ganstfm import toy_pairs

torch.set_num_threads(1)


def _blocks(fine: np.ndarray) -> np.ndarray:
    b, h, w = fine.shape
    means = fine.reshape(b, h // 4, 4, w // 4, 4).mean((2, 4))
    return np.repeat(np.repeat(means, 4, 1), 4, 2).astype(np.float32)


def test_picks_known_best_and_serialises() -> None:
    # Fine detail fixed in time, a uniform change per date, coarse = block means: adding the
    # coarse change to a fine reference (naive_change) is exact, the blocky coarse target is not.
    scenes = [
        Scene(s.date, s.coarse + 0.01 * k, toy_pairs(3, shape=(32, 32))[0].fine + 0.01 * k)
        for k, s in enumerate(toy_pairs(3, shape=(32, 32)))
    ]
    scenes = [Scene(s.date, _blocks(s.fine), s.fine) for s in scenes]
    result = select_model(scenes, ["naive_coarse", "naive_change"], ("green", "red", "nir"))
    assert result.choice == "naive_change" and result.rule == RULE
    assert len(result.table) == 6 and result.summary["naive_change"]["folds"] == 3
    again = json.loads(json.dumps(result.to_dict()))
    assert again["choice"] == "naive_change"


def test_tie_broken_by_ssim_and_input_errors() -> None:
    summary = {
        "a": {"rmse": 0.02000, "ssim": 0.80, "folds": 3},
        "b": {"rmse": 0.02005, "ssim": 0.90, "folds": 3},
        "c": {"rmse": 0.03, "ssim": 0.99, "folds": 3},
    }
    assert choose(summary) == "b"
    with pytest.raises(InputError, match=">= 3 clear pairs"):
        select_model(toy_pairs(1)[:2], ["naive_change"], ("red",))


def test_cli_rejects_what_is_neither_config_nor_manifest(tmp_path, capsys) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("- a\n- b\n")
    assert main(["select", str(path)]) == 2
    assert "run configuration or an evaluation manifest" in capsys.readouterr().err


def test_folds_are_bounded_and_spread_over_the_season() -> None:
    assert held_out_indices(5, None) == [0, 1, 2, 3, 4]
    assert held_out_indices(5, 8) == [0, 1, 2, 3, 4]
    assert held_out_indices(23, 8) == [0, 3, 6, 9, 13, 16, 19, 22]  # first and last included
    scenes = toy_pairs(3, shape=(16, 16))  # three pairs: the middle one is left out
    result = select_model(scenes, ["naive_change"], ("green", "red", "nir"), max_folds=2)
    held = [row["held_out"] for row in result.table]
    assert held == [scenes[0].date.isoformat(), scenes[2].date.isoformat()]
