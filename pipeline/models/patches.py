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
    """Cross-date tasks whose gaps match the gaps the model will predict.

    Fusion and evaluation predict a day from the nearest pair before and after it
    (:mod:`pipeline.models.pairs`), so a target pair here is predicted from its
    nearest other pair before and after: for ``n_refs == 1`` each of them is one
    task, for 2 they are the two references (the two nearest when one side has
    none). Longer gaps, which the model never meets, are not trained on. A single
    pair gives the same-date task (:func:`same_date_tasks`).
    """
    pairs = sorted(pairs, key=lambda s: s.date)
    if len(pairs) == 1:
        return same_date_tasks(pairs, n_refs)
    tasks = []
    for target in pairs:
        others = sorted(
            (p for p in pairs if p is not target), key=lambda p: abs((p.date - target.date).days)
        )
        before = [p for p in others if p.date < target.date][:1]
        after = [p for p in others if p.date > target.date][:1]
        if n_refs == 1:
            tasks.extend(Task((ref,), target) for ref in before + after)
            continue
        chosen = before + after if before and after else others[:n_refs]
        chosen = (chosen * n_refs)[:n_refs]
        tasks.append(Task(tuple(sorted(chosen, key=lambda s: s.date)), target))
    return tasks


def same_date_tasks(pairs: Sequence[Scene], n_refs: int) -> list[Task]:
    """Each pair its own reference and target: the coarse -> fine relation of one date."""
    return [Task((p,) * n_refs, p) for p in sorted(pairs, key=lambda s: s.date)]


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


def augment(items: tuple[np.ndarray, ...], k: int, flip: bool) -> tuple[np.ndarray, ...]:
    """Rotate every spatial array of one patch by ``k`` x 90 degrees, then flip it.

    Reflectance fields have no preferred orientation at 30 m; the eight
    dihedral views multiply the few patches a region offers.
    """
    out = []
    for a in items:
        if a.ndim >= 3:  # (..., h, w); ``days`` is 1-D and stays
            a = np.rot90(a, k, axes=(-2, -1))
            a = a[..., ::-1] if flip else a
            a = np.ascontiguousarray(a)
        out.append(a)
    return tuple(out)


def held_blocks(
    shape: tuple[int, int], block: int, margin: int, fraction: float, most: int | None = None
) -> list[tuple[int, int]]:
    """Top-left corners of square held-back blocks spread over the whole image.

    Blocks of ``block`` px tile the image inside a ``margin`` border; every
    ``round(1 / fraction)``-th block along a diagonal pattern is held back, so
    held-back pixels sample every part of the scene (a bottom strip of rows may
    be one landscape). At least one block is held back; at most ``most`` (evenly
    thinned: each validation pass costs a forward pass over every block).
    """
    height, width = shape
    ys = range(margin, height - margin - block + 1, block)
    xs = range(margin, width - margin - block + 1, block)
    period = max(2, round(1.0 / max(fraction, 1e-6)))
    cells = [(i, j, y, x) for i, y in enumerate(ys) for j, x in enumerate(xs)]
    held = [(y, x) for i, j, y, x in cells if (i + 2 * j) % period == 0]
    held = held or [(y, x) for _, _, y, x in cells[len(cells) // 2 : len(cells) // 2 + 1]]
    if most is not None and len(held) > most:
        keep = np.linspace(0, len(held) - 1, most).round().astype(int)
        held = [held[k] for k in keep]
    return held


def shortest_gap_tasks(tasks: Sequence[Task]) -> list[Task]:
    """The tasks whose longest reference gap is the shortest (nearest the predicted gaps).

    A fused day lies between its references, so its gaps are shorter than any
    training task's; validating on the shortest tasks resembles prediction most.
    """

    def gap(task: Task) -> int:
        return max(abs((r.date - task.target.date).days) for r in task.refs)

    shortest = min(gap(t) for t in tasks)
    return [t for t in tasks if gap(t) == shortest]


class PatchSampler:
    """Random patches from tasks whose loss core lies in rows ``[row0, row1)``.

    Parameters
    ----------
    tasks : image-level examples.
    size : side of the loss core in fine pixels (clipped to the rows and image).
    rows : (row0, row1) rows the cores may come from; the context margin may reach
        outside them (inputs only: labels outside the core never reach a loss).
    min_valid : minimum fraction of valid label pixels in the core.
    seed : random seed (deterministic sampling and augmentation).
    margin : context pixels on each side of the core, normally the model's
        ``halo`` (everything a prediction depends on): they feed the network but
        are marked invalid for the loss, so the loss sees only pixels whose whole
        receptive field is real data, as in a halo-padded prediction tile.
    augment : random 90-degree rotations and flips in :meth:`sample`.
    holdout : (y, x) bool, True where labels are held back (never in a loss here).
    cores : top-left corners of the only cores :meth:`grid` returns (held-back
        blocks, side ``size``); None = cores tiling ``rows``.
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
        augment: bool = False,
        holdout: np.ndarray | None = None,
        cores: Sequence[tuple[int, int]] | None = None,
    ) -> None:
        self.tasks = list(tasks)
        self.valid = [_valid(t) for t in self.tasks]
        if holdout is not None:
            self.valid = [v & ~holdout for v in self.valid]
        self.cores = None if cores is None else list(cores)
        height, width = self.valid[0].shape
        self.margin = m = max(0, min(margin, (min(height, width) - 1) // 2))
        # cores need their whole margin inside the image
        self.rows = (max(rows[0], m), min(rows[1], height - m))
        self.core = max(1, min(size, self.rows[1] - self.rows[0], width - 2 * m))
        self.size = self.core + 2 * m
        self.min_valid = min_valid
        self.augment = augment
        self.rng = np.random.default_rng(seed)

    def _y_range(self) -> tuple[int, int]:
        """Allowed window tops: core inside ``rows``, window inside the image."""
        lo = self.rows[0] - self.margin
        return lo, max(lo, self.rows[1] - self.core - self.margin)

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
        """``n`` random patches with at least ``min_valid`` valid core pixels each."""
        width = self.valid[0].shape[1]
        lo, hi = self._y_range()
        m, items = self.margin, []
        for _ in range(n):
            for _ in range(max_tries):
                k = int(self.rng.integers(len(self.tasks)))
                y = int(self.rng.integers(lo, hi + 1))
                x = int(self.rng.integers(0, width - self.size + 1))
                item = self._one(k, y, x)
                if item[4][0, m : self.size - m, m : self.size - m].mean() >= self.min_valid:
                    break
            if self.augment:
                item = augment(item, int(self.rng.integers(4)), bool(self.rng.integers(2)))
            items.append(item)
        return Batch(*(np.stack(a) for a in zip(*items, strict=True)))

    def grid(self) -> list[Batch]:
        """Non-overlapping cores tiling ``rows`` of every task (fixed validation set).

        One batch per task; cores that do not fit whole are left out. With
        ``cores`` given, exactly those (held-back blocks).
        """
        width = self.valid[0].shape[1]
        c, m, batches = self.core, self.margin, []
        origins = self.cores or [
            (y0, x0)
            for y0 in range(self.rows[0], self.rows[1] - c + 1, c)
            for x0 in range(m, width - m - c + 1, c)
        ]
        for k in range(len(self.tasks)):
            items = [self._one(k, y0 - m, x0 - m) for y0, x0 in origins]
            items = [i for i in items if i[4].mean() > 0]
            if items:
                batches.append(Batch(*(np.stack(a) for a in zip(*items, strict=True))))
        return batches
