"""Training with two dates: learn one direction, keep what transfers to the other.

With two training pairs A < B there is no date to hold back, and held-back spatial
blocks of the same task cannot see that what was learned does not transfer to
another date (estarfm-2001: blocks 0.0124 -> 0.0078, target 0.0068 -> 0.0083,
``benchmarks/fusion-accuracy-notes.md``). ``date_fallback = "reverse"`` therefore
validates *across dates*:

1. **folds** — two cross-date tasks exist, "B from A" and "A from B". Fold 1 trains
   on the first (its labels outside held-back blocks) and validates on the second,
   on the held-back blocks only; fold 2 swaps them. Each fold gets a quarter of the
   step budget: the closed-form linear path (kept only when it lowers the reverse
   task's loss), then gradient steps with early stopping on that same loss.
2. **shrinkage** — the correction a fold learned is scaled toward the start,
   ``out = start + s (trained - start)`` for ``s`` in :data:`SHRINK_GRID`, and the
   ``s`` with the lowest summed reverse-task loss of both folds is chosen
   (``s = 0``: the start is kept). For the zero-head networks of the zoo the
   correction is exactly the output of the modules that are all zero at the start
   (the head and the linear path), so scaling their parameters scales it exactly
   (:func:`shrink`); a learned blend term (:mod:`pipeline.models.blend_head`) is scaled
   in the weights' logits, not linear in ``s``, but ``s = 0`` is still exactly the start.
3. **final fit** — unless ``s = 0``, the model is retrained on both tasks, every
   pixel, for the steps the folds found best (summed: each task then gets as many
   steps as in its fold), and its correction is scaled by ``s``.

The linear path is made symmetric in time here (its signed copy zero,
:func:`symmetric_linear_start`): a signed coefficient learned on "B from A" never
acts on "A from B", so the reverse task could not validate it, and at the target
each stream would use a map validated on nothing.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from pipeline.errors import InputError
from pipeline.models import linear_fit, streams
from pipeline.models.base import FitReport, Scene
from pipeline.models.patches import PatchSampler, Task, make_tasks, same_date_tasks

if TYPE_CHECKING:
    from collections.abc import Iterator

    from pipeline.models._torch import TorchFusionModel
    from pipeline.models.training import Plan

#: shrink factors of the learned correction tried on the reverse task (0 = the start)
SHRINK_GRID: tuple[float, ...] = (0.0, 0.1, 0.25, 0.5, 0.75, 1.0)

TASK = "cross-date, two dates: each direction trained, validated on the reverse direction"


def applies(model: TorchFusionModel, pairs: Sequence[Scene], val: Sequence[Scene]) -> bool:
    """Whether the engine trains ``model`` by this module's rule (module doc).

    ``date_fallback = "reverse"``, ``val_split = "date"``, no validation pairs given,
    exactly two training dates and a model that trains on cross-date tasks.
    """
    p = model.params
    return (
        not val
        and p.get("val_split") == "date"
        and p.get("date_fallback") == "reverse"
        and len({s.date for s in pairs if s.fine is not None}) == 2
        and not getattr(model, "same_date_only", False)
    )


@dataclass
class Fold:
    """What one direction's training showed on the other direction's held-back blocks.

    Losses are masked MSE (reflectance^2) on the reverse task's held-back blocks.
    ``curve`` maps each shrink factor to that loss; ``state`` is the weights whose
    correction ``curve`` scales: the best epoch if one beat the start (or the linear
    start), else the last one (a shrunk part of it may still help), else the start.
    """

    train: str
    validate: str
    start_loss: float
    linear: dict[str, Any]
    steps: int
    best_steps: int
    curve: dict[float, float]
    state: dict[str, Any] = field(repr=False)
    history: list[dict[str, float]] = field(default_factory=list, repr=False)

    def summary(self) -> dict[str, Any]:
        """JSON-ready facts (RMSE in reflectance)."""
        return {
            "train": self.train, "validate": self.validate, "steps": self.steps,
            "best_steps": self.best_steps, "start_rmse": math.sqrt(self.start_loss),
            "linear_rmse": self.linear.get("val_rmse"), "linear_kept": self.linear.get("kept"),
            "rmse_by_shrink": {str(s): math.sqrt(v) for s, v in self.curve.items()},
        }  # fmt: skip


def two_tasks(model: TorchFusionModel, pairs: Sequence[Scene]) -> list[Task]:
    """The two cross-date tasks, ordered by target date ("A from B", "B from A")."""
    if streams.blends_streams(model):
        tasks = streams.blend_tasks(pairs)
    elif len(pairs) > 1:
        tasks = make_tasks(pairs, model.train_refs)
    else:
        tasks = same_date_tasks(pairs, model.train_refs)
    return sorted(tasks, key=lambda t: t.target.date)


def _name(task: Task) -> str:
    return f"{task.target.date.isoformat()} from {task.refs[0].date.isoformat()}"


def fold_plan(model: TorchFusionModel, train: Task, other: Task, pairs: list[Scene]) -> Plan:
    """Train on ``train`` outside held-back blocks; validate ``other`` on the blocks."""
    from pipeline.models.training import _block_plan

    setup = _block_plan(model, [train], pairs, TASK, 1)
    p, held = model.params, setup.held
    setup.held = PatchSampler(
        [other], held.core, (0, pairs[0].coarse.shape[1]), seed=int(p["seed"]) + 1,
        cores=held.cores, min_valid=p["min_valid"], margin=model.halo,
    )  # fmt: skip
    setup.validation = setup.validation.replace(
        "held-back blocks", "reverse task's held-back blocks"
    )
    return setup


def zero_modules(net: nn.Module, start: dict[str, Any]) -> list[str]:
    """Names of the leaf modules whose every parameter is zero in ``start`` (the heads)."""
    names = []
    for name, module in net.named_modules():
        params = [f"{name}.{k}" if name else k for k, _ in module.named_parameters(recurse=False)]
        leaf = params and not list(module.children())
        if leaf and all(not torch.any(start[k] != 0) for k in params):
            names.append(name)
    return names


def shrink(model: TorchFusionModel, trained: dict[str, Any], s: float) -> None:
    """Load ``trained`` with its correction scaled by ``s`` (module doc, step 2).

    Parameters of the modules that are all zero at the start (``model.start_state``)
    are multiplied by ``s``; every other parameter keeps its trained value.
    """
    assert model.start_state is not None
    heads = zero_modules(model.net, model.start_state)
    state = {k: v.clone() for k, v in trained.items()}
    for key in state:
        if any(key.startswith(f"{h}.") for h in heads):
            state[key] = state[key] * s
    model.net.load_state_dict(state)


@contextmanager
def _unsigned_linear(model: TorchFusionModel) -> Iterator[None]:
    """Inside: the linear path reads unsigned features only (a layer of half the channels).

    On exit its weights go into the first half of the real layer and the signed half is
    zero, so the path acts the same in both directions of time.
    """
    layer = model.net.linear_path
    signed = bool(model.params.get("linear_signed"))
    if not signed:
        yield
        return
    half = layer.in_channels // 2
    temp = nn.Conv2d(half, layer.out_channels, layer.kernel_size, padding=layer.padding,
                     padding_mode=layer.padding_mode).to(layer.weight.device)  # fmt: skip
    with torch.no_grad():
        temp.weight.copy_(layer.weight[:, :half])
        temp.bias.copy_(layer.bias)
    model.net.linear_path, model.params["linear_signed"] = temp, False
    try:
        yield
    finally:
        model.net.linear_path, model.params["linear_signed"] = layer, True
        with torch.no_grad():
            layer.weight.zero_()
            layer.weight[:, :half].copy_(temp.weight)
            layer.bias.copy_(temp.bias)


def symmetric_linear_start(
    model: TorchFusionModel, setup: Plan, val_batches: list[Any], start_loss: float
) -> dict[str, Any]:
    """The engine's closed-form linear start with the path symmetric in time; then the
    path is frozen whether kept or not (its signed half must stay zero)."""
    from pipeline.models.training import _linear_start

    if getattr(model.net, "linear_path", None) is None or hasattr(model, "fit_linear_start"):
        return _linear_start(model, setup, val_batches, start_loss)
    with _unsigned_linear(model):
        closed = _linear_start(model, setup, val_batches, start_loss)
    linear_fit.frozen(model.net.linear_path)
    return closed


@contextmanager
def _steps(model: TorchFusionModel, steps: int) -> Iterator[None]:
    """``budget_steps`` set to ``steps`` inside (restored on exit)."""
    saved = model.params.get("budget_steps")
    model.params["budget_steps"] = int(steps)
    try:
        yield
    finally:
        model.params["budget_steps"] = saved


def _thaw(model: TorchFusionModel) -> None:
    for param in model.net.parameters():
        param.requires_grad_(True)


def run_fold(model: TorchFusionModel, setup: Plan, steps: int, *, progress: bool = False) -> Fold:
    """Closed-form linear start, ``steps`` steps, shrink curve, all scored on the reverse task.

    Starts from ``model.start_state``; leaves the model at that state, trainable.
    """
    from pipeline.models.training import _train, validate

    assert model.start_state is not None
    model.net.load_state_dict(model.start_state)
    val_batches = setup.held.grid()
    start_loss = validate(model, val_batches)
    setup.epochs, setup.linear_only = (1 if steps > 0 else 0), steps <= 0
    closed = symmetric_linear_start(model, setup, val_batches, start_loss)
    best = closed["val_loss"] if closed.get("kept") else start_loss
    state = copy.deepcopy(model.net.state_dict())
    history = [{"epoch": 0, "loss": float("nan"), "val_loss": best, "lr": 0.0}]
    taken, trained = 0, None
    if steps > 0:
        with _steps(model, steps):
            taken, trained = _train(model, setup, val_batches, history, progress, best)
    best_steps = 0
    if trained is not None:
        state = trained
        per_epoch = int(model.params["steps_per_epoch"])
        best_epoch = min(history[1:], key=lambda h: h["val_loss"])["epoch"]
        best_steps = min(taken, int(best_epoch) * per_epoch)
    elif taken > 0:  # no epoch beat the start: the shrink curve asks if a part of the end does
        state, best_steps = copy.deepcopy(model.net.state_dict()), taken
    curve = {}
    for s in SHRINK_GRID:
        shrink(model, state, s)
        curve[s] = validate(model, val_batches)
    model.net.load_state_dict(model.start_state)
    _thaw(model)
    train, other = setup.train.tasks[0], setup.held.tasks[0]
    return Fold(_name(train), _name(other), start_loss, closed, taken, best_steps, curve,
                state, history)  # fmt: skip


def choose_shrink(folds: Sequence[Fold]) -> float:
    """The shrink factor with the lowest summed reverse-task loss (ties: the smaller)."""
    return min(SHRINK_GRID, key=lambda s: (sum(f.curve[s] for f in folds), s))


def final_fit(
    model: TorchFusionModel, pairs: list[Scene], folds: Sequence[Fold], s: float, budget: int
) -> tuple[int, list[dict[str, float]]]:
    """Both tasks, every pixel: the linear start (if a fold kept it), the folds' best steps
    summed (at most ``budget``), then the correction scaled by ``s``. Returns (steps, history)."""
    from pipeline.models.training import Plan, _train

    assert model.start_state is not None
    model.net.load_state_dict(model.start_state)
    if s <= 0.0:
        return 0, []
    p, tasks = model.params, two_tasks(model, pairs)
    height = pairs[0].coarse.shape[1]
    opts = {"min_valid": p["min_valid"], "margin": model.halo}
    train = PatchSampler(tasks, int(p["patch"]), (0, height), seed=int(p["seed"]),
                         augment=p["augment"], **opts)  # fmt: skip
    steps = min(budget, sum(f.best_steps for f in folds))
    setup = Plan(train, train, pairs, [], TASK, "none", 1 if steps else 0, linear_only=not steps)
    if any(f.linear.get("kept") for f in folds):
        symmetric_linear_start(model, setup, [], math.inf)  # no held-back data: keep it
    history: list[dict[str, float]] = []
    taken = 0
    if steps > 0:  # no held-back data: the last state is kept, no early stop
        with _steps(model, steps), _patience(model, 10**9):
            taken, _ = _train(model, setup, [], history, False, math.inf)
        for entry in history:  # nothing was held back: no validation figure, not a zero
            entry["val_loss"] = math.nan
    shrink(model, copy.deepcopy(model.net.state_dict()), s)
    _thaw(model)
    return taken, history


@contextmanager
def _patience(model: TorchFusionModel, epochs: int) -> Iterator[None]:
    """``patience`` set to ``epochs`` inside (restored on exit)."""
    saved = model.params["patience"]
    model.params["patience"] = epochs
    try:
        yield
    finally:
        model.params["patience"] = saved


def fit(model: TorchFusionModel, pairs: list[Scene], *, progress: bool = True) -> FitReport:
    """The two-date rule (module doc); the engine's start selection has run already."""
    from pipeline.models.training import _start_notes, planned_steps

    began = time.perf_counter()
    model.start_state = copy.deepcopy(model.net.state_dict())
    budget = planned_steps(model, int(model.params["epochs"]))
    tasks = two_tasks(model, pairs)
    try:
        plans = [fold_plan(model, tasks[k], tasks[1 - k], pairs) for k in range(2)]
    except InputError as err:  # too small for held-back blocks: nothing to validate on
        why = f"none (date_fallback=reverse: {err}; the start is kept)"
        return FitReport(0, None, 0.0, [], validation="none", task=why,
                         notes=_start_notes(model))  # fmt: skip
    folds = [run_fold(model, plan, budget // 4, progress=progress) for plan in plans]
    s = choose_shrink(folds)
    final_steps, final_history = final_fit(model, pairs, folds, s, budget - budget // 4 * 2)
    start = sum(f.start_loss for f in folds) / 2
    end = sum(f.curve[s] for f in folds) / 2
    history = [h for f in folds for h in f.history] + final_history
    notes = {
        "few_dates": {
            "rule": "reverse", "shrink": s, "kept": "start" if s == 0 else "trained",
            "final_steps": final_steps, "folds": [f.summary() for f in folds],
            "held_back_gain": 1.0 - math.sqrt(end / start) if start > 0 else 0.0,
        },
    }  # fmt: skip
    return FitReport(
        len(history), end, time.perf_counter() - began, history,
        steps=sum(f.steps for f in folds) + final_steps,
        start_val_rmse=math.sqrt(start), end_val_rmse=math.sqrt(end),
        validation=_validation(folds), task=f"{TASK}; {_kept(s)}",
        notes={**_start_notes(model), **model.fit_notes(), **notes},
    )  # fmt: skip


def _kept(s: float) -> str:
    """What the rule kept, for the report's task line."""
    if s == 0.0:
        return "correction scaled by 0 there: the start is kept"
    return f"correction scaled by {s:g} there, retrained on both directions"


def _validation(folds: Sequence[Fold]) -> str:
    names = "; ".join(f"{f.train} -> {f.validate}" for f in folds)
    return f"reverse task's held-back blocks (trained -> validated: {names})"
