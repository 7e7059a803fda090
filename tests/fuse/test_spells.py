"""The filled sigma fitted on training spells (pipeline.fuse.spells), on a small random-walk world.

The world: daily 3-band truth whose fields drift as random walks with pixel noise,
a clear Landsat-like scene every 5th day (the pairs), daily coarse block means with
noise and cloudy spells of 1-6 days per coarse pixel. A run's series is built as the
fuse stage builds it (observed on pair days, fused from the nearest pairs where the
coarse image is clear, gaps elsewhere, then :func:`seamless_window`). Withheld days are
the days between the pairs: their clear fine observation never enters the fit.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from pipeline.evaluate.calibration import within_sigma
from pipeline.fuse.calibrate import SeriesCalibration, calibration_from, window_residuals
from pipeline.fuse.gapfill import bridge_days, fill_gaps, gap_day_parts, next_to
from pipeline.fuse.spells import SpellResiduals, fill_calibration, window_spells
from pipeline.fuse.worker import ModelPayload, install, seamless_window
from pipeline.models.base import FusionInput, Scene
from pipeline.models.pairs import choose_scenes
from pipeline.models.registry import create_model
from pipeline.store.layout import FILLED, FUSED, GAP, OBSERVED

BANDS = ("green", "red", "nir")
N_DAYS, SIDE, FACTOR, EVERY = 41, 48, 4, 5
DAY0 = dt.date(2024, 6, 1)
DAYS = tuple(DAY0 + dt.timedelta(days=i) for i in range(N_DAYS))
PAIRS = tuple(range(0, N_DAYS, EVERY))
CORE = (slice(0, SIDE), slice(0, SIDE))


def _world(seed: int = 0) -> dict[str, np.ndarray]:
    """Truth, clear fine observations (truth + 0.005 noise) and cloudy daily coarse means."""
    rng = np.random.default_rng(seed)
    fields = rng.integers(0, 6, (SIDE // 8, SIDE // 8)).repeat(8, 0).repeat(8, 1)
    base = 0.08 + 0.04 * fields + np.array([0.0, 0.02, 0.15])[:, None, None]
    walk = np.cumsum(rng.normal(0, 0.004, (N_DAYS, 3, SIDE, SIDE)), axis=0)
    field_walk = np.cumsum(rng.normal(0, 0.006, (N_DAYS, 3, 6)), axis=0)[..., fields]
    truth = (base[None] + walk + field_walk).astype(np.float32)
    obs = truth + rng.normal(0, 0.005, truth.shape).astype(np.float32)
    small = truth.reshape(N_DAYS, 3, SIDE // FACTOR, FACTOR, SIDE // FACTOR, FACTOR).mean((3, 5))
    small = small + rng.normal(0, 0.003, small.shape)
    cloudy = np.zeros((N_DAYS, *small.shape[2:]), bool)
    for _ in range(N_DAYS // 3):  # cloudy spells of 1-6 days, per coarse pixel
        start, length = rng.integers(0, N_DAYS, cloudy.shape[1:]), rng.integers(1, 7)
        t = np.arange(N_DAYS)[:, None, None]
        cloudy |= (t >= start) & (t < start + length) & (rng.random(cloudy.shape[1:]) < 0.5)
    cloudy[list(PAIRS)] = False  # a pair needs its coarse scene
    small[np.broadcast_to(cloudy[:, None], small.shape)] = np.nan
    coarse = small.repeat(FACTOR, -2).repeat(FACTOR, -1).astype(np.float32)
    return {"truth": truth, "obs": obs, "coarse": coarse}


@pytest.fixture(scope="module")
def model_key(tmp_path_factory: pytest.TempPathFactory) -> str:
    directory = Path(tmp_path_factory.mktemp("model")) / "naive_change"
    create_model("naive_change", BANDS, size="tiny", device="cpu").save(directory)
    payload = ModelPayload.from_dir(directory)
    install(payload)  # the worker cache, in this process
    return payload.key


def _fit(world: dict[str, np.ndarray], model_key: str, q_mis: float = 1.0):
    """The run's calibration from the pairs only: fused round, then (q mis-scaled by ``q_mis``,
    so the unfitted filled sigma is off) the spells; returns both the unfitted and fitted."""
    fine = world["obs"][list(PAIRS)]
    pairs = tuple(DAYS[k] for k in PAIRS)
    res = window_residuals(fine, world["coarse"][list(PAIRS)], pairs, CORE, model_key, BANDS)
    calib = calibration_from(res)
    calib = replace(calib, q=tuple(q_mis * v for v in calib.q))
    coarse = dict(zip(DAYS, world["coarse"], strict=True))
    spells = window_spells(fine, coarse, pairs, CORE, model_key, BANDS, calib)
    return calib, fill_calibration(calib, spells), spells


def _run_series(world: dict[str, np.ndarray], model_key: str, calib: SeriesCalibration) -> dict:
    """The seamless window a run writes: observed pairs, fused days, filled gaps."""
    from pipeline.fuse.worker import _MODELS

    model = _MODELS[model_key]
    scenes = [Scene(DAYS[k], world["coarse"][k], world["obs"][k]) for k in PAIRS]
    shape = (SIDE, SIDE)
    days = []
    for t, day in enumerate(DAYS):
        if t in PAIRS:
            values, sigma, quality = world["obs"][t], np.full((3, *shape), np.nan), OBSERVED
        else:
            refs = choose_scenes(scenes, day, model.n_refs)
            pred = model.predict(FusionInput(refs, Scene(day, world["coarse"][t]), BANDS))
            values, sigma, quality = pred.fine, pred.uncertainty, FUSED
        q = np.where(np.isfinite(values).all(axis=0), quality, GAP).astype(np.uint8)
        ref = np.zeros(shape, np.int16)
        days.append({"values": values, "sigma": sigma, "quality": q,
                     "ref_before_days": ref, "ref_after_days": ref})  # fmt: skip
    return seamless_window(days, np.ones(shape, bool), calib, n_bands=3)


def _withheld_coverage(world: dict, out: dict, calib: SeriesCalibration) -> dict[str, float]:
    """Within 1 / 2 sigma of the filled pixel-days of the days between the pairs, each band
    against the stored sigma times its factor, vs the withheld clear fine observation."""
    withheld = np.array([t not in PAIRS for t in range(N_DAYS)])
    filled = (out["quality"] == FILLED) & withheld[:, None, None]
    err = (out["values"] - world["obs"]).transpose(1, 0, 2, 3)[:, filled]
    sigma = out["uncertainty"][filled][None] * calib.factors(3)[:, None]
    return within_sigma(err, sigma)


def test_fitted_scales_bring_a_mis_scaled_filled_sigma_into_band(model_key: str) -> None:
    world = _world()
    bad, fitted, spells = _fit(world, model_key, q_mis=25.0)
    assert set(np.unique(spells.half)) >= {0, 1, 2}  # short and longer spells
    before = _withheld_coverage(world, _run_series(world, model_key, bad), bad)
    after = _withheld_coverage(world, _run_series(world, model_key, fitted), fitted)
    assert before["within_1sigma"] > 0.8  # q 25 times too large: sigma far too wide
    assert after["count"] > 10_000
    assert abs(after["within_1sigma"] - 0.6827) < 0.05, after
    assert abs(after["within_2sigma"] - 0.9545) < 0.03, after
    assert fitted.fill_pooled < 0.5 < bad.fill_pooled  # the pooled part (its q) scaled back


def test_the_fitted_filled_sigma_ranks_the_errors(model_key: str) -> None:
    """Larger filled sigma where the withheld days' errors are larger (Spearman > 0), and the
    filler's own (pooled) variance ranks them better than the ends' correlated sigma alone.

    On this world the ranking is weak by construction (0.035 vs -0.025 when written): most
    of a filled day's error is its fused ends' drift since their pair, which the fused sigma
    of a sigma-less model (one value everywhere) cannot see; the demo's figures are in
    ``benchmarks/seamless.md``."""
    from scipy.stats import spearmanr

    world = _world()
    _, fitted, _ = _fit(world, model_key)
    out = _run_series(world, model_key, fitted)
    withheld = np.array([t not in PAIRS for t in range(N_DAYS)])
    filled = (out["quality"] == FILLED) & withheld[:, None, None]
    # against the noise-free truth: the observation's own noise would blur every ranking
    err = np.abs(out["values"] - world["truth"]).transpose(1, 0, 2, 3)[:, filled]

    def rho(calib: SeriesCalibration) -> float:  # per band (their errors differ in size)
        sigma = _run_series(world, model_key, calib)["uncertainty"][filled]
        return float(np.mean([spearmanr(sigma, e).statistic for e in err]))

    got, ends = rho(fitted), rho(replace(fitted, fill_pooled=0.0))
    print(f"filled sigma vs |error|: Spearman {got:.3f} (the ends' sigma alone {ends:.3f})")
    assert got > 0.02 and got > ends + 0.04


def test_the_fit_never_sees_the_withheld_days(model_key: str) -> None:
    """Only the pairs' fine scenes enter: poisoning every other day's observation (and the
    truth) changes nothing in the fitted calibration."""
    world = _world()
    poisoned = {k: v.copy() for k, v in world.items()}
    withheld = [t for t in range(N_DAYS) if t not in PAIRS]
    poisoned["obs"][withheld] = 5.0
    poisoned["truth"][withheld] = np.nan
    assert _fit(world, model_key)[1] == _fit(poisoned, model_key)[1]


def test_bridge_days_and_the_two_scales_of_a_filled_sigma() -> None:
    valid = np.array([True, False, False, False, True, False])[:, None]
    np.testing.assert_allclose(bridge_days(valid)[:, 0], [0, 0.75, 1.0, 0.75, 0, 1.0])
    values = np.array([0.1, np.nan, np.nan, np.nan, 0.2], np.float32)[:, None, None, None]
    sigma = np.array([0.01, np.nan, np.nan, np.nan, 0.03], np.float32)[:, None, None, None]
    cover = np.ones((1, 1), bool)
    one = fill_gaps(values, sigma, cover, np.array([1e-4]), "linear")
    scaled = fill_gaps(values, sigma, cover, np.array([1e-4]), "linear", 0.5, 2.0)
    # mid-gap: the ends' correlated variance, and the linear filler's own (independent ends
    # weighted by 1/2 each, plus the bridge q h with h = 1 day)
    ends = (0.5 * 0.01 + 0.5 * 0.03) ** 2
    pooled = 0.25 * 0.01**2 + 0.25 * 0.03**2 + 1e-4
    np.testing.assert_allclose(one.sigma[2, 0, 0, 0] ** 2, ends + pooled, rtol=1e-5)
    np.testing.assert_allclose(scaled.sigma[2, 0, 0, 0] ** 2, 0.25 * ends + 4 * pooled, rtol=1e-5)
    np.testing.assert_array_equal(one.values, scaled.values)  # only the sigma is scaled


@pytest.mark.parametrize("method", ["kalman", "linear"])
def test_one_pass_gives_the_two_parts_that_fill_gaps_scales(method: str) -> None:
    # the spells read both variance parts of a filled day from one filler pass; fill_gaps
    # with one part's scale at 0 gives each alone, and the same filled value
    rng = np.random.default_rng(3)
    values = (0.2 + 0.01 * rng.standard_normal((9, 2, 3, 4))).astype(np.float32)
    values[3:6] = np.nan
    values[1, :, 0, 0] = np.nan
    sigma = np.where(np.isfinite(values), np.float32(0.01), np.float32(np.nan))
    cover, q = np.ones((3, 4), bool), np.array([1e-5, 2e-5])
    ends_only = fill_gaps(values, sigma, cover, q, method, 1.0, 0.0)
    pooled_only = fill_gaps(values, sigma, cover, q, method, 0.0, 1.0)
    value, ends, pooled = gap_day_parts(values, sigma, q, method, 4)
    np.testing.assert_array_equal(value, ends_only.values[4].reshape(2, -1))
    np.testing.assert_allclose(ends, np.square(ends_only.sigma[4].reshape(2, -1)), rtol=1e-6)
    np.testing.assert_allclose(pooled, np.square(pooled_only.sigma[4].reshape(2, -1)), rtol=1e-6)
    with pytest.raises(ValueError, match="not a gap at every pixel"):
        gap_day_parts(values, sigma, q, method, 1)


def test_a_gap_next_to_a_coarse_fallback_day_takes_the_fallback_scales() -> None:
    valid = np.array([True, False, True, False, False, True])[:, None]
    fell = np.array([False, False, True, False, False, False])[:, None]
    np.testing.assert_array_equal(next_to(valid, fell)[:, 0], [0, 1, 1, 1, 1, 0])
    values = np.array([0.1, np.nan, 0.2, np.nan, np.nan, 0.1], np.float32)[:, None, None, None]
    sigma = np.where(np.isfinite(values), np.float32(0.01), np.float32(np.nan))
    cover, q = np.ones((1, 1), bool), np.array([1e-5])
    plain = fill_gaps(values, sigma, cover, q, "linear", 1.0, 1.0)
    # the fallback day (index 2) is an end of both gaps: both take the fallback scales
    scaled = fill_gaps(values, sigma, cover, q, "linear", 1.0, 1.0,
                       fallback=fell[:, :, None], fallback_scales=(0.5, 0.5))  # fmt: skip
    np.testing.assert_allclose(scaled.sigma[[1, 3, 4]], 0.5 * plain.sigma[[1, 3, 4]], rtol=1e-6)
    np.testing.assert_array_equal(scaled.values, plain.values)
    unfitted = fill_gaps(values, sigma, cover, q, "linear", 1.0, 1.0, fallback=fell[:, :, None])
    np.testing.assert_array_equal(unfitted.sigma, plain.sigma)  # no fallback scales: the same


def test_no_spells_leave_the_calibration_unchanged() -> None:
    calib = SeriesCalibration(1.0, (1e-5,) * 3, 10)
    assert fill_calibration(calib, SpellResiduals.concat([], 3)) == calib
