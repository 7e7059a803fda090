"""The learned models' start is the naive baseline the training dates prefer (one rule)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.evaluate.manifest import load_manifest
from pipeline.evaluate.rasters import load_dataset
from pipeline.models import FusionInput, Scene, create_model
from pipeline.models.baselines import CHANGE_WINDOWS, choose_smoothing, rule_tasks
from pipeline.models.blend import change_blended, choose_start
from pipeline.models.pairs import choose_scenes
from pipeline.models.training import plan, validate
from pipeline.synth import World, export_manifest

torch.set_num_threads(1)
BANDS = ("green", "red", "nir")
NETS = ["resstf_prior", "edcstfn", "swinstfm", "ganstfm", "stfdiff"]
ZOO = ["ganstfm", "swinstfm", "stfdiff"]
BASELINE = {
    "time": "smoothed_change_blend",
    "nearest": "smoothed_change",
    "change": "smoothed_change_tblend",
}


@pytest.fixture(scope="module")
def tiny_pairs(tiny_world: World, tmp_path_factory: pytest.TempPathFactory) -> list[Scene]:
    """Every clear date of the tiny demo world as (coarse, fine) pairs on the fine grid."""
    folder: Path = tmp_path_factory.mktemp("start-rule")
    path = export_manifest(tiny_world, folder, dates=tiny_world.landsat_dates(), bands=BANDS)
    return [s for s in load_dataset(load_manifest(path)).scenes if s.fine is not None]


def _case(pairs: list[Scene]) -> tuple[list[Scene], FusionInput, Scene]:
    """Training pairs and the fusion input of an interior date held out as the target."""
    target = pairs[len(pairs) // 2]
    train = [p for p in pairs if p.date != target.date]
    refs = choose_scenes(train, target.date, (1, 2))
    return train, FusionInput(refs, Scene(target.date, target.coarse), BANDS), target


def _naive(name: str, train: list[Scene], inputs: FusionInput) -> np.ndarray:
    model = create_model(name, bands=BANDS)
    model.fit(train, bands=BANDS, progress=False)
    return model.predict(inputs).fine


def _untrained(name: str, train: list[Scene], inputs: FusionInput, **params) -> tuple:
    """The engine's start: the start rule run, no optimiser step taken."""
    model = create_model(
        name, bands=BANDS, size="tiny", change_windows=list(CHANGE_WINDOWS), budget_steps=0,
        **params,
    )  # fmt: skip
    report = model.fit(train, bands=BANDS, progress=False)
    assert report.steps == 0
    return model, model.predict(inputs).fine


def _close(a: np.ndarray, b: np.ndarray) -> None:
    ok = np.isfinite(a) & np.isfinite(b)
    assert ok.mean() > 0.9
    np.testing.assert_allclose(a[ok], b[ok], atol=2e-5)


@pytest.mark.parametrize("name", NETS)
@pytest.mark.parametrize("blend", ["time", "nearest", "change"])
def test_untrained_start_is_the_forced_blends_baseline(name: str, blend: str, tiny_pairs) -> None:
    if blend not in create_model(name, bands=BANDS, size="tiny").start_blends:
        pytest.skip(f"{name} has no {blend} start")
    train, inputs, _ = _case(tiny_pairs)
    assert len(inputs.refs) == 2
    _, start = _untrained(name, train, inputs, blend=blend)
    _close(start, _naive(BASELINE[blend], train, inputs))


@pytest.mark.parametrize("name", NETS)
def test_auto_start_is_the_baseline_the_training_dates_prefer(name: str, tiny_pairs) -> None:
    train, inputs, _ = _case(tiny_pairs)
    model, start = _untrained(name, train, inputs)
    choice, setting = choose_start(train, CHANGE_WINDOWS, model.start_blends)
    assert model.params["start_blend"] == choice.blend
    assert model.params["change_window"] == choice.window
    if choice.blend != "change":
        assert choice == choose_smoothing(train)  # the day blends' rule, unchanged
        _close(start, _naive(BASELINE[choice.blend], train, inputs))
        return
    assert setting is not None and model.params["change_blend"] == setting.to_params()
    _close(start, change_blended(inputs.refs, inputs.target, choice.window, setting)[0])


def test_rule_scores_the_gaps_a_fused_day_has(scene_factory) -> None:
    pairs = scene_factory(n_dates=5)  # 16 days apart
    tasks = rule_tasks(pairs)
    assert [t.date for _, t in tasks] == [p.date for p in pairs]
    for refs, target in tasks:  # only the neighbours, never a longer gap
        assert {abs((r.date - target.date).days) for r in refs} == {16}
        assert len(refs) == (1 if target in (pairs[0], pairs[-1]) else 2)


def test_rule_prefers_the_nearest_reference_when_the_far_one_misleads() -> None:
    """A step change after day 2: day 2 fused from days 0 and 32 must ignore day 32."""
    rng = np.random.default_rng(0)
    detail = (0.2 + 0.1 * rng.random((3, 32, 32))).astype(np.float32)
    flat = np.full_like(detail, 0.25)  # the coarse images see no change at all
    pairs = [
        Scene(dt.date(2020, 6, 1) + dt.timedelta(days=d), flat, detail + step)
        for d, step in ((0, 0.0), (2, 0.0), (32, 0.08))
    ]
    choice = choose_smoothing(pairs, (1, 9), ("time", "nearest"))
    assert set(choice.errors) == {(w, b) for w in (1, 9) for b in ("time", "nearest")}
    assert (choice.window, choice.blend) == (1, "nearest")
    assert choice.errors[(1, "time")] > choice.errors[(1, "nearest")]


def _blocky_pair(day: dt.date, factor: int = 8, size: int = 64) -> Scene:
    """A fine image and its block-mean coarse image, replicated onto the fine grid."""
    rng = np.random.default_rng(2)
    smooth = np.cumsum(np.cumsum(rng.normal(0, 1, (3, size, size)), 1), 2)
    fine = (0.2 + 0.05 * smooth / np.abs(smooth).max()).astype(np.float32)
    blocks = fine.reshape(3, size // factor, factor, size // factor, factor).mean((2, 4))
    coarse = np.repeat(np.repeat(blocks, factor, 1), factor, 2).astype(np.float32)
    return Scene(day, coarse, fine)


def test_one_pair_sizes_the_smoothing_on_the_pair_itself() -> None:
    """One pair scores no change: the box that best maps its coarse image onto its fine one
    (a block-replicated image: about the block, neither raw nor the widest)."""
    pair = _blocky_pair(dt.date(2020, 6, 1))
    choice = choose_smoothing([pair], (1, 5, 9, 17, 33))
    assert choice.window in (5, 9)
    assert "one clear pair" in choice.reason
    assert choice.summary()["chosen_by"] == choice.reason
    errs = {w: e for (w, _), e in choice.errors.items()}
    assert errs[choice.window] < errs[1] and errs[choice.window] < errs[33]
    # a coarse image that is the fine one (no footprint to undo): no smoothing
    same = Scene(pair.date, pair.fine + 0.01, pair.fine)
    assert choose_smoothing([same], (1, 9)).window == 1
    many = choose_smoothing([pair, Scene(dt.date(2020, 6, 9), pair.coarse, pair.fine)], (1, 9))
    assert many.reason == "" and len(many.errors) == 4


def test_one_pair_fit_reports_no_held_back_figure() -> None:
    """A pair-input network with one pair has no held-back data: None, never 0 -> 0."""
    pair = _blocky_pair(dt.date(2020, 6, 1))
    model = create_model("resstf_prior", bands=BANDS, size="tiny", date_fallback="start")
    report = model.fit([pair], bands=BANDS, progress=False)
    assert report.steps == 0
    assert report.start_val_rmse is None and report.end_val_rmse is None
    assert report.validation.startswith("none")
    assert report.summary()["start_rule"]["window"] == 3  # the tiny preset offers 1 and 3
    assert "one clear pair" in report.summary()["start_rule"]["chosen_by"]


def test_patches_carry_only_the_chosen_windows_context() -> None:
    """The rule runs before the patches are cut: the margin follows the chosen window."""
    rng = np.random.default_rng(1)
    detail = (0.2 + 0.1 * rng.random((3, 48, 48))).astype(np.float32)
    # the coarse change is the fine change pixel by pixel: the rule takes no smoothing
    fine = [detail + 0.01 * k * rng.random((3, 48, 48)).astype(np.float32) for k in range(4)]
    day = dt.date(2020, 6, 1)
    s = [Scene(day + dt.timedelta(days=8 * k), f + 0.05, f) for k, f in enumerate(fine)]
    model = create_model(
        "edcstfn", bands=("g", "r", "n"), size="tiny", change_windows=[1, 3, 33], budget_steps=1
    )
    assert model.halo == 16 + 6  # before the fit: the widest candidate's half + the network's
    model.fit(s, bands=("g", "r", "n"), progress=False)
    assert model.params["change_window"] == 1
    assert model.halo == 6  # the network's own receptive field


@pytest.mark.parametrize("name", ZOO)
def test_zoo_never_ends_worse_than_its_start_on_held_back_data(name: str, tiny_pairs) -> None:
    """Keep-best: the untrained network is epoch 0, so the restored state is never worse."""
    train, _, _ = _case(tiny_pairs)
    model = create_model(
        name, bands=BANDS, size="tiny", change_windows=list(CHANGE_WINDOWS), budget_steps=6,
        epochs=3, steps_per_epoch=2, lr=3e-2,  # a rate high enough to overshoot sometimes
    )  # fmt: skip
    report = model.fit(train, bands=BANDS, progress=False)
    assert report.steps > 0
    assert report.end_val_rmse <= report.start_val_rmse
    assert report.end_val_rmse == pytest.approx(np.sqrt(min(h["val_loss"] for h in report.history)))
    # the restored state is really the best one: scored again on the same held-back patches
    again = np.sqrt(validate(model, plan(model, train, []).held.grid()))
    assert again == pytest.approx(report.end_val_rmse, rel=1e-5)
