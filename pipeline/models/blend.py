"""Per-pixel blend of the two smoothed-change streams by how much each reference changed.

The day blend (``smoothed_change_blend``, the learned models' ``"time"`` start) gives
each reference stream ``P_k = fine_k + box_w(coarse_t - coarse_k)`` one weight for the
whole image. Where the land changed between reference k and the target (harvest,
green-up) stream k carries a smeared coarse change and the other stream is the better
guess. STARFM weights each candidate by its temporal difference ``T = |C_t - C_k|``
(Gao et al. 2006, eq. 6; ESTARFM's conversion weights are the same idea over a window):
here ``w_k ∝ days_k^-p / (|box_v(C_t - C_k)| + eps)`` per pixel, the magnitude a band
mean, ``v``, ``eps`` and ``p`` (0: change alone, 1: times the day weight) chosen on the
training dates' two-reference tasks (:func:`pipeline.models.baselines.rule_tasks`), as
the smoothing window is. Without such a task the setting is STARFM's own
(:data:`STARFM_SETTING`: the per-pixel coarse change, ``eps = sqrt(2) * 0.002``, its
temporal uncertainty ``u_t``, times the day weight).

Measured (``benchmarks/blend_diagnosis.py``, ``benchmarks/fusion-accuracy-notes.md``):
on the synthetic season's target the day blend scores 0.00604, this rule 0.00597 (chosen
on the training tasks) and on estarfm-2001 0.00681 -> 0.00654 (STARFM's setting).

``smoothed_change_tblend`` (:class:`SmoothedChangeTBlend`) is that rule as a naive model;
:func:`choose_start` lets the learned models that start from a smoothed change start
from it (blend ``"change"``) where the training tasks prefer it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from pipeline.models.base import FitReport, FusionInput, Prediction, Scene
from pipeline.models.baselines import (
    BLENDS,
    SmoothedChange,
    StartChoice,
    _fill_from_coarse,
    box_mean,
    choose_smoothing,
    rule_tasks,
    smoothed_change_prediction,
)

#: the blend name of this rule among the start rule's blends
CHANGE_BLEND = "change"
#: every blend a learned model's start may take (the baselines' and this one)
START_BLENDS: tuple[str, ...] = (*BLENDS, CHANGE_BLEND)
#: magnitude windows (fine px) tried; only those <= the smoothing window (no extra halo)
MAG_WINDOWS: tuple[int, ...] = (1, 9, 17, 33)
EPSILONS: tuple[float, ...] = (1e-3, 3e-3, 1e-2)
DAY_POWERS: tuple[float, ...] = (0.0, 1.0)


@dataclass(frozen=True)
class ChangeSetting:
    """One setting of the change-weighted blend.

    Attributes
    ----------
    window : box width (fine px) over which the coarse change's magnitude is averaged.
    eps : reflectance added to the magnitude (a change below the noise says nothing).
    day_power : exponent of the inverse day distance multiplied in (0: none).
    """

    window: int = 1
    eps: float = float(np.sqrt(2.0) * 0.002)
    day_power: float = 1.0

    def key(self) -> str:
        """Short name, e.g. ``v9_eps0.003_days1``."""
        return f"v{self.window}_eps{self.eps:.3g}_days{self.day_power:g}"

    def to_params(self) -> dict[str, Any]:
        """JSON-ready (a model's ``params["change_blend"]``)."""
        return asdict(self)


#: STARFM's temporal weight (per-pixel coarse change, its u_t) times the day weight
STARFM_SETTING = ChangeSetting()
NO_TASK_REASON = "no two-reference training task: STARFM's temporal weight (u_t) x day weight"


def setting_of(params: dict[str, Any]) -> ChangeSetting:
    """A model's ``params["change_blend"]`` as a setting (STARFM's when unset)."""
    return ChangeSetting(**(params.get("change_blend") or STARFM_SETTING.to_params()))


def change_weights(refs: Sequence[Scene], target: Scene, setting: ChangeSetting) -> np.ndarray:
    """(R, 1, y, x) float64 per-pixel stream weights summing to 1 (module doc).

    The magnitude is the band mean of ``|box_v(C_t - C_k)|`` (NaN-aware box); where a
    stream has no magnitude its weight is 0 (the others renormalised), where none has,
    the day weights alone.
    """
    days = np.array([max(abs((r.date - target.date).days), 1) for r in refs], dtype=np.float64)
    if any(r.date == target.date for r in refs):  # a reference on the date takes all
        return np.array([float(r.date == target.date) for r in refs])[:, None, None, None]
    raw = []
    for ref, d in zip(refs, days, strict=True):
        mag = np.abs(box_mean(target.coarse.astype(np.float64) - ref.coarse, setting.window))
        valid = np.isfinite(mag).sum(0)  # a band mean without nanmean's all-NaN warning
        mean = np.where(valid > 0, np.nansum(mag, axis=0) / np.maximum(valid, 1), np.nan)
        raw.append(d**-setting.day_power / (mean + setting.eps))
    inv = np.nan_to_num(np.stack(raw))
    total = inv.sum(0, keepdims=True)
    day = (1.0 / days / np.sum(1.0 / days))[:, None, None]
    weights = np.where(total > 0, inv / np.where(total > 0, total, 1.0), day)
    return weights[:, None]


def change_blended(
    refs: Sequence[Scene], target: Scene, window: int, setting: ChangeSetting
) -> tuple[np.ndarray, np.ndarray | None]:
    """Smoothed-change streams of ``target`` blended per pixel by ``setting``.

    Returns ``(mean, spread)``: (band, y, x) float64, NaN where no stream has a value;
    ``spread`` the weighted standard deviation of the streams (None with one reference).
    """
    preds = np.stack([smoothed_change_prediction(r, target.coarse, window) for r in refs])
    w = np.where(np.isnan(preds), 0.0, change_weights(refs, target, setting))
    wsum = w.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.nansum(preds * w, axis=0) / wsum
        var = np.nansum(w * (preds - mean) ** 2, axis=0) / wsum
    mean = np.where(wsum > 0, mean, np.nan)
    return mean, (np.sqrt(np.nan_to_num(var)) if len(refs) > 1 else None)


def candidates(max_window: int) -> list[ChangeSetting]:
    """Every setting tried, magnitude windows no wider than ``max_window``."""
    windows = [v for v in MAG_WINDOWS if v <= max(1, max_window)]
    return [ChangeSetting(v, e, p) for v in windows for e in EPSILONS for p in DAY_POWERS]


def choose_change(
    pairs: Sequence[Scene], window: int
) -> tuple[ChangeSetting, dict[str, float], str]:
    """The setting with the lowest summed MSE on the two-reference rule tasks.

    Returns ``(setting, errors, reason)``: ``errors[setting.key()]`` the summed per-task
    MSE (reflectance^2) of every candidate; ``reason`` non-empty (and
    :data:`STARFM_SETTING`) when there is no two-reference task. Ties go to the earlier
    candidate (smaller window, smaller eps, no day factor).
    """
    tasks = [(refs, t) for refs, t in rule_tasks(pairs) if len(refs) == 2]
    if not tasks:
        return STARFM_SETTING, {}, NO_TASK_REASON
    errors = {}
    settings = candidates(window)
    for setting in settings:
        total = 0.0
        for refs, target in tasks:
            err = change_blended(refs, target, window, setting)[0] - target.fine
            total += float(np.nanmean(err**2)) if np.isfinite(err).any() else 0.0
        errors[setting.key()] = total
    best = min(settings, key=lambda s: errors[s.key()])
    return best, errors, ""


def choose_start(
    pairs: Sequence[Scene], windows: Sequence[int], blends: Sequence[str]
) -> tuple[StartChoice, ChangeSetting | None]:
    """The start rule with the change blend among the candidates.

    The window (and the day blend) as :func:`~pipeline.models.baselines.choose_smoothing`
    chooses them; with ``"change"`` in ``blends`` its best setting for that window is
    scored on the same tasks and taken when its MSE is no higher (with no two-reference
    task all blends tie and STARFM's setting is taken: the change blend is the published
    physical rule, the day blend its special case; ``blends = ("change",)`` forces it).
    Returns the choice and the setting (None unless the change blend was chosen).
    """
    day_blends = tuple(b for b in blends if b in BLENDS)
    choice = choose_smoothing(pairs, windows, day_blends or ("time",))
    if CHANGE_BLEND not in blends:
        return choice, None
    setting, errors, reason = choose_change(pairs, choice.window)
    day_error = choice.errors.get((choice.window, choice.blend))
    change_error = errors.get(setting.key())
    scored_both = day_blends and day_error is not None and change_error is not None
    if scored_both and change_error > day_error:  # type: ignore[operator]
        return choice, None
    scored = dict(choice.errors)
    if change_error is not None:
        scored[(choice.window, CHANGE_BLEND)] = change_error
    why = choice.reason or (f"change blend {setting.key()}: " + (reason or "lowest MSE"))
    return StartChoice(choice.window, CHANGE_BLEND, scored, reason=why), setting


class SmoothedChangeTBlend(SmoothedChange):
    """Both references' smoothed changes blended per pixel by STARFM's temporal weight.

    A naive model (no weights): ``fit`` chooses the smoothing window as
    ``smoothed_change_blend`` does, then the blend's setting on the training dates
    (:func:`choose_change`); ``predict`` blends the two streams per pixel
    (:func:`change_blended`) and returns their weighted spread as uncertainty.
    """

    name = "smoothed_change_tblend"
    blend = "time"

    @property
    def halo(self) -> int:
        window = int(self.params["window"])
        mag = int(self.params.get("change_blend", {}).get("window", 1))
        return max(window, mag) // 2

    def fit(
        self,
        pairs: Sequence[Scene],
        val: Sequence[Scene] = (),
        *,
        bands: tuple[str, ...],
        progress: bool = True,
    ) -> FitReport:
        """Window, then the blend's setting, on the training pairs; no gradient steps."""
        super().fit(pairs, val, bands=bands, progress=progress)
        setting, _, _ = choose_change(list(pairs) + list(val), int(self.params["window"]))
        self.params["change_blend"] = setting.to_params()
        return FitReport()

    def predict(self, inputs: FusionInput) -> Prediction:
        setting = ChangeSetting(**self.params.get("change_blend", STARFM_SETTING.to_params()))
        window = int(self.params["window"])
        mean, spread = change_blended(inputs.refs, inputs.target, window, setting)
        fine = _fill_from_coarse(mean, inputs.target.coarse)
        unc = None
        if spread is not None:
            unc = np.where(np.isnan(fine), np.nan, spread).astype(np.float32)
        return Prediction(fine, unc)
