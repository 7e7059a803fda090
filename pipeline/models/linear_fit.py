"""Closed-form start of the linear path: ridge least squares on the training tasks.

The models fed :meth:`~pipeline.models._torch.TorchFusionModel.pair_features`
carry a ``linear_kernel``-px convolution from those features to the output
(``net.linear_path``, zero-initialised beside the trunk). The best such
convolution for the training tasks has a closed form, so the engine solves it
before the first gradient step instead of waiting for AdamW to find it: on the
synthetic season the closed form (streams blended, see below) lowered the target's
RMSE by 8.4 % before any step, where 200 AdamW steps of the whole network had found
4-6 % (``benchmarks/fusion-accuracy-notes.md``). The trunk then learns only what
is not linear.

The fit uses a random subsample of the valid, not held-back training pixels of
every task (``linear_pixels`` in all), the streams of one target blended as
``predict`` blends them, the same full-image features a prediction tile computes
(replicate padding) and the residual ``(label - base) / band std`` that the
zero-initialised trunk leaves. The engine keeps the result only when it lowers
the held-back loss (:func:`pipeline.models.training.fit`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from pipeline.models.base import Scene
from pipeline.models.patches import PatchSampler, fill_invalid

if TYPE_CHECKING:
    from collections.abc import Iterable

    from pipeline.models._torch import TorchFusionModel


def can_fit(model: TorchFusionModel) -> bool:
    """Whether ``model`` has a linear path whose residual target is ``label - base``.

    Needs ``net.linear_path``, one reference per stream, and the change skip
    (EDCSTFN's ``skip = "none"`` predicts the image itself, not a residual); a model
    with its own ``fit_linear_start(sampler, pixels=, seed=)`` (STFDiff: both
    references in one pass) needs only the path.
    """
    if hasattr(model, "fit_linear_start"):
        return getattr(model.net, "linear_path", None) is not None
    return (
        getattr(model.net, "linear_path", None) is not None
        and model.train_refs == 1
        and model.params.get("skip", "change") == "change"
        and model.params.get("stream_input", "pair") == "pair"
    )


def _features(
    model: TorchFusionModel, ref: Scene, target: Scene, k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Padded pair features (F, y + k - 1, x + k - 1) float64 and the base (B, y, x)."""
    rc, rf, tc = fill_invalid(ref.coarse[None], ref.fine[None], target.coarse)
    as_t = lambda a: torch.as_tensor(a, device=model.device)[None].float()  # noqa: E731
    with torch.no_grad():
        feats, base = model.pair_features(
            as_t(rc[0]), as_t(rf[0]), as_t(tc), int(model.params["change_window"])
        )
    r = k // 2
    padded = F.pad(feats, (r, r, r, r), mode="replicate")[0].double().cpu()
    return padded, base[0].double().cpu()


def _sign(ref: Scene, target: Scene) -> float:
    """Sign of the days from ``target`` to ``ref`` (-1 earlier, +1 later, 0 same date)."""
    return float(np.sign((ref.date - target.date).days))


def _target_rows(
    model: TorchFusionModel,
    sampler: PatchSampler,
    indices: list[int],
    n: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray] | None:
    """(n, F k^2 + 1) design rows and (n, B) residuals of one target's sampled pixels.

    ``indices`` are the sampler's tasks of one target date (one reference each, or
    the blended tasks' two); their streams are blended as a prediction blends them
    (``stream_weights``), so the least squares minimises the error of the blended
    prediction, not of each stream (stream errors of opposite sign cancel in the
    blend and need no correction).
    """
    tasks = [sampler.tasks[i] for i in indices]
    valid = np.logical_and.reduce([sampler.valid[i] for i in indices])
    row0, row1 = sampler.rows
    valid[:row0], valid[row1:] = False, False
    ys, xs = np.nonzero(valid)
    if ys.size == 0:
        return None
    pick = rng.choice(ys.size, size=min(n, ys.size), replace=False)
    ys, xs = ys[pick], xs[pick]
    refs, target = [r for t in tasks for r in t.refs], tasks[0].target
    weights = np.broadcast_to(model.stream_weights(refs, target), (len(refs), 1, *valid.shape))
    weights = weights / weights.sum(0, keepdims=True)
    k = int(model.net.linear_path.kernel_size[0])
    yt, xt = torch.as_tensor(ys), torch.as_tensor(xs)
    design, base = 0.0, 0.0
    for ref, w in zip(refs, weights, strict=True):
        padded, stream_base = _features(model, ref, target, k)
        # column order c * k^2 + i * k + j, as Conv2d.weight.reshape(B, -1) flattens
        taps = torch.stack([padded[:, yt + i, xt + j] for i in range(k) for j in range(k)], 1)
        if model.params.get("linear_signed"):  # as TorchFusionModel.linear_term
            taps = torch.cat([taps, taps * _sign(ref, target)])
        w_pix = torch.as_tensor(np.ascontiguousarray(w[0, ys, xs]), dtype=torch.float64)
        design = design + taps.reshape(-1, ys.size) * w_pix
        base = base + stream_base[:, yt, xt] * w_pix
    design = torch.cat([design, torch.ones(1, ys.size, dtype=torch.float64)])
    std = torch.as_tensor(model.params["band_std"], dtype=torch.float64)
    label = torch.as_tensor(target.fine[:, ys, xs]).double()
    residual = (label - base) / std[:, None]
    return design.T.numpy(), residual.T.numpy()


def fit_linear_path(
    model: TorchFusionModel, sampler: PatchSampler, *, pixels: int = 200_000, seed: int = 0
) -> dict[str, float] | None:
    """Set ``net.linear_path`` to the ridge least-squares fit on ``sampler``'s tasks.

    Parameters
    ----------
    model : a model for which :func:`can_fit` holds, trunk still zero at its head.
    sampler : the engine's training sampler (tasks, valid masks with the held-back
        blocks removed, allowed rows).
    pixels : training pixels drawn over all tasks (the normal equations are
        (F k^2 + 1)^2: 676^2 for three bands and a 5 px kernel).
    seed : seed of the pixel draw.

    Returns
    -------
    ``{"pixels": n, "ridge": lambda}``, or None when no pixel was usable (layer unchanged).
    """
    if not can_fit(model) or not sampler.tasks:
        return None
    own = getattr(model, "fit_linear_start", None)
    if own is not None:
        return own(sampler, pixels=pixels, seed=seed)  # type: ignore[no-any-return]
    rng = np.random.default_rng(seed)
    by_target: dict[object, list[int]] = {}
    for index, task in enumerate(sampler.tasks):
        by_target.setdefault(task.target.date, []).append(index)
    per_target = max(1, pixels // len(by_target))
    ridge = float(model.params.get("linear_ridge", 1e-3))
    rows = (_target_rows(model, sampler, ix, per_target, rng) for ix in by_target.values())
    count = solve_into(model.net.linear_path, rows, ridge)
    return {"pixels": float(count), "ridge": ridge} if count else None


def solve_into(
    layer: torch.nn.Conv2d,
    row_sets: Iterable[tuple[np.ndarray, np.ndarray] | None],
    ridge: float,
) -> int:
    """Ridge least squares of ``y ~ x`` over every row set, written into ``layer``.

    Parameters
    ----------
    layer : the linear path, a conv whose flattened weight and bias are the solution.
    row_sets : per task or target, ``(x, y)`` with x (n, F k^2 + 1), the last column ones
        (the bias), and y (n, B) in the output's units; None (no pixel) is skipped, and
        rows with a non-finite value are dropped.
    ridge : penalty relative to the mean feature energy (trace of x'x over its size);
        the bias is left free.

    Returns
    -------
    Pixels used; 0 leaves ``layer`` unchanged.
    """
    xtx, xty, count = None, None, 0
    for rows in row_sets:
        if rows is None:
            continue
        x, y = rows
        ok = np.isfinite(x).all(1) & np.isfinite(y).all(1)
        x, y = x[ok], y[ok]
        xtx = x.T @ x if xtx is None else xtx + x.T @ x
        xty = x.T @ y if xty is None else xty + x.T @ y
        count += len(x)
    if xtx is None or xty is None or count == 0:
        return 0
    penalty = ridge * np.trace(xtx[:-1, :-1]) / max(len(xtx) - 1, 1)
    reg = np.diag(np.r_[np.full(len(xtx) - 1, max(penalty, 1e-12)), 0.0])
    coef = np.linalg.solve(xtx + reg, xty)  # (F k^2 + 1, B)
    with torch.no_grad():
        weight = torch.as_tensor(coef[:-1].T, dtype=layer.weight.dtype)
        layer.weight.copy_(weight.reshape(layer.weight.shape).to(layer.weight.device))
        if layer.bias is not None:
            layer.bias.copy_(torch.as_tensor(coef[-1], dtype=layer.bias.dtype))
    return count


def frozen(layer: torch.nn.Module) -> None:
    """Stop gradient updates of ``layer`` (AdamW skips parameters without a gradient)."""
    for param in layer.parameters():
        param.requires_grad_(False)
