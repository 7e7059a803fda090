"""Held-back-date validation, the no-date fallback and the start rule's blend choice."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.models import create_model
from pipeline.models.blend import STARFM_SETTING
from pipeline.models.training import held_back_date

NETS = ["resstf_prior", "edcstfn"]  # the paper ResStf has no start choice or auto blend


def test_held_back_date_is_interior_and_central(scene_factory) -> None:
    s = scene_factory(n_dates=5)
    assert held_back_date(s) is s[2]
    assert held_back_date(s[::-1]) is s[2]
    assert held_back_date(s[:2]) is None


@pytest.mark.parametrize("name", NETS)
def test_date_fallback_start_keeps_the_untrained_start(name: str, scene_factory) -> None:
    s = scene_factory()
    model = create_model(name, bands=("g", "r", "n"), size="tiny", date_fallback="start")
    before = {k: v.clone() for k, v in model.net.state_dict().items()}
    report = model.fit([s[0], s[2]], bands=("g", "r", "n"), progress=False)
    assert report.epochs == 0 and np.isfinite(report.best_val_loss)
    for k, v in model.net.state_dict().items():
        assert (v == before[k]).all(), k


@pytest.mark.parametrize("name", NETS)
def test_held_back_date_trains_and_resolves_blend(name: str, scene_factory) -> None:
    s = scene_factory(n_dates=5)
    model = create_model(name, bands=("g", "r", "n"), size="tiny", date_fallback="start")
    assert model.params["val_split"] == "date" and model.params["blend"] == "auto"
    report = model.fit(s, bands=("g", "r", "n"), progress=False)
    assert report.epochs >= 1
    assert model.params["blend"] == "auto" and model.blend_name() in ("nearest", "time", "change")


def test_blend_auto_without_a_scorable_blend_takes_starfms_change_blend(scene_factory) -> None:
    """Two dates: each predicted from the other alone, every blend ties; the start rule
    then takes the change blend with STARFM's setting (pipeline.models.blend.choose_start),
    and a model without that blend among its start blends the time blend."""
    s = scene_factory()
    model = create_model("resstf_prior", bands=("g", "r", "n"), size="tiny")
    model.fit([s[0], s[2]], bands=("g", "r", "n"), progress=False)
    assert model.blend_name() == "change"
    assert model.params["change_blend"] == STARFM_SETTING.to_params()
    days_only = create_model("resstf_prior", bands=("g", "r", "n"), size="tiny")
    days_only.start_blends = ("time", "nearest")
    days_only.fit([s[0], s[2]], bands=("g", "r", "n"), progress=False)
    assert days_only.blend_name() == "time"
