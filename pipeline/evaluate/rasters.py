"""Read a manifest's rasters onto the fine grid (rasterio), check bands and shapes, co-register."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import replace
from pathlib import Path

import numpy as np

from pipeline.coregister import (
    Coregistration,
    cells_from_fine_grid,
    check_mode,
    decide,
    estimate_shift,
    shift_image,
)
from pipeline.evaluate.manifest import Dataset, DateEntry, Manifest, Scaling, _fail
from pipeline.models.base import Scene


def _read(manifest: Manifest, field: str, path: Path) -> np.ndarray:
    """(band, y, x) raster as float64 DN; one-line InputError when unreadable."""
    import warnings

    import rasterio
    from rasterio.errors import NotGeoreferencedWarning, RasterioIOError

    try:
        # pixel-grid rasters (ENVI sets without map info) are expected here
        # ENVI needs its .hdr side-car: undo the COG setting (EMPTY_DIR) that
        # pipeline.catalog.gdal_env exports once cubes were loaded in this process
        with warnings.catch_warnings(), rasterio.Env(GDAL_DISABLE_READDIR_ON_OPEN="FALSE"):
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path) as src:
                return src.read().astype(np.float64)
    except RasterioIOError as exc:
        raise _fail(
            manifest.path, field, f"cannot read {path}: {str(exc).splitlines()[0]}"
        ) from None


def _reflectance(dn: np.ndarray, scaling: Scaling) -> np.ndarray:
    out = dn * scaling.scale + scaling.offset
    if scaling.nodata is not None:
        out[dn == scaling.nodata] = np.nan
    return out.astype(np.float32)


def _on_fine_grid(
    manifest: Manifest, field: str, coarse: np.ndarray, shape: tuple[int, int]
) -> np.ndarray:
    """The coarse image block-replicated onto the fine grid (unchanged when already there)."""
    if coarse.shape[1:] == shape:
        return coarse
    k = round(manifest.ratio)
    if coarse.shape[1] * k < shape[0] or coarse.shape[2] * k < shape[1] or k != manifest.ratio:
        raise _fail(
            manifest.path,
            field,
            f"coarse shape {coarse.shape[1:]} does not align with fine {shape} "
            f"at ratio {manifest.ratio}",
        )
    return coarse.repeat(k, axis=1).repeat(k, axis=2)[:, : shape[0], : shape[1]]


def _scene(
    manifest: Manifest, i: int, entry: DateEntry, shape: tuple[int, int] | None
) -> tuple[Scene, np.ndarray]:
    n = len(manifest.bands)
    fine = None
    if entry.fine is not None:
        fine = _reflectance(_read(manifest, f"dates[{i}].fine", entry.fine), manifest.fine)
        if fine.shape[0] != n:
            raise _fail(
                manifest.path, f"dates[{i}].fine", f"{fine.shape[0]} bands, manifest lists {n}"
            )
        if shape is not None and fine.shape[1:] != shape:
            raise _fail(
                manifest.path, f"dates[{i}].fine", f"shape {fine.shape[1:]} differs from {shape}"
            )
        shape = fine.shape[1:]
    coarse = _reflectance(_read(manifest, f"dates[{i}].coarse", entry.coarse), manifest.coarse)
    if coarse.shape[0] != n:
        raise _fail(
            manifest.path, f"dates[{i}].coarse", f"{coarse.shape[0]} bands, manifest lists {n}"
        )
    if shape is None:
        raise _fail(manifest.path, "dates", "the first date needs a fine image (it sets the grid)")
    coarse = _on_fine_grid(manifest, f"dates[{i}].coarse", coarse, shape)
    valid = np.ones(shape, bool)
    if entry.mask is not None:
        mask = _read(manifest, f"dates[{i}].mask", entry.mask)[0]
        if mask.shape != shape:
            raise _fail(
                manifest.path, f"dates[{i}].mask", f"shape {mask.shape} differs from {shape}"
            )
        valid = ~np.isin(mask, entry.invalid)
    if fine is not None:
        fine = np.where(valid, fine, np.nan).astype(np.float32)
    return Scene(entry.date, coarse, fine), valid


def load_dataset(manifest: Manifest) -> Dataset:
    """Every date's rasters as reflectance on the fine grid, masks applied to fine images."""
    scenes, masks, shape = [], {}, None
    first_fine = sorted(manifest.dates, key=lambda d: d.fine is None)
    order = {id(e): i for i, e in enumerate(manifest.dates)}
    for entry in first_fine:
        scene, valid = _scene(manifest, order[id(entry)], entry, shape)
        shape = scene.coarse.shape[1:]
        scenes.append(scene)
        masks[entry.date] = valid
    scenes.sort(key=lambda s: s.date)
    return Dataset(manifest, tuple(scenes), masks)


def scene_on(dataset: Dataset, date: dt.date) -> Scene:
    """The scene of ``date``."""
    return next(s for s in dataset.scenes if s.date == date)


def coregister_dataset(
    dataset: Dataset, mode: str = "auto", exclude: Collection[dt.date] = ()
) -> tuple[Dataset, Coregistration]:
    """The dataset with every coarse image shifted onto the fine grid, and what was done.

    The shift is estimated (:mod:`pipeline.coregister`) from the pairs whose
    date is not in ``exclude`` (pass the scored date: its fine image stays unseen),
    and undone on every date's coarse image by linear resampling on the fine grid.
    Pixels whose shifted position falls outside the coarse image have no coarse
    data (edge values only stand in for it): they leave every date's mask, so all
    models of an evaluation are scored on the same pixels that the coarse image sees.

    Parameters
    ----------
    dataset : rasters of a manifest (coarse on the fine grid).
    mode : ``auto`` (apply when reliable, else warn via the record), ``require``
        (InputError when unreliable) or ``off``.
    exclude : dates whose fine image the estimate must not use.
    """
    factor = round(dataset.manifest.ratio)
    check_mode(mode)
    if mode == "off":
        return dataset, decide("off", None, factor)
    pairs = [
        (s.date.isoformat(), s.fine, cells_from_fine_grid(s.coarse, factor))
        for s in dataset.scenes
        if s.fine is not None and s.date not in exclude
    ]
    record = decide(mode, estimate_shift(pairs, factor), factor)
    if not record.is_applied:
        return dataset, record
    scenes = tuple(replace(s, coarse=shift_image(s.coarse, record.applied)) for s in dataset.scenes)
    seen = _seen_after_shift(dataset.scenes[0].coarse.shape[-2:], record.applied)
    masks = {date: mask & seen for date, mask in dataset.masks.items()}
    return replace(dataset, scenes=scenes, masks=masks), record


def _seen_after_shift(shape: tuple[int, ...], shift: tuple[float, float]) -> np.ndarray:
    """(y, x) bool: True where ``p + shift`` lies inside an image of ``shape`` (fine px)."""
    rows = np.arange(shape[0]) + shift[0]
    cols = np.arange(shape[1]) + shift[1]
    inside_rows = (rows >= 0) & (rows <= shape[0] - 1)
    inside_cols = (cols >= 0) & (cols <= shape[1] - 1)
    return inside_rows[:, None] & inside_cols[None, :]
