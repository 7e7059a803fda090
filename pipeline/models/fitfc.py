"""Fit-FC (Wang & Atkinson 2018, RSE 204), vectorised in torch: works from one reference pair.

Three steps per reference pair k:

1. *Regression model fitting (RM)* **on the coarse grid**: per band, fit
   ``C_target ~ a C_k + b`` by least squares over a moving window of
   ``rm_window x rm_window`` *coarse* pixels (default 3 x 3), then apply it to
   the fine reference: ``F_RM = a F_k + b``. The coarse images arrive
   block-replicated on the fine grid (``ratio`` fine pixels per coarse pixel,
   default 16 = 480 m / 30 m), so the window's samples are taken ``ratio`` fine
   pixels apart: each is a distinct coarse pixel (9 independent samples), for
   any phase of the coarse grid within a tile.
2. *Spatial filtering (SF)*: average ``F_RM`` over the ``n_similar`` neighbours
   (20 at full size, in a ``sf_window`` box, 21 px) spectrally closest to the
   centre in ``F_k``, with inverse-distance weights -- removes the blocky
   artefacts of step 1.
3. *Residual compensation (RC)*: add the coarse regression residual
   ``C_target - (a C_k + b)`` **interpolated** to the fine grid: a box mean of
   ``residual_window`` = ``ratio + 1`` px over the block-replicated residual is
   the linear interpolation between coarse-pixel centres (the paper uses
   bicubic interpolation; linear keeps the result local to the halo).

With two references the two predictions are blended with inverse-time weights.

Uncertainty: the *local regression residual*: RMS over the ``residual_window``
box of the RM residual (what the linear model cannot explain), combined with
the two-reference spread when two pairs are given.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from pipeline.errors import InputError
from pipeline.models.base import ClassicModel, FusionInput, Prediction, Scene, inverse_time_weights
from pipeline.models.device import pick_device
from pipeline.models.windows import (
    as_tensor,
    box_sum,
    check_window,
    pad_nan,
    preset,
    row_blocks,
    unfold_rows,
    window_distance,
)

#: Similar pixels kept by the spatial filter, per size.
_N_SIMILAR = {"tiny": 10, "small": 15, "full": 20}
#: Fine pixels per coarse pixel when the model is not told (480 m MODIS on a 30 m grid).
DEFAULT_RATIO = 16
_EPS = 1e-8


def _coarse_sum(image: torch.Tensor, window: int, step: int) -> torch.Tensor:
    """Sum of ``window x window`` samples ``step`` px apart around each pixel (zeros outside).

    ``image``: (band, y, x) float tensor, NaN already replaced.
    """
    r = (window // 2) * step
    padded = F.pad(image[:, None], (r, r, r, r))
    kernel = torch.ones(1, 1, window, window, dtype=image.dtype, device=image.device)
    return F.conv2d(padded, kernel, dilation=step)[:, 0]


def _local_regression(x: torch.Tensor, y: torch.Tensor, window: int, step: int):
    """Per-pixel least squares ``y ~ a x + b`` over a window of coarse pixels, NaN-aware.

    Parameters
    ----------
    x, y : (band, y, x) float tensors (NaN = invalid), coarse images on the fine grid.
    window : side of the window in coarse pixels (odd).
    step : fine pixels per coarse pixel.

    Returns
    -------
    a, b : (band, y, x) slope and intercept (a = 0, b = mean y where x is flat).
    """
    m = (~torch.isnan(x) & ~torch.isnan(y)).double()
    x0, y0 = torch.nan_to_num(x).double(), torch.nan_to_num(y).double()
    n = _coarse_sum(m, window, step).clamp_min(1)
    mx, my = _coarse_sum(m * x0, window, step) / n, _coarse_sum(m * y0, window, step) / n
    cov = _coarse_sum(m * x0 * y0, window, step) / n - mx * my
    var = _coarse_sum(m * x0 * x0, window, step) / n - mx * mx
    a = torch.where(var > 1e-10, cov / var.clamp_min(_EPS), torch.zeros_like(var))
    return a.float(), (my - a * mx).float()


class FitFc(ClassicModel):
    """Fit-FC from one (or two, blended) reference pairs; see the module docstring.

    Parameters
    ----------
    bands : canonical band names.
    size : window preset (:data:`pipeline.models.windows.PRESETS`).
    rm_window : RM window side in coarse pixels (odd; 3).
    sf_window, n_similar : SF window side in fine pixels (odd) and similar pixels kept.
    ratio : fine pixels per coarse pixel: the grids' ``coarse_factor`` (model stage) or
        the manifest's ``ratio`` (``stf evaluate``); 16 (480 m / 30 m) when not told.
    residual_window : RC interpolation box in fine pixels (odd; ``ratio + 1``).
    device : "auto" (CUDA when the worker has it), "cpu" or "cuda".
    """

    name: ClassVar[str] = "fitfc"
    n_refs: ClassVar[tuple[int, ...]] = (1, 2)
    #: the model stage and ``stf evaluate`` pass the grids' coarse ratio as ``ratio``
    needs_ratio: ClassVar[bool] = True

    def __init__(self, bands: tuple[str, ...], size: str = "full", **params: Any) -> None:
        params.setdefault("device", "auto")
        super().__init__(bands, size, **params)
        windows = preset("fitfc", size, params)
        self.rm_window = windows["rm_window"]
        self.sf_window = windows["sf_window"]
        self.ratio = int(params.get("ratio", DEFAULT_RATIO))
        if self.ratio < 1:
            raise InputError(f"fitfc: ratio must be a positive number of pixels, got {self.ratio}")
        default_rc = self.ratio + 1 if self.ratio % 2 == 0 else self.ratio
        self.residual_window = check_window(
            "fitfc", "residual_window", params.get("residual_window", default_rc)
        )
        self.n_similar = int(params.get("n_similar", _N_SIMILAR[size]))

    @property
    def device(self) -> torch.device:
        """The torch device :meth:`predict` computes on (resolved on the worker)."""
        return pick_device(self.params["device"])

    @property
    def halo(self) -> int:
        # a, b are needed over the SF / residual neighbourhoods of each pixel.
        rm = (self.rm_window // 2) * self.ratio
        return rm + max(self.sf_window, self.residual_window) // 2

    def predict(self, inputs: FusionInput) -> Prediction:
        """Fuse the target date; float32 (band, y, x) value and 1-sigma."""
        device = self.device
        target = as_tensor(inputs.target.coarse, device)
        preds, sigmas = zip(
            *(self._one_ref(ref, target, device) for ref in inputs.refs), strict=True
        )
        p, s = torch.stack(preds), torch.stack(sigmas)
        w = torch.as_tensor(inverse_time_weights(inputs.refs, inputs.target.date), device=p.device)
        w = w.float()[:, None, None, None] * (~torch.isnan(p)).float()
        w = w / w.sum(0, keepdim=True).clamp_min(1e-12)
        mean = torch.nansum(w * p, 0)
        spread = torch.nansum(w * (p - mean) ** 2, 0)
        sigma = torch.sqrt(torch.nansum(w * s**2, 0) + spread)
        mean = torch.where(torch.isnan(p).all(0), target, mean).cpu().numpy()
        sigma = np.where(np.isnan(mean), np.nan, sigma.cpu().numpy())
        return Prediction(mean.astype(np.float32), sigma.astype(np.float32))

    def _one_ref(
        self, ref: Scene, target: torch.Tensor, device: torch.device
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """RM + SF + RC from one pair: (band, y, x) prediction and residual sigma."""
        fine, coarse = as_tensor(ref.fine, device), as_tensor(ref.coarse, device)
        a, b = _local_regression(coarse, target, self.rm_window, self.ratio)
        rm = a * fine + b
        residual = target - (a * coarse + b)
        ok = (~torch.isnan(residual)).float()
        res0 = torch.nan_to_num(residual)
        n = box_sum(ok, self.residual_window).clamp_min(1)
        smooth = box_sum(res0, self.residual_window) / n
        sigma = torch.sqrt(box_sum(res0**2, self.residual_window) / n)
        return self._spatial_filter(fine, rm) + smooth, sigma

    def _spatial_filter(self, fine: torch.Tensor, rm: torch.Tensor) -> torch.Tensor:
        """Inverse-distance mean of ``rm`` over the ``n_similar`` pixels closest in ``fine``."""
        bands, height, width = fine.shape
        win, r = self.sf_window, self.sf_window // 2
        pf, pr = pad_nan(fine, r), pad_nan(rm, r)
        dist = 1.0 + window_distance(win, fine.device) / max(1, r)
        k = min(self.n_similar, win * win)
        out = torch.empty_like(rm)
        for y0, y1 in row_blocks(height, width, win, 3 * bands):
            wf, wr = unfold_rows(pf, y0, y1, win), unfold_rows(pr, y0, y1, win)
            diff = torch.sqrt(((wf - wf[:, win * win // 2 : win * win // 2 + 1]) ** 2).mean(0))
            diff = torch.where(torch.isnan(diff) | torch.isnan(wr).any(0), torch.inf, diff)
            # The centre (diff 0) wins ties first: topk on -diff keeps the k closest.
            _, idx = torch.topk(-diff, k, dim=0)
            weight = torch.gather((1.0 / dist).expand_as(diff), 0, idx)
            weight = weight * torch.isfinite(torch.gather(diff, 0, idx)).float()
            vals = torch.gather(torch.nan_to_num(wr), 1, idx[None].expand(bands, -1, -1))
            total = (weight[None] * vals).sum(1) / weight.sum(0).clamp_min(1e-12)
            empty = weight.sum(0) == 0
            total = torch.where(empty[None], torch.full_like(total, float("nan")), total)
            out[:, y0:y1] = total.reshape(bands, y1 - y0, width)
        return out
