"""STFDiff (Huang et al. 2024): conditional diffusion with a dual-stream U-Net noise predictor.

The target is the scaled residual ``x0 = (fine_target - base) / scale`` over
``base``, the inverse-time weighted "fine ref + coarse change" of the two
references. Training: ``train_steps`` (100) cosine-schedule steps, epsilon
prediction, masked MSE (overrides the engine's ``training_step``; sampling,
validation, early stopping and checkpoints are the shared engine's). Inference:
deterministic DDIM (eta = 0) with ``ddim_steps`` (10) steps from Gaussian noise
drawn from a generator seeded by ``seed + sample index``, so a prediction is
reproducible for a given seed and tiling.

Uncertainty: the *sampling spread* -- standard deviation over ``samples``
seeds of the DDIM output (its mean is the prediction).

Halo: the U-Net's convolutional receptive field (see :attr:`StfDiff.halo`);
the noise is drawn per tile, so tiled output is a different (equally valid)
sample than the whole image, not an identical one.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from pipeline.models._torch import TorchFusionModel, autocast
from pipeline.models.base import FusionInput, Prediction
from pipeline.models.losses import masked_mse
from pipeline.models.patches import Batch
from pipeline.models.stfdiff_net import DualStreamUNet, cosine_alphas_bar


class StfDiff(TorchFusionModel):
    """STFDiff behind the common interface; see the module docstring."""

    name: ClassVar[str] = "stfdiff"
    n_refs: ClassVar[tuple[int, ...]] = (1, 2)
    train_refs: ClassVar[int] = 2
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {"widths": [8, 16], "blocks": 1, "ddim_steps": 3, "samples": 2, "epochs": 2,
                 "steps_per_epoch": 2, "batch_size": 2, "patch": 16},
        "small": {"widths": [32, 64, 128], "blocks": 1, "ddim_steps": 10, "samples": 4,
                  "patch": 48},
        "full": {"widths": [64, 128, 256], "blocks": 2, "ddim_steps": 10, "samples": 4,
                 "patch": 64, "lr": 2e-4},
    }  # fmt: skip
    train_steps: ClassVar[int] = 100
    scale: ClassVar[float] = 0.05  # reflectance units of one residual unit (~typical error)
    #: Bound of every predicted x0 in residual units (+-0.2 reflectance): the "clip denoised"
    #: of DDPM/DDIM. At the first step 1/sqrt(alpha_bar) ~ 2000 amplifies any epsilon error;
    #: unbounded, an undertrained network's x0 lands far outside any plausible residual.
    clip: ClassVar[float] = 4.0

    def __init__(self, bands: tuple[str, ...], size: str = "full", **params: Any) -> None:
        super().__init__(bands, size, **params)
        self.alphas_bar = cosine_alphas_bar(self.train_steps).to(self.device)
        self._sample = 0

    def build(self, n_bands: int) -> torch.nn.Module:
        return DualStreamUNet(n_bands, tuple(self.params["widths"]), int(self.params["blocks"]))

    @property
    def halo(self) -> int:
        # Two 3x3 convs per block (+ stem), doubling at every level.
        widths, blocks = self.params["widths"], int(self.params["blocks"])
        return sum(2 * (2 * blocks + 1) * 2**i for i in range(len(widths)))

    def _condition(self, refs_coarse: Tensor, refs_fine: Tensor, tgt_coarse: Tensor,
                   days: Tensor) -> tuple[Tensor, Tensor]:  # fmt: skip
        """Base estimate (N, B, h, w) and condition (N, 5B, h, w) from two refs."""
        w = 1.0 / days.abs().clamp_min(1.0)
        w = (w / w.sum(1, keepdim=True))[:, :, None, None, None]
        base = (w * (refs_fine + tgt_coarse[:, None] - refs_coarse)).sum(1)
        cond = torch.cat([refs_fine.flatten(1, 2), refs_coarse.flatten(1, 2), tgt_coarse], 1)
        return base, cond

    def _padded(self, *xs: Tensor) -> tuple[Tensor, ...]:
        m = self.net.multiple
        h, w = xs[0].shape[-2:]
        pad = (0, (-w) % m, 0, (-h) % m)
        return tuple(F.pad(x, pad, mode="replicate") if any(pad) else x for x in xs)

    def forward(self, refs_coarse: Tensor, refs_fine: Tensor, tgt_coarse: Tensor,
                days: Tensor) -> Tensor:  # fmt: skip
        """One deterministic DDIM sample (seed + current sample index) -> (N, B, h, w)."""
        h, w = tgt_coarse.shape[-2:]
        base, cond = self._condition(refs_coarse, refs_fine, tgt_coarse, days)
        base, cond = self._padded(base, cond)
        gen = torch.Generator(device=self.device).manual_seed(
            int(self.params["seed"]) + self._sample
        )
        x = torch.randn(base.shape, generator=gen, device=self.device)
        steps = np.linspace(self.train_steps - 1, 0, int(self.params["ddim_steps"])).round()
        x0 = x
        for i, t in enumerate(steps.astype(int)):
            ab = self.alphas_bar[t]
            tt = torch.full((x.shape[0],), int(t), device=self.device)
            eps = self.net(x, tt, cond).float()
            x0 = ((x - (1 - ab).sqrt() * eps) / ab.sqrt()).clamp(-self.clip, self.clip)
            ab_next = self.alphas_bar[int(steps[i + 1])] if i + 1 < len(steps) else torch.ones(())
            x = ab_next.sqrt() * x0 + (1 - ab_next).sqrt() * eps
        return (base + self.scale * x0)[..., :h, :w]

    def training_step(self, batch: Batch, optimizer: torch.optim.Optimizer) -> float:
        """Epsilon-prediction step at a random diffusion step; returns the loss."""
        optimizer.zero_grad(set_to_none=True)
        base, cond = self._condition(batch.refs_coarse, batch.refs_fine, batch.tgt_coarse,  # type: ignore[arg-type]
                                     batch.days)  # type: ignore[arg-type]  # fmt: skip
        x0 = (batch.tgt_fine - base) / self.scale * batch.valid  # type: ignore[operator]
        x0, cond, valid = self._padded(x0, cond, batch.valid)  # type: ignore[arg-type]
        t = torch.randint(0, self.train_steps, (x0.shape[0],), device=self.device)
        ab = self.alphas_bar[t][:, None, None, None]
        noise = torch.randn_like(x0)
        x_t = ab.sqrt() * x0 + (1 - ab).sqrt() * noise
        with autocast(self.device, self.params["amp"]):
            eps = self.net(x_t, t, cond)
        loss = masked_mse(eps.float(), noise, valid)
        loss.backward()
        optimizer.step()
        return float(loss.detach())

    def predict(self, inputs: FusionInput) -> Prediction:
        """Mean of ``samples`` seeded DDIM samples; sigma = their standard deviation."""
        samples = []
        for k in range(int(self.params["samples"])):
            self._sample = k
            samples.append(TorchFusionModel.predict(self, inputs).fine)
        self._sample = 0
        stack = np.stack(samples)
        return Prediction(stack.mean(0).astype(np.float32), stack.std(0).astype(np.float32))
