"""The shared training engine of every torch fusion model.

``fit(model, pairs, val)`` trains any :class:`~pipeline.models._torch.TorchFusionModel`:

1. **samples** — :func:`~pipeline.models.patches.make_tasks` turns the clear
   pairs into self-supervised tasks (each pair is a target once, the others its
   references); :class:`~pipeline.models.patches.PatchSampler` draws random
   patches, rejecting those with too few valid pixels;
2. **start selection** — ``model.select_start(score)`` may pick among
   untrained starting points by validation loss (e.g. how far to smooth the
   coarse change) before any gradient step; patches carry ``halo`` pixels of
   context that feed the network but not the loss, as in tiled prediction;
3. **validation** — on the held-back ``val`` pairs when given; otherwise, with
   ``val_split = "date"`` and at least three clear pairs, on one held-back
   *date* (the interior pair nearest the middle of the period, predicted from
   its nearest remaining pair: the same leave-one-date-out situation as the
   real target, so a net that merely memorises the training dates' change is
   caught); otherwise (``"rows"``, or too few pairs) on the
   bottom ``val_fraction`` of the rows (never sampled for training). With
   ``val_split = "date"``, fewer than three pairs and ``date_fallback =
   "start"`` no gradient step is taken: the start is chosen on the rows and
   kept, because held-back rows of the training dates do not tell whether a
   learned correction carries to another date (measured on estarfm-2001, two
   training dates: EDCSTFN's row-validation MSE fell 27 % while its RMSE on
   2001-07-11 rose from 0.0066 to 0.0107; benchmarks/fusion-accuracy.md); the
   validation loss is the masked MSE on a fixed grid of patches, the same for
   every model so reports compare;
3b. **after training** — ``model.select_after(held, train_pairs)`` may choose
   among post-hoc options (e.g. how to blend two streams) on the held-back date;
4. **early stopping** — stop after ``patience`` epochs without improvement and
   restore the best weights (the untrained network counts as epoch 0);
5. **determinism** — torch and numpy seeded from ``seed``; on CPU the result
   is bit-reproducible for a given thread count;
6. **speed** — bf16 autocast on CUDA (``amp``), plain float32 on CPU; a progress bar.

The model supplies ``forward``/``loss`` (or a whole ``training_step``), the
engine everything else. Parameters come from ``model.params`` (see
:data:`~pipeline.models._torch.TRAIN_DEFAULTS`).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch

from pipeline.errors import InputError
from pipeline.models.base import FitReport, Scene
from pipeline.models.losses import masked_mse
from pipeline.models.patches import Batch, PatchSampler, Task, make_tasks
from pipeline.progress import progress_bar

if TYPE_CHECKING:
    from pipeline.models._torch import TorchFusionModel


def held_back_date(pairs: Sequence[Scene]) -> Scene | None:
    """The interior pair nearest the middle of the period (None with fewer than 3 pairs)."""
    ordered = sorted(pairs, key=lambda s: s.date)
    if len(ordered) < 3:
        return None
    first, last = ordered[0].date, ordered[-1].date
    middle = first + (last - first) / 2
    return min(ordered[1:-1], key=lambda s: abs((s.date - middle).days))


def _samplers(
    model: TorchFusionModel, pairs: Sequence[Scene], val: Sequence[Scene]
) -> tuple[PatchSampler, PatchSampler]:
    """Training and validation samplers: held-back dates, or else held-back rows."""
    p = model.params
    tasks = make_tasks(pairs, model.train_refs)
    height = pairs[0].coarse.shape[1]
    opts = {"min_valid": p["min_valid"], "margin": model.halo}
    seed = int(p["seed"])
    if val:
        val_tasks = [Task(tuple(_nearest(pairs, v, model.train_refs)), v) for v in val]
        train = PatchSampler(tasks, p["patch"], (0, height), seed=seed, **opts)
        return train, PatchSampler(val_tasks, p["patch"], (0, height), seed=seed + 1, **opts)
    cut = round(height * (1.0 - float(p["val_fraction"])))
    if cut < 4 or height - cut < 4:
        raise InputError(f"image height {height} is too small to hold back validation rows")
    train = PatchSampler(tasks, p["patch"], (0, cut), seed=seed, **opts)
    return train, PatchSampler(tasks, p["patch"], (cut, height), seed=seed + 1, **opts)


def _nearest(pairs: Sequence[Scene], target: Scene, n: int) -> list[Scene]:
    """The ``n`` training pairs nearest in time to ``target``, ordered by date."""
    near = sorted(pairs, key=lambda s: abs((s.date - target.date).days))[:n]
    return sorted((near * n)[:n], key=lambda s: s.date)


def validate(model: TorchFusionModel, batches: Sequence[Batch]) -> float:
    """Masked MSE of the model over fixed validation batches (pixel-weighted mean)."""
    from pipeline.models._torch import autocast, to_tensors

    model.net.eval()
    total, pixels = 0.0, 0.0
    with torch.no_grad():
        for raw in batches:
            b = to_tensors(raw, model.device)
            with autocast(model.device, model.params["amp"]):
                pred = model.forward(b.refs_coarse, b.refs_fine, b.tgt_coarse, b.days)  # type: ignore[arg-type]
            n = float(b.valid.sum()) * pred.shape[1]  # type: ignore[attr-defined]
            total += float(masked_mse(pred.float(), b.tgt_fine, b.valid)) * n  # type: ignore[arg-type]
            pixels += n
    return total / max(pixels, 1.0)


def fit(
    model: TorchFusionModel,
    pairs: Sequence[Scene],
    val: Sequence[Scene] = (),
    *,
    progress: bool = True,
) -> FitReport:
    """Train ``model`` in place on clear ``pairs``; returns what happened.

    Parameters
    ----------
    model : the model; its ``params`` hold the training settings.
    pairs : clear pairs (``fine`` set) of one region, fine-grid (band, y, x) float32.
    val : held-back pairs for validation; empty -> hold back rows instead.
    progress : show a progress bar (:mod:`pipeline.progress`).
    """
    from pipeline.models._torch import to_tensors

    pairs = [s for s in pairs if s.fine is not None]
    if not pairs:
        raise InputError(f"model {model.name} needs at least one clear pair to train on")
    p = model.params
    torch.manual_seed(int(p["seed"]))
    val = list(val)
    epochs = int(p["epochs"])
    if not val and p.get("val_split", "rows") == "date":
        held_pair = held_back_date(pairs)
        if held_pair is not None:
            val = [held_pair]
            pairs = [s for s in pairs if s is not held_pair]
        elif p.get("date_fallback", "rows") == "start":
            epochs = 0
    train, held = _samplers(model, pairs, val)
    val_batches = held.grid()
    model.select_start(lambda: validate(model, val_batches))
    optimizer = torch.optim.AdamW(
        model.net.parameters(), lr=float(p["lr"]), weight_decay=float(p["weight_decay"])
    )
    # the untrained network is a candidate too: nets that start from a physical
    # prediction (zero-initialised last layer) must never end worse than that start
    best = validate(model, val_batches)
    best_state, stale = copy.deepcopy(model.net.state_dict()), 0
    history: list[dict[str, float]] = [{"epoch": 0, "loss": float("nan"), "val_loss": best}]
    start = time.perf_counter()
    bar = progress_bar(
        range(epochs), desc=f"train {model.name}", unit="epoch", disable=not progress
    )
    for epoch in bar:
        model.net.train()
        losses = [
            model.training_step(
                to_tensors(train.sample(int(p["batch_size"])), model.device), optimizer
            )
            for _ in range(int(p["steps_per_epoch"]))
        ]
        val_loss = validate(model, val_batches)
        history.append({"epoch": epoch + 1, "loss": float(np.mean(losses)), "val_loss": val_loss})
        bar.set_postfix(loss=f"{history[-1]['loss']:.2e}", val=f"{val_loss:.2e}")
        if val_loss < best:
            best, best_state, stale = val_loss, copy.deepcopy(model.net.state_dict()), 0
        else:
            stale += 1
            if stale >= int(p["patience"]):
                break
    model.net.load_state_dict(best_state)
    model.select_after(val, pairs)
    return FitReport(len(history) - 1, best, time.perf_counter() - start, history)
