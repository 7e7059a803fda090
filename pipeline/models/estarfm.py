"""ESTARFM (Zhu et al. 2010), vectorised in torch: two reference pairs -> one target date.

For every fine pixel, inside a ``window x window`` neighbourhood:

1. *Similar pixels*: neighbours whose fine reflectance differs from the centre's
   by at most ``2 sigma / classes`` in every band at BOTH reference dates. The
   paper uses the whole-image sigma; we use the window's sigma so that a tile
   padded by :attr:`Estarfm.halo` gives exactly the whole-image result.
2. *Conversion coefficient* V (per band): slope of the regression of fine on
   coarse reflectance over the similar pixels, pooling both dates; V = 1 where
   the regression is not significant or V is outside (0, 5], as in the
   reference implementation.
3. *Weights*: 1 / ((1 - R) * d), R the correlation between a neighbour's fine and
   coarse spectra (bands x dates), d = 1 + distance / radius.
4. Per reference k: ``F_k(centre) + sum_i W_i V (C_target(i) - C_k(i))``; the two
   predictions are blended with temporal weights 1 / |sum C_k - sum C_target|
   over the window.

Uncertainty: the *two-reference disagreement*, i.e. the weighted standard
deviation of the two per-reference predictions, ``sqrt(T1 T2) |P1 - P2|``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch

from pipeline.models.base import ClassicModel, FusionInput, Prediction
from pipeline.models.windows import (
    as_tensor,
    pad_nan,
    preset,
    resolve_device,
    row_blocks,
    unfold_rows,
    window_distance,
)

_EPS = 1e-6


def _nanstd(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Standard deviation over ``dim`` ignoring NaN (0 where fewer than 2 valid)."""
    valid = ~torch.isnan(x)
    n = valid.sum(dim, keepdim=True).clamp_min(1)
    mean = torch.nansum(x, dim, keepdim=True) / n
    var = torch.nansum((x - mean) ** 2, dim, keepdim=True) / n
    return var.sqrt()


def _similar(fines: list[torch.Tensor], centre: int, classes: int) -> torch.Tensor:
    """(win2, n) bool: neighbours spectrally similar to the centre at every date and band."""
    mask = None
    for f in fines:  # f: (band, win2, n)
        thresh = 2.0 * _nanstd(f, 1) / classes
        ok = (torch.abs(f - f[:, centre : centre + 1]) <= thresh + _EPS).all(0)
        mask = ok if mask is None else mask & ok
    assert mask is not None
    return mask


def _conversion(fines: list[torch.Tensor], coarses: list[torch.Tensor], w: torch.Tensor):
    """(band, 1, n) slope of fine on coarse over similar pixels (``w`` 0/1), both dates pooled.

    As in the reference IDL code, the slope is used only where the regression is
    significant (t > 2, ~p < 0.05) and 0 < V <= 5; elsewhere V = 1 (plain coarse change).
    """
    x = torch.cat(coarses, 1)
    y = torch.cat(fines, 1)
    ww = torch.cat([w] * len(fines), 0)[None]
    n = ww.sum(1, keepdim=True).clamp_min(1)
    mx, my = (ww * x).sum(1, keepdim=True) / n, (ww * y).sum(1, keepdim=True) / n
    cov = (ww * (x - mx) * (y - my)).sum(1, keepdim=True)
    varx = (ww * (x - mx) ** 2).sum(1, keepdim=True)
    vary = (ww * (y - my) ** 2).sum(1, keepdim=True)
    slope = cov / varx.clamp_min(_EPS)
    r2 = (cov**2 / (varx * vary).clamp_min(_EPS**2)).clamp(0.0, 1.0 - 1e-6)
    t_stat = torch.sqrt(r2 * (n - 2).clamp_min(0) / (1.0 - r2))
    ok = (varx > _EPS) & (t_stat > 2.0) & (slope > 0) & (slope <= 5.0)
    return torch.where(ok, slope, torch.ones_like(slope))


def _correlation(fines: list[torch.Tensor], coarses: list[torch.Tensor]) -> torch.Tensor:
    """(win2, n) correlation of each neighbour's fine and coarse spectra (bands x dates)."""
    f = torch.cat(fines, 0)
    c = torch.cat(coarses, 0)
    fa, ca = f - f.mean(0), c - c.mean(0)
    den = torch.sqrt((fa**2).sum(0) * (ca**2).sum(0))
    return torch.where(den > _EPS, (fa * ca).sum(0) / den.clamp_min(_EPS), torch.zeros_like(den))


class Estarfm(ClassicModel):
    """ESTARFM with two reference pairs; see the module docstring.

    Parameters
    ----------
    bands : canonical band names.
    size : window preset (:data:`pipeline.models.windows.PRESETS`).
    window, classes : override the size's window side (odd, fine pixels) and class count (4).
    device : "auto" (CUDA when the worker has it), "cpu" or "cuda".
    """

    name: ClassVar[str] = "estarfm"
    n_refs: ClassVar[tuple[int, ...]] = (2,)

    def __init__(self, bands: tuple[str, ...], size: str = "full", **params: Any) -> None:
        params.setdefault("device", "auto")
        super().__init__(bands, size, **params)
        self.window = preset("estarfm", size, params)["window"]
        self.classes = int(params.get("classes", 4))

    @property
    def device(self) -> torch.device:
        """The torch device :meth:`predict` computes on (resolved on the worker)."""
        return resolve_device(self.params["device"])

    @property
    def halo(self) -> int:
        return self.window // 2

    def predict(self, inputs: FusionInput) -> Prediction:
        """Fuse the target date from exactly two reference pairs (float32 (band, y, x))."""
        if len(inputs.refs) != 2:
            raise ValueError(f"ESTARFM needs 2 reference pairs, got {len(inputs.refs)}")
        r = self.halo
        names = ("f1", "f2", "c1", "c2", "cp")
        r1, r2 = inputs.refs
        arrays = (r1.fine, r2.fine, r1.coarse, r2.coarse, inputs.target.coarse)
        device = self.device
        padded = {k: pad_nan(as_tensor(a, device), r) for k, a in zip(names, arrays, strict=True)}
        bands, height, width = inputs.target.coarse.shape
        fine = torch.empty((bands, height, width), device=device)
        unc = torch.empty_like(fine)
        for y0, y1 in row_blocks(height, width, self.window, 6 * bands):
            win = {k: unfold_rows(v, y0, y1, self.window) for k, v in padded.items()}
            f, u = self._block(win)
            fine[:, y0:y1] = f.reshape(bands, y1 - y0, width)
            unc[:, y0:y1] = u.reshape(bands, y1 - y0, width)
        coarse = inputs.target.coarse
        out = np.where(np.isnan(fine.cpu().numpy()), coarse, fine.cpu().numpy())
        sigma = np.where(np.isnan(out), np.nan, np.nan_to_num(unc.cpu().numpy()))
        return Prediction(out.astype(np.float32), sigma.astype(np.float32))

    def _block(self, win: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Fuse one row block of windows (band, win2, n) -> (band, n) value and sigma."""
        centre = self.window**2 // 2
        valid = torch.stack([~torch.isnan(v).any(0) for v in win.values()]).all(0)
        z = {k: torch.nan_to_num(v) for k, v in win.items()}
        fines, coarses = [z["f1"], z["f2"]], [z["c1"], z["c2"]]
        sim = (_similar([win["f1"], win["f2"]], centre, self.classes) & valid).float()
        v = _conversion(fines, coarses, sim)
        dist = 1.0 + window_distance(self.window, v.device) / max(1, self.halo)
        spec = (1.0 - _correlation(fines, coarses)).clamp_min(0.0) + 1e-3
        weight = sim / (spec * dist)
        weight = weight / weight.sum(0, keepdim=True).clamp_min(1e-12)
        preds, temporal = [], []
        for fk, ck in (("f1", "c1"), ("f2", "c2")):
            change = (weight[None] * v * (z["cp"] - z[ck])).sum(1)
            preds.append(win[fk][:, centre] + change)
            ok = valid[None].float()
            gap = torch.abs(((z[ck] - z["cp"]) * ok).sum(1)) / ok.sum(1).clamp_min(1)
            temporal.append(1.0 / (gap + _EPS))
        p = torch.stack(preds)
        t = torch.stack(temporal) * (~torch.isnan(p)).float()
        t = t / t.sum(0, keepdim=True).clamp_min(1e-12)
        fused = torch.nansum(t * p, 0)
        sigma = torch.sqrt(t[0] * t[1]) * torch.abs(p[0] - p[1]).nan_to_num()
        nothing = torch.isnan(p).all(0) | (sim.sum(0) == 0)[None]
        return torch.where(nothing, torch.full_like(fused, float("nan")), fused), sigma
