"""Is a model's predicted uncertainty worth anything? Rank correlation and reliability bins.

Given a prediction, its predicted 1-sigma and the truth (all (band, y, x)
reflectance, NaN = invalid):

* ``spearman``: Spearman rank correlation between predicted sigma and the
  absolute error over valid band-pixels (> 0: larger sigma where errors are
  larger; 1 would be a perfect ranking);
* reliability: pixels split into ``bins`` equal-count bins of predicted sigma;
  per bin the mean predicted sigma and the observed RMSE. A calibrated model
  lies on the diagonal; below it the model is over-cautious, above it
  over-confident.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

CONVENTION = (
    "Spearman rank correlation of predicted sigma vs |error| over valid band-pixels "
    "(random subsample of <= 200000, seed 0); reliability = equal-count bins of sigma: "
    "mean sigma vs observed RMSE"
)
_MAX_SAMPLES = 200_000

#: Fractions of a normal error inside 1 and 2 sigma: the targets of a calibrated sigma.
ONE_SIGMA, TWO_SIGMA = 0.6827, 0.9545


def fit_scale(error: np.ndarray, sigma: np.ndarray, level: float = ONE_SIGMA) -> float:
    """The factor ``s`` for which ``|error| <= s * sigma`` holds for a fraction ``level``.

    Parameters
    ----------
    error, sigma : matching 1-D float arrays (reflectance), finite, ``sigma > 0``.
    level : target coverage of the scaled 1-sigma (default: the normal 68.27 %).
    """
    return float(np.quantile(np.abs(error) / sigma, level))


def within_sigma(error: np.ndarray, sigma: np.ndarray) -> dict[str, float | int]:
    """Fractions of ``|error| <= sigma`` and ``<= 2 sigma`` over finite pairs, and their count.

    A calibrated Gaussian sigma gives 0.683 and 0.954.
    """
    err, sig = np.abs(np.ravel(error)), np.ravel(sigma)
    ok = np.isfinite(err) & np.isfinite(sig)
    err, sig = err[ok], sig[ok]
    if not err.size:
        return {"within_1sigma": float("nan"), "within_2sigma": float("nan"), "count": 0}
    return {
        "within_1sigma": float(np.mean(err <= sig)),
        "within_2sigma": float(np.mean(err <= 2 * sig)),
        "count": int(err.size),
    }


@dataclass(frozen=True)
class Calibration:
    """Calibration of one prediction.

    Attributes
    ----------
    spearman : rank correlation of sigma vs |error| (NaN if sigma is constant).
    sigma : (bins,) mean predicted sigma per bin, reflectance.
    rmse : (bins,) observed RMSE per bin, reflectance.
    count : (bins,) band-pixels per bin.
    convention : how it was computed.
    """

    spearman: float
    sigma: list[float]
    rmse: list[float]
    count: list[int]
    convention: str = CONVENTION

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def calibrate(
    pred: np.ndarray, sigma: np.ndarray, truth: np.ndarray, bins: int = 10
) -> Calibration:
    """Rank correlation and reliability bins of ``sigma`` against the actual error.

    Parameters
    ----------
    pred, sigma, truth : (band, y, x) float reflectance; NaN anywhere = pixel ignored.
    bins : number of equal-count sigma bins.
    """
    from scipy.stats import spearmanr

    err = np.abs(pred - truth).ravel()
    sig = np.asarray(sigma, dtype=np.float64).ravel()
    ok = np.isfinite(err) & np.isfinite(sig)
    err, sig = err[ok], sig[ok]
    if err.size == 0:
        raise ValueError("no valid pixel to calibrate")
    if err.size > _MAX_SAMPLES:
        pick = np.random.default_rng(0).choice(err.size, _MAX_SAMPLES, replace=False)
        err, sig = err[pick], sig[pick]
    rho = float(spearmanr(sig, err).statistic) if np.ptp(sig) > 0 else float("nan")
    order = np.argsort(sig, kind="stable")
    groups = [g for g in np.array_split(order, bins) if g.size]
    return Calibration(
        spearman=rho,
        sigma=[float(sig[g].mean()) for g in groups],
        rmse=[float(np.sqrt(np.mean(err[g] ** 2))) for g in groups],
        count=[int(g.size) for g in groups],
    )


def plot_reliability(curves: dict[str, Calibration], path: Path, title: str) -> Path:
    """Reliability diagram (predicted sigma vs observed RMSE) of one or more models as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 4.5), dpi=120)
    top = max(max(c.sigma + c.rmse) for c in curves.values())
    ax.plot([0, top], [0, top], color="0.6", lw=1, ls="--", label="calibrated")
    for name, cal in curves.items():
        ax.plot(cal.sigma, cal.rmse, marker="o", ms=3, label=f"{name} (rho={cal.spearman:.2f})")
    ax.set(
        xlabel="predicted sigma (reflectance)", ylabel="observed RMSE (reflectance)", title=title
    )
    ax.legend(fontsize=7)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
