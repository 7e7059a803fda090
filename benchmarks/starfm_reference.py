"""A straightforward per-pixel numpy STARFM: the peer the torch STARFM is checked against.

It follows the rules stated in :mod:`pipeline.models.starfm` literally, one
output pixel at a time (numpy only inside the window): in-window standard
deviation of the valid fine pixels for the similarity threshold, sample
filtering against the centre's largest spectral/temporal difference,
``C = (S + u_s)(T + u_t)(1 + d/A)`` and ``W = (1/C) / sum(1/C)`` over both
pairs, the weighted spread as uncertainty, and the target coarse value where no
candidate is left. It is written for clarity, not speed.
"""

from __future__ import annotations

import numpy as np


def _window(image: np.ndarray, y: int, x: int, radius: int) -> np.ndarray:
    """The (..., 2r+1, 2r+1) window around (y, x) of a (..., H, W) array, NaN outside."""
    padded = np.pad(
        image, [(0, 0)] * (image.ndim - 2) + [(radius, radius)] * 2, constant_values=np.nan
    )
    return padded[..., y : y + 2 * radius + 1, x : x + 2 * radius + 1]


def _threshold(fine_w: np.ndarray, valid_w: np.ndarray, num_classes: float) -> np.ndarray:
    """(R,) in-window population std of the valid fine pixels times 2 / num_classes."""
    out = np.zeros(fine_w.shape[0])
    for k in range(fine_w.shape[0]):
        values = fine_w[k][valid_w[k]].astype(np.float64)
        if values.size:
            out[k] = values.std() * 2.0 / num_classes
    return out


def _pixel(
    fine_w: np.ndarray,
    coarse_w: np.ndarray,
    target_w: np.ndarray,
    params: dict[str, float],
) -> tuple[float, float]:
    """STARFM at the centre of one band's (R, w, w) windows; returns (prediction, spread)."""
    radius = fine_w.shape[-1] // 2
    u_s, u_t = params["u_s"], params["u_t"]
    valid = ~(np.isnan(fine_w) | np.isnan(coarse_w) | np.isnan(target_w[None]))
    s = np.abs(fine_w - coarse_w) + u_s
    t = np.abs(target_w[None] - coarse_w) + u_t
    centre_f = fine_w[:, radius, radius]
    thr = _threshold(fine_w, valid, params["num_classes"])
    similar = (np.abs(fine_w - centre_f[:, None, None]) <= thr[:, None, None]) | np.isnan(centre_f)[
        :, None, None
    ]
    keep = similar & valid
    # the centre's largest over the pairs valid there; none valid: no bound
    s_centre, t_centre = s[:, radius, radius], t[:, radius, radius]
    s_max = np.nanmax(s_centre) if np.isfinite(s_centre).any() else np.inf
    t_max = np.nanmax(t_centre) if np.isfinite(t_centre).any() else np.inf
    keep &= s <= s_max + u_s
    keep &= t <= t_max + u_t
    side = np.arange(-radius, radius + 1)
    distance = 1.0 + np.hypot(side[:, None], side[None, :]) / max(radius, 1)
    weight = np.where(keep, 1.0 / (s * t * distance), 0.0)
    total = weight.sum()
    if total <= 0 or np.isnan(target_w[radius, radius]):
        return float(target_w[radius, radius]), float("nan")
    cand = np.where(keep, fine_w + target_w[None] - coarse_w, 0.0)
    pred = (weight * cand).sum() / total
    return float(pred), float(np.sqrt((weight * (cand - pred) ** 2).sum() / total))


def starfm_reference(
    fine: np.ndarray,
    coarse: np.ndarray,
    target: np.ndarray,
    *,
    window: int = 31,
    num_classes: float = 4.0,
    sigma_fine: float = 0.002,
    sigma_coarse: float = 0.002,
) -> tuple[np.ndarray, np.ndarray]:
    """STARFM pixel by pixel; same arguments and outputs as :func:`pipeline.models.starfm.starfm`.

    Parameters
    ----------
    fine, coarse : (refs, band, y, x) float32 reference pairs, NaN = invalid.
    target : (band, y, x) float32 target-date coarse image on the fine grid.

    Returns
    -------
    (band, y, x) float32 prediction and weighted spread.
    """
    radius = window // 2
    params = {
        "u_s": float(np.hypot(sigma_fine, sigma_coarse)),
        "u_t": float(np.sqrt(2.0) * sigma_coarse),
        "num_classes": num_classes,
    }
    n_bands, height, width = target.shape
    pred = np.empty((n_bands, height, width), np.float32)
    spread = np.empty_like(pred)
    for b in range(n_bands):
        for y in range(height):
            for x in range(width):
                pred[b, y, x], spread[b, y, x] = _pixel(
                    _window(fine[:, b], y, x, radius),
                    _window(coarse[:, b], y, x, radius),
                    _window(target[b], y, x, radius),
                    params,
                )
    return pred, spread
