"""How well can any sigma rank the synthetic season's errors? An oracle bound.

The synthetic world knows its noise-free truth, so the error of the smoothed-change
start splits into what the inputs could in principle predict (the error of the
start computed on noise-free fine images) and the Landsat sensor noise of the
scored and reference images (1 % relative + 0.003 additive per image,
:mod:`pipeline.synth.sensors_sim`), which nothing predicts. This prints the
Spearman rank correlation with |error| on the target date of: the fitted error model
(:mod:`pipeline.models.error_model`) and its features, a per-band constant (the
band's RMSE), and two oracles -- sigma = |noise-free error| itself, and that
combined with the known noise level. No sigma built from the inputs can rank
better than the oracles do (measured figures: ``benchmarks/model-zoo-notes.md``)::

    .venv/bin/python benchmarks/sigma_bound.py [--root DIR]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BANDS = ("green", "red", "nir")


def _noise_sd(refl: np.ndarray) -> np.ndarray:
    """Landsat-like sensor noise sd (reflectance) of the synthetic world's export."""
    return np.sqrt(0.003**2 + (0.01 * refl) ** 2)


def bound(root: Path) -> dict[str, float]:
    """Spearman(sigma, |error of the start|) on the target date for each candidate sigma."""
    from benchmarks.fusion_accuracy import synthetic_manifest
    from pipeline.config import BANDS as ALL
    from pipeline.evaluate.manifest import load_manifest
    from pipeline.evaluate.rasters import coregister_dataset, load_dataset
    from pipeline.models.base import Scene, inverse_time_weights
    from pipeline.models.baselines import blend_smoothed, choose_smoothing
    from pipeline.models.error_model import FEATURES, error_sigma, features, fit_error_model
    from pipeline.models.pairs import choose_scenes
    from pipeline.synth.world import open_world

    manifest = root / "export" / "manifest.yaml"
    if not manifest.exists():
        manifest = synthetic_manifest(root)  # type: ignore[assignment]
    m = load_manifest(manifest)
    dataset, _ = coregister_dataset(load_dataset(m), "auto", exclude={m.predict})
    target = next(s for s in dataset.scenes if s.date == m.predict)
    pairs = [s for s in dataset.scenes if s.fine is not None and s.date != target.date]
    choice = choose_smoothing(pairs, [1, 9, 17, 33], ("time", "nearest"))
    refs = choose_scenes(pairs, target.date, (1, 2))
    coarse = Scene(target.date, target.coarse)
    pred = blend_smoothed(refs, coarse, choice.window, choice.blend)[0]
    err = np.abs(pred - target.fine)
    ok = np.isfinite(err)

    def rho(sigma: np.ndarray) -> float:
        return float(spearmanr(np.broadcast_to(sigma, err.shape)[ok], err[ok]).statistic)

    world = open_world(root / "world")
    idx = [ALL.index(b) for b in BANDS]
    clean = [Scene(r.date, r.coarse, world.truth(r.date)[idx].astype(np.float64)) for r in refs]
    clean_err = np.abs(
        blend_smoothed(clean, coarse, choice.window, choice.blend)[0]
        - world.truth(target.date)[idx]
    )
    weights = inverse_time_weights(refs, target.date)
    noise = np.sqrt(
        _noise_sd(pred) ** 2
        + sum(w**2 * _noise_sd(r.fine) ** 2 for w, r in zip(weights, refs, strict=True))
    )
    model = fit_error_model(pairs, choice.window, choice.blend)
    out = {"error model": rho(error_sigma(model, refs, coarse, choice.window))}
    feats = features(refs, coarse, choice.window)
    out |= {f"feature {name}": rho(f) for name, f in zip(FEATURES, feats, strict=True)}
    band_rmse = np.sqrt(np.nanmean(err**2, axis=(1, 2)))[:, None, None]
    out["per-band constant (band RMSE)"] = rho(band_rmse)
    out["sensor-noise level alone"] = rho(noise)
    out["ORACLE |noise-free error|"] = rho(clean_err)
    out["ORACLE sqrt(noise-free error^2 + noise^2)"] = rho(np.sqrt(clean_err**2 + noise**2))
    out["start RMSE"] = float(np.sqrt(np.nanmean((pred - target.fine) ** 2)))
    out["noise-free part RMSE"] = float(np.sqrt(np.nanmean(clean_err**2)))
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=None, help="world folder (default: temp)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for key, value in bound(args.root or Path(tmp)).items():
            print(f"{key:45s} {value:.4f}")
