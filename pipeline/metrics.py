"""Fusion accuracy metrics on reflectance, per band and over bands.

Conventions (returned as :data:`CONVENTION` inside every result):

* inputs are reflectance in [0, 1], dims ``(band, y, x)``; a pixel counts only
  where truth and prediction are finite in every band and the optional mask is True;
* RMSE, CC (Pearson), UIQI (Wang & Bovik 2002, one global window), PSNR
  (``10 log10(1 / MSE)``, data range 1) are computed per band over valid pixels;
* SSIM is scikit-image's ``structural_similarity`` (7x7 uniform window,
  data_range 1) whose map is averaged over valid pixels only (invalid pixels are
  set to the truth before filtering, so they add no error of their own);
* SAM is the mean spectral angle over valid pixels, in degrees;
* ERGAS = 100 * (h / l) * sqrt(mean_b(RMSE_b^2 / mu_b^2)), mu_b the truth mean and
  h / l the fine / coarse resolution ratio (e.g. 30 / 480 = 1 / 16);
* ``overall`` rmse, ssim, cc, uiqi, psnr are means of the per-band values.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

CONVENTION = (
    "reflectance [0,1]; per band over valid pixels: RMSE, SSIM (skimage, 7x7 uniform, "
    "data_range=1, map averaged over valid pixels), CC (Pearson), UIQI (global), "
    "PSNR (10log10(1/MSE)); overall rmse/ssim/cc/uiqi/psnr = band means; SAM in degrees "
    "(mean over pixels); ERGAS = 100*(h/l)*sqrt(mean_b(RMSE_b^2/mu_b^2)), mu = truth mean"
)
PER_BAND = ("rmse", "ssim", "cc", "uiqi", "psnr")


@dataclass(frozen=True)
class Scores:
    """Metrics of one prediction.

    Attributes
    ----------
    per_band : band name -> {"rmse", "ssim", "cc", "uiqi", "psnr"}.
    overall : band means of the above plus "sam_deg" and "ergas".
    convention : how everything was computed (:data:`CONVENTION`).
    """

    per_band: dict[str, dict[str, float]]
    overall: dict[str, float]
    convention: str = CONVENTION


def valid_mask(truth: np.ndarray, pred: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """(y, x) bool: finite in every band of both images and True in ``mask``."""
    valid = np.isfinite(truth).all(axis=0) & np.isfinite(pred).all(axis=0)
    return valid if mask is None else valid & mask.astype(bool)


def rmse(t: np.ndarray, p: np.ndarray) -> float:
    """Root mean square error of two 1-D arrays."""
    return float(np.sqrt(np.mean((p.astype(np.float64) - t) ** 2)))


def psnr(t: np.ndarray, p: np.ndarray, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB; inf for a perfect prediction."""
    mse = np.mean((p.astype(np.float64) - t) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(data_range**2 / mse))


def cc(t: np.ndarray, p: np.ndarray) -> float:
    """Pearson correlation; NaN when either image is constant."""
    t, p = t.astype(np.float64) - t.mean(), p.astype(np.float64) - p.mean()
    denom = np.sqrt((t**2).sum() * (p**2).sum())
    return float((t * p).sum() / denom) if denom > 0 else float("nan")


def uiqi(t: np.ndarray, p: np.ndarray) -> float:
    """Universal image quality index over one global window: 4 cov mt mp / ((vt+vp)(mt²+mp²))."""
    t, p = t.astype(np.float64), p.astype(np.float64)
    mt, mp = t.mean(), p.mean()
    cov = ((t - mt) * (p - mp)).mean()
    denom = (t.var() + p.var()) * (mt**2 + mp**2)
    return float(4 * cov * mt * mp / denom) if denom > 0 else float("nan")


def ssim(t: np.ndarray, p: np.ndarray, valid: np.ndarray) -> float:
    """SSIM of two (y, x) images, skimage map averaged over ``valid`` pixels."""
    from skimage.metrics import structural_similarity

    t64 = np.where(valid, t, 0.0).astype(np.float64)
    p64 = np.where(valid, p, t64).astype(np.float64)
    _, smap = structural_similarity(t64, p64, data_range=1.0, full=True)
    return float(smap[valid].mean())


def sam_deg(t: np.ndarray, p: np.ndarray) -> float:
    """Mean spectral angle in degrees of (band, n) pixel spectra."""
    t, p = t.astype(np.float64), p.astype(np.float64)
    dot = (t * p).sum(axis=0)
    norm = np.linalg.norm(t, axis=0) * np.linalg.norm(p, axis=0)
    cos = np.clip(dot / np.where(norm > 0, norm, 1.0), -1.0, 1.0)
    return float(np.degrees(np.arccos(cos)).mean())


def ergas(t: np.ndarray, p: np.ndarray, ratio: float) -> float:
    """ERGAS of (band, n) spectra; ``ratio`` is h / l (fine / coarse pixel size)."""
    terms = [
        rmse(tb, pb) ** 2 / tb.astype(np.float64).mean() ** 2 for tb, pb in zip(t, p, strict=True)
    ]
    return float(100 * ratio * np.sqrt(np.mean(terms)))


def score(
    truth: np.ndarray,
    pred: np.ndarray,
    bands: Sequence[str],
    *,
    ratio: float,
    mask: np.ndarray | None = None,
) -> Scores:
    """All metrics of a (band, y, x) prediction against the truth.

    Parameters
    ----------
    truth, pred : (band, y, x) reflectance, NaN = invalid.
    bands : band names, one per band.
    ratio : fine / coarse resolution ratio for ERGAS (1 / 16 for 30 m vs 480 m).
    mask : optional (y, x) bool, True where a pixel may be scored.
    """
    if truth.shape != pred.shape or truth.shape[0] != len(bands):
        raise ValueError(f"truth {truth.shape}, prediction {pred.shape}, {len(bands)} bands")
    valid = valid_mask(truth, pred, mask)
    if not valid.any():
        raise ValueError("no valid pixel to score")
    t, p = truth[:, valid], pred[:, valid]
    per_band = {
        name: {
            "rmse": rmse(t[i], p[i]),
            "ssim": ssim(truth[i], pred[i], valid),
            "cc": cc(t[i], p[i]),
            "uiqi": uiqi(t[i], p[i]),
            "psnr": psnr(t[i], p[i]),
        }
        for i, name in enumerate(bands)
    }
    overall = {k: float(np.mean([v[k] for v in per_band.values()])) for k in PER_BAND}
    overall["sam_deg"] = sam_deg(t, p)
    overall["ergas"] = ergas(t, p, ratio)
    return Scores(per_band, overall)
