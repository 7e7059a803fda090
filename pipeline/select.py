"""Automatic model choice per region: leave-one-pair-out scoring of candidate models.

Each clear pair takes its turn as the held-out target: its fine image is the
truth, the model is trained (when trainable) on the other pairs only and
predicts from the nearest other pair(s) (the shared rule, :mod:`pipeline.models.pairs`).
Candidates are ranked by :data:`RULE`.

Learned (torch) candidates are considered when the budget allows: each gets
``budget_s`` training seconds over all its folds, split evenly (each fold's
``budget_s``, never above its preset's own); one whose share is below
:data:`MIN_FOLD_S` is skipped with the reason in its rows, so a small budget
falls back to the classic and naive candidates instead of scoring untrained
networks.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from pipeline.errors import InputError
from pipeline.metrics import score
from pipeline.models.base import FusionInput, Scene
from pipeline.models.pairs import choose_scenes
from pipeline.models.registry import create_model, model_class

#: The selection rule, stated in every result.
RULE = "lowest mean RMSE over held-out pairs; candidates within 1e-4 of it: highest mean SSIM"
_TIE = 1e-4
#: Training seconds a learned candidate may spend over all its folds unless told otherwise.
SELECT_BUDGET_S = 600.0
#: Below this many training seconds per fold a learned candidate is skipped.
MIN_FOLD_S = 15.0


@dataclass(frozen=True)
class SelectionResult:
    """Outcome of :func:`select_model`.

    Attributes
    ----------
    table : one row per (candidate, held-out date): ``candidate``, ``held_out``
        (ISO date), ``refs``, overall metrics (``rmse``, ``ssim``, ``cc``, ``uiqi``,
        ``psnr``, ``sam_deg``, ``ergas``), ``train_s``, ``predict_s``; or ``skipped``
        with the reason.
    summary : candidate -> mean ``rmse``, ``ssim`` and ``folds`` scored.
    choice : the chosen candidate's name.
    rule : how it was chosen (:data:`RULE`).
    """

    table: list[dict[str, Any]]
    summary: dict[str, dict[str, float]]
    choice: str
    rule: str = RULE

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form for run provenance."""
        return asdict(self)


def _fold(name: str, pairs: Sequence[Scene], held: Scene, bands: tuple[str, ...],
          size: str, ratio: float, params: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    """Train ``name`` without ``held`` and score its prediction of ``held``."""
    row: dict[str, Any] = {"candidate": name, "held_out": held.date.isoformat()}
    model = create_model(name, bands=bands, size=size, **params)
    if len(pairs) < min(model.n_refs):
        return {**row, "skipped": f"needs {min(model.n_refs)} reference pairs"}
    start = time.perf_counter()
    if model.trainable:
        model.fit(pairs, bands=bands, progress=False)
    trained = time.perf_counter()
    refs = choose_scenes(pairs, held.date, model.n_refs)  # the rule fusion uses
    pred = model.predict(FusionInput(refs, Scene(held.date, held.coarse), bands))
    done = time.perf_counter()
    assert held.fine is not None
    overall = score(held.fine, pred.fine, bands, ratio=ratio).overall
    if "budget_s" in params:  # a learned candidate: its share of the budget and what it did
        row.update(budget_s=params["budget_s"], steps=getattr(model.report, "steps", 0))
    return {**row, "refs": [r.date.isoformat() for r in refs], **overall,
            "train_s": trained - start, "predict_s": done - trained}  # fmt: skip


def is_learned(name: str) -> bool:
    """Whether registry model ``name`` is a network trained by the shared engine."""
    cls = model_class(name)
    if not cls.trainable:
        return False
    from pipeline.models._torch import TorchFusionModel

    return issubclass(cls, TorchFusionModel)


def learned_budget(
    name: str, size: str, budget_s: float, folds: int, params: dict[str, Any]
) -> tuple[dict[str, Any] | None, str]:
    """Parameters giving learned ``name`` its share of ``budget_s``, or None and the reason."""
    share = budget_s / max(folds, 1)
    if share < MIN_FOLD_S:
        return None, (
            f"budget: {budget_s:g} s over {folds} folds is {share:.1f} s per fold, below "
            f"{MIN_FOLD_S:g} s; raise model.select_budget_s or drop {name} from the candidates"
        )
    preset = getattr(model_class(name), "presets", {}).get(size, {})
    own = params.get("budget_s", preset.get("budget_s"))
    return {**params, "budget_s": share if own is None else min(share, float(own))}, ""


def held_out_indices(n_pairs: int, max_folds: int | None) -> list[int]:
    """Indices of the pairs held out in turn: all, or ``max_folds`` spread evenly over time."""
    if max_folds is None or n_pairs <= max_folds:
        return list(range(n_pairs))
    return sorted({round(float(i)) for i in np.linspace(0, n_pairs - 1, max_folds)})


def choose(summary: dict[str, dict[str, float]]) -> str:
    """Apply :data:`RULE` to per-candidate means ({"rmse", "ssim"})."""
    scored = {k: v for k, v in summary.items() if v["folds"] > 0}
    if not scored:
        raise InputError("no candidate model could be scored on these pairs")
    best = min(v["rmse"] for v in scored.values())
    tied = [k for k, v in scored.items() if v["rmse"] - best <= _TIE]
    return max(tied, key=lambda k: (scored[k]["ssim"], -scored[k]["rmse"]))


def select_model(
    scenes: Sequence[Scene],
    candidates: Sequence[str],
    bands: tuple[str, ...],
    size: str = "tiny",
    rule: str = RULE,
    *,
    ratio: float = 1.0 / 16,
    params: dict[str, dict[str, Any]] | None = None,
    max_folds: int | None = None,
    budget_s: float = SELECT_BUDGET_S,
) -> SelectionResult:
    """Choose the best candidate for a region by leaving one clear pair out at a time.

    Parameters
    ----------
    scenes : scenes of the region; those with a fine image are the clear pairs (>= 3).
    candidates : registry names to compare.
    bands : band names of the arrays.
    size : model size preset for every candidate.
    rule : must be :data:`RULE` (the only rule implemented; kept explicit for provenance).
    ratio : fine / coarse resolution ratio for ERGAS.
    params : optional per-candidate extra constructor parameters (e.g. epochs).
    max_folds : hold out at most this many pairs, spread evenly over the dates (first
        and last included); None holds out every pair. Each fold trains and predicts
        every candidate once, so a season of 20+ pairs needs a bound.
    budget_s : training seconds each learned candidate may spend over all its folds
        (module doc); classic and naive candidates are not limited.
    """
    if rule != RULE:
        raise InputError(f"unknown selection rule {rule!r}; the implemented rule is {RULE!r}")
    pairs = sorted((s for s in scenes if s.fine is not None), key=lambda s: s.date)
    if len(pairs) < 3:
        raise InputError(f"model selection needs >= 3 clear pairs, got {len(pairs)}")
    if not candidates:
        raise InputError("no candidate models given")
    table = []
    folds = held_out_indices(len(pairs), max_folds)
    for name in candidates:
        extra, why = (params or {}).get(name, {}), ""
        if is_learned(name):
            extra, why = learned_budget(name, size, budget_s, len(folds), extra)
        for i in folds:
            held = pairs[i]
            if extra is None:
                table.append({"candidate": name, "held_out": held.date.isoformat(), "skipped": why})
                continue
            others = pairs[:i] + pairs[i + 1 :]
            table.append(_fold(name, others, held, bands, size, ratio, extra))
    summary = {}
    for name in candidates:
        rows = [r for r in table if r["candidate"] == name and "skipped" not in r]
        summary[name] = {
            "rmse": float(np.mean([r["rmse"] for r in rows])) if rows else float("nan"),
            "ssim": float(np.mean([r["ssim"] for r in rows])) if rows else float("nan"),
            "folds": len(rows),
        }
    return SelectionResult(table, summary, choose(summary), rule)
