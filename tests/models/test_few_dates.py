"""Two training dates (``date_fallback = "reverse"``, :mod:`pipeline.models.few_dates`).

Each direction is trained and validated on the other direction's held-back blocks; the
correction is shrunk toward the start by a factor chosen there. Steps are always taken;
the start comes back when what was learned does not transfer across dates.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
import torch

from pipeline.models import FusionInput, Scene, create_model
from pipeline.models import few_dates as fd
from pipeline.models.baselines import blend_smoothed
from pipeline.models.blend import CHANGE_BLEND, change_blended, setting_of

torch.set_num_threads(1)
BANDS = ("g", "r", "n")
OPTS = {"size": "small", "patch": 16, "change_windows": [1, 3], "steps_per_epoch": 2,
        "batch_size": 2, "date_fallback": "reverse"}  # fmt: skip


def scenes(gain: float, greening: float, size: int = 48, seed: int = 0) -> list[Scene]:
    """Three dates 16 days apart: fixed fine detail plus a smooth change growing with the
    square of time (a change linear in time would cancel in the two-stream blend); the
    coarse image shows ``gain`` x the change. ``greening``: the fine pixels brightest in
    the first band at the first date rise by that much per 16 days, which no coarse image
    shows: learned from the first date forward it reads "bright pixels rise", which is
    wrong backward from the last date (the risen pixels are bright there too)."""
    rng = np.random.default_rng(seed)
    detail = (0.2 + 0.1 * rng.random((3, size, size))).astype(np.float32)
    y, x = np.mgrid[:size, :size] / size
    field = (1.0 + 0.5 * np.sin(6 * x) * np.cos(4 * y)).astype(np.float32)
    out = []
    for k in range(3):
        change = 0.01 * k * k * np.array([1.0, 1.5, -1.0], np.float32)[:, None, None] * field
        fine = detail + change + greening * k * (detail[:1] > np.median(detail[0]))
        coarse = np.full_like(detail, 0.25) + gain * change
        day = dt.date(2001, 5, 1) + dt.timedelta(days=16 * k)
        out.append(Scene(day, coarse.astype(np.float32), fine.astype(np.float32)))
    return out


def start_prediction(model, s: list[Scene]) -> np.ndarray:
    """The smoothed-change baseline the start rule chose, on the middle date."""
    window, blend = int(model.params["change_window"]), model.blend_name()
    refs, target = (s[0], s[2]), Scene(s[1].date, s[1].coarse)
    if blend == CHANGE_BLEND:  # the per-pixel change blend (pipeline.models.blend)
        return change_blended(refs, target, window, setting_of(model.params))[0]
    return blend_smoothed(refs, target, window, blend)[0]


def predict(model, s: list[Scene]) -> np.ndarray:
    return model.predict(FusionInput((s[0], s[2]), Scene(s[1].date, s[1].coarse), BANDS)).fine


@pytest.mark.parametrize("name", ["resstf_prior", "edcstfn"])
def test_a_correction_that_does_not_transfer_gives_the_start_back(name: str) -> None:
    """A change no coarse image shows, tied to one season's fine image: what one direction
    learns fails on the other, so the start is kept, after steps were taken and said so."""
    s = scenes(gain=1.0, greening=0.02)
    model = create_model(name, bands=BANDS, budget_steps=16, **OPTS)
    report = model.fit([s[0], s[2]], bands=BANDS, progress=False)
    notes = report.notes["few_dates"]
    assert report.steps > 0 and all(f["steps"] > 0 for f in notes["folds"])
    assert notes["shrink"] == 0.0 and notes["kept"] == "start" and notes["final_steps"] == 0
    assert report.end_val_rmse == pytest.approx(report.start_val_rmse)
    assert "reverse" in report.validation and report.task.startswith(fd.TASK)
    assert "the start is kept" in report.task
    np.testing.assert_allclose(predict(model, s), start_prediction(model, s), atol=1e-6)


@pytest.mark.parametrize("name", ["resstf_prior", "edcstfn"])
def test_a_transferable_gain_is_kept_and_lowers_the_target(name: str) -> None:
    """The coarse change is twice the fine one in every direction: the linear path's gain
    learned on one direction holds on the other, so it is kept, and the middle date
    improves on the start. The streams are blended by time here: with the per-pixel
    change blend this toy's two stream errors (+1 and -3 units of change, weighted 3:1)
    cancel, so that start is already exact and leaves no gain to learn."""
    s = scenes(gain=2.0, greening=0.0)
    model = create_model(name, bands=BANDS, budget_steps=8, **{**OPTS, "blend": "time"})
    report = model.fit([s[0], s[2]], bands=BANDS, progress=False)
    notes = report.notes["few_dates"]
    assert notes["shrink"] > 0 and notes["kept"] == "trained"
    assert all(f["linear_kept"] for f in notes["folds"])
    assert notes["held_back_gain"] > 0.2
    truth = s[1].fine
    start = np.sqrt(np.mean((start_prediction(model, s) - truth) ** 2))
    trained = np.sqrt(np.mean((predict(model, s) - truth) ** 2))
    assert trained < 0.8 * start


@pytest.mark.parametrize("blend_head", [False, True])
def test_shrink_scales_the_correction_exactly(blend_head: bool) -> None:
    """Scaling the modules that are zero at the start scales the output's departure from
    the start linearly (0: the start, 1: the trained weights). The learned blend term
    (``blend_head``) is scaled in the weights' logits: 0 is still exactly the start."""
    s = scenes(gain=2.0, greening=0.0)
    model = create_model("resstf_prior", bands=BANDS, **{**OPTS, "blend_head": blend_head})
    model.set_band_stats(s)
    model.select_start(s)
    model.start_state = {k: v.clone() for k, v in model.net.state_dict().items()}
    heads = fd.zero_modules(model.net, model.start_state)
    # the trunk's last conv and the path (and the blend term when the model has one)
    assert "linear_path" in heads and len(heads) == 2 + blend_head
    assert ("blend_head" in heads) == blend_head
    torch.manual_seed(1)
    with torch.no_grad():
        for p in model.net.parameters():
            p.add_(1e-3 * torch.randn_like(p))
    trained = {k: v.clone() for k, v in model.net.state_dict().items()}
    out = {}
    for k in (0.0, 0.5, 1.0):
        fd.shrink(model, trained, k)
        out[k] = predict(model, s)
    np.testing.assert_allclose(out[0.0], start_prediction(model, s), atol=1e-6)
    if not blend_head:
        np.testing.assert_allclose(out[0.5] - out[0.0], 0.5 * (out[1.0] - out[0.0]), atol=1e-6)


def test_the_rule_applies_only_to_two_dates() -> None:
    s = scenes(gain=1.0, greening=0.0)
    model = create_model("resstf_prior", bands=BANDS, **OPTS)
    assert fd.applies(model, [s[0], s[2]], [])
    assert not fd.applies(model, s, [])
    assert not fd.applies(model, [s[0], s[2]], [s[1]])
    other = create_model("resstf_prior", bands=BANDS, **{**OPTS, "date_fallback": "start"})
    assert not fd.applies(other, [s[0], s[2]], [])


@pytest.mark.parametrize("name", ["resstf_prior", "edcstfn"])
def test_one_pair_keeps_the_start_without_a_step(name: str) -> None:
    """One pair (lgc-2004): no change to learn from; "reverse" keeps the start as "start" does."""
    s = scenes(gain=2.0, greening=0.0)
    model = create_model(name, bands=BANDS, budget_steps=8, **OPTS)
    report = model.fit([s[0]], bands=BANDS, progress=False)
    assert report.steps == 0 and "one pair" in report.task
