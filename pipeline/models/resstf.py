"""ResStf: residual CNN spatiotemporal fusion, as published (Wang & Wang 2020; shared/papers).

Network (the paper's): 18 convolution layers, the first and the 16 middle ones
64 filters of 3x3 + ReLU, the last one band-count filters; ~0.6 M parameters
per stream at 6 bands. He-initialised, zero head (:class:`ResStfNet`).

Task (the paper's): at each reference date k the network of stream k learns
the residual ``L_k - M_k`` (Landsat minus upsampled MODIS) *from the MODIS
image* ``M_k`` (same-date pairs: so one pair suffices); at the target date it
predicts ``L_t^k = M_t + f_k(M_t)``. One network per reference pair
(``self.net`` is a ``ModuleDict`` keyed by the pair's ISO date; a reference
date without its own network uses the one trained on the nearest pair).
Each stream trains on its own pair; early stopping (the best state, the
untrained start included, is kept) scores it where it will be used, at the
nearest other pairs (``stream_val = "dates"``, :meth:`ResStf._transfer_dates`),
or, with one pair only (or ``stream_val = "blocks"``), on held-back spatial
blocks of its own pair; the time and step budgets are shared equally between
streams. Presets: ``tiny`` (tests), ``small`` (10 layers of 32, patch 64: the
2-core CPU budget), ``full`` (the paper's 18 x 64).

Two streams are blended per pixel with the paper's temporal weights
``w_k = (1/v_k) / sum_j(1/v_j)``, ``v_k`` the mean absolute change of
``NDVI + NDBI`` between MODIS k and the target MODIS inside a
(2 * weight_radius + 1)^2 box (NDBI only where ``swir1`` exists; fallbacks in
:func:`change_index`). The paper averages overlapping patches; the network is
fully convolutional, so each output pixel is the same function of its 37x37
neighbourhood in every patch containing it away from the edge, and one pass
over tiles padded by ``halo`` is that average without the padding artefacts;
the box-centred weights are the overlap-averaged limit of its per-patch weights.

Optimiser: ``optimizer = "sgd"`` is the paper's (mini-batch SGD, momentum 0.9,
weight decay 1e-4); the preset is AdamW (same weight decay), which reaches a
lower held-back loss within a 2-core CPU budget.

Inputs are standardised per band (training pairs' fine statistics); bf16
autocast (CUDA) only inside the network. The variant that corrects a
physical start (fine reference + smoothed MODIS change) is ``resstf_prior``
(:mod:`pipeline.models.resstf_prior`), reported separately.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from scipy.ndimage import uniform_filter
from torch import Tensor, nn

from pipeline.errors import InputError
from pipeline.models._torch import TorchFusionModel, conv, he_init
from pipeline.models.base import FitReport, Scene
from pipeline.models.pairs import choose_scenes


class ResStfNet(nn.Module):
    """``depth`` 3x3 convolutions; returns the residual (N, B, h, w) in band-std units.

    He-initialised (the default init starves an 18-layer plain ReLU stack of
    gradient, see :func:`pipeline.models._torch.he_init`); the last layer starts
    at zero so an untrained network returns its base exactly.
    """

    def __init__(self, c_in: int, n_bands: int, width: int, depth: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [conv(c_in, width), nn.ReLU(inplace=True)]
        for _ in range(depth - 2):
            layers += [conv(width, width), nn.ReLU(inplace=True)]
        last = conv(width, n_bands)
        self.body = he_init(nn.Sequential(*layers, last))
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)


def change_index(coarse: np.ndarray, bands: Sequence[str]) -> np.ndarray:
    """(y, x) NDVI + NDBI of a (band, y, x) image, with the fallbacks of the module doc."""
    b = {name: coarse[i].astype(np.float64) for i, name in enumerate(bands)}
    if "ndvi" in b:
        return b["ndvi"]
    if "red" not in b or "nir" not in b:
        return coarse.astype(np.float64).mean(0)
    index = (b["nir"] - b["red"]) / np.maximum(np.abs(b["nir"] + b["red"]), 1e-6)
    if "swir1" in b:
        index = index + (b["swir1"] - b["nir"]) / np.maximum(np.abs(b["swir1"] + b["nir"]), 1e-6)
    return index


class IndexChangeBlend(TorchFusionModel):
    """Blend per-reference streams by the paper's NDVI/NDBI change weights (or the base's).

    Shared by ResStf and EDCSTFN; ``params["blend"]`` is ``"index"``, ``"time"``,
    ``"nearest"`` or ``"auto"`` (the start rule's choice,
    :meth:`TorchFusionModel.select_start`).
    """

    def stream_weights(self, refs: Sequence[Scene], target: Scene) -> np.ndarray:
        """(S, 1, y, x) inverse NDVI+NDBI change weights, box-averaged (module doc)."""
        if self.blend_name() != "index":
            return super().stream_weights(refs, target)
        return index_change_weights(refs, target, self.bands, int(self.params["weight_radius"]))


def index_change_weights(
    refs: Sequence[Scene], target: Scene, bands: Sequence[str], radius: int
) -> np.ndarray:
    """(S, 1, y, x) float32 weights ``(1/v_k) / sum(1/v_j)`` of the module docstring.

    ``v_k`` is the mean |index(C_k) - index(C_target)| in a (2 radius + 1)^2 box,
    NaN pixels left out; reusable by any model that blends per-reference streams.
    """
    size = 2 * radius + 1
    tgt = change_index(target.coarse, bands)
    change = []
    for ref in refs:
        diff = np.abs(change_index(ref.coarse, bands) - tgt)
        ok = np.isfinite(diff)
        num = uniform_filter(np.where(ok, diff, 0.0), size, mode="nearest")
        den = uniform_filter(ok.astype(np.float64), size, mode="nearest")
        change.append(np.where(den > 0, num / np.maximum(den, 1e-12), np.inf))
    inverse = 1.0 / (np.stack(change) + 1e-6)
    return (inverse / inverse.sum(0, keepdims=True))[:, None].astype(np.float32)


class ResStf(IndexChangeBlend):
    """ResStf as published: one residual network per reference pair (module docstring)."""

    name = "resstf"
    n_refs = (1, 2)
    train_refs = 1
    outer_amp = False
    same_date = True
    same_date_only = True
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {
            "depth": 4, "width": 8, "weight_radius": 2, "blend": "index", "optimizer": "adamw",
            "epochs": 2, "steps_per_epoch": 2, "batch_size": 2, "patch": 16,
            "stream_dates": [], "val_split": "blocks", "stream_val": "dates",
        },
        "small": {
            "depth": 10, "width": 32, "weight_radius": 16, "blend": "index", "optimizer": "adamw",
            "epochs": 20, "steps_per_epoch": 10, "batch_size": 4, "patch": 64, "lr": 1e-3,
            "patience": 6, "budget_s": 300, "budget_s_gpu": 1800, "stream_dates": [],
            "val_split": "blocks", "stream_val": "dates",
        },
        "full": {
            "depth": 18, "width": 64, "weight_radius": 16, "blend": "index", "optimizer": "adamw",
            "epochs": 30, "steps_per_epoch": 20, "batch_size": 4, "patch": 128, "lr": 3e-4,
            "patience": 6, "budget_s": 300, "budget_s_gpu": 1800, "stream_dates": [],
            "val_split": "blocks", "stream_val": "dates",
        },
    }  # fmt: skip

    def _stream_net(self, n_bands: int) -> nn.Module:
        p = self.params
        return ResStfNet(n_bands, n_bands, int(p["width"]), int(p["depth"]))

    def build(self, n_bands: int) -> nn.Module:
        keys = list(self.params.get("stream_dates") or ["start"])
        self._active = keys[0]
        self._freeze_stats = False
        return nn.ModuleDict({k: self._stream_net(n_bands) for k in keys})

    @property
    def halo(self) -> int:
        return max(int(self.params["depth"]), int(self.params["weight_radius"]))

    def forward(
        self, refs_coarse: Tensor, refs_fine: Tensor, tgt_coarse: Tensor, days: Tensor
    ) -> Tensor:
        """``M_t + f_k(M_t)`` with the active stream's network (refs only choose the stream)."""
        tgt = tgt_coarse.float()
        residual = self.trunk(self.net[self._active], self.standardise(tgt))
        return tgt + self.unscale(residual)

    def set_band_stats(self, pairs: Sequence[Scene]) -> None:
        """Statistics of *all* training pairs, not of the one pair a stream trains on."""
        if not self._freeze_stats:
            super().set_band_stats(pairs)

    def fit(
        self,
        pairs: Sequence[Scene],
        val: Sequence[Scene] = (),
        *,
        bands: tuple[str, ...] | None = None,
        progress: bool = True,
    ) -> FitReport:
        """Train one network per clear pair on its own same-date residual (module doc)."""
        from pipeline.models import training

        clear = sorted((s for s in pairs if s.fine is not None), key=lambda s: s.date)
        if not clear:
            raise InputError(f"model {self.name} needs at least one clear pair to train on")
        super().set_band_stats(clear)
        budget = {k: self.params.get(k) for k in ("budget_s", "budget_s_gpu", "budget_steps")}
        nets, starts, reports = {}, {}, []
        self._freeze_stats = True
        try:
            for k, pair in enumerate(clear):
                for key, total in budget.items():
                    self.params[key] = _share(total, len(clear), integer=key == "budget_steps")
                torch.manual_seed(int(self.params["seed"]) + k)
                self.net, self._active = (
                    nn.ModuleDict({"stream": self._stream_net(len(self.bands))}),
                    "stream",
                )
                self.net.to(self.device)
                val = self._transfer_dates(clear, pair)
                reports.append(training.fit(self, [pair], val, progress=progress))
                nets[pair.date.isoformat()] = self.net["stream"]
                starts.update(
                    {
                        pair.date.isoformat() + n[len("stream") :]: v
                        for n, v in self.start_state.items()
                    }
                )  # type: ignore[union-attr]
        finally:
            self._freeze_stats = False
            self.params.update(budget)
        self.params["stream_dates"] = list(nets)
        self.net, self._active, self.start_state = nn.ModuleDict(nets), next(iter(nets)), starts
        self.report = _combine(reports, clear)
        return self.report

    def _transfer_dates(self, clear: Sequence[Scene], pair: Scene) -> tuple[Scene, ...]:
        """The pairs a stream is validated on: the rule's neighbours of its own date.

        A stream's network is applied at *other* dates (``M_t + f_k(M_t)``), so its
        early stopping asks whether the residual learnt at date k transfers: it scores
        ``M_j + f_k(M_j)`` against ``L_j`` at the nearest other pairs before and after
        (whole images; their labels never reach a loss). The untrained state (= the
        upsampled MODIS) is epoch 0, so a residual that does not transfer is not kept:
        on estarfm-2001 same-date blocks (``stream_val = "blocks"``, or one pair only)
        accepted streams that scored 0.0222 on the target against the upsampled MODIS's
        0.0171; validated on the other date, the ``small`` preset scores 0.0170 there.
        """
        others = [q for q in clear if q.date != pair.date]
        if self.params.get("stream_val", "blocks") != "dates" or not others:
            return ()
        return choose_scenes(others, pair.date, (1, 2))

    def _run_tiled(self, refs: Sequence[Scene], target: Scene) -> np.ndarray:
        """Predict with the network of the stream's reference date (nearest trained date)."""
        keys = list(self.net)  # type: ignore[call-overload]
        if keys != ["start"]:  # an untrained model has only its start network
            ref = refs[0].date
            dates = [dt.date.fromisoformat(k) for k in keys]
            self._active = min(dates, key=lambda d: (abs((d - ref).days), d)).isoformat()
        return super()._run_tiled(refs, target)


def _share(total: float | None, parts: int, *, integer: bool) -> float | int | None:
    """One stream's part of a budget (None = unlimited; steps stay whole, at least 1)."""
    if total is None:
        return None
    return max(1, round(float(total) / parts)) if integer else float(total) / parts


def _combine(reports: Sequence[FitReport], pairs: Sequence[Scene]) -> FitReport:
    """One report for the per-pair streams: summed steps, RMS of start/end held-back RMSE."""

    def rms(values: list[float | None]) -> float | None:
        vals = [v for v in values if v is not None]
        return float(np.sqrt(np.mean(np.square(vals)))) if vals else None

    streams = {
        p.date.isoformat(): {"steps": r.steps, "start_val_rmse": r.start_val_rmse,
                             "end_val_rmse": r.end_val_rmse}
        for p, r in zip(pairs, reports, strict=True)
    }  # fmt: skip
    end = rms([r.end_val_rmse for r in reports])
    return FitReport(
        epochs=max(r.epochs for r in reports),
        best_val_loss=None if end is None else end**2,
        seconds=sum(r.seconds for r in reports),
        history=reports[0].history,
        steps=sum(r.steps for r in reports),
        start_val_rmse=rms([r.start_val_rmse for r in reports]),
        end_val_rmse=end,
        validation=f"{reports[0].validation} of each pair",
        task="same-date residual L - M, one network per pair",
        notes={"streams": streams},
    )
