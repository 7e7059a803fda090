"""Self-supervised training samples: which dates play reference/target, and random patches.

A *task* is one training example at image level: ``refs`` (clear pairs used as
references) and ``target`` (a clear pair whose fine image is the label). Every
clear pair takes its turn as the target, the others as references, so a model
learns to predict a date it did not see from the dates it did. With a single
pair, the pair is its own reference: the model then only learns the
same-date relation (zero coarse change), so its prediction stays close to its
untrained starting point; models say so in their docs.

Patches are drawn uniformly inside a row range (training rows vs. held-back
validation rows) and rejected when fewer than ``min_valid`` of their pixels are
valid in every input and the label: NaN never reaches a loss (the remaining
NaNs are filled and masked out, see :func:`fill_invalid`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pipeline.models.base import Scene


@dataclass(frozen=True)
class Task:
    """Reference scenes and the target scene (with its fine label) of one example."""

    refs: tuple[Scene, ...]
    target: Scene


@dataclass
class Batch:
    """A batch of patches as float32 tensors (torch) or arrays.

    Attributes
    ----------
    refs_coarse, refs_fine : (N, R, B, h, w) reference pairs.
    tgt_coarse, tgt_fine : (N, B, h, w) target coarse input and fine label.
    valid : (N, 1, h, w) 1.0 where the label and all inputs were valid, else 0.0.
    days : (N, R) signed days from target to each reference.
    """

    refs_coarse: object
    refs_fine: object
    tgt_coarse: object
    tgt_fine: object
    valid: object
    days: object


def make_tasks(pairs: Sequence[Scene], n_refs: int) -> list[Task]:
    """One task per (target pair, nearest ``n_refs`` other pairs).

    For ``n_refs == 1`` every ordered pair of distinct dates is a task; for 2 the
    references are the nearest pair before and after (or the two nearest).
    """
    pairs = sorted(pairs, key=lambda s: s.date)
    if len(pairs) == 1:
        return [Task((pairs[0],) * n_refs, pairs[0])]
    tasks = []
    for target in pairs:
        others = sorted(
            (p for p in pairs if p is not target), key=lambda p: abs((p.date - target.date).days)
        )
        if n_refs == 1:
            tasks.extend(Task((ref,), target) for ref in others)
            continue
        before = [p for p in others if p.date < target.date][:1]
        after = [p for p in others if p.date > target.date][:1]
        chosen = before + after if before and after else others[:n_refs]
        chosen = (chosen * n_refs)[:n_refs]
        tasks.append(Task(tuple(sorted(chosen, key=lambda s: s.date)), target))
    return tasks


def fill_invalid(
    refs_coarse: np.ndarray, refs_fine: np.ndarray, tgt_coarse: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Replace NaN inputs by the best stand-in, so networks never see NaN.

    Fine ref NaN -> the coarse ref there; coarse ref NaN -> the target coarse;
    target coarse NaN -> the coarse ref (the prediction there is masked anyway);
    anything still NaN -> 0. Shapes: refs (..., R, B, h, w), target (..., B, h, w).
    """
    tgt = np.expand_dims(tgt_coarse, -4)
    rc = np.where(np.isnan(refs_coarse), tgt, refs_coarse)
    tgt = np.where(np.isnan(tgt), rc.mean(-4, keepdims=True), tgt)[..., 0, :, :, :]
    rf = np.where(np.isnan(refs_fine), rc, refs_fine)
    return (np.nan_to_num(a).astype(np.float32) for a in (rc, rf, tgt))  # type: ignore[return-value]


def _valid(task: Task) -> np.ndarray:
    """(y, x) True where every input and the label are finite in all bands."""
    arrays = [task.target.coarse, task.target.fine]
    for ref in task.refs:
        arrays += [ref.coarse, ref.fine]
    return np.all([np.isfinite(a).all(0) for a in arrays], axis=0)


class PatchSampler:
    """Random patches from tasks, restricted to rows ``[row0, row1)``.

    Parameters
    ----------
    tasks : image-level examples.
    size : patch side in fine pixels (clipped to the image).
    rows : (row0, row1) rows patches may come from.
    min_valid : minimum fraction of valid label pixels for a patch to be used.
    seed : random seed (deterministic sampling).
    margin : context pixels added on each side of the patch; they feed the network
        but are marked invalid for the loss, so training sees the same context as
        a halo-padded prediction tile.
    """

    def __init__(
        self,
        tasks: Sequence[Task],
        size: int,
        rows: tuple[int, int],
        *,
        min_valid: float = 0.9,
        seed: int = 0,
        margin: int = 0,
    ) -> None:
        self.tasks = list(tasks)
        self.valid = [_valid(t) for t in self.tasks]
        width = self.valid[0].shape[1]
        self.rows = rows
        self.size = min(size + 2 * margin, rows[1] - rows[0], width)
        self.margin = min(margin, (self.size - 1) // 2)
        self.min_valid = min_valid
        self.rng = np.random.default_rng(seed)

    def _one(self, task_index: int, y: int, x: int) -> tuple[np.ndarray, ...]:
        task, s = self.tasks[task_index], self.size
        win = (slice(None), slice(y, y + s), slice(x, x + s))
        rc = np.stack([r.coarse[win] for r in task.refs])
        rf = np.stack([r.fine[win] for r in task.refs])
        rc, rf, tc = fill_invalid(rc, rf, task.target.coarse[win])
        valid = self.valid[task_index][y : y + s, x : x + s].copy()
        m = self.margin
        if m:
            valid[:m], valid[-m:], valid[:, :m], valid[:, -m:] = False, False, False, False
        label = np.nan_to_num(task.target.fine[win]).astype(np.float32)
        days = np.array([(r.date - task.target.date).days for r in task.refs], np.float32)
        return rc, rf, tc, label, valid[None].astype(np.float32), days

    def sample(self, n: int, max_tries: int = 50) -> Batch:
        """``n`` random patches with at least ``min_valid`` valid pixels each."""
        width = self.valid[0].shape[1]
        items = []
        for _ in range(n):
            for _ in range(max_tries):
                k = int(self.rng.integers(len(self.tasks)))
                y = int(self.rng.integers(self.rows[0], self.rows[1] - self.size + 1))
                x = int(self.rng.integers(0, width - self.size + 1))
                item = self._one(k, y, x)
                core = item[4][
                    0, self.margin : self.size - self.margin, self.margin : self.size - self.margin
                ]
                if core.mean() >= self.min_valid:
                    break
            items.append(item)
        return Batch(*(np.stack(a) for a in zip(*items, strict=True)))

    def grid(self) -> list[Batch]:
        """Every non-overlapping patch of every task (fixed validation set), one batch per task."""
        width = self.valid[0].shape[1]
        s, batches = self.size, []
        for k in range(len(self.tasks)):
            items = [
                self._one(k, y, x)
                for y in range(self.rows[0], self.rows[1] - s + 1, s)
                for x in range(0, width - s + 1, s)
            ]
            items = [i for i in items if i[4].mean() > 0]
            if items:
                batches.append(Batch(*(np.stack(a) for a in zip(*items, strict=True))))
        return batches
