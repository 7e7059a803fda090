"""ESTARFM (Zhu et al. 2010, RSE 114), as its authors' reference code: two pairs -> one date.

For every fine pixel whose inputs are all valid, inside a ``window x window``
neighbourhood (reference default: half window ``w = 25``, i.e. 51 x 51 fine
pixels, our ``size: full``):

1. *Similar pixels*: valid neighbours with ``|F_k(cand) - F_k(centre)| < th_k``
   in every band at BOTH reference dates, ``th_k = 2 std(F_k) / classes``
   (``classes = 4``) with the standard deviation of the **whole image** per band
   and date (the reference computes it per processed patch of ``patch_long`` =
   500 px; here per image handed to :meth:`Estarfm.predict`, i.e. per fused
   block with its halo).
2. *Weights*: ``W = (1 / C) / sum(1 / C)``, ``C = (1 - R) D + 1e-7``, R the
   correlation of the candidate's fine and coarse spectra (bands x dates; with
   one band the reference's ratio form; NaN -> 0.5) and ``D = 1 + d / w``.
3. *Conversion coefficient* V per band, **guarded** as in the reference: the
   regression of fine on coarse over the similar pixels of both dates is fitted
   only where the coarse change among them, ``|mean C_1 - mean C_2|``, is at
   least ``0.02 * dn_max`` (2 % of the valid range, ``dn_max = 1`` for
   reflectance); V is used only when the F test is significant (p <= 0.05) and
   ``0 < V <= 5``; otherwise V = 1.
4. ``P_k = F_k(centre) + sum W V (C_0 - C_k)``, blended with temporal weights
   ``T_k ~ 1 / |mean C_0 - mean C_k|`` over the window's valid pixels; a blend
   outside ``(dn_min, dn_max)`` is replaced by the blend of ``sum W F_k``.
5. *Fallback* with 5 or fewer similar pixels: ``T_1 (F_1 + dC_1) + T_2 (F_2 + dC_2)``
   with ``dC_k`` the window-mean coarse change (the reference's rule).

Pixels whose own inputs are invalid (cloud, nodata) take the target coarse
value; the output is NaN only where the target coarse image is. Uncertainty
(ours; the reference has none): the two-reference disagreement
``sqrt(T_1 T_2) |P_1 - P_2|``.

Because the threshold is taken over the whole image, tiles padded by the halo
reproduce the whole-image result only with ``similarity="window"`` (the
threshold from each pixel's own window; an option, not the reference).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor

from pipeline.errors import InputError
from pipeline.models.base import ClassicModel, FusionInput, Prediction
from pipeline.models.device import pick_device
from pipeline.models.estarfm_kernel import N_SUMS, window_sums
from pipeline.models.windows import (
    as_tensor,
    box_sum64,
    pad_nan,
    preset,
    window_distance,
)

#: Fewest similar pixels the regression and weighting use (reference: more than 5).
MIN_SIMILAR = 6


@lru_cache(maxsize=8)
def _f_critical(max_n: int) -> np.ndarray:
    """(max_n + 1,) float64: F(1, 2n - 2) value at p = 0.05 for n similar pixels (inf if n < 2)."""
    from scipy.stats import f as f_dist

    n = np.arange(max_n + 1)
    crit = np.full(n.shape, np.inf)
    ok = n >= 2
    crit[ok] = f_dist.isf(0.05, 1, 2 * n[ok] - 2)
    return crit


def _correlation(fines: Tensor, coarses: Tensor) -> Tensor:
    """(y, x) float32 correlation R of each pixel's fine and coarse spectra (NaN -> 0.5).

    ``fines``, ``coarses`` : (dates x band, y, x). With one band per date the
    reference's form ``1 - mean_k |(F_k - C_k) / (F_k + C_k)|``.
    """
    if fines.shape[0] == 2:
        corr = 1.0 - 0.5 * ((fines - coarses) / (fines + coarses)).abs().sum(0)
    else:
        fa, ca = fines - fines.mean(0), coarses - coarses.mean(0)
        corr = (fa * ca).sum(0) / torch.sqrt((fa**2).sum(0) * (ca**2).sum(0))
    # rounding can put a perfect correlation just above 1, making C = (1 - R) D + 1e-7 <= 0
    return torch.nan_to_num(corr, nan=0.5, posinf=0.5, neginf=0.5).clamp(-1.0, 1.0)


def _image_threshold(fine: Tensor, classes: int) -> Tensor:
    """(band,) ``2 std / classes`` of the valid pixels of a (band, y, x) image (ddof 1)."""
    flat = fine.reshape(fine.shape[0], -1).double()
    ok = ~flat.isnan()
    n = ok.sum(1).clamp(min=2)
    mean = torch.where(ok, flat, 0.0).sum(1) / n
    var = torch.where(ok, (flat - mean[:, None]) ** 2, 0.0).sum(1) / (n - 1)
    return (var.sqrt() * 2.0 / classes).float()


def _window_threshold(fine: Tensor, window: int, classes: int) -> Tensor:
    """(band, y, x) ``2 std / classes`` of the valid pixels of each window (ddof 1)."""
    ok = ~fine.isnan()
    z = torch.where(ok, fine, 0.0)
    n = box_sum64(ok.double(), window)
    mean = box_sum64(z, window) / n.clamp(min=1)
    var = (box_sum64(z * z, window) - n * mean**2).clamp(min=0) / (n - 1).clamp(min=1)
    return (var.sqrt() * 2.0 / classes).float()


def _temporal_change(images: dict[str, Tensor], valid: Tensor, window: int) -> Tensor:
    """(2, band, y, x) ``mean C_0 - mean C_k`` over each window's valid pixels (+1e-10)."""
    r = window // 2
    inner = {k: v[:, r : -r or None, r : -r or None] for k, v in images.items()}
    ok = valid[r : -r or None, r : -r or None]
    count = box_sum64(ok[None].double(), window).clamp(min=1)

    def mean(key: str) -> Tensor:
        return box_sum64(torch.where(ok, inner[key], 0.0), window) / count

    c0 = mean("c0")
    return torch.stack([c0 - mean("c1"), c0 - mean("c2")]) + 1e-10


class Estarfm(ClassicModel):
    """ESTARFM with two reference pairs; see the module docstring.

    Parameters
    ----------
    bands : canonical band names.
    size : window preset (:data:`pipeline.models.windows.PRESETS`): "tiny" 7, "small" 15,
        "full" 51 fine pixels (the reference's ``w = 25``).
    window, classes : override the window side (odd, fine pixels) and class count (4).
    dn_min, dn_max : valid reflectance range (reference: DN 0..10000; here 0..1).
    similarity : "image" (reference: whole-image threshold) or "window" (each window's own).
    device : "auto" (CUDA when the worker has it), "cpu" or "cuda".
    """

    name: ClassVar[str] = "estarfm"
    n_refs: ClassVar[tuple[int, ...]] = (2,)

    def __init__(self, bands: tuple[str, ...], size: str = "full", **params: Any) -> None:
        params.setdefault("device", "auto")
        super().__init__(bands, size, **params)
        self.window = preset("estarfm", size, params)["window"]
        self.classes = int(params.get("classes", 4))
        self.dn_min = float(params.get("dn_min", 0.0))
        self.dn_max = float(params.get("dn_max", 1.0))
        self.similarity = str(params.get("similarity", "image"))
        if self.similarity not in ("image", "window"):
            raise InputError(
                f"estarfm: similarity must be image or window, got {self.similarity!r}"
            )

    @property
    def device(self) -> torch.device:
        """The torch device :meth:`predict` computes on (resolved on the worker)."""
        return pick_device(self.params["device"])

    @property
    def halo(self) -> int:
        return self.window // 2

    def predict(self, inputs: FusionInput) -> Prediction:
        """Fuse the target date from exactly two reference pairs (float32 (band, y, x))."""
        if len(inputs.refs) != 2:
            raise ValueError(f"ESTARFM needs 2 reference pairs, got {len(inputs.refs)}")
        device, r = self.device, self.halo
        (r1, r2), target = inputs.refs, inputs.target.coarse
        assert r1.fine is not None and r2.fine is not None  # FusionInput checked it
        arrays = {"f1": r1.fine, "f2": r2.fine, "c1": r1.coarse, "c2": r2.coarse, "c0": target}
        with torch.no_grad():
            images = {k: pad_nan(as_tensor(a, device), r) for k, a in arrays.items()}
            fused, sigma = self._fuse(images)
        fused_np, coarse = fused.cpu().numpy(), np.asarray(target, np.float32)
        out = np.where(np.isnan(fused_np), coarse, fused_np)
        sigma_np = np.where(np.isnan(out), np.nan, np.nan_to_num(sigma.cpu().numpy()))
        return Prediction(out.astype(np.float32), sigma_np.astype(np.float32))

    def _thresholds(self, images: dict[str, Tensor]) -> Tensor:
        """(2, band, y, x) float32 similarity thresholds (whole image or each window)."""
        r = self.halo
        fines = [images[k][:, r : -r or None, r : -r or None] for k in ("f1", "f2")]
        if self.similarity == "image":
            th = torch.stack([_image_threshold(f, self.classes) for f in fines])
            return th[:, :, None, None].expand(-1, -1, *fines[0].shape[1:]).contiguous()
        return torch.stack([_window_threshold(f, self.window, self.classes) for f in fines])

    def _fuse(self, images: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """(band, y, x) prediction (NaN where the pixel's inputs are invalid) and spread."""
        valid = torch.stack([~v.isnan().any(0) for v in images.values()]).all(0)
        fines = torch.cat([images["f1"], images["f2"]])
        corr = _correlation(fines, torch.cat([images["c1"], images["c2"]])).float()
        dist = 1.0 + window_distance(self.window) / max(1, self.halo)
        dist = dist.reshape(self.window, self.window).to(corr.device)
        sums = window_sums(images, valid, corr, self._thresholds(images), dist).to(corr.device)
        change = _temporal_change(images, valid, self.window)
        return self._combine(sums, images, change, valid)

    def _combine(
        self, sums: Tensor, images: dict[str, Tensor], change: Tensor, valid: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Per-pixel ESTARFM from the window sums (steps 3-5 of the module docstring)."""
        r = self.halo
        n_bands = images["f1"].shape[0]
        n, wsum = sums[0], sums[1].clamp(min=1e-300)
        s = sums[2:].reshape(n_bands, N_SUMS, *n.shape).unbind(1)
        (w_dc1, w_dc2, w_f1, w_f2, c1, c2, f1, f2, c1c1, c2c2, f1f1, f2f2, f1c1, f2c2) = s
        v = self._conversion(n, c1, c2, f1, f2, c1c1, c2c2, f1f1, f2f2, f1c1, f2c2)
        centre = {k: images[k][:, r : -r or None, r : -r or None].double() for k in ("f1", "f2")}
        p1 = centre["f1"] + v * w_dc1 / wsum
        p2 = centre["f2"] + v * w_dc2 / wsum
        t1 = 1.0 / change[0].abs()
        t2 = 1.0 / change[1].abs()
        t1, t2 = t1 / (t1 + t2), t2 / (t1 + t2)
        fused = t1 * p1 + t2 * p2
        abnormal = (fused <= self.dn_min) | (fused >= self.dn_max)
        fused = torch.where(abnormal, (t1 * w_f1 + t2 * w_f2) / wsum, fused)
        few = n < MIN_SIMILAR
        naive = t1 * (centre["f1"] + change[0]) + t2 * (centre["f2"] + change[1])
        fused = torch.where(few, naive, fused)
        spread = torch.where(few, 0.0, (t1 * t2).sqrt() * (p1 - p2).abs())
        ok = valid[r : -r or None, r : -r or None]
        fused = torch.where(ok, fused, float("nan"))
        return fused.float(), spread.float()

    def _conversion(self, n: Tensor, *sums: Tensor) -> Tensor:
        """(band, y, x) float64 V, guarded and checked as in the reference (step 3).

        ``sums``: the per-band c1, c2, f1, f2, c1c1, c2c2, f1f1, f2f2, f1c1, f2c2 sums.
        """
        c1, c2, f1, f2, c1c1, c2c2, f1f1, f2f2, f1c1, f2c2 = sums
        nn = n.clamp(min=1)
        big_change = (c1 - c2).abs() / nn >= 0.02 * self.dn_max
        total = 2.0 * nn
        sx, sy = c1 + c2, f1 + f2
        sxx = c1c1 + c2c2 - sx**2 / total
        syy = f1f1 + f2f2 - sy**2 / total
        sxy = f1c1 + f2c2 - sx * sy / total
        slope = sxy / sxx.clamp(min=1e-300)
        r2 = (sxy**2 / (sxx * syy).clamp(min=1e-300)).clamp(0.0, 1.0 - 1e-12)
        f_stat = r2 * (total - 2.0) / (1.0 - r2)
        table = torch.as_tensor(_f_critical(self.window**2), device=n.device)
        crit = table[n.long().clamp(max=self.window**2)]
        ok = big_change & (sxx > 0) & (f_stat >= crit) & (slope > 0) & (slope <= 5.0)
        return torch.where(ok & (n >= MIN_SIMILAR), slope, 1.0)
