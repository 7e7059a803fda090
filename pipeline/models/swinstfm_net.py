"""SwinSTFM networks (Chen et al. 2023), Swin-Transformer blocks written in plain torch.

Two Swin encoders -- one for the fine reference, one shared by the reference
and target coarse images -- each: patch embedding, then stages of (shifted)
window self-attention blocks (depths 2, 2, 6, 2, window 8) joined by patch
merging. A cross-attention decoder walks back up: at every stage, windows of
fine-reference features attend first to the coarse *change* features
(coarse target - coarse reference), then (shifted windows) to the *fine -
coarse* features (fine reference - coarse reference: what the fine image adds
to the coarse one); the result is fused with the upsampled deeper decoder output
(patch expanding), and a final expansion returns to fine pixels. The network
returns a residual (zero-initialised head); the caller adds it to its base.

Inputs must be multiples of :func:`size_multiple` on both axes (the caller pads).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def size_multiple(patch: int, window: int, stages: int) -> int:
    """Side multiple (fine pixels) every input must have: windows tile every stage."""
    return patch * window * 2 ** (stages - 1)


def _windows(x: torch.Tensor, w: int) -> torch.Tensor:
    """(n, h, w, c) -> (n * windows, w*w, c)."""
    n, h, wd, c = x.shape
    x = x.reshape(n, h // w, w, wd // w, w, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, w * w, c)


def _unwindows(x: torch.Tensor, w: int, n: int, h: int, wd: int) -> torch.Tensor:
    """Inverse of :func:`_windows`."""
    x = x.reshape(n, h // w, wd // w, w, w, -1).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(n, h, wd, -1)


def _shift_mask(h: int, wd: int, w: int, s: int, device: torch.device) -> torch.Tensor:
    """(windows, w*w, w*w) additive mask keeping attention inside each pre-shift region."""
    img = torch.zeros(1, h, wd, 1, device=device)
    cuts = (slice(0, -w), slice(-w, -s), slice(-s, None))
    for k, (ys, xs) in enumerate((a, b) for a in cuts for b in cuts):
        img[:, ys, xs] = k
    ids = _windows(img, w)[..., 0]
    return (ids[:, :, None] != ids[:, None, :]).float() * -1e4


class WindowAttention(nn.Module):
    """Multi-head attention inside windows with a relative position bias; self or cross."""

    def __init__(self, dim: int, heads: int, window: int) -> None:
        super().__init__()
        self.heads, self.scale = heads, (dim // heads) ** -0.5
        self.q, self.kv, self.proj = (
            nn.Linear(dim, dim),
            nn.Linear(dim, 2 * dim),
            nn.Linear(dim, dim),
        )
        self.bias = nn.Parameter(torch.zeros(heads, (2 * window - 1) ** 2))
        nn.init.trunc_normal_(self.bias, std=0.02)
        ys, xs = torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")
        pos = torch.stack([ys.flatten(), xs.flatten()])
        rel = (pos[:, :, None] - pos[:, None, :]) + window - 1
        self.register_buffer("index", rel[0] * (2 * window - 1) + rel[1], persistent=False)

    def forward(
        self, x: torch.Tensor, ctx: torch.Tensor, mask: torch.Tensor | None
    ) -> torch.Tensor:
        b, t, c = x.shape
        q = self.q(x).reshape(b, t, self.heads, -1).transpose(1, 2)
        k, v = self.kv(ctx).reshape(b, t, 2, self.heads, -1).permute(2, 0, 3, 1, 4)
        attn = (q * self.scale) @ k.transpose(-2, -1) + self.bias[:, self.index]
        if mask is not None:
            attn = attn.reshape(-1, mask.shape[0], self.heads, t, t) + mask[None, :, None]
            attn = attn.reshape(b, self.heads, t, t)
        out = attn.softmax(-1) @ v
        return self.proj(out.transpose(1, 2).reshape(b, t, c))


class SwinBlock(nn.Module):
    """(Shifted-)window attention block with MLP; optional cross-attention context."""

    def __init__(self, dim: int, heads: int, window: int, shift: bool) -> None:
        super().__init__()
        self.window, self.shift = window, window // 2 if shift else 0
        self.norm1, self.norm_ctx, self.norm2 = (
            nn.LayerNorm(dim),
            nn.LayerNorm(dim),
            nn.LayerNorm(dim),
        )
        self.attn = WindowAttention(dim, heads, window)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x: torch.Tensor, ctx: torch.Tensor | None = None) -> torch.Tensor:
        """(n, h, w, c) -> same; ``ctx`` (same shape) switches to cross-attention."""
        n, h, wd, _ = x.shape
        w, s = self.window, self.shift
        y = self.norm1(x)
        c = y if ctx is None else self.norm_ctx(ctx)
        mask = None
        if s:
            y, c = (torch.roll(t, (-s, -s), (1, 2)) for t in (y, c))
            mask = _shift_mask(h, wd, w, s, x.device).to(y.dtype)
        out = self.attn(_windows(y, w), _windows(c, w), mask)
        out = _unwindows(out, w, n, h, wd)
        if s:
            out = torch.roll(out, (s, s), (1, 2))
        x = x + out
        return x + self.mlp(self.norm2(x))


class SwinEncoder(nn.Module):
    """Patch embedding + Swin stages; returns the features of every stage, (n, h, w, c)."""

    def __init__(self, bands: int, dim: int, depths: tuple[int, ...], heads: tuple[int, ...],
                 window: int, patch: int) -> None:  # fmt: skip
        super().__init__()
        self.embed = nn.Conv2d(bands, dim, patch, stride=patch)
        self.embed_norm = nn.LayerNorm(dim)
        self.stages, self.merges = nn.ModuleList(), nn.ModuleList()
        for i, (depth, head) in enumerate(zip(depths, heads, strict=True)):
            d = dim * 2**i
            blocks = [SwinBlock(d, head, window, shift=j % 2 == 1) for j in range(depth)]
            self.stages.append(nn.ModuleList(blocks))
            if i < len(depths) - 1:
                self.merges.append(nn.Sequential(nn.LayerNorm(4 * d), nn.Linear(4 * d, 2 * d)))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.embed_norm(self.embed(x).permute(0, 2, 3, 1))
        feats = []
        for i, blocks in enumerate(self.stages):
            for block in blocks:
                x = block(x)
            feats.append(x)
            if i < len(self.merges):
                x = torch.cat([x[:, a::2, b::2] for b in (0, 1) for a in (0, 1)], -1)
                x = self.merges[i](x)
        return feats


class _Expand(nn.Module):
    """Patch expanding: (n, h, w, c) -> (n, f*h, f*w, c_out) by a linear layer + pixel shuffle."""

    def __init__(self, dim: int, out: int, factor: int) -> None:
        super().__init__()
        self.factor, self.linear = factor, nn.Linear(dim, out * factor * factor)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.pixel_shuffle(self.linear(x).permute(0, 3, 1, 2), self.factor)
        return y.permute(0, 2, 3, 1)


class SwinStfmNet(nn.Module):
    """(fine_ref, coarse_ref, coarse_target) -> target fine, all (n, band, y, x).

    Parameters
    ----------
    bands : spectral bands.
    dim : embedding width of stage 1 (doubles every stage).
    depths, heads : blocks and attention heads per stage.
    window : attention window side in tokens.
    patch : patch side in fine pixels (token = patch x patch pixels).
    """

    def __init__(
        self,
        bands: int,
        dim: int = 68,
        depths: tuple[int, ...] = (2, 2, 6, 2),
        heads: tuple[int, ...] = (2, 4, 8, 16),
        window: int = 8,
        patch: int = 2,
    ) -> None:
        super().__init__()
        self.multiple = size_multiple(patch, window, len(depths))
        self.fine_enc = SwinEncoder(bands, dim, depths, heads, window, patch)
        self.coarse_enc = SwinEncoder(bands, dim, depths, heads, window, patch)
        dims = [dim * 2**i for i in range(len(depths))]
        self.cross = nn.ModuleList(
            nn.ModuleList([SwinBlock(d, h, window, False), SwinBlock(d, h, window, True)])
            for d, h in zip(dims, heads, strict=True)
        )
        self.ups = nn.ModuleList(_Expand(dims[i + 1], dims[i], 2) for i in range(len(dims) - 1))
        self.fuse = nn.ModuleList(nn.Linear(2 * d, d) for d in dims[:-1])
        self.head = _Expand(dims[0], bands, patch)
        # Zero residual at init: training starts from the caller's base.
        nn.init.zeros_(self.head.linear.weight)
        nn.init.zeros_(self.head.linear.bias)

    def forward(self, fine_ref: torch.Tensor, coarse_ref: torch.Tensor,
                coarse_target: torch.Tensor) -> torch.Tensor:  # fmt: skip
        """Standardised (n, band, y, x) images -> (n, band, y, x) residual (band-std units)."""
        fine = self.fine_enc(fine_ref)
        ref = self.coarse_enc(coarse_ref)
        change = [t - r for t, r in zip(self.coarse_enc(coarse_target), ref, strict=True)]
        detail = [f - r for f, r in zip(fine, ref, strict=True)]
        x = None
        for i in reversed(range(len(fine))):
            to_change, to_detail = self.cross[i]
            y = to_detail(to_change(fine[i], change[i]), detail[i])
            x = y if x is None else self.fuse[i](torch.cat([y, self.ups[i](x)], -1))
        return self.head(x).permute(0, 3, 1, 2)
