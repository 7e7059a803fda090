"""SwinSTFM (Chen et al. 2023): Swin-Transformer encoders + cross-attention decoder.

One stream per reference pair (``fine_ref, coarse_ref, coarse_target``), the
streams blended with inverse-time weights by the shared engine; loss =
Charbonnier + ``1 - MS-SSIM`` (masked). Inputs are padded (replicate) to a
multiple of ``patch * window * 2 ** (stages - 1)`` (128 px at full size) and
cropped back.

Halo and tiling: self-attention makes the receptive field the whole padded
tile, and the window grid is anchored at the tile origin, so tiled inference is
*not* exactly the whole-image result for any finite halo. :attr:`halo` is one
deepest-stage window (``size_multiple`` fine pixels: 128 at full size), the
context beyond which attention weights decay to small values in practice; the
fuse engine should use tiles of >= 256 px plus this halo, and expect tile seams
below the model's own error (see the test for the measured tolerance at tiny
size), not bit-exactness.

Training validates on a held-back date (``val_split = "date"``) and, with fewer
than three pairs at small/full size, keeps the start (``date_fallback = "start"``):
its zero-initialised head makes the untrained network the ``naive_change``
estimate, and 30 unvalidated CPU steps moved it away from that (RMSE 0.0082 ->
0.0095 on estarfm-2001, benchmarks/model-zoo.md), as they did for ResStf/EDCSTFN.

Uncertainty: *ensemble spread* over flip test-time views plus the
two-reference disagreement (see :func:`pipeline.models.ganstfm.tta_predict`).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from pipeline.models._torch import TorchFusionModel
from pipeline.models.base import FusionInput, Prediction
from pipeline.models.ganstfm import tta_predict
from pipeline.models.losses import ms_ssim_loss
from pipeline.models.patches import Batch
from pipeline.models.swinstfm_net import SwinStfmNet, size_multiple


def charbonnier(pred: Tensor, truth: Tensor, valid: Tensor, eps: float = 1e-3) -> Tensor:
    """Masked Charbonnier loss ``mean(sqrt((p - t)^2 + eps^2))`` over valid pixels."""
    weight = valid.expand_as(pred)
    value = torch.sqrt((pred - truth) ** 2 + eps**2)
    return (value * weight).sum() / weight.sum().clamp_min(1.0)


class SwinStfm(TorchFusionModel):
    """SwinSTFM behind the common interface; see the module docstring."""

    name: ClassVar[str] = "swinstfm"
    n_refs: ClassVar[tuple[int, ...]] = (1, 2)
    train_refs: ClassVar[int] = 1
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {"dim": 8, "depths": [1, 1], "heads": [1, 2], "window": 4, "patch": 16,
                 "token": 2, "epochs": 2, "steps_per_epoch": 2, "batch_size": 2, "tta": 2,
                 "val_split": "date", "date_fallback": "rows"},
        "small": {"dim": 24, "depths": [2, 2, 2], "heads": [2, 4, 8], "window": 4, "patch": 48,
                  "token": 2, "tta": 2, "val_split": "date", "date_fallback": "start"},
        "full": {"dim": 68, "depths": [2, 2, 6, 2], "heads": [2, 4, 8, 16], "window": 8,
                 "patch": 128, "token": 2, "tta": 2, "lr": 2e-4,
                 "val_split": "date", "date_fallback": "start"},
    }  # fmt: skip

    def build(self, n_bands: int) -> torch.nn.Module:
        p = self.params
        return SwinStfmNet(n_bands, int(p["dim"]), tuple(p["depths"]), tuple(p["heads"]),
                           int(p["window"]), int(p["token"]))  # fmt: skip

    @property
    def multiple(self) -> int:
        """Side multiple (fine pixels) the network needs; inputs are padded to it."""
        p = self.params
        return size_multiple(int(p["token"]), int(p["window"]), len(p["depths"]))

    @property
    def halo(self) -> int:
        return self.multiple

    def forward(self, refs_coarse: Tensor, refs_fine: Tensor, tgt_coarse: Tensor,
                days: Tensor) -> Tensor:  # fmt: skip
        """(N, 1, B, h, w) refs + (N, B, h, w) target coarse -> (N, B, h, w); any h, w."""
        h, w = tgt_coarse.shape[-2:]
        m = self.multiple
        pad = (0, (-w) % m, 0, (-h) % m)
        stacked = torch.cat([refs_fine[:, 0], refs_coarse[:, 0], tgt_coarse], 1)
        if any(pad):
            stacked = F.pad(stacked, pad, mode="replicate")
        f0, c0, c1 = stacked.chunk(3, 1)
        return self.net(f0, c0, c1)[..., :h, :w]

    def loss(self, pred: Tensor, batch: Batch) -> Tensor:
        """Charbonnier + (1 - MS-SSIM), both over valid pixels."""
        truth, valid = batch.tgt_fine, batch.valid
        return charbonnier(pred, truth, valid) + ms_ssim_loss(pred, truth, valid)  # type: ignore[arg-type]

    def predict(self, inputs: FusionInput) -> Prediction:
        """Engine prediction averaged over flip views; sigma from their spread."""
        return tta_predict(self, inputs, int(self.params["tta"]))
