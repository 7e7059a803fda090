"""STFDiff's closed-form linear start: ridge least squares of its linear x0 path.

STFDiff takes both references in one pass (``train_refs = 2``), so the engine's
stream-wise fit (:mod:`pipeline.models.linear_fit`) does not apply; the same idea
does. Its linear path maps both references' pair features, each weighted by its
blend weight (:meth:`~pipeline.models.stfdiff.StfDiff.linear_x0`), to a part of x0
that the untrained (zero-headed) denoiser leaves alone, so the point estimate is
``base + residual_std * linear``: a linear model of the residual over the
smoothed-change blend, whose least-squares optimum on the training tasks has a
closed form. The engine keeps it only when it lowers the held-back loss
(:func:`pipeline.models.training.fit`, step 5b) and then freezes it; the denoiser
learns what is not linear. Measured on the synthetic season: see
``benchmarks/model-zoo.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from pipeline.models.linear_fit import solve_into
from pipeline.models.patches import PatchSampler, Task, fill_invalid

if TYPE_CHECKING:
    from pipeline.models.stfdiff import StfDiff


def _task_tensors(model: StfDiff, task: Task) -> tuple[torch.Tensor, ...]:
    """(1, R, B, y, x) refs coarse and fine, (1, B, y, x) target coarse, (1, R) days."""
    rc, rf, tc = fill_invalid(
        np.stack([r.coarse for r in task.refs]),
        np.stack([r.fine for r in task.refs]),
        task.target.coarse,
    )
    days = [[(r.date - task.target.date).days for r in task.refs]]
    as_t = lambda a: torch.as_tensor(a, device=model.device)[None].float()  # noqa: E731
    return as_t(rc), as_t(rf), as_t(tc), torch.tensor(days, dtype=torch.float32)


def _task_rows(
    model: StfDiff, sampler: PatchSampler, index: int, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray] | None:
    """(n, F k^2 + 1) design rows and (n, B) residual-std-unit targets of one task."""
    task = sampler.tasks[index]
    valid = sampler.valid[index].copy()
    row0, row1 = sampler.rows
    valid[:row0], valid[row1:] = False, False
    ys, xs = np.nonzero(valid)
    if ys.size == 0 or task.target.fine is None:
        return None
    pick = rng.choice(ys.size, size=min(n, ys.size), replace=False)
    yt, xt = torch.as_tensor(ys[pick]), torch.as_tensor(xs[pick])
    rc, rf, tc, days = _task_tensors(model, task)
    k = int(model.net.linear_path.kernel_size[0])
    with torch.no_grad():
        base = model.condition(rc, rf, tc, days)[0][0].double().cpu()
        feats = model.linear_features(rc, rf, tc, days)
        r = k // 2
        padded = F.pad(feats, (r, r, r, r), mode="replicate")[0].double().cpu()
    # column order c * k^2 + i * k + j, as Conv2d.weight.reshape(B, -1) flattens
    taps = torch.stack([padded[:, yt + i, xt + j] for i in range(k) for j in range(k)], 1)
    design = torch.cat([taps.reshape(-1, yt.numel()), torch.ones(1, yt.numel()).double()])
    label = torch.as_tensor(task.target.fine)[:, yt, xt].double()
    scale = model._residual_std(base[None])[0, :, 0, 0].double().cpu()
    return design.T.numpy(), ((label - base[:, yt, xt]) / scale[:, None]).T.numpy()


def fit_linear_x0(
    model: StfDiff, sampler: PatchSampler, *, pixels: int = 200_000, seed: int = 0
) -> dict[str, float] | None:
    """Set ``model.net.linear_path`` to the ridge least-squares fit on ``sampler``'s tasks.

    Parameters
    ----------
    model : STFDiff with a linear path, denoiser head still zero.
    sampler : the engine's training sampler (tasks, valid masks without held-back
        blocks, allowed rows).
    pixels : training pixels drawn over all tasks.
    seed : seed of the pixel draw.

    Returns
    -------
    ``{"pixels": n, "ridge": lambda}``, or None when no pixel was usable (layer unchanged).
    """
    layer = getattr(model.net, "linear_path", None)
    if layer is None or not sampler.tasks:
        return None
    rng = np.random.default_rng(seed)
    per_task = max(1, pixels // len(sampler.tasks))
    ridge = float(model.params.get("linear_ridge", 1e-3))
    rows = (_task_rows(model, sampler, i, per_task, rng) for i in range(len(sampler.tasks)))
    count = solve_into(layer, rows, ridge)
    return {"pixels": float(count), "ridge": ridge} if count else None
