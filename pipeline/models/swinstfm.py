"""SwinSTFM (Chen et al. 2023): Swin-Transformer encoders + cross-attention decoder.

One stream per reference pair (``fine_ref, coarse_ref, coarse_target``), the
streams blended with inverse-time weights by the shared engine. What follows the
reference and what deviates from it (named):

* **Normalisation**: the reference scales reflectance to [-1, 1]; here every
  image is standardised per band from the training pairs (the engine's
  recipe), which serves the same purpose without a fixed range.
* **Cross-attention** over the coarse change and the fine - coarse features
  (:mod:`pipeline.models.swinstfm_net`).
* **Output**: the reference ends in a tanh; here the engine's residual head
  (deviation): the network's output, in band-std units and zero at
  initialisation, is added to ``fine ref + coarse change box-smoothed over
  change_window px`` (the window chosen among ``change_windows`` on the
  training dates by the baselines' rule), so an untrained network is that smoothed
  change and a CPU budget is spent on the correction, not on learning identity.
* **Linear path** (deviation, the engine's): a zero-initialised ``linear_kernel`` px
  convolution from :meth:`~pipeline.models._torch.TorchFusionModel.pair_features`
  beside the Swin trunk, so the unmixing-like linear correction the CPU budget can
  find (ESTARFM's conversion coefficients) does not have to emerge from attention.
* **Loss**: Charbonnier + ``ssim_weight`` x (1 - MS-SSIM), the Charbonnier term
  on errors in band-std units so that it, not SSIM, dominates (each term's share
  at the first and last epoch in ``FitReport.notes``).
* **Augmentation**: the engine's flips and 90-degree rotations.
* **Optimiser**: the engine's AdamW with warm-up and cosine decay (the
  reference: Adam 1e-4 for many GPU epochs; the CPU presets use a larger rate).

Training: cross-date tasks (``small``/``full``: the reference-pair rule's, the two
streams scored blended, ``train_blend``), the linear path started at its closed-form
least-squares fit (:mod:`pipeline.models.linear_fit`), validation on a held-back date
when there are three or more training dates; the engine keeps the start only when
training does not beat it on held-back data, and says so in the report. With fewer
dates the ``small``/``full`` presets train each direction and validate on the other,
keeping the start when nothing transfers (:data:`~pipeline.models.ganstfm.RECIPE`,
measured reason there; the report's task says so); ``tiny`` (and ``date_fallback =
"rows"``) trains on the two dates and validates on held-back rows.

Halo and tiling: self-attention makes the receptive field the whole padded
tile, and the window grid is anchored at the tile origin, so tiled inference is
*not* exactly the whole-image result for any finite halo. :attr:`halo` is one
deepest-stage window (``size_multiple`` fine pixels: 128 at full size) or half
the largest change window; expect tile seams below the model's own error (the
test states the tolerance at tiny size), not bit-exactness.

Uncertainty: *ensemble spread* over flip test-time views plus the
two-reference disagreement and the start's error model (:mod:`pipeline.models.error_model`:
a kept start's views agree exactly), calibrated on the held-back date (see
:func:`pipeline.models.ganstfm.tta_predict` and :func:`~pipeline.models.ganstfm.calibrate_tta`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from pipeline.models._torch import TorchFusionModel
from pipeline.models.base import FusionInput, Prediction, Scene
from pipeline.models.blend import START_BLENDS
from pipeline.models.error_model import fit_error_model
from pipeline.models.ganstfm import RECIPE, calibrate_tta, loss_shares, tta_predict
from pipeline.models.losses import ms_ssim_loss
from pipeline.models.patches import Batch
from pipeline.models.swinstfm_net import SwinStfmNet, size_multiple

_COMMON: dict[str, Any] = {"val_split": "date", "date_fallback": "rows", "ssim_weight": 1.0,
                           "token": 2, "tta": 2}  # fmt: skip


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
    outer_amp: ClassVar[bool] = False
    linear_path: ClassVar[bool] = True
    start_blends: ClassVar[tuple[str, ...]] = START_BLENDS  # per-pixel change blend too
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {**_COMMON, "dim": 8, "depths": [1, 1], "heads": [1, 2], "window": 4,
                 "patch": 16, "epochs": 2, "steps_per_epoch": 2, "batch_size": 2,
                 "change_window": 3, "change_windows": [1, 3]},
        "small": {**_COMMON, **RECIPE, "dim": 24, "depths": [2, 2], "heads": [2, 4], "window": 4,
                  "patch": 64, "batch_size": 4, "lr": 5e-4, "epochs": 30, "steps_per_epoch": 20,
                  "patience": 6, "budget_s": 300, "budget_s_gpu": 1800,
                  "change_window": 17, "change_windows": [1, 9, 17, 33]},
        "full": {**_COMMON, **RECIPE, "dim": 68, "depths": [2, 2, 6, 2], "heads": [2, 4, 8, 16],
                 "window": 8, "patch": 128, "batch_size": 4, "lr": 2e-4, "epochs": 30,
                 "steps_per_epoch": 20, "patience": 6, "budget_s": 600, "budget_s_gpu": 1800,
                 "change_window": 33, "change_windows": [1, 9, 17, 33, 65]},
    }  # fmt: skip

    def build(self, n_bands: int) -> torch.nn.Module:
        p = self.params
        self.loss_log: list[dict[str, float]] = []
        return SwinStfmNet(n_bands, int(p["dim"]), tuple(p["depths"]), tuple(p["heads"]),
                           int(p["window"]), int(p["token"]))  # fmt: skip

    @property
    def multiple(self) -> int:
        """Side multiple (fine pixels) the network needs; inputs are padded to it."""
        p = self.params
        return size_multiple(int(p["token"]), int(p["window"]), len(p["depths"]))

    @property
    def halo(self) -> int:
        return max(self.multiple, self.linear_reach())

    def forward(self, refs_coarse: Tensor, refs_fine: Tensor, tgt_coarse: Tensor,
                days: Tensor) -> Tensor:  # fmt: skip
        """(N, 1, B, h, w) refs + (N, B, h, w) target coarse -> (N, B, h, w); any h, w."""
        ref_f, ref_c, tgt_c = refs_fine[:, 0].float(), refs_coarse[:, 0].float(), tgt_coarse.float()
        h, w = tgt_c.shape[-2:]
        m = self.multiple
        pad = (0, (-w) % m, 0, (-h) % m)
        stacked = torch.cat([self.standardise(x) for x in (ref_f, ref_c, tgt_c)], 1)
        if any(pad):
            stacked = F.pad(stacked, pad, mode="replicate")
        residual = self.trunk(self.net, *stacked.chunk(3, 1))[..., :h, :w]
        features, base = self.pair_features(ref_c, ref_f, tgt_c, int(self.params["change_window"]))
        return base + self.unscale(residual + self.linear_term(features))

    def loss(self, pred: Tensor, batch: Batch) -> Tensor:
        """Charbonnier (band-std units) + ssim_weight x (1 - MS-SSIM), over valid pixels."""
        truth, valid = batch.tgt_fine, batch.valid
        std = self._stats(pred)[1]
        terms = {"charbonnier": charbonnier(pred / std, truth / std, valid)}  # type: ignore[operator, arg-type]
        if float(self.params["ssim_weight"]) > 0:
            terms["ssim"] = float(self.params["ssim_weight"]) * ms_ssim_loss(pred, truth, valid)  # type: ignore[arg-type]
        self.loss_log.append({k: float(v.detach()) for k, v in terms.items()})
        return sum(terms.values())  # type: ignore[return-value]

    def fit_notes(self) -> dict[str, Any]:
        """Each loss term's share of the total over the first and the last epoch."""
        return loss_shares(self.loss_log, int(self.params["steps_per_epoch"]))

    def select_start(self, pairs: Sequence[Scene]) -> None:
        """The start rule (engine), then the start's error model for the sigma."""
        super().select_start(pairs)
        window = int(self.params["change_window"])
        self.params["error_model"] = fit_error_model(list(pairs), window, self.blend_name())

    def select_after(self, held: Sequence[Scene], pairs: Sequence[Scene]) -> None:
        """Calibrate the test-time-augmentation sigma on the held-back date (if any)."""
        calibrate_tta(self, held, pairs)

    def predict(self, inputs: FusionInput) -> Prediction:
        """Engine prediction averaged over flip views; sigma from their spread."""
        return tta_predict(self, inputs, int(self.params["tta"]))
