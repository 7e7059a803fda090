"""GAN-STFM networks (Tan et al. 2021): residual generator and multi-scale discriminator.

Generator: an encoder of residual blocks with *switchable normalisation* that
carries two streams -- a lateral stream from the target coarse image and a
trunk stream from the fine reference (of any date) -- and a plain residual
decoder on their concatenation. Discriminator: three spectral-norm residual
discriminators at full, 1/2 and 1/4 resolution, conditioned on the target coarse
image (input = prediction or truth stacked with it); their scores are averaged.
At full width (16, 32, 64, 128) and 6 bands the generator has ~0.58 M parameters.
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


class SwitchNorm2d(nn.Module):
    """Switchable normalisation (Luo et al. 2019): learned mix of instance, layer, batch stats.

    Batch statistics use a running average in eval mode, so inference on a
    single tile does not depend on what else is in the batch.
    """

    def __init__(self, channels: int, momentum: float = 0.1, eps: float = 1e-5) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(1, channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.mean_weight = nn.Parameter(torch.ones(3))
        self.var_weight = nn.Parameter(torch.ones(3))
        self.register_buffer("running_mean", torch.zeros(1, channels, 1))
        self.register_buffer("running_var", torch.ones(1, channels, 1))
        self.momentum, self.eps = momentum, eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        flat = x.reshape(n, c, -1).float()
        mean_in, var_in = flat.mean(-1, keepdim=True), flat.var(-1, keepdim=True, unbiased=False)
        mean_ln = mean_in.mean(1, keepdim=True)
        var_ln = (var_in + mean_in**2).mean(1, keepdim=True) - mean_ln**2
        if self.training:
            mean_bn = mean_in.mean(0, keepdim=True)
            var_bn = (var_in + mean_in**2).mean(0, keepdim=True) - mean_bn**2
            with torch.no_grad():
                self.running_mean.lerp_(mean_bn, self.momentum)
                self.running_var.lerp_(var_bn, self.momentum)
        else:
            mean_bn, var_bn = self.running_mean, self.running_var
        mw, vw = torch.softmax(self.mean_weight, 0), torch.softmax(self.var_weight, 0)
        mean = mw[0] * mean_in + mw[1] * mean_ln + mw[2] * mean_bn
        var = vw[0] * var_in + vw[1] * var_ln + vw[2] * var_bn
        out = (flat - mean) / torch.sqrt(var + self.eps)
        return out.reshape(n, c, h, w).to(x.dtype) * self.weight + self.bias


def _conv3(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    # Replication padding: reflectance at a tile edge continues, it does not drop to 0.
    return nn.Sequential(nn.ReplicationPad2d(1), nn.Conv2d(cin, cout, 3, stride=stride))


class _TwoStreamBlock(nn.Module):
    """Residual block with switchable norm: lateral(coarse) and trunk(fine) + lateral."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        mid = min(cin, cout)
        self.residual = nn.Sequential(
            SwitchNorm2d(cin), nn.LeakyReLU(0.2), _conv3(cin, mid),
            SwitchNorm2d(mid), nn.LeakyReLU(0.2), nn.Conv2d(mid, cout, 1),
        )  # fmt: skip
        self.transform = nn.Sequential(_conv3(cin, mid), nn.Conv2d(mid, cout, 1), nn.LeakyReLU(0.2))

    def forward(self, streams: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        lateral = self.transform(streams[0])
        return lateral, self.residual(streams[1]) + lateral


class _ResBlock(nn.Module):
    """Plain residual block of the decoder (3x3 trunk + 1x1 shortcut)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        mid = min(cin, cout)
        self.residual = nn.Sequential(_conv3(cin, mid), nn.LeakyReLU(0.2), nn.Conv2d(mid, cout, 1))
        self.transform = nn.Conv2d(cin, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.residual(x) + self.transform(x)


class Generator(nn.Module):
    """Fine reference + target coarse -> target fine (same size, any H, W).

    Parameters
    ----------
    bands : spectral bands in and out.
    widths : encoder widths, (16, 32, 64, 128) in the paper.
    """

    def __init__(self, bands: int, widths: tuple[int, ...] = (16, 32, 64, 128)) -> None:
        super().__init__()
        chans = (bands, *widths)
        self.encoder = nn.Sequential(*[_TwoStreamBlock(a, b) for a, b in itertools.pairwise(chans)])
        rev = (2 * widths[-1], *reversed(widths))
        self.decoder = nn.Sequential(
            *[_ResBlock(a, b) for a, b in itertools.pairwise(rev)],
            nn.Conv2d(widths[0], bands, 1),
        )
        # Zero-initialised output: training starts from the caller's base image, not noise.
        nn.init.zeros_(self.decoder[-1].weight)
        nn.init.zeros_(self.decoder[-1].bias)

    def forward(self, fine_ref: torch.Tensor, coarse_target: torch.Tensor) -> torch.Tensor:
        """(n, band, y, x) fine reference and target coarse -> (n, band, y, x) prediction."""
        return self.decoder(torch.cat(self.encoder((coarse_target, fine_ref)), 1))


class _SNBlock(nn.Module):
    """Stride-2 residual block with spectral-norm convolutions."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.residual = nn.Sequential(
            nn.LeakyReLU(0.2), spectral_norm(nn.Conv2d(cin, cin, 3, stride=2, padding=1)),
            nn.LeakyReLU(0.2), spectral_norm(nn.Conv2d(cin, cout, 1)),
        )  # fmt: skip
        self.transform = spectral_norm(nn.Conv2d(cin, cout, 1, stride=2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.transform(x) + self.residual(x)


class MultiScaleDiscriminator(nn.Module):
    """Three conditional spectral-norm discriminators at scales 1, 1/2, 1/4.

    Input: (n, 2 * band, y, x) = image stacked with the target coarse image.
    Output: (n,) mean LSGAN score over scales and positions.
    """

    def __init__(self, bands: int, widths: tuple[int, ...] = (32, 64, 128, 256)) -> None:
        super().__init__()
        self.scales = nn.ModuleList()
        for depth in (len(widths), len(widths) - 1, len(widths) - 2):
            chans = (2 * bands, *widths[: max(1, depth)])
            blocks = [_SNBlock(a, b) for a, b in itertools.pairwise(chans)]
            self.scales.append(nn.Sequential(*blocks, spectral_norm(nn.Conv2d(chans[-1], 1, 1))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scores = []
        for i, net in enumerate(self.scales):
            xi = x if i == 0 else F.avg_pool2d(x, 2**i)
            scores.append(net(xi).flatten(1).mean(1))
        return torch.stack(scores).mean(0)
