"""What runs on a Dask worker: the per-worker model cache, window cuts and the block fusion task.

The model travels once per worker inside a :class:`ModelPlugin` (its config
and safetensors bytes, no pickle of torch objects) and is built at plugin
setup into a process-wide cache keyed by the sha256 of those bytes; every
task then looks the model up by key. Workers restarted by a nanny get the
plugin again from the scheduler. A task writes its block to the store itself
and returns only a small :class:`BlockSummary`.

Before it writes, a task makes its block seamless: the model's sigma is
calibrated on the block's pair dates (:mod:`pipeline.fuse.calibrate`), pixels
outside the sources' coverage are flagged ``OUTSIDE`` and every covered gap
pixel-day is filled from the block's daily series (:mod:`pipeline.fuse.gapfill`)
and flagged ``FILLED``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from distributed.diagnostics.plugin import WorkerPlugin

from pipeline.fuse.calibrate import SeriesCalibration, coverage
from pipeline.fuse.gapfill import DEFAULT_METHOD
from pipeline.fuse.plan import DayRefs, FuseTask
from pipeline.fuse.seamless import seamless_window
from pipeline.fuse.tiles import crop_prediction
from pipeline.models.base import FusionInput, FusionModel, Prediction, Scene
from pipeline.models.pairs import fit_to_model
from pipeline.store.layout import (
    FILLED,
    FUSED,
    GAP,
    OBSERVED,
    OUTSIDE,
    SINGLE_PAIR,
    StoreLayout,
)
from pipeline.store.write import DONE, PROVISIONAL, write_block


@dataclass(frozen=True)
class ModelPayload:
    """A saved model as bytes: ``config.json`` and ``weights.safetensors``."""

    config_json: bytes
    weights: bytes

    @classmethod
    def from_dir(cls, directory: Path) -> ModelPayload:
        return cls(
            (directory / "config.json").read_bytes(),
            (directory / "weights.safetensors").read_bytes(),
        )

    @property
    def weights_sha256(self) -> str:
        return hashlib.sha256(self.weights).hexdigest()

    @property
    def key(self) -> str:
        """Cache key: sha256 of config and weights together."""
        return hashlib.sha256(self.config_json + b"\0" + self.weights).hexdigest()

    def build(self) -> FusionModel:
        """Rebuild the model from the bytes (via a worker-local temporary directory)."""
        from pipeline.models.registry import load_model

        with tempfile.TemporaryDirectory(prefix="stf-model-") as tmp:
            (Path(tmp) / "config.json").write_bytes(self.config_json)
            (Path(tmp) / "weights.safetensors").write_bytes(self.weights)
            return load_model(tmp)


_MODELS: dict[str, FusionModel] = {}


def install(payload: ModelPayload) -> FusionModel:
    """Build ``payload`` into this process's cache once; return the cached model."""
    if payload.key not in _MODELS:
        _MODELS[payload.key] = payload.build()
    return _MODELS[payload.key]


class ModelPlugin(WorkerPlugin):
    """Loads the run's model once on every worker (including workers that join later)."""

    def __init__(self, payload: ModelPayload) -> None:
        self.payload = payload
        self.name = f"stf-model-{payload.key[:16]}"

    def setup(self, worker: Any) -> None:
        install(self.payload)


@dataclass(frozen=True)
class BlockSummary:
    """What one task did: its block and window, pixel-day counts and seconds."""

    by: int
    bx: int
    t0: int
    t1: int
    observed: int
    fused: int
    gap: int
    seconds: float
    filled: int = 0
    outside: int = 0


@dataclass(frozen=True)
class TaskInputs:
    """Arrays of one task, stacked along a leading date axis (float32 reflectance, NaN = invalid).

    ``fine_refs`` (len(ref_dates), band, py, px); ``coarse`` (len(coarse_dates), band, py, px);
    ``obs`` (len(obs_days), band, y, x) on the block only.
    """

    fine_refs: np.ndarray
    coarse: np.ndarray
    obs: np.ndarray


@dataclass(frozen=True)
class WindowCut:
    """How to cut a (date, band, y, x) window out of cube chunks (no data; see :func:`cut_window`).

    Attributes
    ----------
    offsets : per date, its index inside its time chunk.
    origins : per spatial chunk, its (band, y, x) start in the cube (same for every date).
    window : pixel window (y0, y1, x0, x1) of the cube to cut.
    bands : bands of the cube.
    """

    offsets: tuple[int, ...]
    origins: tuple[tuple[int, int, int], ...]
    window: tuple[int, int, int, int]
    bands: int


def cut_window(pieces: list[list[np.ndarray]], cut: WindowCut) -> np.ndarray:
    """The (date, band, y, x) float32 window, copied once from ``pieces[date][k]`` (t, b, y, x)."""
    y0, y1, x0, x1 = cut.window
    out = np.empty((len(cut.offsets), cut.bands, y1 - y0, x1 - x0), np.float32)
    for d, (chunks, t) in enumerate(zip(pieces, cut.offsets, strict=True)):
        for chunk, (b0, cy0, cx0) in zip(chunks, cut.origins, strict=True):
            _, nb, ny, nx = chunk.shape
            ys = slice(max(y0, cy0), min(y1, cy0 + ny))
            xs = slice(max(x0, cx0), min(x1, cx0 + nx))
            out[d, b0 : b0 + nb, ys.start - y0 : ys.stop - y0, xs.start - x0 : xs.stop - x0] = (
                chunk[t, :, ys.start - cy0 : ys.stop - cy0, xs.start - cx0 : xs.stop - cx0]
            )
    return out


def task_inputs(
    fine_refs: list[list[np.ndarray]],
    coarse: list[list[np.ndarray]],
    obs: list[list[np.ndarray]],
    cuts: tuple[WindowCut, WindowCut, WindowCut],
    factor: int,
) -> TaskInputs:
    """Cut a task's windows out of the source chunks; replicate the coarse window onto the fine one.

    ``cuts`` are the fine padded window (py0, py1, px0, px1), the coarse window
    from coarse pixel (py0 // factor, px0 // factor) (grids share their origin)
    and the block's own window for the observations. Replicating the coarse
    pixels reproduces the cubes' ``coarse_on_fine`` (nearest, block-replicated) exactly.
    """
    fine_cut, coarse_cut, obs_cut = cuts
    py0, py1, px0, px1 = fine_cut.window
    ys = np.arange(py0, py1) // factor - py0 // factor
    xs = np.arange(px0, px1) // factor - px0 // factor
    small = cut_window(coarse, coarse_cut)
    return TaskInputs(
        cut_window(fine_refs, fine_cut),
        small[..., ys[:, None], xs[None, :]],
        cut_window(obs, obs_cut),
    )


def coarse_dates(task: FuseTask) -> tuple[dt.date, ...]:
    """Dates whose coarse window a task needs: its reference dates and target days."""
    return tuple(sorted(set(task.ref_dates) | set(task.coarse_days)))


def model_input(
    task: FuseTask, refs: DayRefs, data: TaskInputs, n_refs: tuple[int, ...], bands: tuple[str, ...]
) -> FusionInput:
    c_index = {d: i for i, d in enumerate(coarse_dates(task))}
    f_index = {d: i for i, d in enumerate(task.ref_dates)}
    dates = fit_to_model(refs.dates, refs.day, n_refs)  # the shared pair rule
    scenes = [Scene(d, data.coarse[c_index[d]], data.fine_refs[f_index[d]]) for d in dates]
    return FusionInput(tuple(scenes), Scene(refs.day, data.coarse[c_index[refs.day]]), bands)


def assemble_day(
    pred: Prediction | None, obs: np.ndarray | None, refs: DayRefs, shape: tuple[int, int]
) -> dict[str, np.ndarray]:
    """One day's block outputs: values (band, y, x), model sigma, quality, ref days.

    Observed (clear Landsat) pixels take the observation; the others the
    cropped prediction; pixels with neither are a gap (filled later from the
    block's series, :func:`seamless_window`). ``sigma`` is the model's raw
    per-band sigma on fused pixels (NaN elsewhere or where the model gives none).
    """
    observed = np.zeros(shape, bool) if obs is None else np.isfinite(obs).all(axis=0)
    has_fused = np.zeros(shape, bool) if pred is None else np.isfinite(pred.fine).all(axis=0)
    values = np.full((1, *shape), np.nan, np.float32)  # broadcasts over bands: all gap
    if pred is not None:
        values = pred.fine
    if obs is not None:
        values = obs if pred is None else np.where(observed, obs, pred.fine)
    quality = np.where(observed, OBSERVED, 0).astype(np.uint8)
    fused_only = has_fused & ~observed
    quality[fused_only] |= FUSED | (SINGLE_PAIR if len(refs.dates) == 1 else 0)
    quality[quality == 0] = GAP
    sigma = np.full((1, *shape), np.nan, np.float32)
    if pred is not None and pred.uncertainty is not None:
        sigma = np.where(fused_only, pred.uncertainty, np.nan).astype(np.float32)
    back, fwd = refs.days_to()
    return {
        "values": values,
        "sigma": sigma,
        "quality": quality,
        "ref_before_days": np.full(shape, back, np.int16),
        "ref_after_days": np.full(shape, fwd, np.int16),
    }


def _block_dataset(window: dict[str, np.ndarray], layout: StoreLayout) -> xr.Dataset:
    dims = ("time", "y", "x")
    values = window["values"]
    out = {b: (dims, values[:, k]) for k, b in enumerate(layout.bands)}
    if layout.has_ndvi:
        red, nir = values[:, layout.bands.index("red")], values[:, layout.bands.index("nir")]
        with np.errstate(invalid="ignore", divide="ignore"):
            # in place: two (time, y, x) planes, not four (the same float32 operations)
            ndvi = np.subtract(nir, red, dtype=np.float32)
            out["ndvi"] = (dims, np.divide(ndvi, nir + red, out=ndvi))
    for name in ("uncertainty", "ref_before_days", "ref_after_days", "quality"):
        out[name] = (dims, window[name])
    return xr.Dataset(out)


def predict_days(
    task: FuseTask, start: int, stop: int, model_key: str, bands: tuple[str, ...], data: TaskInputs
) -> list[dict[str, np.ndarray]]:
    """Fuse days ``start:stop`` of ``task`` on its padded window and crop to the block.

    One call is one model task (``compute.batch_days`` days, GPU-annotated when
    configured); the model comes from the worker cache (:class:`ModelPlugin`).
    """
    model = _MODELS[model_key]
    block = task.block
    shape = (block.y1 - block.y0, block.x1 - block.x0)
    obs_index = {d: i for i, d in enumerate(task.obs_days)}
    coarse_set = set(coarse_dates(task))
    days = []
    for refs in task.refs[start:stop]:
        pred = None
        if refs.dates and refs.day in coarse_set:
            raw = model.predict(model_input(task, refs, data, model.n_refs, bands))
            pred = crop_prediction(raw, block)
        obs = data.obs[obs_index[refs.day]] if refs.day in obs_index else None
        days.append(assemble_day(pred, obs, refs, shape))
    return days


def write_window(
    task: FuseTask,
    url: str,
    layout: StoreLayout,
    parts: list[list[dict[str, np.ndarray]]],
    data: TaskInputs,
    calib: SeriesCalibration | None,
    method: str = DEFAULT_METHOD,
) -> BlockSummary:
    """Make the fused days of one task (``parts`` in day order) seamless and write them as one
    region; commit last."""
    start = time.perf_counter()
    block = task.block
    cover = coverage(task, data.coarse, data.obs)
    calib = calib or SeriesCalibration(1.0, (), 0)  # uncalibrated: model sigma, q from the block
    days = [day for part in parts for day in part]
    window = seamless_window(days, cover, calib, method, n_bands=len(layout.bands))
    ds = _block_dataset(window, layout)
    region = {
        "time": slice(task.t0, task.t1),
        "y": slice(block.y0, block.y1),
        "x": slice(block.x0, block.x1),
    }
    done = np.array([DONE if r.after is not None else PROVISIONAL for r in task.refs], np.uint8)
    write_block(url, ds, region, (block.by, block.bx), done)
    quality = ds["quality"].values
    return BlockSummary(
        block.by,
        block.bx,
        task.t0,
        task.t1,
        observed=int(np.count_nonzero(quality & OBSERVED)),
        fused=int(np.count_nonzero(quality & FUSED)),
        gap=int(np.count_nonzero(quality & GAP)),
        seconds=time.perf_counter() - start,
        filled=int(np.count_nonzero(quality & FILLED)),
        outside=int(np.count_nonzero(quality & OUTSIDE)),
    )
