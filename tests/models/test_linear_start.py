"""The closed-form linear start and the blended-stream training of the engine."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_engine import BANDS, NETS, gain_error_scenes

from pipeline.models import create_model
from pipeline.models.base import inverse_time_weights, nearest_ref
from pipeline.models.linear_fit import _features, can_fit
from pipeline.models.streams import blend_tasks, day_weights, rule_refs
from pipeline.models.training import plan


@pytest.mark.parametrize("name", NETS)
def test_least_squares_start_removes_a_linear_residual(name: str) -> None:
    # the coarse change is twice the truth: the residual over the base is -1/2 of the
    # raw coarse-change channel, which the closed form finds before any gradient step
    # (without the signed copy: in this world every change is uniform, so the copy's
    # extra columns are degenerate and the exact solution is not unique)
    s = gain_error_scenes(n_dates=5)
    model = create_model(
        name, bands=BANDS, size="tiny", change_window=1, change_windows=[1], linear_signed=False
    )
    report = model.fit(s, bands=BANDS, progress=False)
    closed = report.notes["linear_start"]
    assert closed["kept"]
    assert closed["val_rmse"] < 0.05 * report.start_val_rmse
    assert report.end_val_rmse <= closed["val_rmse"] + 1e-12
    # the frozen linear start trains again in a later fit
    assert all(p.requires_grad for p in model.net.parameters())


def test_linear_start_can_be_switched_off() -> None:
    s = gain_error_scenes(n_dates=5)
    model = create_model("edcstfn", bands=BANDS, size="tiny", linear_start=False)
    report = model.fit(s, bands=BANDS, progress=False)
    assert "linear_start" not in report.notes


def test_design_columns_follow_the_convolution_weights() -> None:
    # the least-squares column c * k^2 + i * k + j must be the weight [b, c, i, j]
    s = gain_error_scenes(n_dates=2)
    model = create_model("resstf_prior", bands=BANDS, size="tiny", change_window=3)
    model.set_band_stats(s)
    layer = model.net.linear_path
    torch.manual_seed(1)
    with torch.no_grad():
        layer.weight.normal_()
        layer.bias.normal_()
    k = layer.kernel_size[0]
    padded, _ = _features(model, s[0], s[1], k)
    y, x = 5, 0  # a border pixel: replicate padding as in the layer
    taps = torch.stack([padded[:, y + i, x + j] for i in range(k) for j in range(k)], 1)
    taps = torch.cat([taps, -taps])  # the signed copy: s[0] is 16 days before s[1]
    by_columns = taps.reshape(-1) @ layer.weight.double().reshape(len(BANDS), -1).T
    by_columns = (by_columns + layer.bias.double()).detach()
    feats = padded[:, k // 2 : -(k // 2), k // 2 : -(k // 2)][None].float()
    days = torch.tensor([[(s[0].date - s[1].date).days]], dtype=torch.float32)
    with torch.no_grad():
        by_layer = model.linear_term(feats, days)[0, :, y, x].double()
    np.testing.assert_allclose(by_columns.numpy(), by_layer.numpy(), rtol=1e-4, atol=1e-4)
    assert can_fit(model)
    assert not can_fit(create_model("resstf", bands=BANDS, size="tiny"))


def test_day_weights_blend_as_predict_does() -> None:
    s = gain_error_scenes(n_dates=4)
    refs, target = (s[0], s[3]), s[1]
    days = torch.tensor([[(r.date - target.date).days for r in refs]], dtype=torch.float32)
    np.testing.assert_allclose(
        day_weights(days, "time")[0].numpy(), inverse_time_weights(refs, target.date), rtol=1e-6
    )
    near = nearest_ref(refs, target.date)
    assert day_weights(days, "nearest")[0].tolist() == [float(r is near) for r in refs]


@pytest.mark.parametrize("name", NETS)
def test_blended_training_uses_the_rule_pairs_of_a_fused_day(name: str) -> None:
    s = gain_error_scenes(n_dates=5)
    model = create_model(name, bands=BANDS, size="tiny", train_blend=True, blend="time")
    model.set_band_stats(s)
    model.select_start(s)
    setup = plan(model, s, ())
    held = setup.val[0]
    assert setup.held.tasks[0].refs == rule_refs(setup.pairs, held.date)
    assert [t.refs for t in setup.train.tasks] == [t.refs for t in blend_tasks(setup.pairs)]
    assert all(len(t.refs) == 2 for t in setup.train.tasks)
    report = model.fit(s, bands=BANDS, progress=False)
    assert report.steps > 0
    assert report.end_val_rmse <= report.start_val_rmse
    # a model that blends by NDVI change (per pixel) keeps its per-stream tasks
    index = create_model(name, bands=BANDS, size="tiny", train_blend=True, blend="index")
    index.set_band_stats(s)
    assert all(len(t.refs) == 1 for t in plan(index, s, ()).train.tasks)


def test_two_dates_fit_the_linear_path_only_when_asked() -> None:
    s = gain_error_scenes(n_dates=2)
    model = create_model(
        "edcstfn", bands=BANDS, size="tiny", change_window=1, change_windows=[1],
        val_split="date", date_fallback="linear", linear_signed=False,
    )  # fmt: skip
    report = model.fit(s, bands=BANDS, progress=False)
    assert report.steps == 0 and "linear path only" in report.task
    assert "held-back blocks" in report.validation
    assert report.notes["linear_start"]["kept"]
    assert report.end_val_rmse < 0.1 * report.start_val_rmse


def test_small_presets_fit_the_two_core_budget() -> None:
    # issue 14: the default evaluate of each model within 10 minutes on 2 CPU cores
    for name in (*NETS, "resstf"):
        params = create_model(name, bands=BANDS, size="small").params
        assert params["budget_s"] <= 600 and params["patch"] <= 64
    for name in NETS:
        assert create_model(name, bands=BANDS, size="small").params["train_blend"]
    assert create_model("resstf", bands=BANDS, size="small").params["stream_val"] == "dates"
