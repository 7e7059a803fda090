"""Training what is scored: per-reference streams blended as a prediction blends them.

ResStf-prior and EDCSTFN run one stream per reference pair (``train_refs = 1``)
and :meth:`~pipeline.models._torch.TorchFusionModel.predict` blends the streams
with inverse-time weights (or takes the nearest), as the start rule chose. When
each stream is trained and validated on its own, it learns to correct errors
that the blend already cancels (the change since the earlier pair and the change
until the later one err in opposite directions): on the synthetic season 200
such steps lowered the single-stream held-back RMSE by 17 % yet *raised* the
blended target's from 0.00581 (closed-form linear start) to 0.00598. With
``train_blend`` (default on in the ``small``/``full`` presets of those models)
the engine gives them the tasks a fused day has (each pair predicted from the
reference-pair rule's pairs, :func:`blend_tasks`), runs every stream on the same
patch and scores the blend (:func:`forward`), in training and validation alike.
With the start rule's ``"change"`` blend (:mod:`pipeline.models.blend`) the weights
are per pixel, from each reference's coarse change (:func:`change_weights`), as
``predict`` computes them on the whole image (:func:`image_weights`, with the learned
term of :mod:`pipeline.models.blend_head` where the model has one).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from pipeline.models.base import Scene
from pipeline.models.baselines import rule_tasks
from pipeline.models.blend import CHANGE_BLEND, setting_of
from pipeline.models.blend_head import apply_head, box
from pipeline.models.blend_head import image_weights as image_weights  # for predict
from pipeline.models.pairs import choose_scenes
from pipeline.models.patches import Task

if TYPE_CHECKING:
    from pipeline.models._torch import TorchFusionModel

#: stream blends whose weights follow from the days alone (the index blend needs images)
DAY_BLENDS = ("time", "nearest")
#: blends the engine trains through (:func:`forward` computes their weights per batch)
TRAINED_BLENDS = (*DAY_BLENDS, CHANGE_BLEND)


def blends_streams(model: TorchFusionModel) -> bool:
    """Whether the engine trains ``model`` on the blend of its streams (module doc).

    A two-reference model (STFDiff: its blend is inside ``forward``) gets the same
    tasks and validation: the reference-pair rule's pairs, a single one repeated.
    """
    return (
        bool(model.params.get("train_blend", False))
        and model.train_refs in (1, 2)
        and model.blend_name() in TRAINED_BLENDS
        and not getattr(model, "same_date_only", False)
    )


def blend_tasks(pairs: Sequence[Scene]) -> list[Task]:
    """Each pair predicted from the reference-pair rule's pairs among the others
    (:func:`~pipeline.models.baselines.rule_tasks`, the start rule's own tasks).

    Two references each (a single one, where one side has none, is repeated: the
    blend of a stream with itself is that stream), so every batch stacks.
    """
    return [Task((refs[0], refs[-1]), target) for refs, target in rule_tasks(pairs)]


def rule_refs(pairs: Sequence[Scene], date: dt.date) -> tuple[Scene, Scene]:
    """The reference-pair rule's pairs for ``date`` (one repeated where a side has none)."""
    refs = choose_scenes(pairs, date, (1, 2))
    return (refs[0], refs[-1])


def day_weights(days: Tensor, blend: str) -> Tensor:
    """(N, R) stream weights from signed days to each reference, as ``predict`` blends.

    ``"time"``: proportional to 1 / |days| (a reference on the target date takes all);
    ``"nearest"``: all on the smallest |days| (the earlier on a tie, as
    :func:`~pipeline.models.base.nearest_ref`; days are ordered by reference date).
    """
    dist = days.abs().float()
    if blend == "nearest":
        first = torch.argmin(dist, dim=1)  # argmin returns the first minimum
        return torch.nn.functional.one_hot(first, dist.shape[1]).float()
    on_date = dist == 0
    weights = torch.where(on_date.any(1, keepdim=True), on_date.float(), 1.0 / dist.clamp(min=1))
    return weights / weights.sum(1, keepdim=True)


def change_weights(
    refs_coarse: Tensor, tgt_coarse: Tensor, days: Tensor, setting: dict[str, Any]
) -> Tensor:
    """(N, R, h, w) per-pixel weights of :func:`pipeline.models.blend.change_weights`.

    ``w_k ∝ |days_k|^-p / (mean_b |box_v(C_t - C_k)| + eps)`` on NaN-free inputs (the
    engine fills them), the box replicate-padded like the numpy box's ``nearest`` edges;
    a reference on the target date takes all (:func:`day_weights`).
    """
    v, eps, power = int(setting["window"]), float(setting["eps"]), float(setting["day_power"])
    diff = box(tgt_coarse[:, None].float() - refs_coarse.float(), v)  # (N, R, B, h, w)
    dist = days.abs().float().clamp(min=1)[:, :, None, None]
    inv = dist.pow(-power) / (diff.abs().mean(2) + eps)
    weights = inv / inv.sum(1, keepdim=True)
    on_date = (days == 0).any(1)
    if bool(on_date.any()):
        fixed = day_weights(days, "time")[:, :, None, None].expand_as(weights)
        weights = torch.where(on_date[:, None, None, None], fixed, weights)
    return weights


def stream_weights(
    model: TorchFusionModel, refs_coarse: Tensor, tgt_coarse: Tensor, days: Tensor
) -> Tensor:
    """(N, R, 1 or h, 1 or w) weights of the model's blend: per pixel for ``"change"`` and
    with a learned term (:mod:`pipeline.models.blend_head`, ``blend_head``)."""
    blend = model.blend_name()
    if blend == CHANGE_BLEND:
        setting = setting_of(model.params).to_params()
        weights = change_weights(refs_coarse, tgt_coarse, days, setting)
    else:
        weights = day_weights(days, blend)[:, :, None, None]
    return apply_head(model, weights, refs_coarse, tgt_coarse, days)


def forward(
    model: TorchFusionModel,
    refs_coarse: Tensor,
    refs_fine: Tensor,
    tgt_coarse: Tensor,
    days: Tensor,
) -> Tensor:
    """The model's prediction (N, B, h, w): its streams blended when it has more refs than
    ``train_refs`` (one ``forward`` per reference, weights of :func:`stream_weights`)."""
    n = refs_coarse.shape[1]
    if n <= model.train_refs:
        return model.forward(refs_coarse, refs_fine, tgt_coarse, days)
    weights = stream_weights(model, refs_coarse, tgt_coarse, days)
    out: Tensor | float = 0.0
    for k in range(n):
        stream = model.forward(
            refs_coarse[:, k : k + 1], refs_fine[:, k : k + 1], tgt_coarse, days[:, k : k + 1]
        )
        out = out + weights[:, k, None] * stream
    return out  # type: ignore[return-value]
