"""An error model of the smoothed-change start: a sigma that ranks errors without training.

A zero-headed network at its start *is* the smoothed-change baseline, so a sample
spread or a test-time-augmentation spread of it is zero or meaningless. Yet where
that baseline goes wrong is partly predictable from its inputs: where the two
references disagree, where the coarse change is large or uneven within the box,
where the fine reference is textured. On the withheld day of estarfm-2001 each of
these ranks |error| with Spearman 0.32-0.45 (``benchmarks/model-zoo.md``).

:func:`fit_error_model` regresses ``log |error|`` of the start on the logs of
those features, per band, over the training dates' gap-matched tasks (each pair
predicted from its neighbours by :func:`~pipeline.models.baselines.rule_tasks`, the
gaps a fused day has); :func:`error_sigma` evaluates it on a fusion request. For a
normal error, ``E[log |e|] = log(sigma) - 0.635``, so ``exp(fit + 0.635)`` is a
sigma in reflectance before any calibration. Without a task to fit on (fewer than
two clear pairs) the features are weighted equally (``coef`` None): still a ranking,
whose scale the fuse stage's calibration sets.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from pipeline.models.base import Scene, nearest_ref
from pipeline.models.baselines import blend_smoothed, box_mean, rule_tasks

#: Floor (reflectance) of every feature and error before the log.
EPS = 1e-4
#: E[log |z|] of a standard normal z: the offset from mean log-error to log-sigma.
_LOG_HALF_NORMAL = 0.635
#: Pixels per band and task the regression samples (a fixed-seed subsample).
_SAMPLES = 20000
#: Names of the features, in order (documentation and tests).
FEATURES = ("ref_spread", "abs_change", "change_std", "fine_texture")


def _local_std(image: np.ndarray, window: int) -> np.ndarray:
    """NaN-aware local standard deviation over ``window`` px, (band, y, x) float64."""
    mean = box_mean(image, window)
    return np.sqrt(np.maximum(box_mean(image * image, window) - mean * mean, 0.0))


def features(refs: Sequence[Scene], target: Scene, window: int) -> np.ndarray:
    """(F, band, y, x) float64 log-features of one fusion request (see :data:`FEATURES`).

    ``refs`` are the fusion's reference pairs (fine set), ``target`` its coarse-only
    scene; ``window`` the start's box width (fine px). The reference spread is 0
    (then :data:`EPS`) with one reference.
    """
    near = nearest_ref(refs, target.date)
    change = target.coarse.astype(np.float64) - near.coarse
    spread = blend_smoothed(refs, target, window, "time")[1] if len(refs) > 1 else None
    parts = [
        np.zeros_like(change) if spread is None else spread,
        np.abs(box_mean(change, window)),
        _local_std(change, window),
        _local_std(near.fine.astype(np.float64), 5),
    ]
    return np.log(np.maximum(np.nan_to_num(np.stack(parts), nan=EPS), EPS))


def fit_error_model(
    pairs: Sequence[Scene], window: int, blend: str, seed: int = 0
) -> dict[str, Any]:
    """Per-band least-squares fit of ``log |error|`` of the start on :func:`features`.

    Returns ``{"coef": (band, F + 1) list or None, "features": FEATURES}``
    (JSON-ready, kept in the model's ``params``); ``coef[b]`` is the intercept then
    one weight per feature. None when the training dates give no task.
    """
    rng = np.random.default_rng(seed)
    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    for refs, target in rule_tasks(pairs):
        pred = blend_smoothed(refs, target, window, blend)[0]
        err = np.abs(pred - target.fine)
        x = features(refs, Scene(target.date, target.coarse), window)
        ok = np.isfinite(err).all(0)
        idx = np.flatnonzero(ok)
        idx = rng.choice(idx, min(idx.size, _SAMPLES), replace=False) if idx.size else idx
        xs.append(x.reshape(*x.shape[:2], -1)[:, :, idx])  # (F, B, n)
        ys.append(np.log(np.maximum(err.reshape(err.shape[0], -1)[:, idx], EPS)))
    if not xs or sum(y.shape[-1] for y in ys) < 10:
        return {"coef": None, "features": list(FEATURES)}
    x_all, y_all = np.concatenate(xs, -1), np.concatenate(ys, -1)
    coef = []
    for b in range(y_all.shape[0]):
        design = np.column_stack([np.ones(y_all.shape[1]), x_all[:, b].T])
        beta = np.linalg.lstsq(design, y_all[b], rcond=None)[0]
        coef.append([float(v) for v in beta])
    return {"coef": coef, "features": list(FEATURES)}


def error_sigma(
    model: dict[str, Any], refs: Sequence[Scene], target: Scene, window: int
) -> np.ndarray:
    """(band, y, x) float32 sigma (reflectance) of the start's error from ``model``.

    With ``coef`` None the log-features are averaged with equal weights (a ranking
    only; its scale is left to calibration).
    """
    x = features(refs, target, window)
    if model.get("coef") is None:
        return np.exp(x.mean(0)).astype(np.float32)
    coef = np.asarray(model["coef"], dtype=np.float64)  # (B, F + 1)
    log_sigma = coef[:, 0, None, None] + np.einsum("fbyx,bf->byx", x, coef[:, 1:])
    return np.exp(np.clip(log_sigma + _LOG_HALF_NORMAL, -20.0, 2.0)).astype(np.float32)
