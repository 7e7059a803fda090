"""GAN-STFM, SwinSTFM, STFDiff presets: never worse than their naive start with < 3 dates.

With two training dates there is no date to hold back; the ``small``/``full``
presets then train each direction and validate on the other (``date_fallback =
"reverse"``, :mod:`pipeline.models.few_dates`), as resstf_prior/EDCSTFN do, and keep
the start when that does not transfer (estarfm-2001: training on held-back rows of the
same task ended 3-13 % worse on the target, benchmarks/model-zoo.md).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
import torch

from pipeline.models import FusionInput, Scene, create_model
from pipeline.models.baselines import blend_smoothed

torch.set_num_threads(1)
ZOO = ["ganstfm", "swinstfm", "stfdiff"]
BANDS = ("g", "r", "n")


@pytest.mark.parametrize("name", ZOO)
def test_two_dates_train_across_dates_and_say_so(name: str, scene_factory) -> None:
    """Two dates: each direction trained, validated on the other (few_dates); steps taken."""
    s = scene_factory(n_dates=3, size=96)
    extra = {"ae_steps": 1} if name == "ganstfm" else {}
    model = create_model(name, bands=BANDS, size="small", budget_steps=8, patch=16,
                         change_windows=[1, 3], **extra)  # fmt: skip
    assert create_model(name, bands=BANDS, size="full").params["date_fallback"] == "reverse"
    report = model.fit([s[0], s[2]], bands=BANDS, progress=False)
    assert report.steps > 0 and "reverse direction" in report.task
    assert report.end_val_rmse <= report.start_val_rmse


@pytest.mark.parametrize("name", ZOO)
def test_two_dates_on_a_tiny_image_keep_the_start_and_say_so(name: str, scene_factory) -> None:
    """Too small for held-back blocks: nothing to validate across dates on, start kept."""
    s = scene_factory(n_dates=3, size=32)
    extra = {"ae_steps": 1} if name == "ganstfm" else {}
    model = create_model(name, bands=BANDS, size="small", budget_steps=5, patch=16, **extra)
    before = {k: v.clone() for k, v in model.net.state_dict().items()}
    report = model.fit([s[0], s[2]], bands=BANDS, progress=False)
    assert report.steps == 0 and "date_fallback=reverse" in report.task
    for key, value in model.net.state_dict().items():
        assert torch.equal(value, before[key]), key


@pytest.mark.parametrize("name", ZOO)
def test_two_date_prediction_is_the_chosen_naive_baseline(name: str, scene_factory) -> None:
    """The kept start predicts exactly the smoothed-change baseline the start rule chose."""
    s = scene_factory(n_dates=3, size=32)
    extra = {"ae_steps": 1, "tta": 2} if name == "ganstfm" else {}
    extra |= {"tta": 2} if name == "swinstfm" else {}
    extra |= {"samples": 2, "ddim_steps": 2} if name == "stfdiff" else {}
    model = create_model(name, bands=BANDS, size="small", patch=16, **extra)
    model.fit([s[0], s[2]], bands=BANDS, progress=False)
    target = Scene(s[1].date, s[1].coarse)
    out = model.predict(FusionInput((s[0], s[2]), target, BANDS))
    window, blend = int(model.params["change_window"]), model.blend_name()
    naive = blend_smoothed((s[0], s[2]), target, window, blend)[0]
    np.testing.assert_allclose(out.fine, naive, atol=1e-5)


def quadratic_change_scenes(n_dates: int = 5, size: int = 48) -> list[Scene]:
    """Fixed fine detail, a smooth change growing with the square of time; the coarse
    change is twice the truth (so the smoothed-change blend errs, and linearly in the
    coarse-change channels; a change linear in time would cancel in the blend)."""
    rng = np.random.default_rng(0)
    detail = (0.2 + 0.1 * rng.random((3, size, size))).astype(np.float32)
    # a smooth field, so the change channels are not constant per image (then only as
    # many values as tasks would pin their coefficients down)
    y, x = np.mgrid[:size, :size] / size
    field = (1.0 + 0.5 * np.sin(6 * x) * np.cos(4 * y)).astype(np.float32)
    scenes = []
    for k in range(n_dates):
        change = 0.005 * k * k * np.array([1.0, 1.5, -1.0], np.float32)[:, None, None] * field
        coarse = np.full_like(detail, 0.25) + 2.0 * change
        day = dt.date(2001, 5, 1) + dt.timedelta(days=16 * k)
        scenes.append(Scene(day, coarse.astype(np.float32), (detail + change).astype(np.float32)))
    return scenes


def test_stfdiff_closed_form_linear_start_removes_a_linear_residual() -> None:
    """STFDiff's own closed form (both references in one pass) removes a residual that is
    linear in its features before any gradient step, and the untrained denoiser's point
    estimate is then base + that linear part."""
    s = quadratic_change_scenes()
    model = create_model("stfdiff", bands=BANDS, size="tiny", change_window=1,
                         change_windows=[1], budget_steps=0, samples=1)  # fmt: skip
    report = model.fit(s[:2] + s[3:], bands=BANDS, progress=False)
    closed = report.notes["linear_start"]
    assert closed["kept"] and closed["val_rmse"] < 0.1 * report.start_val_rmse
    assert report.steps == 0
    target = Scene(s[2].date, s[2].coarse)
    out = model.predict(FusionInput((s[1], s[3]), target, BANDS))
    naive = blend_smoothed((s[1], s[3]), target, 1, model.blend_name())[0]
    rmse = lambda a: float(np.sqrt(np.mean((a - s[2].fine) ** 2)))  # noqa: E731
    assert rmse(out.fine) < 0.1 * rmse(naive)


@pytest.mark.parametrize("name", ZOO)
def test_small_presets_train_on_the_rule_pairs_of_a_fused_day(name: str) -> None:
    """train_blend: the tasks and the held-back date by the reference-pair rule, also for
    STFDiff (both references in one pass) and GAN-STFM (its own training step)."""
    from pipeline.models.streams import blend_tasks, rule_refs
    from pipeline.models.training import plan

    s = quadratic_change_scenes(n_dates=5, size=32)
    assert create_model(name, bands=BANDS, size="small").params["train_blend"] is True
    extra = {"ae_steps": 1} if name == "ganstfm" else {}
    model = create_model(name, bands=BANDS, size="tiny", train_blend=True, **extra)
    model.set_band_stats(s)
    model.select_start(s)
    setup = plan(model, s, ())
    assert setup.held.tasks[0].refs == rule_refs(setup.pairs, setup.val[0].date)
    assert [t.refs for t in setup.train.tasks] == [t.refs for t in blend_tasks(setup.pairs)]
    report = model.fit(s, bands=BANDS, progress=False)
    assert report.steps > 0 and report.end_val_rmse <= report.start_val_rmse


@pytest.mark.parametrize("name", ["ganstfm", "swinstfm"])
def test_kept_start_sigma_is_the_error_model_and_ranks_withheld_errors(name: str) -> None:
    """A kept start's flip views agree exactly; its sigma is then the start's error model
    (plus the two references' disagreement), which ranks the withheld day's errors."""
    from scipy.stats import spearmanr
    from test_stfdiff_spread import heteroscedastic_world

    pairs = heteroscedastic_world()
    held, train = pairs[3], pairs[:3] + pairs[4:]
    bands = ("red", "nir")
    extra = {"ae_steps": 1} if name == "ganstfm" else {}
    model = create_model(name, bands=bands, size="tiny", budget_steps=0, tta=2, **extra)
    report = model.fit(train, progress=False, bands=bands)
    assert report.steps == 0 and model.params["error_model"]["coef"] is not None
    out = model.predict(FusionInput((pairs[2], pairs[4]), Scene(held.date, held.coarse), bands))
    rho = spearmanr(out.uncertainty.ravel(), np.abs(out.fine - held.fine).ravel()).statistic
    assert rho > 0.3, f"Spearman(start sigma, |error|) = {rho:.3f}"
