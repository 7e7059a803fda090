"""The contract every fusion model honours.

Arrays are numpy float32 reflectance in [0, 1] (roughly: negative and >1 values
occur and are kept), dims ``(band, y, x)`` on the FINE grid. Coarse images are
given already on the fine grid (block-replicated by the cube; a model may
smooth them itself). NaN marks an invalid pixel (nodata, cloud, shadow).

Rules every model follows:

* NaN pixels never reach a loss (training excludes them) and never spread as
  silent garbage: ``predict`` fills what it can from valid neighbours/coarse
  data and returns NaN only where the target coarse image itself is NaN.
* ``halo`` is the number of fine pixels of context a prediction at one pixel
  depends on (receptive field, STARFM window radius). Fusing tiles padded by
  ``halo`` and cropping gives the whole-image result (tested to 1e-4).
* Everything needed to rebuild a fitted model is in ``save``'s directory:
  ``config.json`` + ``weights.safetensors`` (never pickle).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class Scene:
    """Images of one date on the fine grid.

    Attributes
    ----------
    date : acquisition date.
    coarse : (band, y, x) float32 coarse reflectance on the fine grid, NaN = invalid.
    fine : (band, y, x) float32 fine reflectance, NaN = invalid; None when not observed.
    """

    date: dt.date
    coarse: np.ndarray
    fine: np.ndarray | None = None

    @property
    def is_pair(self) -> bool:
        return self.fine is not None


@dataclass(frozen=True)
class FusionInput:
    """What one prediction needs: reference pairs and the target date's coarse image.

    Attributes
    ----------
    refs : 1 or 2 reference :class:`Scene` with ``fine`` set, ordered by date.
    target : :class:`Scene` of the target date (``fine`` is None or ignored).
    bands : canonical band names of the band axis, e.g. ("green", "red", "nir").
    """

    refs: tuple[Scene, ...]
    target: Scene
    bands: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.refs:
            raise ValueError("at least one reference pair is required")
        shape = self.target.coarse.shape
        for ref in self.refs:
            if ref.fine is None:
                raise ValueError(f"reference {ref.date} has no fine image")
            if ref.fine.shape != shape or ref.coarse.shape != shape:
                raise ValueError(
                    f"reference {ref.date} shape {ref.fine.shape} differs from target {shape}"
                )
        if shape[0] != len(self.bands):
            raise ValueError(f"{shape[0]} bands in the arrays but {len(self.bands)} names")


@dataclass(frozen=True)
class Prediction:
    """A fused fine image.

    Attributes
    ----------
    fine : (band, y, x) float32 predicted reflectance.
    uncertainty : (band, y, x) float32 predicted 1-sigma error in reflectance, or None.
    """

    fine: np.ndarray
    uncertainty: np.ndarray | None = None


@dataclass(frozen=True)
class FitReport:
    """What training did.

    Attributes
    ----------
    epochs : epochs run (0 = the start was kept without a gradient step).
    best_val_loss : best validation MSE (reflectance^2), epoch 0 = the untrained start.
    seconds : wall-clock training time.
    history : one {"epoch", "loss", "val_loss", "lr"} per epoch, epoch 0 first.
    steps : optimiser steps taken.
    start_val_rmse, end_val_rmse : held-back RMSE (reflectance) of the start and of
        the weights kept.
    validation : what was held back ("date 2001-07-11", "rows", "blocks").
    task : the training task ("cross-date" or "same-date").
    notes : model-specific facts (e.g. each loss term's share at start and end).
    """

    epochs: int = 0
    best_val_loss: float | None = None
    seconds: float = 0.0
    history: list[dict[str, float]] = field(default_factory=list)
    steps: int = 0
    start_val_rmse: float | None = None
    end_val_rmse: float | None = None
    validation: str = ""
    task: str = ""
    notes: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """JSON-ready summary (no history)."""
        return {
            "steps": self.steps,
            "epochs": self.epochs,
            "seconds": self.seconds,
            "start_val_rmse": self.start_val_rmse,
            "end_val_rmse": self.end_val_rmse,
            "validation": self.validation,
            "task": self.task,
            **self.notes,
        }


@runtime_checkable
class FusionModel(Protocol):
    """A spatiotemporal fusion model.

    Class attributes
    ----------------
    name : registry name (``"starfm"``, ``"resstf"``, ...).
    n_refs : numbers of reference pairs the model accepts, e.g. (1, 2).
    trainable : False for classic methods (``fit`` is a no-op for them).
    """

    name: ClassVar[str]
    n_refs: ClassVar[tuple[int, ...]]
    trainable: ClassVar[bool]

    @property
    def halo(self) -> int:
        """Fine pixels of context needed on each side of a tile."""
        ...

    def fit(
        self,
        pairs: Sequence[Scene],
        val: Sequence[Scene] = (),
        *,
        bands: tuple[str, ...],
        progress: bool = True,
    ) -> FitReport:
        """Train on clear pairs of one region (self-supervised); no-op for classic models."""
        ...

    def predict(self, inputs: FusionInput) -> Prediction:
        """Fuse one target date."""
        ...

    def config(self) -> dict[str, Any]:
        """JSON-serialisable constructor arguments (name, size, bands, hyper-parameters)."""
        ...

    def save(self, directory: Path) -> None:
        """Write ``config.json`` and ``weights.safetensors`` into ``directory``."""
        ...


def inverse_time_weights(refs: Sequence[Scene], target: dt.date) -> np.ndarray:
    """Weights of reference pairs, proportional to 1 / |days to target|, summing to 1.

    A reference on the target date itself gets all the weight (the distance
    would be zero); one day is the smallest distance otherwise.

    Returns
    -------
    (n_refs,) float64 weights.
    """
    days = np.array([abs((ref.date - target).days) for ref in refs], dtype=np.float64)
    weights = (days == 0).astype(np.float64) if np.any(days == 0) else 1.0 / days
    return weights / weights.sum()


def nearest_ref(refs: Sequence[Scene], target: dt.date) -> Scene:
    """The reference pair closest in time to ``target`` (the earlier one on a tie)."""
    return min(refs, key=lambda ref: (abs((ref.date - target).days), ref.date))


class ClassicModel:
    """Shared plumbing of models without learned weights (baselines, STARFM, ...).

    Subclasses set ``name``, ``n_refs`` and implement :meth:`predict`; their
    keyword hyper-parameters go into ``self.params`` so that :meth:`config`
    and :meth:`from_config` round-trip them. ``fit`` does nothing.
    """

    name: ClassVar[str] = ""
    n_refs: ClassVar[tuple[int, ...]] = (1, 2)
    trainable: ClassVar[bool] = False

    def __init__(self, bands: Sequence[str], size: str = "full", **params: Any) -> None:
        self.bands = tuple(bands)
        self.size = size
        self.params = params

    @property
    def halo(self) -> int:
        return 0

    def fit(
        self,
        pairs: Sequence[Scene],
        val: Sequence[Scene] = (),
        *,
        bands: tuple[str, ...],
        progress: bool = True,
    ) -> FitReport:
        """Nothing to learn: return an empty report."""
        return FitReport()

    def predict(self, inputs: FusionInput) -> Prediction:
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "bands": list(self.bands), "size": self.size, **self.params}

    def save(self, directory: Path) -> None:
        """Write ``config.json`` and an empty ``weights.safetensors`` (uniform layout)."""
        import json

        from safetensors.numpy import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "config.json").write_text(json.dumps(self.config(), indent=2))
        save_file({}, str(directory / "weights.safetensors"))

    @classmethod
    def from_config(cls, config: dict[str, Any], directory: Path | None = None) -> ClassicModel:
        """Rebuild from :meth:`config` output; ``directory`` is unused (no weights)."""
        params = {k: v for k, v in config.items() if k not in ("name", "bands", "size")}
        return cls(bands=tuple(config["bands"]), size=config.get("size", "full"), **params)
