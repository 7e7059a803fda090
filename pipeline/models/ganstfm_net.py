"""GAN-STFM networks (Tan et al. 2021): generator, multi-scale discriminator, autoencoder.

Generator: an encoder of residual blocks with *switchable normalisation* that
carries two streams -- a lateral stream from the target coarse image and a
trunk stream from the fine reference (of any date) -- and a plain residual
decoder on their concatenation. At full width (16, 32, 64, 128) and 6 bands it
has ~0.58 M parameters. Its last layer starts at zero (the engine's residual head).

Discriminator (as published): three spectral-norm residual discriminators on
the input at full, 1/2 and 1/4 resolution (nearest), each a chain of stride-2
residual blocks (batch norm, leaky ReLU, 3x3 stride-2 and 1x1 spectral-norm
convolutions) -- widths (32, 32, 64, 64, 128, 128, 256, 256) at full scale, one
block fewer at each coarser scale -- conditioned on the target coarse image
(input = image stacked with it); the mean of their scores is the output.

Autoencoder (the feature term of the published loss): four convolution blocks
down (16, 32, 64, 128; three stride-2) and three up with skip connections; its
encoder's features of prediction and truth are compared. The project trains it
on the region's fine images (:func:`train_autoencoder`) and freezes it.
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
    """Stride-2 residual block: BN, leaky ReLU, spectral-norm 3x3/2 then 1x1; 1x1/2 shortcut."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.residual = nn.Sequential(
            nn.BatchNorm2d(cin), nn.LeakyReLU(0.2),
            spectral_norm(nn.Conv2d(cin, cin, 3, stride=2, padding=1)),
            nn.BatchNorm2d(cin), nn.LeakyReLU(0.2), spectral_norm(nn.Conv2d(cin, cout, 1)),
        )  # fmt: skip
        self.transform = spectral_norm(nn.Conv2d(cin, cout, 1, stride=2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.transform(x) + self.residual(x)


def scale_widths(widths: tuple[int, ...], scale: int) -> tuple[int, ...]:
    """Block widths of the discriminator at scale ``1 / 2**scale``: the published pattern.

    (32, 32, 64, 64, 128, 128, 256, 256) at full scale; the 1/2 scale drops the
    second width, the 1/4 scale the third as well (one block fewer per scale).
    """
    return (widths[0], *widths[1 + scale :])


class MultiScaleDiscriminator(nn.Module):
    """Three conditional spectral-norm discriminators at scales 1, 1/2, 1/4.

    Input: (n, 2 * band, y, x) = image stacked with the target coarse image.
    Output: (n,) mean LSGAN score over scales and positions.
    """

    def __init__(
        self, bands: int, widths: tuple[int, ...] = (32, 32, 64, 64, 128, 128, 256, 256)
    ) -> None:
        super().__init__()
        self.scales = nn.ModuleList()
        for scale in range(3):
            chans = (2 * bands, *scale_widths(tuple(widths), scale))
            blocks = [_SNBlock(a, b) for a, b in itertools.pairwise(chans)]
            self.scales.append(nn.Sequential(*blocks, spectral_norm(nn.Conv2d(chans[-1], 1, 1))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scores = []
        for i, net in enumerate(self.scales):
            xi = x if i == 0 else F.interpolate(x, scale_factor=0.5**i)
            scores.append(net(xi).flatten(1).mean(1))
        return torch.stack(scores).mean(0)


def _block(cin: int, cout: int, down: bool = False, up: bool = False) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Upsample(scale_factor=2)] if up else []
    layers += [_conv3(cin, cout, stride=2 if down else 1), nn.LeakyReLU(0.2)]
    return nn.Sequential(*layers)


class AutoEncoder(nn.Module):
    """Fine image -> itself through four levels; :meth:`features` is the loss's encoder.

    Parameters
    ----------
    bands : spectral bands (standardised reflectance in and out).
    widths : channels of the four encoder levels, (16, 32, 64, 128) as published.
    """

    def __init__(self, bands: int, widths: tuple[int, ...] = (16, 32, 64, 128)) -> None:
        super().__init__()
        w = widths
        self.encoder = nn.Sequential(
            _block(bands, w[0]), _block(w[0], w[1], down=True),
            _block(w[1], w[2], down=True), _block(w[2], w[3], down=True),
        )  # fmt: skip
        self.up = nn.ModuleList([_block(w[3], w[2], up=True), _block(2 * w[2], w[1], up=True),
                                 _block(2 * w[1], w[0], up=True)])  # fmt: skip
        self.out = nn.Conv2d(2 * w[0], bands, 1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(n, band, y, x) -> (n, widths[-1], y / 8, x / 8) encoder features."""
        return self.encoder(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for layer in self.encoder:
            x = layer(x)
            skips.append(x)
        for layer, skip in zip(self.up, reversed(skips[:-1]), strict=True):
            x = torch.cat([skip, layer(x)], 1)
        return self.out(x)


def train_autoencoder(
    images: torch.Tensor, widths: tuple[int, ...], steps: int, patch: int, seed: int
) -> tuple[AutoEncoder, float]:
    """Train an :class:`AutoEncoder` on random patches of ``images`` and freeze it.

    Parameters
    ----------
    images : (n, band, y, x) standardised fine images of the region, float32, no NaN.
    widths : encoder widths.
    steps : Adam steps (lr 1e-3, batch 8, MSE reconstruction).
    patch : patch side in px (a multiple of 8; clipped to the image).

    Returns
    -------
    The frozen autoencoder (eval mode) and its last reconstruction MSE.
    """
    gen = torch.Generator().manual_seed(seed)
    ae = AutoEncoder(images.shape[1], widths)
    opt = torch.optim.Adam(ae.parameters(), lr=1e-3)
    side = max(8, min(patch, *images.shape[-2:]) // 8 * 8)
    loss = torch.zeros(())
    for _ in range(steps):
        n = torch.randint(0, images.shape[0], (8,), generator=gen)
        y = torch.randint(0, images.shape[-2] - side + 1, (8,), generator=gen)
        x = torch.randint(0, images.shape[-1] - side + 1, (8,), generator=gen)
        batch = torch.stack([images[a, :, b : b + side, c : c + side]
                             for a, b, c in zip(n, y, x, strict=True)])  # fmt: skip
        loss = F.mse_loss(ae(batch), batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    ae.eval().requires_grad_(False)
    return ae, float(loss.detach())
