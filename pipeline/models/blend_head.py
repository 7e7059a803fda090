"""A learned per-pixel term of the stream blend, trained with the network (``blend_head``).

The two-stream models blend their streams with weights ``w_k`` of the start rule's blend
(day or change weights, :mod:`pipeline.models.streams`, :mod:`pipeline.models.blend`).
With ``blend_head`` the logits get a learned term of per-stream features::

    w_k = softmax_k( log(w_k) + theta . f_k ),   f_k = [log(|C_t - C_k| + 1e-3),
                                                       log(|box_W(C_t - C_k)| + 1e-3),
                                                       log max(|days_k|, 1)]

(band-mean magnitudes; ``W`` the change window, within the halo). ``theta`` starts at
zero, so the untrained model is exactly the start rule's blend, and the engine trains it
with the network on the blended tasks (``train_blend``). Measured: inert so far (edcstfn,
synthetic season: no trunk epoch beat the closed-form linear start, so the engine kept that
state with theta = 0; ``benchmarks/fusion-accuracy-notes.md``). Why try: the diagnosis fitted
such a logistic weight on the synthetic season's training tasks and it scored 0.00593 on
the target against 0.00597 for the change rule and 0.00604 for the day blend
(``benchmarks/blend_diagnosis.py``); estarfm-2001 (borrowed weights) 0.00648 vs 0.00654.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pipeline.models.base import Scene
from pipeline.models.baselines import box_mean

if TYPE_CHECKING:
    from pipeline.models._torch import TorchFusionModel

#: offset of the magnitudes' logarithm (reflectance; below the sensors' noise)
LOG_EPS = 1e-3
N_FEATURES = 3


class BlendHead(nn.Module):
    """``theta`` (3,) float32, zero-initialised: the learned term is ``theta . f_k``."""

    def __init__(self) -> None:
        super().__init__()
        self.theta = nn.Parameter(torch.zeros(N_FEATURES))


def add_blend_head(net: nn.Module, params: dict[str, Any]) -> nn.Module:
    """``net`` with a :class:`BlendHead` as ``net.blend_head`` when ``params["blend_head"]``."""
    if params.get("blend_head"):
        net.add_module("blend_head", BlendHead())
    return net


def head_of(model: TorchFusionModel) -> BlendHead | None:
    """The model's blend head, or None."""
    head = getattr(model.net, "blend_head", None)
    return head if isinstance(head, BlendHead) else None


def box(diff: Tensor, v: int) -> Tensor:
    """``v`` x ``v`` box mean over the last two dims, replicate-padded (the numpy box's
    ``nearest`` edges on NaN-free input)."""
    if v <= 1:
        return diff
    shape = diff.shape
    flat = F.pad(diff.reshape(-1, 1, *shape[-2:]), (v // 2,) * 4, mode="replicate")
    return F.avg_pool2d(flat, v, stride=1).reshape(shape)


def features(refs_coarse: Tensor, tgt_coarse: Tensor, days: Tensor, window: int) -> Tensor:
    """(N, R, 3, h, w) features ``f_k`` of the module doc from NaN-free batch inputs."""
    diff = tgt_coarse[:, None].float() - refs_coarse.float()  # (N, R, B, h, w)
    raw = torch.log(diff.abs().mean(2) + LOG_EPS)
    smooth = torch.log(box(diff, window).abs().mean(2) + LOG_EPS)
    day = torch.log(days.abs().float().clamp(min=1))[:, :, None, None].expand_as(raw)
    return torch.stack([raw, smooth, day], dim=2)


def apply_head(
    model: TorchFusionModel, weights: Tensor, refs_coarse: Tensor, tgt_coarse: Tensor, days: Tensor
) -> Tensor:
    """(N, R, h, w) weights with the learned term; ``weights`` unchanged without a head."""
    head = head_of(model)
    if head is None or refs_coarse.shape[1] < 2:
        return weights
    window = 2 * model.change_reach() + 1
    term = torch.einsum(
        "f,nrfhw->nrhw", head.theta, features(refs_coarse, tgt_coarse, days, window)
    )
    return torch.softmax(torch.log(weights.clamp(min=1e-12)) + term, dim=1)


def image_weights(model: TorchFusionModel, refs: Sequence[Scene], target: Scene) -> np.ndarray:
    """(S, 1 or B, y, x) weights ``predict`` blends with: ``model.stream_weights`` and the
    learned term on the whole image (NaN-aware boxes; as :func:`apply_head` on patches)."""
    base = model.stream_weights(refs, target)
    head = head_of(model)
    if head is None or len(refs) < 2:
        return base
    theta = head.theta.detach().cpu().double().numpy()
    window = 2 * model.change_reach() + 1
    term = []
    for ref in refs:
        diff = target.coarse.astype(np.float64) - ref.coarse
        days = max(abs((ref.date - target.date).days), 1)
        feats = (
            np.log(np.nanmean(np.abs(diff), axis=0) + LOG_EPS),
            np.log(np.nanmean(np.abs(box_mean(diff, window)), axis=0) + LOG_EPS),
            np.log(days),
        )
        term.append(np.nan_to_num(sum(t * f for t, f in zip(theta, feats, strict=True))))
    logits = np.log(np.maximum(base, 1e-12)) + np.stack(term)[:, None]
    logits -= logits.max(0, keepdims=True)
    weights = np.exp(logits)
    return weights / weights.sum(0, keepdims=True)
