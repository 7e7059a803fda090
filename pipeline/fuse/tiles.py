"""Halo tiles: fuse a padded window, keep its core.

A model's prediction at a pixel depends only on pixels within ``model.halo``
(the contract of :mod:`pipeline.models.base`), and windows are clipped at the
image border exactly where the whole image ends. Cropping the core of a
window padded by ``halo`` therefore reproduces the whole-image prediction, so
no blending of overlaps is needed (and none is done: blending would change
values that are already exact). :func:`fuse_tiled` is the in-memory form used
to check that on real models.
"""

from __future__ import annotations

import numpy as np

from pipeline.fuse.plan import Block, make_blocks
from pipeline.models.base import FusionInput, FusionModel, Prediction, Scene


def window_input(inputs: FusionInput, block: Block) -> FusionInput:
    """``inputs`` restricted to the padded window of ``block``."""
    ys, xs = slice(block.py0, block.py1), slice(block.px0, block.px1)

    def cut(scene: Scene) -> Scene:
        fine = None if scene.fine is None else scene.fine[:, ys, xs]
        return Scene(scene.date, scene.coarse[:, ys, xs], fine)

    return FusionInput(tuple(cut(r) for r in inputs.refs), cut(inputs.target), inputs.bands)


def crop(array: np.ndarray, block: Block) -> np.ndarray:
    """The core of a (..., py, px) window array."""
    ys, xs = block.crop
    return array[..., ys, xs]


def crop_prediction(pred: Prediction, block: Block) -> Prediction:
    """A window's prediction cut to its block (uncertainty too, when given)."""
    unc = None if pred.uncertainty is None else crop(pred.uncertainty, block)
    return Prediction(crop(pred.fine, block), unc)


def fuse_tiled(model: FusionModel, inputs: FusionInput, chunk: tuple[int, int]) -> Prediction:
    """Predict block by block with ``model.halo`` padding and stitch the cores.

    Parameters
    ----------
    model : any fusion model.
    inputs : whole-image inputs, arrays (band, y, x) float32.
    chunk : block size (y, x) in fine pixels.

    Returns
    -------
    The stitched prediction, equal to ``model.predict(inputs)`` up to float rounding.
    """
    shape = inputs.target.coarse.shape
    fine = np.full(shape, np.nan, np.float32)
    unc: np.ndarray | None = None
    for block in make_blocks(shape[1:], chunk, model.halo):
        pred = crop_prediction(model.predict(window_input(inputs, block)), block)
        core = (slice(None), slice(block.y0, block.y1), slice(block.x0, block.x1))
        fine[core] = pred.fine
        if pred.uncertainty is not None:
            if unc is None:
                unc = np.full(pred.uncertainty.shape[:-2] + shape[1:], np.nan, np.float32)
            unc[(..., *core[1:])] = pred.uncertainty
    return Prediction(fine, unc)
