"""GAN-STFM: tiny fit/predict for 1..7 bands, full-size parameter count, save/load."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
import torch

from pipeline.models import FusionInput, Scene, create_model, load_model

torch.set_num_threads(1)
ALL_BANDS = ("blue", "green", "red", "nir", "swir1", "swir2", "swir2")


def toy_pairs(n_bands: int, shape: tuple[int, int] = (80, 32), seed: int = 0) -> list[Scene]:
    """Three clear pairs of smooth random reflectance; coarse = 4x4 block means of fine."""
    rng = np.random.default_rng(seed)
    scenes = []
    for k, day in enumerate((dt.date(2001, 5, 1), dt.date(2001, 6, 1), dt.date(2001, 7, 1))):
        fine = rng.uniform(0.05, 0.4, (n_bands, *shape)).astype(np.float32) + 0.02 * k
        blocks = fine.reshape(n_bands, shape[0] // 4, 4, shape[1] // 4, 4).mean((2, 4))
        coarse = np.repeat(np.repeat(blocks, 4, 1), 4, 2).astype(np.float32)
        scenes.append(Scene(day, coarse, fine))
    return scenes


def fit_and_predict(name: str, n_bands: int, n_refs: int = 2):
    """Tiny model fitted on toy pairs; prediction of the last pair from the first refs."""
    bands = ALL_BANDS[:n_bands]
    pairs = toy_pairs(n_bands)
    model = create_model(name, bands=bands, size="tiny")
    report = model.fit(pairs, progress=False, bands=bands)
    target = Scene(pairs[2].date, pairs[2].coarse)
    out = model.predict(FusionInput(tuple(pairs[:n_refs]), target, bands))
    return model, report, out


@pytest.mark.parametrize("n_bands", [1, 3, 7])
def test_tiny_fit_predict(n_bands: int) -> None:
    _, report, out = fit_and_predict("ganstfm", n_bands, n_refs=1 + n_bands % 2)
    assert report.epochs >= 1 and np.isfinite(report.best_val_loss)
    assert out.fine.shape == (n_bands, 80, 32) and out.fine.dtype == np.float32
    assert np.isfinite(out.fine).all() and np.isfinite(out.uncertainty).all()
    assert (out.uncertainty >= 0).all()


def test_full_size_parameter_count() -> None:
    model = create_model("ganstfm", bands=ALL_BANDS[:6], size="full", device="cpu")
    assert abs(model.parameter_count() - 0.58e6) / 0.58e6 < 0.15


def test_save_load_round_trip(tmp_path) -> None:
    model, _, out = fit_and_predict("ganstfm", 3)
    model.save(tmp_path)
    again = load_model(tmp_path)
    pairs = toy_pairs(3)
    inputs = FusionInput(tuple(pairs[:2]), Scene(pairs[2].date, pairs[2].coarse), model.bands)
    np.testing.assert_allclose(again.predict(inputs).fine, out.fine, atol=1e-5)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", ["ganstfm", "swinstfm", "stfdiff"])
def test_cuda_bf16_fit_predict(name: str) -> None:
    """On CUDA the engine trains and predicts under bf16 autocast; output stays finite float32."""
    bands = ALL_BANDS[:3]
    pairs = toy_pairs(3)
    model = create_model(name, bands=bands, size="tiny", device="cuda", amp=True)
    model.fit(pairs, progress=False, bands=bands)
    out = model.predict(FusionInput(tuple(pairs[:2]), Scene(pairs[2].date, pairs[2].coarse), bands))
    assert out.fine.dtype == np.float32 and np.isfinite(out.fine).all()


def test_published_discriminator_depths() -> None:
    from pipeline.models.ganstfm_net import MultiScaleDiscriminator, scale_widths

    published = (32, 32, 64, 64, 128, 128, 256, 256)
    assert scale_widths(published, 1) == (32, 64, 64, 128, 128, 256, 256)
    assert scale_widths(published, 2) == (32, 64, 128, 128, 256, 256)
    disc = MultiScaleDiscriminator(3, published)
    assert [len(s) - 1 for s in disc.scales] == [8, 7, 6]  # residual blocks per scale
    assert disc(torch.zeros(2, 6, 64, 64)).shape == (2,)


def test_needs_no_coarse_reference_and_reports_loss_shares() -> None:
    """With the one-pair base the coarse reference is never read (fine reference + target
    coarse only); the fit trains the region's autoencoder first and reports each share."""
    bands = ALL_BANDS[:3]
    model = create_model("ganstfm", bands=bands, size="tiny", base="one_pair")
    report = model.fit(toy_pairs(3), progress=False, bands=bands)
    pairs = toy_pairs(3)
    out = model.predict(FusionInput((pairs[0],), Scene(pairs[2].date, pairs[2].coarse), bands))
    assert report.steps > 0 and report.notes["autoencoder_mse"] > 0
    shares = report.notes["loss_share_end"]
    # the default loss: the published terms + the reflectance-dominant variant's term
    assert set(shares) == {"ssim", "feature", "cosine", "adversarial", "reflectance"}
    assert abs(sum(shares.values()) - 1) < 1e-6
    blind = Scene(pairs[0].date, np.full_like(pairs[0].coarse, np.nan), pairs[0].fine)
    target = Scene(pairs[2].date, pairs[2].coarse)
    again = model.predict(FusionInput((blind,), target, model.bands))
    np.testing.assert_allclose(again.fine, out.fine, atol=1e-6)


def test_tta_sigma_calibrated_on_the_held_back_date() -> None:
    """Three pairs: the middle one is held back; the flip-view sigma is scaled so that
    68 % of its errors fall within one sigma."""
    model, _, _ = fit_and_predict("ganstfm", 2)
    scale = model.params["sigma_scale"]
    assert np.isfinite(scale) and scale > 0 and scale != 1.0
    pairs = toy_pairs(2)
    held = pairs[1]
    out = model.predict(FusionInput((pairs[0], pairs[2]), Scene(held.date, held.coarse),
                                    model.bands))  # fmt: skip
    within = np.mean(np.abs(out.fine - held.fine) <= out.uncertainty)
    assert 0.6 < within < 0.76


def test_reflectance_dominant_variant_reports_its_share() -> None:
    bands = ALL_BANDS[:2]
    model = create_model("ganstfm", bands=bands, size="tiny", pixel_weight=1.0)
    report = model.fit(toy_pairs(2), progress=False, bands=bands)
    assert "reflectance" in report.notes["loss_share_end"]


def test_published_loss_is_pixel_weight_zero() -> None:
    """The default is the reflectance-dominant variant; pixel_weight 0 is the published loss."""
    bands = ALL_BANDS[:2]
    assert create_model("ganstfm", bands=bands, size="small").params["pixel_weight"] > 0
    model = create_model("ganstfm", bands=bands, size="tiny", pixel_weight=0.0)
    report = model.fit(toy_pairs(2), progress=False, bands=bands)
    assert set(report.notes["loss_share_end"]) == {"ssim", "feature", "cosine", "adversarial"}
