"""The per-pixel change blend (pipeline.models.blend): naive model, start rule, engine path."""

from __future__ import annotations

import datetime as dt

import numpy as np
import torch

from pipeline.models import FusionInput, Scene, create_model, streams
from pipeline.models.baselines import NAIVE_MODELS, box_mean, choose_smoothing
from pipeline.models.blend import (
    STARFM_SETTING,
    ChangeSetting,
    change_blended,
    change_weights,
    choose_change,
    choose_start,
)

BANDS = ("green", "red", "nir")
DAY0 = dt.date(2020, 6, 1)


def _coarse(fine: np.ndarray, factor: int = 8) -> np.ndarray:
    b, h, w = fine.shape
    blocks = fine.reshape(b, h // factor, factor, w // factor, factor).mean((2, 4))
    return blocks.repeat(factor, 1).repeat(factor, 2).astype(np.float32)


def patch_season(n_dates: int = 5, size: int = 48) -> list[Scene]:
    """Scenes 16 days apart; a 20 px square brightens by 0.1 between the second and third
    date and stays so: a reference before that step is wrong in the patch, one after is not."""
    rng = np.random.default_rng(3)
    base = (0.2 + 0.1 * rng.random((3, size, size))).astype(np.float32)
    scenes = []
    for i in range(n_dates):
        fine = base.copy()
        if i >= 2:
            fine[:, 5:25, 5:25] += 0.1
        fine = fine + 0.002 * i  # a small uniform change every date
        day = DAY0 + dt.timedelta(days=16 * i)
        scenes.append(Scene(day, _coarse(fine), fine.astype(np.float32)))
    return scenes


def _rmse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.nanmean((a - b) ** 2)))


def test_registered_as_a_naive_model() -> None:
    assert "smoothed_change_tblend" in NAIVE_MODELS
    model = create_model("smoothed_change_tblend", bands=BANDS)
    assert model.trainable and model.halo == model.params["window"] // 2


def test_weights_by_hand_and_sum_to_one() -> None:
    """w_k ∝ days_k^-p / (|C_t - C_k| + eps), a band mean, per pixel."""
    t = Scene(DAY0 + dt.timedelta(days=10), np.full((2, 4, 4), 0.30, np.float32))
    a = Scene(DAY0, np.full((2, 4, 4), 0.30, np.float32))  # no change, 10 days
    b = Scene(DAY0 + dt.timedelta(days=30), np.full((2, 4, 4), 0.25, np.float32))  # 20 days
    setting = ChangeSetting(window=1, eps=0.01, day_power=1.0)
    w = change_weights([a, b], t, setting)
    assert w.shape == (2, 1, 4, 4)
    inv = np.array([(1 / 10) / 0.01, (1 / 20) / (0.05 + 0.01)])
    np.testing.assert_allclose(w[:, 0, 0, 0], inv / inv.sum(), rtol=1e-5)  # float32 inputs
    np.testing.assert_allclose(w.sum(0), 1.0)
    on_date = change_weights([a, Scene(t.date, t.coarse)], t, setting)  # a pair on the date
    np.testing.assert_array_equal(on_date[:, 0, 0, 0], [0.0, 1.0])


def test_trusts_the_stream_without_change() -> None:
    """Date 2 from dates 1 and 3: date 1 precedes the step, so its stream carries the
    smeared coarse change in and around the patch; date 3's stream does not."""
    s = patch_season()
    refs, target = (s[1], s[3]), s[2]
    time_pred = change_blended(refs, target, 9, ChangeSetting(1, 1e9, 1.0))[0]  # = day blend
    days = np.array([16.0, 16.0])
    day_only = sum(
        (1 / d) / (2 / 16) * (r.fine + box_mean(target.coarse - r.coarse, 9))
        for r, d in zip(refs, days, strict=True)
    )
    np.testing.assert_allclose(time_pred, day_only, atol=1e-9)  # eps -> inf: the day blend
    change_pred = change_blended(refs, target, 9, STARFM_SETTING)[0]
    assert _rmse(change_pred, target.fine) < 0.5 * _rmse(time_pred, target.fine)


def test_naive_model_chooses_on_training_dates() -> None:
    s = patch_season(n_dates=6)
    train, target = [p for p in s if p.date != s[2].date], s[2]
    model = create_model("smoothed_change_tblend", bands=BANDS)
    model.fit(train, bands=BANDS, progress=False)
    setting, errors, reason = choose_change(train, int(model.params["window"]))
    assert not reason and errors and model.params["change_blend"] == setting.to_params()
    refs = (s[1], s[3])
    pred = model.predict(FusionInput(refs, Scene(target.date, target.coarse), BANDS)).fine
    day = create_model("smoothed_change_blend", bands=BANDS)
    day.fit(train, bands=BANDS, progress=False)
    day_pred = day.predict(FusionInput(refs, Scene(target.date, target.coarse), BANDS)).fine
    assert _rmse(pred, target.fine) < _rmse(day_pred, target.fine)


def test_without_two_reference_tasks_starfm_setting() -> None:
    s = patch_season(n_dates=3)
    two = [s[0], s[2]]  # each predicted from the other alone
    setting, errors, reason = choose_change(two, 9)
    assert setting == STARFM_SETTING and not errors and reason
    choice, chosen = choose_start(two, (1, 9), ("time", "nearest", "change"))
    assert choice.blend == "change" and chosen == STARFM_SETTING
    assert choose_start(two, (1, 9), ("time", "nearest"))[1] is None


def test_start_rule_takes_the_lower_task_error() -> None:
    """The change blend is the start only where its task MSE is no higher than the day
    blend's (the patch season: it is lower; coarse noise without change: it is not)."""
    rng = np.random.default_rng(0)
    fine = (0.2 + 0.1 * rng.random((3, 32, 32))).astype(np.float32)
    noise = [rng.normal(0, 0.01, fine.shape).astype(np.float32) for _ in range(5)]
    noisy = [
        Scene(DAY0 + dt.timedelta(days=16 * i), _coarse(fine) + n, fine)
        for i, n in enumerate(noise)
    ]
    for pairs in (patch_season(n_dates=6), noisy):
        choice, setting = choose_start(pairs, (1, 9), ("time", "nearest", "change"))
        day = choose_smoothing(pairs, (1, 9), ("time", "nearest"))
        best, errors, _ = choose_change(pairs, day.window)
        lower = errors[best.key()] <= day.errors[(day.window, day.blend)]
        assert (choice.blend == "change") == lower
        assert (setting == best) if lower else (setting is None and choice == day)
    assert choose_start(patch_season(n_dates=6), (1, 9), ("time", "change"))[0].blend == "change"


def test_torch_weights_equal_numpy() -> None:
    """The engine's batch weights (streams.change_weights) are predict's (blend.change_weights)."""
    rng = np.random.default_rng(1)
    t = Scene(DAY0 + dt.timedelta(days=8), rng.random((3, 24, 24)).astype(np.float32))
    refs = [
        Scene(DAY0, rng.random((3, 24, 24)).astype(np.float32)),
        Scene(DAY0 + dt.timedelta(days=24), rng.random((3, 24, 24)).astype(np.float32)),
    ]
    for setting in (ChangeSetting(1, 3e-3, 1.0), ChangeSetting(9, 1e-2, 0.0)):
        expected = change_weights(refs, t, setting)[:, 0]
        got = streams.change_weights(
            torch.from_numpy(np.stack([r.coarse for r in refs]))[None],
            torch.from_numpy(t.coarse)[None],
            torch.tensor([[-8.0, 16.0]]),
            setting.to_params(),
        )[0]
        np.testing.assert_allclose(got.numpy(), expected, atol=1e-5)


def test_learned_model_with_change_blend_trains_what_it_predicts() -> None:
    """resstf_prior with the change blend: the engine's blended forward on the whole image
    is predict's output (same per-pixel weights), and the start beats the time start."""
    s = patch_season(n_dates=6)
    train, target = [p for p in s if p.date != s[2].date], s[2]
    refs = (s[1], s[3])
    inputs = FusionInput(refs, Scene(target.date, target.coarse), BANDS)
    preds = {}
    for blend in ("change", "time"):
        model = create_model(
            "resstf_prior", bands=BANDS, size="tiny", blend=blend, budget_steps=0,
            change_windows=[1, 9],
        )  # fmt: skip
        model.fit(train, bands=BANDS, progress=False)
        preds[blend] = model.predict(inputs).fine
        assert model.params["start_blend"] == blend
        with torch.no_grad():
            torch.nn.init.normal_(model.net.linear_path.weight, std=0.05)  # a non-trivial net
            pred = model.predict(inputs).fine
            np.testing.assert_allclose(_engine_forward(model, refs, target), pred, atol=1e-5)
    assert _rmse(preds["change"], target.fine) < _rmse(preds["time"], target.fine)


def _engine_forward(model, refs: tuple[Scene, ...], target: Scene) -> np.ndarray:
    """:func:`streams.forward` (what the engine trains) on the halo-padded whole image."""
    h = model.halo
    pad = (h, h, h, h)

    def tensor(a: np.ndarray) -> torch.Tensor:
        return torch.nn.functional.pad(torch.from_numpy(a), pad, mode="replicate")

    rc = torch.stack([tensor(r.coarse) for r in refs])[None]
    rf = torch.stack([tensor(r.fine) for r in refs])[None]
    tc = tensor(target.coarse)[None]
    days = torch.tensor([[(r.date - target.date).days for r in refs]], dtype=torch.float32)
    model.net.eval()
    out = streams.forward(model, rc, rf, tc, days)[0]
    return out[:, h:-h, h:-h].numpy() if h else out.numpy()


def _head_model(blend: str, train: list[Scene], head: bool = True):
    model = create_model(
        "resstf_prior", bands=BANDS, size="tiny", blend=blend, budget_steps=0,
        change_windows=[1, 9], blend_head=head,
    )  # fmt: skip
    model.fit(train, bands=BANDS, progress=False)
    return model


def test_zero_head_is_the_start_rules_blend() -> None:
    s = patch_season(n_dates=6)
    train, target, refs = [p for p in s if p.date != s[2].date], s[2], (s[1], s[3])
    inputs = FusionInput(refs, Scene(target.date, target.coarse), BANDS)
    for blend in ("time", "change"):
        with_head, without = _head_model(blend, train), _head_model(blend, train, head=False)
        assert float(with_head.net.blend_head.theta.detach().abs().sum()) == 0.0
        np.testing.assert_array_equal(with_head.predict(inputs).fine, without.predict(inputs).fine)


def test_learned_head_moves_toward_the_stream_without_change() -> None:
    """Only the head trained (SGD on the blended loss, as the engine's train_blend does):
    the change-magnitude coefficients turn negative and the patch's error falls; predict
    (whole image) and the engine's forward agree with the learned term."""
    s = patch_season(n_dates=6)
    train, target, refs = [p for p in s if p.date != s[2].date], s[2], (s[1], s[3])
    model = _head_model("time", train)
    inputs = FusionInput(refs, Scene(target.date, target.coarse), BANDS)
    before = model.predict(inputs).fine
    tasks = [((s[0], s[2]), s[1]), ((s[2], s[4]), s[3]), ((s[3], s[5]), s[4])]  # no target

    def tensors(refs_, tgt):
        rc = torch.from_numpy(np.stack([r.coarse for r in refs_]))[None]
        rf = torch.from_numpy(np.stack([r.fine for r in refs_]))[None]
        days = torch.tensor([[(r.date - tgt.date).days for r in refs_]], dtype=torch.float32)
        return rc, rf, torch.from_numpy(tgt.coarse)[None], days, torch.from_numpy(tgt.fine)

    # the loss is ~1e-4 (reflectance^2) and its gradient as small: a large plain-SGD step
    optimizer = torch.optim.SGD(model.net.blend_head.parameters(), lr=2000.0)
    for _ in range(30):
        optimizer.zero_grad()
        loss = sum(
            ((streams.forward(model, *t[:4])[0] - t[4]) ** 2).mean()
            for t in (tensors(r, g) for r, g in tasks)
        )
        loss.backward()
        optimizer.step()
    theta = model.net.blend_head.theta.detach().numpy()
    assert theta[0] + theta[1] < 0, theta  # trust the stream whose coarse change is smaller
    after = model.predict(inputs).fine
    patch = (slice(None), slice(5, 25), slice(5, 25))
    assert _rmse(after[patch], target.fine[patch]) < 0.8 * _rmse(before[patch], target.fine[patch])
    with torch.no_grad():
        np.testing.assert_allclose(_engine_forward(model, refs, target), after, atol=1e-5)


def test_naive_model_saves_and_loads(tmp_path) -> None:
    from pipeline.models import load_model

    s = patch_season(n_dates=6)
    train, target, refs = [p for p in s if p.date != s[2].date], s[2], (s[1], s[3])
    model = create_model("smoothed_change_tblend", bands=BANDS)
    model.fit(train, bands=BANDS, progress=False)
    model.save(tmp_path)
    again = load_model(tmp_path)
    inputs = FusionInput(refs, Scene(target.date, target.coarse), BANDS)
    assert again.params["change_blend"] == model.params["change_blend"]
    np.testing.assert_array_equal(again.predict(inputs).fine, model.predict(inputs).fine)
