"""STFDiff networks (Huang et al. 2024): dual-stream U-Net denoiser and the noise schedule.

The diffusion runs on the *residual* ``x0 = (fine_target - base) / residual_std``
(unit variance per band), ``base`` the two-reference "fine + smoothed coarse
change" estimate, so the network only has to generate what the classic change
model misses. The denoiser has two encoder streams of equal shape:

* the *condition stream* reads the standardised reference pairs, their explicit
  differences, the target coarse image and the base (``cond_channels``);
* the *noise stream* reads ``x_t`` and the diffusion step embedding;

at every level the condition features are *subtracted* from the noise stream's
(the reference's fusion, issue 16: the former code added them), and a decoder
with skip connections returns the predicted clean residual ``x0`` (x0
prediction). Its last convolution starts at zero, so an untrained denoiser
predicts ``x0 = 0`` at every step and the sampler returns the base exactly.
Widths (64, 128, 256) with two residual blocks per level give ~7.6 M parameters
at 6 bands.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def cosine_alphas_bar(steps: int) -> torch.Tensor:
    """(steps,) cumulative signal fraction of the cosine schedule (Nichol & Dhariwal 2021)."""
    t = torch.linspace(0, 1, steps + 1, dtype=torch.float64)
    f = torch.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2
    betas = (1 - f[1:] / f[:-1]).clamp(max=0.999)
    return torch.cumprod(1 - betas, 0).float()


def step_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """(n,) integer steps -> (n, dim) sinusoidal embedding."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.sin(args), torch.cos(args)], 1)


class _ResBlock(nn.Module):
    """GroupNorm-SiLU-conv residual block with an optional step-embedding shift."""

    def __init__(self, cin: int, cout: int, emb: int | None) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.GroupNorm(min(8, cin), cin), nn.GroupNorm(min(8, cout), cout)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1, padding_mode="replicate")
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, padding_mode="replicate")
        self.emb = nn.Linear(emb, cout) if emb else None
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor | None = None) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        if self.emb is not None and emb is not None:
            h = h + self.emb(emb)[:, :, None, None]
        return self.skip(x) + self.conv2(F.silu(self.norm2(h)))


class _Encoder(nn.Module):
    """Stem + ``blocks`` residual blocks per level, stride-2 conv between levels."""

    def __init__(self, cin: int, widths: tuple[int, ...], blocks: int, emb: int | None) -> None:
        super().__init__()
        self.stem = nn.Conv2d(cin, widths[0], 3, padding=1, padding_mode="replicate")
        self.levels, self.downs = nn.ModuleList(), nn.ModuleList()
        prev = widths[0]
        for i, w in enumerate(widths):
            self.levels.append(nn.ModuleList(_ResBlock(prev if j == 0 else w, w, emb)
                                             for j in range(blocks)))  # fmt: skip
            prev = w
            if i < len(widths) - 1:
                self.downs.append(nn.Conv2d(w, w, 3, stride=2, padding=1))

    def forward(self, x: torch.Tensor, emb: torch.Tensor | None,
                cond: list[torch.Tensor] | None = None) -> list[torch.Tensor]:  # fmt: skip
        x, feats = self.stem(x), []
        for i, blocks in enumerate(self.levels):
            for block in blocks:
                x = block(x, emb)
            if cond is not None:
                x = x - cond[i]  # dual-stream fusion: the reference subtracts the condition
            feats.append(x)
            if i < len(self.downs):
                x = self.downs[i](x)
        return feats


class DualStreamUNet(nn.Module):
    """x0_theta(x_t, t | condition): (n, band, y, x) predicted clean residual.

    Parameters
    ----------
    bands : spectral bands.
    widths : channels per level (y, x must be multiples of ``2 ** (levels - 1)``).
    blocks : residual blocks per level and stream.
    cond_channels : channels of the condition (default ``10 * bands``, see
        :meth:`pipeline.models.stfdiff.StfDiff.condition`).
    """

    def __init__(
        self,
        bands: int,
        widths: tuple[int, ...] = (64, 128, 256),
        blocks: int = 2,
        cond_channels: int | None = None,
    ) -> None:
        super().__init__()
        emb = 4 * widths[0]
        self.emb_dim = widths[0]
        self.multiple = 2 ** (len(widths) - 1)
        self.time = nn.Sequential(nn.Linear(widths[0], emb), nn.SiLU(), nn.Linear(emb, emb))
        self.cond = _Encoder(cond_channels or 10 * bands, widths, blocks, None)
        self.noise = _Encoder(bands, widths, blocks, emb)
        self.ups, self.dec = nn.ModuleList(), nn.ModuleList()
        for i in reversed(range(len(widths) - 1)):
            self.ups.append(nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2))
            self.dec.append(nn.ModuleList([_ResBlock(2 * widths[i], widths[i], emb)]
                                          + [_ResBlock(widths[i], widths[i], emb)
                                             for _ in range(blocks - 1)]))  # fmt: skip
        self.out = nn.Sequential(nn.GroupNorm(min(8, widths[0]), widths[0]), nn.SiLU(),
                                 nn.Conv2d(widths[0], bands, 3, padding=1))  # fmt: skip
        # Zero head: an untrained denoiser predicts x0 = 0, so sampling returns the base.
        nn.init.zeros_(self.out[-1].weight)
        nn.init.zeros_(self.out[-1].bias)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """x_t (n, band, y, x), t (n,) int steps, cond (n, C, y, x) -> predicted x0 (float)."""
        emb = self.time(step_embedding(t, self.emb_dim))
        feats = self.noise(x_t, emb, self.cond(cond, None))
        x = feats[-1]
        for up, blocks, skip in zip(self.ups, self.dec, reversed(feats[:-1]), strict=True):
            x = torch.cat([up(x), skip], 1)
            for block in blocks:
                x = block(x, emb)
        return self.out(x)
