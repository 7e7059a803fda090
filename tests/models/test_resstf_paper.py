"""ResStf as published: same-date residual L - M from M, one network per pair, one pair enough."""

from __future__ import annotations

import numpy as np

from pipeline.models import FusionInput, Scene, create_model, load_model
from tests.models.test_engine import BANDS, gain_error_scenes


def _detail_scenes(n: int = 3, size: int = 48) -> list[Scene]:
    """Coarse = smooth field; fine = coarse + a fixed function of it (a learnable residual)."""
    scenes = gain_error_scenes(n_dates=n, size=size)
    out = []
    for s in scenes:
        yy, xx = np.mgrid[0:size, 0:size] / size
        coarse = (s.coarse + 0.05 * np.sin(6 * yy) * np.cos(5 * xx)).astype(np.float32)
        fine = (coarse + 0.5 * (coarse - 0.25)).astype(np.float32)
        out.append(Scene(s.date, coarse, fine))
    return out


def test_one_network_per_pair_and_one_pair_is_enough(tmp_path) -> None:
    s = _detail_scenes()
    model = create_model("resstf", bands=BANDS, size="tiny")
    report = model.fit([s[0], s[2]], bands=BANDS, progress=False)
    assert sorted(model.net) == [s[0].date.isoformat(), s[2].date.isoformat()]
    assert report.steps > 0 and "one network per pair" in report.task
    assert set(report.notes["streams"]) == set(model.net)
    one = create_model("resstf", bands=BANDS, size="tiny")
    one.fit([s[0]], bands=BANDS, progress=False)
    out = one.predict(FusionInput((s[0],), Scene(s[1].date, s[1].coarse), BANDS))
    assert np.isfinite(out.fine).all() and out.uncertainty is None
    model.save(tmp_path)
    again = load_model(tmp_path)
    inputs = FusionInput((s[0], s[2]), Scene(s[1].date, s[1].coarse), BANDS)
    np.testing.assert_array_equal(model.predict(inputs).fine, again.predict(inputs).fine)


def test_untrained_stream_is_the_upsampled_modis() -> None:
    s = _detail_scenes()
    model = create_model("resstf", bands=BANDS, size="tiny")
    out = model.predict(FusionInput((s[0],), Scene(s[1].date, s[1].coarse), BANDS)).fine
    np.testing.assert_allclose(out, s[1].coarse, atol=1e-6)


def test_training_learns_the_residual_on_held_back_blocks() -> None:
    s = _detail_scenes()
    model = create_model(
        "resstf", bands=BANDS, size="tiny", epochs=8, steps_per_epoch=10,
        batch_size=4, patch=24, lr=3e-3, warmup_steps=5,
    )  # fmt: skip
    report = model.fit(s, bands=BANDS, progress=False)
    assert report.end_val_rmse < 0.9 * report.start_val_rmse


def test_paper_optimiser_available() -> None:
    model = create_model("resstf", bands=BANDS, size="tiny", optimizer="sgd", lr=1e-2)
    report = model.fit(_detail_scenes()[:1], bands=BANDS, progress=False)
    assert report.steps > 0


def test_a_residual_that_does_not_transfer_keeps_the_upsampled_modis() -> None:
    # the same-date residual flips sign between dates: learnt at one date, it hurts at
    # the other, so early stopping on the neighbouring dates keeps each stream's start
    s = _detail_scenes()
    flipped = [
        Scene(p.date, p.coarse, (p.coarse + (-1) ** k * 0.5 * (p.coarse - 0.25)).astype(np.float32))
        for k, p in enumerate(s)
    ]
    model = create_model(
        "resstf", bands=BANDS, size="tiny", epochs=4, steps_per_epoch=5,
        batch_size=4, patch=24, lr=3e-3, warmup_steps=2, stream_val="dates",
    )  # fmt: skip
    report = model.fit([flipped[0], flipped[1]], bands=BANDS, progress=False)
    assert report.steps > 0 and "date" in report.validation
    for stream in report.notes["streams"].values():
        assert stream["end_val_rmse"] == stream["start_val_rmse"]
    out = model.predict(FusionInput((flipped[0],), Scene(s[1].date, s[1].coarse), BANDS)).fine
    np.testing.assert_allclose(out, s[1].coarse, atol=1e-6)
