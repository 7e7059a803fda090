"""STFDiff (Huang et al. 2024): conditional diffusion with a dual-stream U-Net denoiser.

What is diffused is the residual over a physical base, in unit variance:
``x0 = (fine_target - base) / residual_std``. ``base`` is "fine ref + coarse
change box-smoothed over ``change_window`` px" from both references, blended by
inverse time or taken from the nearest one (window and blend chosen on the
training dates by the baselines' rule, so the untrained model is the best naive
baseline those dates name); ``residual_std`` (per band,
reflectance) is the standard deviation of that residual over the training
tasks, so noise and signal have the same scale (the former code divided by a
fixed 0.05 against a residual std of ~0.01).

* **x0 prediction** with a zero-initialised head: an untrained denoiser predicts
  ``x0 = 0`` at every step, so the sampler returns the base exactly and the
  engine's start is the smoothed-change blend; training can only move it on
  held-back evidence (the engine keeps the start when it is better).
* **Conditioning** (:meth:`StfDiff.condition`): standardised fine and coarse
  references, their explicit fp32 differences (fine - coarse, coarse change),
  the target coarse image and the base, ``10 * bands`` channels, subtracted
  from the noise stream at every level (:mod:`pipeline.models.stfdiff_net`).
* **Linear path** (deviation, the engine's): both references' pair features, each
  weighted by its blend weight, through a zero-initialised ``linear_kernel`` px
  convolution, added to the denoiser's x0 (:meth:`StfDiff.linear_x0`), so a linear
  correction of the base need not emerge from the U-Net within a CPU budget; the
  engine starts it at its closed-form least-squares fit
  (:mod:`pipeline.models.stfdiff_linear`); ``linear_kernel = 0`` leaves it out.
  ``small``/``full`` train on the reference-pair rule's tasks (``train_blend``) and
  validate across the dates with only two (:data:`~pipeline.models.ganstfm.RECIPE`).
* **Training** (overrides :meth:`TorchFusionModel.training_step`): a random step of
  the ``train_steps`` (100) cosine schedule, masked MSE on ``x0``.
* **Sampling**: DDIM with ``ddim_steps`` steps (50, the reference uses >= 50; ``eta``
  0 deterministic, 1 DDPM-like), from noise drawn from a generator seeded by
  ``seed + sample index``, so a prediction is reproducible for a seed and tiling.
* **Point estimate** (``point``): ``"mean"`` (default, a named deviation) is the
  denoiser's x0 at the noisiest step, its posterior-mean estimate, which the
  engine's validation scores too (:meth:`StfDiff.point_steps`); ``"samples"`` is
  the reference's mean of the samples (validated with ``val_steps``, 5).

Uncertainty: the *sample spread*, the standard deviation over ``samples`` seeds
(their mean is the prediction with ``point = "samples"``), combined with the start's *error model*
(:mod:`pipeline.models.error_model`, fitted on the training dates), scaled on the
held-back date when there is one (``sigma_scale``; else the fuse stage calibrates
it). Where the residual is predictable the samples agree; where it is not, a
trained denoiser draws different residuals (``tests/models/test_stfdiff_spread.py``
checks the Spearman rank correlation of spread and |error| on withheld days). A
zero-headed denoiser at its start draws identical samples: its sigma is then the
error model's alone, which ranks the start's errors (Spearman 0.45 on the withheld
day of estarfm-2001) instead of being zero.

Halo: the U-Net's convolutional receptive field, or half the change window in use plus
the linear path's kernel radius; the noise is drawn per tile, so tiled output is a
different (equally valid) sample than the whole image, not an identical one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from pipeline.errors import InputError
from pipeline.models._torch import TorchFusionModel, smoothed_change
from pipeline.models.base import FusionInput, Prediction, Scene
from pipeline.models.error_model import error_sigma, fit_error_model
from pipeline.models.ganstfm import RECIPE, calibrate_tta
from pipeline.models.losses import masked_mse
from pipeline.models.patches import Batch, PatchSampler, fill_invalid, make_tasks
from pipeline.models.stfdiff_linear import fit_linear_x0
from pipeline.models.stfdiff_net import DualStreamUNet, cosine_alphas_bar
from pipeline.models.streams import day_weights

#: ``linear_signed`` off: the linear path's input already holds each side's reference
#: in its own channels (:meth:`StfDiff.linear_features`)
_COMMON: dict[str, Any] = {"val_split": "date", "date_fallback": "rows", "eta": 0.0,
                           "val_steps": 5, "point": "mean", "linear_signed": False}  # fmt: skip


class StfDiff(TorchFusionModel):
    """STFDiff behind the common interface; see the module docstring."""

    name: ClassVar[str] = "stfdiff"
    n_refs: ClassVar[tuple[int, ...]] = (1, 2)
    train_refs: ClassVar[int] = 2
    #: its base blends the references inside the network's input: by inverse time, or
    #: all weight on the nearest one (whichever the start rule prefers, like the others)
    start_blends: ClassVar[tuple[str, ...]] = ("time", "nearest")
    outer_amp: ClassVar[bool] = False
    linear_path: ClassVar[bool] = True
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {**_COMMON, "widths": [8, 16], "blocks": 1, "ddim_steps": 3, "val_steps": 2,
                 "samples": 2, "epochs": 2, "steps_per_epoch": 2, "batch_size": 2, "patch": 16,
                 "change_window": 3, "change_windows": [1, 3]},
        "small": {**_COMMON, **RECIPE, "widths": [8, 16, 32], "blocks": 1, "ddim_steps": 50,
                  "samples": 4, "patch": 64, "batch_size": 4, "lr": 1e-3, "epochs": 30,
                  "steps_per_epoch": 20, "patience": 6, "budget_s": 300, "budget_s_gpu": 1800,
                  "change_window": 17, "change_windows": [1, 9, 17, 33]},
        "full": {**_COMMON, **RECIPE, "widths": [64, 128, 256], "blocks": 2, "ddim_steps": 50,
                 "samples": 4, "patch": 128, "batch_size": 4, "lr": 2e-4, "epochs": 30,
                 "steps_per_epoch": 20, "patience": 6, "budget_s": 600, "budget_s_gpu": 1800,
                 "change_window": 33, "change_windows": [1, 9, 17, 33, 65]},
    }  # fmt: skip
    train_steps: ClassVar[int] = 100
    #: Bound of every predicted x0 in residual-std units: DDIM's "clip denoised".
    clip: ClassVar[float] = 6.0

    def __init__(self, bands: tuple[str, ...], size: str = "full", **params: Any) -> None:
        super().__init__(bands, size, **params)
        self.alphas_bar = cosine_alphas_bar(self.train_steps).to(self.device)
        self._sample = 0
        self._steps: int | None = None  # DDIM steps of the next forward (None: validation's)
        if self.params["point"] not in ("mean", "samples"):
            raise InputError(
                f"model stfdiff: point must be 'mean' or 'samples', got {self.params['point']!r}"
            )
        self._fit_pairs: list[Scene] = []

    def build(self, n_bands: int) -> torch.nn.Module:
        return DualStreamUNet(n_bands, tuple(self.params["widths"]), int(self.params["blocks"]))

    @property
    def halo(self) -> int:
        # Two 3x3 convs per block (+ stem), doubling at every level.
        widths, blocks = self.params["widths"], int(self.params["blocks"])
        unet = sum(2 * (2 * blocks + 1) * 2**i for i in range(len(widths)))
        return max(unet, self.linear_reach())

    # --- the residual's scale ---------------------------------------------------------
    def set_band_stats(self, pairs: Sequence[Scene]) -> None:
        """Band statistics (engine) and the pairs the residual's scale is measured on."""
        super().set_band_stats(pairs)
        self._fit_pairs = list(pairs)

    def select_start(self, pairs: Sequence[Scene]) -> None:
        """Choose ``change_window`` by the start rule, then measure ``residual_std``
        and fit the start's error model (:mod:`pipeline.models.error_model`)."""
        super().select_start(pairs)  # change_window (the start rule)
        if self._fit_pairs:
            window, blend = int(self.params["change_window"]), self.blend_name()
            self.params["residual_std"] = residual_std(self._fit_pairs, window, blend)
            self.params["error_model"] = fit_error_model(self._fit_pairs, window, blend)

    def select_after(self, held: Sequence[Scene], pairs: Sequence[Scene]) -> None:
        """Scale sigma on the held-back date so 68 % of its errors fall within it."""
        calibrate_tta(self, held, pairs)

    def _residual_std(self, like: Tensor) -> Tensor:
        """(1, B, 1, 1) reflectance of one residual unit (0.01 before any fit)."""
        std = self.params.get("residual_std") or [0.01] * len(self.bands)
        return torch.tensor(std, dtype=torch.float32, device=like.device).view(1, -1, 1, 1)

    # --- condition and sampling -------------------------------------------------------
    def condition(self, refs_coarse: Tensor, refs_fine: Tensor, tgt_coarse: Tensor,
                  days: Tensor) -> tuple[Tensor, Tensor]:  # fmt: skip
        """Base (N, B, h, w) reflectance and condition (N, 10 B, h, w) from two refs.

        The base blends the per-reference smoothed changes by
        :func:`~pipeline.models.streams.day_weights` (the start rule's blend, as ``predict``
        blends streams), so the untrained model is the baseline it chose.
        The condition holds, per reference, the standardised fine and coarse images,
        fine - coarse and the coarse change (both in band-std units, float32), then the
        standardised target coarse image and base.
        """
        rc, rf, tc = refs_coarse.float(), refs_fine.float(), tgt_coarse.float()
        window = int(self.params["change_window"])
        w = day_weights(days, self.blend_name())[:, :, None, None, None]
        streams = [rf[:, r] + smoothed_change(tc, rc[:, r], window) for r in range(rf.shape[1])]
        base = (w * torch.stack(streams, 1)).sum(1)
        parts = []
        for r in range(rf.shape[1]):
            parts += [self.standardise(rf[:, r]), self.standardise(rc[:, r]),
                      self.scale_difference(rf[:, r] - rc[:, r]),
                      self.scale_difference(tc - rc[:, r])]  # fmt: skip
        parts += [self.standardise(tc), self.standardise(base)]
        return base, torch.cat(parts, 1)

    @staticmethod
    def pair_feature_count(n_bands: int) -> int:
        """Channels of the linear path's input: both references' pair features."""
        return 2 * TorchFusionModel.pair_feature_count(n_bands)

    def linear_features(self, refs_coarse: Tensor, refs_fine: Tensor, tgt_coarse: Tensor,
                        days: Tensor) -> Tensor:  # fmt: skip
        """(N, 2 (6B + B^2), h, w) float32: each reference's
        :meth:`~pipeline.models._torch.TorchFusionModel.pair_features` times its blend
        weight (:func:`~pipeline.models.streams.day_weights`, as the base blends them),
        earlier reference first: one coefficient set per side, as the stream models'
        signed copy gives them, and a linear map of the blend, not of each stream."""
        window = int(self.params["change_window"])
        rc, rf, tc = refs_coarse.float(), refs_fine.float(), tgt_coarse.float()
        w = day_weights(days, self.blend_name()).to(tc.device)
        feats = [w[:, r, None, None, None] * self.pair_features(rc[:, r], rf[:, r], tc, window)[0]
                 for r in range(2)]  # fmt: skip
        return torch.cat(feats, 1)

    def linear_x0(self, refs_coarse: Tensor, refs_fine: Tensor, tgt_coarse: Tensor,
                  days: Tensor) -> Tensor:  # fmt: skip
        """The linear path's part of x0 (N, B, h, w), residual-std units; zeros without one.

        :meth:`linear_features` through the engine's zero-initialised convolution,
        added to the denoiser's x0 at every step; the engine starts it at its
        closed-form least-squares solution (:meth:`fit_linear_start`).
        """
        if getattr(self.net, "linear_path", None) is None:
            return torch.zeros_like(tgt_coarse, dtype=torch.float32)
        feats = self.linear_features(refs_coarse, refs_fine, tgt_coarse, days)
        return self.linear_term(feats)  # type: ignore[return-value]

    def fit_linear_start(
        self, sampler: PatchSampler, *, pixels: int, seed: int
    ) -> dict[str, float] | None:
        """Closed-form ridge fit of the linear path (:mod:`pipeline.models.stfdiff_linear`);
        called by the engine's linear start (:mod:`pipeline.models.linear_fit`)."""
        return fit_linear_x0(self, sampler, pixels=pixels, seed=seed)

    def _padded(self, *xs: Tensor) -> tuple[Tensor, ...]:
        m = self.net.multiple
        h, w = xs[0].shape[-2:]
        pad = (0, (-w) % m, 0, (-h) % m)
        return tuple(F.pad(x, pad, mode="replicate") if any(pad) else x for x in xs)

    def sample(self, cond: Tensor, steps: int, seed: int, linear: Tensor | float = 0.0) -> Tensor:
        """One DDIM sample of the unit-variance residual (N, B, h, w) given ``cond``.

        ``linear`` (:meth:`linear_x0`) is added to the denoiser's x0 at every step.
        """
        gen = torch.Generator(device=self.device).manual_seed(seed)
        n_bands = len(self.bands)
        shape = (cond.shape[0], n_bands, *cond.shape[-2:])
        x = torch.randn(shape, generator=gen, device=self.device)
        ts = np.linspace(self.train_steps - 1, 0, max(1, steps)).round().astype(int)
        eta, x0 = float(self.params.get("eta", 0.0)), x
        for i, t in enumerate(ts):
            ab = self.alphas_bar[t]
            tt = torch.full((x.shape[0],), int(t), device=self.device)
            x0 = (self.trunk(self.net, x, tt, cond) + linear).clamp(-self.clip, self.clip)
            if i + 1 == len(ts):
                break
            eps = (x - ab.sqrt() * x0) / (1 - ab).sqrt()
            ab_next = self.alphas_bar[int(ts[i + 1])]
            sigma = eta * ((1 - ab_next) / (1 - ab) * (1 - ab / ab_next)).clamp_min(0).sqrt()
            noise = torch.randn(shape, generator=gen, device=self.device) if eta else 0.0
            x = ab_next.sqrt() * x0 + (1 - ab_next - sigma**2).sqrt() * eps + sigma * noise
        return x0

    def forward(self, refs_coarse: Tensor, refs_fine: Tensor, tgt_coarse: Tensor,
                days: Tensor) -> Tensor:  # fmt: skip
        """One seeded sample (seed + current sample index) -> (N, B, h, w) reflectance."""
        h, w = tgt_coarse.shape[-2:]
        base, cond = self.condition(refs_coarse, refs_fine, tgt_coarse, days)
        linear = self.linear_x0(refs_coarse, refs_fine, tgt_coarse, days)
        cond, linear = self._padded(cond, linear)
        steps = self._steps or self.point_steps()
        x0 = self.sample(cond, steps, int(self.params["seed"]) + self._sample, linear)
        return base + self._residual_std(base) * x0[..., :h, :w]

    def training_step(self, batch: Batch, optimizer: torch.optim.Optimizer) -> float:
        """x0-prediction step at a random diffusion step; returns the loss."""
        optimizer.zero_grad(set_to_none=True)
        base, cond = self.condition(batch.refs_coarse, batch.refs_fine, batch.tgt_coarse,  # type: ignore[arg-type]
                                    batch.days)  # type: ignore[arg-type]  # fmt: skip
        x0 = (batch.tgt_fine - base) / self._residual_std(base) * batch.valid  # type: ignore[operator]
        linear = self.linear_x0(batch.refs_coarse, batch.refs_fine, batch.tgt_coarse,  # type: ignore[arg-type]
                                batch.days)  # type: ignore[arg-type]  # fmt: skip
        x0, cond, valid, linear = self._padded(x0, cond, batch.valid, linear)  # type: ignore[arg-type]
        t = torch.randint(0, self.train_steps, (x0.shape[0],), device=self.device)
        ab = self.alphas_bar[t][:, None, None, None]
        x_t = ab.sqrt() * x0 + (1 - ab).sqrt() * torch.randn_like(x0)
        loss = masked_mse(self.trunk(self.net, x_t, t, cond) + linear, x0, valid)
        loss.backward()
        optimizer.step()
        return float(loss.detach())

    def point_steps(self) -> int:
        """DDIM steps of the point estimate (and of the engine's validation of it).

        ``point = "mean"``: one step from the noisiest level, where ``x_t`` carries
        no signal, so the x0-predicting denoiser returns its estimate of the
        *posterior mean* residual, the RMSE-optimal point (one model trained 150 steps
        on the synthetic season, target RMSE over all pixels: 0.00659 against
        0.00664-0.00666 for the mean of 3 samples of 5-50 steps and 0.00670 for one
        50-step sample). ``"samples"``: the reference's mean of
        ``samples`` DDIM samples of ``ddim_steps`` (validated with ``val_steps``).
        """
        return 1 if self.params["point"] == "mean" else int(self.params["val_steps"])

    def _tiled(self, inputs: FusionInput, steps: int, sample: int) -> np.ndarray:
        """One engine prediction (band, y, x) with ``steps`` DDIM steps and seed ``sample``."""
        self._steps, self._sample = steps, sample
        try:
            return TorchFusionModel.predict(self, inputs).fine
        finally:
            self._steps, self._sample = None, 0

    def predict(self, inputs: FusionInput) -> Prediction:
        """Point estimate (``point``); sigma from the sample spread and the error model.

        ``sigma = sigma_scale * sqrt(spread^2 + start_sigma^2)``: the spread of
        ``samples`` DDIM samples of ``ddim_steps`` (zero for the untrained,
        zero-headed denoiser) and the start's error model
        (:func:`~pipeline.models.error_model.error_sigma`; left out when the model
        was never fitted), scaled on the held-back date by :meth:`select_after`.
        """
        ddim = int(self.params["ddim_steps"])
        samples = [self._tiled(inputs, ddim, k) for k in range(int(self.params["samples"]))]
        # float64: a float32 mean of identical samples is off by an ulp, and their "spread"
        # (~1e-8) was what the kept starts' sigma ranked (Spearman 0.01-0.03, model-zoo.md)
        stack = np.stack(samples).astype(np.float64)
        mean = self.params["point"] == "mean"
        fine = self._tiled(inputs, 1, 0).astype(np.float64) if mean else stack.mean(0)
        var = stack.var(0)
        model = self.params.get("error_model")
        if model is not None:
            window = int(self.params["change_window"])
            var = var + error_sigma(model, inputs.refs, inputs.target, window) ** 2
        sigma = np.sqrt(var) * float(self.params.get("sigma_scale", 1.0))
        sigma = np.where(np.isnan(fine), np.nan, sigma)
        return Prediction(fine.astype(np.float32), sigma.astype(np.float32))


def residual_std(pairs: Sequence[Scene], window: int, blend: str = "time") -> list[float]:
    """Per-band std (reflectance) of ``fine_target - base`` over the cross-date tasks.

    ``base`` is the two-reference ``blend`` (:func:`~pipeline.models.streams.day_weights`)
    of ``fine ref + box(coarse change)``; a floor of 1e-3 keeps a single-pair fit (residual
    0) finite.
    """
    residuals = []
    for task in make_tasks(pairs, 2):
        rc, rf, tc = fill_invalid(
            np.stack([r.coarse for r in task.refs]),
            np.stack([r.fine for r in task.refs]),
            task.target.coarse,
        )
        days = torch.tensor([[(r.date - task.target.date).days for r in task.refs]])
        w = day_weights(days, blend)[0].tolist()
        tct = torch.as_tensor(tc)[None]
        base = sum(
            wi * (rf[i] + smoothed_change(tct, torch.as_tensor(rc[i])[None], window)[0].numpy())
            for i, wi in enumerate(w)
        )
        residuals.append(task.target.fine - base)
    std = np.nanstd(np.stack(residuals), axis=(0, 2, 3))
    return [float(max(v, 1e-3)) for v in np.nan_to_num(std)]
