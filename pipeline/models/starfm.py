"""STARFM (Gao et al. 2006, IEEE TGRS 44(8)) vectorised in torch, CPU or CUDA.

For every fine pixel, a moving window (``window`` x ``window``, 31 at 30 m by
default) around it is searched, per band and per reference pair k, for
*similar pixels*; each candidate predicts the target as
``F_k(x) + C_0(x) - C_k(x)`` (fine ref plus the coarse change at the candidate)
and the predictions are combined with weights ``W = (1/C) / sum(1/C)`` over
all similar candidates of all pairs, ``C = S * T * D``. Choices, each as in the
paper unless noted:

* **similar pixels**: ``|F_k(cand) - F_k(centre)| <= std_w(F_k) * 2 / num_classes``
  (paper eq. 11). The standard deviation is taken *inside the window*, as common
  implementations do, so a prediction depends on the window only and tiles padded
  by ``halo = window // 2`` reproduce the whole image exactly. The centre pixel
  is always similar to itself. Where the centre's fine value is NaN (cloud),
  every valid candidate counts as similar, so the gap is filled from its
  neighbourhood rather than left empty.
* **sample filtering** (paper eqs. 9-10): a candidate is kept only if its
  spectral difference ``S = |F_k - C_k|`` and temporal difference
  ``T = |C_0 - C_k|`` are no larger than the centre's largest (over the pairs
  valid at the centre: a pair cloudy there takes no part, and with none valid
  there is no bound) plus the combined sensor uncertainty
  ``sqrt(sigma_fine^2 + sigma_coarse^2)`` (spectral) / ``sqrt(2) sigma_coarse``
  (temporal). A pixel cloudy in one pair is thus fused from the others.
* **weights**: ``D = 1 + d / A`` with ``d`` the distance in pixels and
  ``A = window // 2`` (the paper's constant of relative importance). In
  ``C = (S + u_s)(T + u_t) D`` the uncertainties ``u`` are added to S and T so a
  candidate whose difference is below the noise does not take all the weight
  (the reference code instead returns such a pixel directly; both state that a
  difference below the noise carries no information).
* **uncertainty**: the weighted standard deviation of the candidate predictions,
  ``sqrt(sum W (P - P_hat)^2)``, per band.
* **NaN**: a candidate is invalid when any of its inputs is NaN (NaN padding
  at image borders makes windows there simply smaller). A pixel with no valid
  candidate takes the target coarse value; the output is NaN exactly where the
  target coarse image is.

Rows are processed in blocks whose unfolded size is bounded by
``block_elements`` so memory stays flat for any image size.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from pipeline.errors import InputError
from pipeline.models.base import ClassicModel, FusionInput, Prediction
from pipeline.models.device import pick_device
from pipeline.models.starfm_cpu import starfm_compiled
from pipeline.models.starfm_kernel import (
    accumulate,
    accumulate_shifted,
    centre_max,
    has_numba,
)
from pipeline.models.windows import box_sum64, check_window, preset


def _unfold_rows(image: Tensor, y0: int, rows: int, radius: int) -> Tensor:
    """Window candidates of a NaN-padded (R, B, H + 2r, W + 2r) tensor for rows y0..y0+rows.

    Returns (R, B, K, rows * W) with K = (2r + 1)^2, candidates in row-major order.
    """
    r, b = image.shape[:2]
    slab = image[:, :, y0 : y0 + rows + 2 * radius]
    cols = F.unfold(slab.reshape(r * b, 1, *slab.shape[2:]), kernel_size=2 * radius + 1)
    return cols.reshape(r, b, cols.shape[1], cols.shape[2])


def _block(
    planes: dict[str, Tensor], y0: int, rows: int, opts: dict[str, Any]
) -> tuple[Tensor, Tensor]:
    """STARFM prediction and spread for one block of rows (planes NaN-padded by the radius).

    ``planes`` holds per-pixel (R, B, H + 2r, W + 2r) tensors computed once per
    image, so the per-candidate work is a few passes: ``fine``, ``s`` (S + u_s),
    ``t`` (T + u_t), ``p`` (candidate prediction, NaN = invalid candidate) and
    ``thr`` (in-window similarity threshold, only its centre rows are used).
    """
    radius = int(opts["radius"])
    unf = {k: _unfold_rows(planes[k], y0, rows, radius) for k in ("fine", "s", "t", "p")}
    centre = unf["fine"].shape[2] // 2
    f_centre = unf["fine"][:, :, centre : centre + 1]
    thr = planes["thr"][:, :, radius + y0 : radius + y0 + rows, radius : -radius or None]
    thr = thr.reshape(*thr.shape[:2], 1, -1)
    similar = ((unf["fine"] - f_centre).abs() <= thr) | f_centre.isnan()
    s_max = centre_max(unf["s"][:, :, centre : centre + 1]) + opts["u_s"]
    t_max = centre_max(unf["t"][:, :, centre : centre + 1]) + opts["u_t"]
    keep = similar & (unf["s"] <= s_max) & (unf["t"] <= t_max) & ~unf["p"].isnan()
    combined = unf["s"] * unf["t"] * opts["distance"]
    weight = torch.where(keep, combined.reciprocal(), 0.0)
    wsum = weight.sum((0, 2))  # (B, N)
    cand = torch.nan_to_num(unf["p"])
    pred = (weight * cand).sum((0, 2)) / wsum.clamp(min=1e-30)
    spread = (weight * (cand - pred[None, :, None]) ** 2).sum((0, 2)) / wsum.clamp(min=1e-30)
    fallback = planes["target"][0, :, radius + y0 : radius + y0 + rows, radius : -radius or None]
    fallback = fallback.reshape(pred.shape)
    fused = (wsum > 0) & ~fallback.isnan()
    pred = torch.where(fused, pred, fallback)
    spread = torch.where(fused, spread.sqrt(), torch.full_like(spread, float("nan")))
    return pred, spread


def _window_std(fine: Tensor, valid: Tensor, width: int) -> Tensor:
    """(R, B, y, x) float32 population std of the valid fine pixels in each ``width`` window.

    Separable float64 box sums: linear in the window side (a 2-D pooling costs
    ``width**2`` per pixel, more than the STARFM kernel itself) and exact enough
    that ``E[f^2] - E[f]^2`` does not cancel.
    """
    shape = fine.shape
    flat = (-1, *shape[2:])
    v = valid.double().reshape(flat)
    fz = torch.where(valid, fine, 0.0).double().reshape(flat)
    count = box_sum64(v, width).clamp(min=1)
    mean = box_sum64(fz, width) / count
    var = (box_sum64(fz * fz, width) / count - mean**2).clamp(min=0)
    return var.sqrt().float().reshape(shape)


def _planes(
    fine: Tensor, coarse: Tensor, target: Tensor, opts: dict[str, Any]
) -> dict[str, Tensor]:
    """Per-pixel inputs of :func:`_block`, NaN-padded by the radius (see there)."""
    radius = int(opts["radius"])
    pad = (radius,) * 4
    valid = ~(fine.isnan() | coarse.isnan() | target.isnan())
    width = 2 * radius + 1
    thr = _window_std(fine, valid, width) * (2.0 / opts["num_classes"])
    nan = float("nan")
    return {
        "fine": F.pad(fine, pad, value=nan),
        "s": F.pad((fine - coarse).abs() + opts["u_s"], pad, value=nan),
        "t": F.pad((target - coarse).abs() + opts["u_t"], pad, value=nan),
        "p": F.pad(torch.where(valid, fine + target - coarse, nan), pad, value=nan),
        "thr": F.pad(thr, pad, value=nan),
        "target": F.pad(target, pad, value=nan),
    }


def starfm(
    fine: np.ndarray,
    coarse: np.ndarray,
    target: np.ndarray,
    *,
    window: int = 31,
    num_classes: float = 4.0,
    sigma_fine: float = 0.002,
    sigma_coarse: float = 0.002,
    device: str = "cpu",
    kernel: str = "auto",
    block_elements: int = 4_000_000,
) -> tuple[np.ndarray, np.ndarray]:
    """Run STARFM on numpy arrays.

    Parameters
    ----------
    fine, coarse : (refs, band, y, x) float32 reference pairs on the fine grid, NaN = invalid.
    target : (band, y, x) float32 target-date coarse image on the fine grid.
    window : odd moving-window width in fine pixels.
    num_classes : estimated number of land-cover classes (similarity threshold).
    sigma_fine, sigma_coarse : reflectance uncertainty of the two sensors.
    device : torch device string.
    kernel : "auto" (on CPU every step in compiled loops, :mod:`pipeline.models.starfm_cpu`;
        shifted passes on CUDA, :mod:`pipeline.models.starfm_kernel`), "shifted" (the
        latter anywhere) or
        "unfold" (materialised windows in row blocks: the first implementation, kept as
        the reference the kernels are tested against).
    block_elements : bound on the elements of one unfolded tensor (memory, "unfold" only).

    Returns
    -------
    (band, y, x) float32 prediction and (band, y, x) float32 weighted spread.
    """
    radius = check_window("starfm", "window", window) // 2
    n_refs, n_bands, height, width = fine.shape
    side = torch.arange(-radius, radius + 1, dtype=torch.float32)
    dist = torch.sqrt(side[:, None] ** 2 + side[None, :] ** 2).reshape(1, 1, -1, 1)
    opts: dict[str, Any] = {
        "radius": radius,
        "num_classes": num_classes,
        "u_s": float(np.hypot(sigma_fine, sigma_coarse)),
        "u_t": float(np.sqrt(2.0) * sigma_coarse),
        "distance": (1.0 + dist / max(radius, 1)).to(device),
    }

    def tensor(a: np.ndarray) -> Tensor:
        return torch.as_tensor(np.ascontiguousarray(a, dtype=np.float32), device=device)

    if kernel not in ("auto", "shifted", "unfold"):
        raise InputError(f"unknown STARFM kernel {kernel!r}; use auto, shifted or unfold")
    if kernel == "auto" and torch.device(device).type == "cpu" and has_numba():
        # every step compiled: the torch planes cost ~10x the candidate loop (starfm_cpu)
        side_px = 2 * radius + 1
        square = opts["distance"].reshape(side_px, side_px).cpu().numpy()
        return starfm_compiled(fine, coarse, target, square, num_classes, opts["u_s"], opts["u_t"])
    with torch.no_grad():
        planes = _planes(tensor(fine), tensor(coarse), tensor(target[None]), opts)
        if kernel != "unfold":
            return _in_place(planes, kernel, opts)
    per_row = (2 * radius + 1) ** 2 * width * n_refs * n_bands
    rows = max(1, block_elements // per_row)
    pred = np.empty((n_bands, height, width), np.float32)
    spread = np.empty_like(pred)
    with torch.no_grad():
        for y0 in range(0, height, rows):
            n = min(rows, height - y0)
            p, s = _block(planes, y0, n, opts)
            pred[:, y0 : y0 + n] = p.reshape(n_bands, n, width).cpu().numpy()
            spread[:, y0 : y0 + n] = s.reshape(n_bands, n, width).cpu().numpy()
    return pred, spread


def _in_place(
    planes: dict[str, Tensor], kernel: str, opts: dict[str, Any]
) -> tuple[np.ndarray, np.ndarray]:
    """Prediction and spread from the window sums of :mod:`pipeline.models.starfm_kernel`."""
    side = 2 * int(opts["radius"]) + 1
    dist = opts["distance"].reshape(side, side)
    run = accumulate if kernel == "auto" else accumulate_shifted
    sums = run(planes, dist, opts["u_s"], opts["u_t"])
    wsum = sums[0]
    pred = sums[1] / wsum.clamp(min=1e-300)
    var = (sums[2] / wsum.clamp(min=1e-300) - pred**2).clamp(min=0.0)
    radius = int(opts["radius"])
    fallback = planes["target"][0, :, radius : -radius or None, radius : -radius or None]
    fallback = fallback.to(pred)
    fused = (wsum > 0) & ~fallback.isnan()
    pred = torch.where(fused, pred, fallback)
    spread = torch.where(fused, var.sqrt(), float("nan"))
    return pred.float().cpu().numpy(), spread.float().cpu().numpy()


class Starfm(ClassicModel):
    """STARFM behind the :class:`~pipeline.models.base.FusionModel` interface.

    Parameters
    ----------
    bands : band names.
    size : window preset (:data:`pipeline.models.windows.PRESETS`): "tiny" 7 x 7,
        "small" 15 x 15, "full" 31 x 31 fine pixels (930 m at 30 m, the window of the
        common implementations, e.g. starfm4py's default).
    window, num_classes, sigma_fine, sigma_coarse : see :func:`starfm`.
    device : "auto" (CUDA when the worker has it), "cpu" or "cuda".
    """

    name = "starfm"
    n_refs = (1, 2)

    def __init__(self, bands: tuple[str, ...], size: str = "full", **params: Any) -> None:
        params.update(preset("starfm", size, params))
        params.setdefault("num_classes", 4.0)
        params.setdefault("sigma_fine", 0.002)
        params.setdefault("sigma_coarse", 0.002)
        params.setdefault("device", "auto")
        super().__init__(bands, size, **params)

    @property
    def device(self) -> torch.device:
        """The torch device :meth:`predict` computes on (resolved on the worker)."""
        return pick_device(self.params["device"])

    @property
    def halo(self) -> int:
        return int(self.params["window"]) // 2

    def predict(self, inputs: FusionInput) -> Prediction:
        fine = np.stack([ref.fine for ref in inputs.refs])
        coarse = np.stack([ref.coarse for ref in inputs.refs])
        opts = {k: v for k, v in self.params.items() if k != "device"}
        pred, spread = starfm(fine, coarse, inputs.target.coarse, device=str(self.device), **opts)
        return Prediction(pred, spread)
