"""``resstf_prior``: the ResStf trunk correcting a physical start (a named variant, not ResStf).

Each stream starts from ``L_k + box(M_t - M_k)`` (the fine reference plus the
MODIS change averaged over ``change_window`` px, chosen among ``change_windows``
on the training dates by the baselines' rule, as ``blend``) and the 18-layer trunk learns a
correction from ``[M_t, L_k, M_k, M_t - M_k, L_k - M_k, s]`` and the products
``(L_k - M_k)_i * s_j`` (``s`` the smoothed change; standardised, the differences
explicit in float32; :meth:`~pipeline.models._torch.TorchFusionModel.pair_features`:
the products let it unmix the coarse change by fine-pixel class, as ESTARFM's
conversion coefficients do); the zero head makes the untrained model that
start exactly. One network shared by both streams, trained on cross-date tasks
(gap-matched, :func:`pipeline.models.patches.make_tasks`); streams blended by
the index-change weights of :mod:`pipeline.models.resstf` or inverse time
(``blend = "auto"``: the start rule's choice, so the untrained model is
the naive baseline the training dates prefer). ``stream_input = "coarse"``
reduces it to the paper's single-image input with a shared network.
``halo`` = max(half the change window in use + max(depth, linear kernel radius),
weight_radius (index blend only)): :meth:`~pipeline.models._torch.TorchFusionModel.pair_reach`.

Training (``small``/``full``): the linear path starts at its closed-form least-squares
solution (:mod:`pipeline.models.linear_fit`), the streams train and validate blended as
a fused day blends them (``train_blend``, :mod:`pipeline.models.streams`); the
``small`` preset takes 400 steps (synthetic season: about +7 % over its start as the
benchmark scores it, +9.9 % with the border rows; ``benchmarks/fusion-accuracy-notes.md``).

With fewer than three training dates the ``small``/``full`` presets validate each
direction on the other (``date_fallback = "reverse"``, :mod:`pipeline.models.few_dates`),
as EDCSTFN's do (measured reason in :mod:`pipeline.models.edcstfn`).
"""

from __future__ import annotations

from typing import Any, ClassVar

from torch import Tensor, nn

from pipeline.models.blend import START_BLENDS
from pipeline.models.blend_head import add_blend_head
from pipeline.models.resstf import IndexChangeBlend, ResStfNet


class ResStfPrior(IndexChangeBlend):
    """``resstf_prior``: the ResStf trunk correcting a physical start (module doc, ``pair``)."""

    name = "resstf_prior"
    n_refs = (1, 2)
    train_refs = 1
    outer_amp = False
    linear_path = True
    start_blends = START_BLENDS  # per-pixel change blend too (pipeline.models.blend)
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {
            "depth": 4, "width": 8, "weight_radius": 2, "stream_input": "pair",
            "change_window": 3, "change_windows": [1, 3],
            "val_split": "date", "blend": "auto", "date_fallback": "blocks",
            "epochs": 2, "steps_per_epoch": 2, "batch_size": 2, "patch": 16,
        },
        "small": {
            "depth": 8, "width": 32, "weight_radius": 16, "stream_input": "pair",
            "change_window": 33, "change_windows": [1, 9, 17, 33, 65],
            "val_split": "date", "blend": "auto", "date_fallback": "reverse",
            "epochs": 40, "steps_per_epoch": 10, "batch_size": 4, "patch": 64, "lr": 1e-3,
            "patience": 10, "budget_s": 600, "budget_s_gpu": 1800, "train_blend": True,
            "blend_head": True,
        },
        "full": {
            "depth": 18, "width": 64, "weight_radius": 16, "stream_input": "pair",
            "change_window": 65, "change_windows": [1, 9, 17, 33, 65],
            "val_split": "date", "blend": "auto", "date_fallback": "reverse",
            "epochs": 30, "steps_per_epoch": 20, "batch_size": 4, "patch": 128, "lr": 3e-4,
            "patience": 6, "budget_s": 300, "budget_s_gpu": 1800, "train_blend": True,
            "blend_head": True,
        },
    }  # fmt: skip

    def build(self, n_bands: int) -> nn.Module:
        if self.params["stream_input"] not in ("pair", "coarse"):
            raise ValueError(
                f"stream_input must be 'pair' or 'coarse', got {self.params['stream_input']!r}"
            )
        c_in = (
            self.pair_feature_count(n_bands) if self.params["stream_input"] == "pair" else n_bands
        )
        net = ResStfNet(c_in, n_bands, int(self.params["width"]), int(self.params["depth"]))
        return add_blend_head(net, self.params)  # a learned blend term (blend_head)

    @property
    def halo(self) -> int:
        depth = int(self.params["depth"])
        reach = depth if self.params["stream_input"] == "coarse" else self.pair_reach(depth)
        return max(reach, self.blend_reach())

    def forward(
        self, refs_coarse: Tensor, refs_fine: Tensor, tgt_coarse: Tensor, days: Tensor
    ) -> Tensor:
        tgt_coarse = tgt_coarse.float()
        if self.params["stream_input"] == "coarse":
            return tgt_coarse + self.unscale(self.trunk(self.net, self.standardise(tgt_coarse)))
        ref_c, ref_f = refs_coarse[:, 0].float(), refs_fine[:, 0].float()
        window = int(self.params["change_window"])
        x, base = self.pair_features(ref_c, ref_f, tgt_coarse, window)
        return base + self.unscale(self.trunk(self.net, x) + self.linear_term(x, days))
