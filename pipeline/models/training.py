"""The shared training engine of every torch fusion model.

``fit(model, pairs, val)`` trains any :class:`~pipeline.models._torch.TorchFusionModel`:

1. **tasks** (:func:`plan`) — with two or more training dates, cross-date tasks
   whose gaps match the prediction gaps (each pair predicted from its nearest
   pair before and after, :func:`~pipeline.models.patches.make_tasks`); with one
   date, the same-date task (coarse -> fine at that pair). Zero steps happen only
   when asked for (``date_fallback = "start"``), and the report says so; ``"linear"``
   fits only the linear path (5b); ``"reverse"``: :mod:`pipeline.models.few_dates`.
   With ``train_blend`` (one stream per reference, a time or nearest blend) each
   task is a pair predicted from the reference-pair rule's pairs and the streams
   are scored blended, as a fused day is (:mod:`pipeline.models.streams`).
2. **validation** — on the held-back ``val`` pairs when given; otherwise, with
   ``val_split = "date"`` and at least three pairs, on one held-back *date* (the
   interior pair nearest the middle, predicted from its nearest remaining pairs:
   the situation of a real target); otherwise (``date_fallback``, or ``val_split``
   itself) on held-back spatial blocks: ``"blocks"`` = square blocks spread over
   the whole image (``val_fraction`` of it), whose labels never reach a training
   loss, scored on the tasks with the shortest gaps (nearest the gaps a fused day
   has); ``"rows"`` = the bottom ``val_fraction`` of the rows, never a training
   core. The validation loss is the masked MSE on a fixed grid of patches.
3. **standardisation** — per-band mean/std of the training pairs' fine images
   (:meth:`~pipeline.models._torch.TorchFusionModel.set_band_stats`).
4. **start selection** — ``model.select_start(pairs)`` makes the untrained model
   the naive baseline the training dates prefer (same window and blend rule as
   :func:`pipeline.models.baselines.choose_smoothing`), before any gradient step.
5. **patches** — cores of ``patch`` px (>= 128 in the ``full`` presets) with a
   context margin of the model's ``halo`` that feeds the network but not the
   loss; random 90-degree rotations and flips (``augment``).
5b. **linear start** — models with a linear path get its ridge least-squares
   solution on the training tasks before the first step, kept only when it lowers
   the held-back loss, then frozen (``linear_start``, ``linear_freeze``;
   :mod:`pipeline.models.linear_fit`); the trunk learns what is not linear.
6. **optimisation** — AdamW, linear warm-up (``warmup_steps``, at most a tenth
   of the planned steps) then cosine decay to 1/10 of ``lr`` over the planned
   steps; early stopping after ``patience`` epochs without improvement,
   restoring the best weights (the untrained network is epoch 0, so a
   zero-initialised head never ends worse than its start on held-back data).
7. **budget** — ``budget_s`` seconds of training on CPU, ``budget_s_gpu`` on CUDA
   (None = no limit); the epoch in progress finishes at its next step.
   ``budget_steps`` sets the optimiser steps (None = ``epochs x steps_per_epoch``;
   the epochs grow or shrink to fit it, early stopping may end sooner): a step
   budget gives the same result on a busy and an idle machine, so benchmark
   figures use it; the learning-rate schedule spans the steps planned.
8. **report** — steps, epochs, held-back RMSE at start and end, the curve.

``model.select_after(held, train_pairs)`` may choose post-hoc options on the
held-back date. The model supplies ``forward``/``loss`` (or a whole
``training_step``), the engine everything else. Parameters come from
``model.params`` (see :data:`~pipeline.models._torch.TRAIN_DEFAULTS`).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from pipeline.errors import InputError
from pipeline.models import few_dates, streams
from pipeline.models.base import FitReport, Scene
from pipeline.models.losses import masked_mse
from pipeline.models.patches import (
    Batch,
    PatchSampler,
    Task,
    held_blocks,
    make_tasks,
    same_date_tasks,
    shortest_gap_tasks,
)
from pipeline.progress import progress_bar

if TYPE_CHECKING:
    from pipeline.models._torch import TorchFusionModel


#: Why a pair-input network keeps its start with one pair (measured, fusion-accuracy-notes.md)
ONE_PAIR_NOTE = (
    "no change to learn from, and ResStf's same-date residual used as a change "
    "compensation worsened the target on lgc-2004 and estarfm-2001"
)


def held_back_date(pairs: Sequence[Scene]) -> Scene | None:
    """The interior pair nearest the middle of the period (None with fewer than 3 pairs)."""
    ordered = sorted(pairs, key=lambda s: s.date)
    if len(ordered) < 3:
        return None
    first, last = ordered[0].date, ordered[-1].date
    middle = first + (last - first) / 2
    return min(ordered[1:-1], key=lambda s: abs((s.date - middle).days))


@dataclass
class Plan:
    """What the engine will train on and validate against."""

    train: PatchSampler
    held: PatchSampler
    pairs: list[Scene]
    val: list[Scene]
    task: str
    validation: str
    epochs: int
    #: ``date_fallback = "linear"`` with too few dates: only the closed-form linear start
    linear_only: bool = False
    #: False when the held-back tasks are trivial (a pair-input network whose reference is
    #: its target scores 0 whatever it does): no held-back RMSE is then reported
    scored: bool = True


def _nearest(pairs: Sequence[Scene], target: Scene, n: int) -> list[Scene]:
    """The ``n`` training pairs nearest in time to ``target``, ordered by date."""
    near = sorted(pairs, key=lambda s: abs((s.date - target.date).days))[:n]
    return sorted((near * n)[:n], key=lambda s: s.date)


def plan(model: TorchFusionModel, pairs: Sequence[Scene], val: Sequence[Scene]) -> Plan:
    """Tasks, samplers and validation of one fit (module doc, steps 1, 2 and 5)."""
    p, pairs, val = model.params, list(pairs), list(val)
    epochs, linear_only = int(p["epochs"]), False
    if not val and p.get("val_split", "rows") == "date":
        held_pair = held_back_date(pairs)
        if held_pair is not None:
            val, pairs = [held_pair], [s for s in pairs if s is not held_pair]
        elif p.get("date_fallback", "rows") in ("start", "linear", "reverse"):  # 1 pair: start
            epochs, linear_only = 0, p.get("date_fallback") == "linear"
    cross = len(pairs) > 1 and not getattr(model, "same_date_only", False)
    blended = cross and streams.blends_streams(model)
    tasks = (
        make_tasks(pairs, model.train_refs) if cross else same_date_tasks(pairs, model.train_refs)
    )
    if blended:  # the streams trained as the prediction blends them (pipeline.models.streams)
        tasks = streams.blend_tasks(pairs)
    task = "cross-date" if cross else "same-date"
    scored = cross or model.same_date
    if not scored:
        # the reference is the target: nothing to learn, so say it instead of implying training
        task = "same-date (trivial for a pair-input network: it keeps its start)"
    if linear_only:
        task = f"linear path only, closed form on the {task} tasks (too few dates to hold one back)"
    elif epochs == 0 and len(pairs) == 1 and not model.same_date:
        task = f"none (date_fallback=start: one pair; {ONE_PAIR_NOTE})"
    elif epochs == 0:
        task = "none (date_fallback=start: too few dates for a held-back date)"
    opts = {"min_valid": p["min_valid"], "margin": model.halo}
    seed, height, size = int(p["seed"]), pairs[0].coarse.shape[1], int(p["patch"])
    if val:
        val_tasks = [Task(tuple(_nearest(pairs, v, model.train_refs)), v) for v in val]
        if blended:
            val_tasks = [Task(streams.rule_refs(pairs, v.date), v) for v in val]
        if not cross:
            val_tasks = same_date_tasks(val, model.train_refs)
        train = PatchSampler(tasks, size, (0, height), seed=seed, augment=p["augment"], **opts)
        held = PatchSampler(val_tasks, size, (0, height), seed=seed + 1, **opts)
        where = "date " + ", ".join(v.date.isoformat() for v in val)
        return _unscored(Plan(train, held, pairs, val, task, where, epochs), scored)
    fallback = p.get("date_fallback", "rows") if p.get("val_split") == "date" else p["val_split"]
    if fallback in ("blocks", "linear"):
        return _unscored(_block_plan(model, tasks, pairs, task, epochs, linear_only), scored)
    cut = round(height * (1.0 - float(p["val_fraction"])))
    if cut < 4 or height - cut < 4:
        raise InputError(f"image height {height} is too small to hold back validation rows")
    train = PatchSampler(tasks, size, (0, cut), seed=seed, augment=p["augment"], **opts)
    held = PatchSampler(tasks, size, (cut, height), seed=seed + 1, **opts)
    rows = Plan(train, held, pairs, val, task, f"held-back rows {cut}-{height}", epochs)
    return _unscored(rows, scored)


def _unscored(setup: Plan, scored: bool) -> Plan:
    """``setup`` marked as having no held-back data worth a figure when not ``scored``.

    With one pair a pair-input network's only task has the target as its reference,
    so its held-back error is 0 before and after: reported as none, never as zeros.
    """
    if not scored:
        setup.scored = False
        setup.validation = "none (one pair: every held-back task's reference is its target)"
    return setup


def _block_plan(
    model: TorchFusionModel,
    tasks: list[Task],
    pairs: list[Scene],
    task: str,
    epochs: int,
    linear_only: bool = False,
) -> Plan:
    """Validation on held-back blocks spread over the image (module doc, step 2).

    The blocks' labels never reach a training loss; they are scored on the tasks
    whose gaps are the shortest (nearest the gaps a fused day has). Block side:
    half the training core (at least 8 px), so even a 400 px scene holds many;
    at most ``val_blocks`` of them (None = all) bound the cost of a validation pass.
    """
    p = model.params
    shape = pairs[0].coarse.shape[1:]
    size, seed = int(p["patch"]), int(p["seed"])
    margin = max(0, min(model.halo, (min(shape) - 1) // 2))
    block = max(8, min(size, min(shape) - 2 * margin) // 2)
    if min(shape) - 2 * margin < block:
        raise InputError(
            f"image {shape[0]} x {shape[1]} px is too small to hold back validation blocks "
            f"of {block} px inside the model's {margin} px context; use a larger area"
        )
    most = p.get("val_blocks")
    held = held_blocks(shape, block, margin, float(p["val_fraction"]), most)
    mask = np.zeros(shape, bool)
    for y, x in held:
        mask[y : y + block, x : x + block] = True
    opts = {"min_valid": p["min_valid"], "margin": model.halo}
    train = PatchSampler(
        tasks, size, (0, shape[0]), seed=seed, augment=p["augment"], holdout=mask, **opts
    )
    val_tasks = shortest_gap_tasks(tasks)
    held_sampler = PatchSampler(val_tasks, block, (0, shape[0]), seed=seed + 1, cores=held, **opts)
    gaps = sorted({abs((r.date - t.target.date).days) for t in val_tasks for r in t.refs})
    where = f"held-back blocks ({len(held)} of {block} px; gap {', '.join(map(str, gaps))} d)"
    return Plan(train, held_sampler, pairs, [], task, where, epochs, linear_only)


def validate(model: TorchFusionModel, batches: Sequence[Batch]) -> float:
    """Masked MSE of the model over fixed validation batches (pixel-weighted mean)."""
    from pipeline.models.device import autocast, to_tensors

    model.net.eval()
    total, pixels = 0.0, 0.0
    with torch.no_grad():
        for raw in batches:
            b = to_tensors(raw, model.device)
            with autocast(model.device, model.amp_outside()):
                pred = streams.forward(model, b.refs_coarse, b.refs_fine, b.tgt_coarse, b.days)  # type: ignore[arg-type]
            n = float(b.valid.sum()) * pred.shape[1]  # type: ignore[attr-defined]
            total += float(masked_mse(pred.float(), b.tgt_fine, b.valid)) * n  # type: ignore[arg-type]
            pixels += n
    return total / max(pixels, 1.0)


def schedule(optimizer: torch.optim.Optimizer, warmup: int, total: int) -> Any:
    """Linear warm-up over ``warmup`` steps, then cosine decay to 0.1 x lr at ``total``."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(warmup, 1)
        frac = min(1.0, (step - warmup) / max(total - warmup, 1))
        return 0.1 + 0.45 * (1.0 + math.cos(math.pi * frac))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def make_optimizer(model: TorchFusionModel) -> torch.optim.Optimizer:
    """AdamW, or ``optimizer = "sgd"``: SGD with momentum 0.9 (the ResStf paper's)."""
    p = model.params
    lr, decay = float(p["lr"]), float(p["weight_decay"])
    if p.get("optimizer", "adamw") == "sgd":
        return torch.optim.SGD(model.net.parameters(), lr=lr, momentum=0.9, weight_decay=decay)
    return torch.optim.AdamW(model.net.parameters(), lr=lr, weight_decay=decay)


def budget_seconds(model: TorchFusionModel) -> float:
    """Training time budget: ``budget_s_gpu`` on CUDA, ``budget_s`` otherwise (inf if None)."""
    key = "budget_s_gpu" if model.device.type == "cuda" else "budget_s"
    value = model.params.get(key)
    return math.inf if value is None else float(value)


def planned_steps(model: TorchFusionModel, epochs: int) -> int:
    """Optimiser steps planned: ``budget_steps`` if set, else ``epochs x steps_per_epoch``.

    Zero epochs (``date_fallback = "start"``) stay zero steps.
    """
    cap = model.params.get("budget_steps")
    if epochs <= 0 or cap is None:
        return max(0, epochs) * int(model.params["steps_per_epoch"])
    return max(0, int(cap))


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
    val : held-back pairs for validation; empty -> a held-back date or rows instead.
    progress : show a progress bar (:mod:`pipeline.progress`).
    """
    pairs = [s for s in pairs if s.fine is not None]
    if not pairs:
        raise InputError(f"model {model.name} needs at least one clear pair to train on")
    p = model.params
    torch.manual_seed(int(p["seed"]))
    model.set_band_stats(pairs)
    # the start first: its window sets the context margin of every patch (change_reach)
    model.select_start(pairs + [v for v in val if v.fine is not None])
    if few_dates.applies(model, pairs, val):  # two dates: validated across them
        return few_dates.fit(model, pairs, progress=progress)
    setup = plan(model, pairs, val)
    val_batches = setup.held.grid()
    best = validate(model, val_batches)
    best_state = copy.deepcopy(model.net.state_dict())
    model.start_state = copy.deepcopy(best_state)  # the runner scores the start too
    history = [{"epoch": 0, "loss": float("nan"), "val_loss": best, "lr": 0.0}]
    start_loss = best
    closed = _linear_start(model, setup, val_batches, best)
    if closed.get("kept"):
        best, best_state = closed["val_loss"], copy.deepcopy(model.net.state_dict())
    steps, trained_state = _train(model, setup, val_batches, history, progress, best)
    best = min([h["val_loss"] for h in history] + [closed.get("val_loss", math.inf)])
    seconds = sum(h.get("seconds", 0.0) for h in history)
    model.net.load_state_dict(trained_state if trained_state is not None else best_state)
    for param in model.net.parameters():  # a frozen linear start trains again in a later fit
        param.requires_grad_(True)
    model.select_after(setup.val, setup.pairs)
    return FitReport(
        len(history) - 1,
        best,
        seconds,
        history,
        steps=steps,
        start_val_rmse=float(np.sqrt(start_loss)) if setup.scored else None,
        end_val_rmse=float(np.sqrt(best)) if setup.scored else None,
        validation=setup.validation,
        task=setup.task,
        notes={
            **_start_notes(model),
            **model.fit_notes(),
            **({"linear_start": closed} if closed else {}),
        },
    )


def _start_notes(model: TorchFusionModel) -> dict[str, Any]:
    """The start rule's choice and how it was made (empty for models without one)."""
    choice = getattr(model, "start_choice", None)
    return {"start_rule": choice.summary()} if choice is not None else {}


def _linear_start(
    model: TorchFusionModel, setup: Plan, val_batches: list[Batch], start_loss: float
) -> dict[str, Any]:
    """Solve the linear path in closed form (:mod:`pipeline.models.linear_fit`).

    Kept only when it lowers the held-back loss below ``start_loss``; otherwise the
    layer goes back to zero. With ``linear_freeze`` the kept layer is not updated by
    the optimiser (AdamW's first steps move every weight by ~lr whatever its
    gradient, which would undo a least-squares optimum). Returns what happened
    (empty when the model has no such path, the fit is off, or no step is planned).
    """
    from pipeline.models import linear_fit

    p = model.params
    planned = setup.epochs > 0 or setup.linear_only
    if not p.get("linear_start", True) or not planned or not linear_fit.can_fit(model):
        return {}
    began = time.perf_counter()
    layer = model.net.linear_path
    before = copy.deepcopy(layer.state_dict())
    fitted = linear_fit.fit_linear_path(
        model, setup.train, pixels=int(p.get("linear_pixels", 200_000)), seed=int(p["seed"])
    )
    if fitted is None:
        return {}
    loss = validate(model, val_batches)
    kept = loss < start_loss
    if not kept:
        layer.load_state_dict(before)
    elif p.get("linear_freeze", True):
        linear_fit.frozen(layer)
    return {
        **fitted, "kept": kept, "val_loss": loss, "val_rmse": float(np.sqrt(loss)),
        "seconds": time.perf_counter() - began,
    }  # fmt: skip


def _train(
    model: TorchFusionModel,
    setup: Plan,
    val_batches: list[Batch],
    history: list[dict[str, float]],
    progress: bool,
    best: float,
) -> tuple[int, dict[str, Any] | None]:
    """The epoch loop; appends to ``history``; returns (steps, best state or None).

    ``best`` is the held-back loss to beat (the start's, or the closed-form linear
    start's when that was kept): a state is returned only when an epoch beats it.
    """
    from pipeline.models.device import to_tensors

    p = model.params
    per_epoch = int(p["steps_per_epoch"])
    optimizer = make_optimizer(model)
    max_steps = planned_steps(model, setup.epochs)
    epochs = math.ceil(max_steps / max(per_epoch, 1))
    # a short budget must not be spent warming up: at most a tenth of the steps
    # (2-5 steps inside a 20-step warm-up left ResStf at its start, issue 14)
    warmup = min(int(p["warmup_steps"]), max(1, max_steps // 10))
    lr_schedule = schedule(optimizer, warmup, max_steps)
    stale, steps, best_state = 0, 0, None
    budget, began = budget_seconds(model), time.perf_counter()
    bar = progress_bar(
        range(epochs), desc=f"train {model.name}", unit="epoch", disable=not progress
    )
    for epoch in bar:
        t0 = time.perf_counter()
        model.net.train()
        losses = []
        for _ in range(per_epoch):
            batch = to_tensors(setup.train.sample(int(p["batch_size"])), model.device)
            losses.append(model.training_step(batch, optimizer))
            lr_schedule.step()
            steps += 1
            if steps >= max_steps or time.perf_counter() - began > budget:
                break
        val_loss = validate(model, val_batches)
        history.append({
            "epoch": epoch + 1, "loss": float(np.mean(losses)), "val_loss": val_loss,
            "lr": float(optimizer.param_groups[0]["lr"]), "seconds": time.perf_counter() - t0,
        })  # fmt: skip
        bar.set_postfix(loss=f"{history[-1]['loss']:.2e}", val=f"{val_loss:.2e}")
        if val_loss < best:
            best, stale = val_loss, 0
            best_state = copy.deepcopy(model.net.state_dict())
        else:
            stale += 1
        out_of_budget = steps >= max_steps or time.perf_counter() - began > budget
        if stale >= int(p["patience"]) or out_of_budget:
            break
    return steps, best_state
