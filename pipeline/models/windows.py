"""Moving windows of the classic models (STARFM, ESTARFM, Fit-FC): presets, checks, device.

One place for what the three window-based models share:

* **size presets** (:data:`PRESETS`): the window side, in fine pixels, that
  ``size: tiny | small | full`` gives each model (``full`` is the reference
  codes' default, see each model's docstring);
* **validation** (:func:`check_window`): a window must be a positive odd number
  of pixels, refused in one line (:class:`~pipeline.errors.InputError`) by every
  model alike, never rounded silently;
* **device** (:func:`~pipeline.models.device.pick_device`): ``"auto"`` (the default of every model)
  computes on CUDA where the worker has it, so a run with ``compute.gpu: true``
  (tasks on ``GPU=1`` workers) puts every classic model on the GPU;
* **window tensors**: NaN padding (outside the image = invalid, so a tile padded
  by the window radius reproduces the whole image exactly), row blocks whose
  unfolded tensors fit a memory budget, box sums and cell distances.

Unfolding a 400 x 400 image with a 31 x 31 window needs ~1 GB per band, so
:func:`unfold_rows` is only called on row blocks (:func:`row_blocks`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import numpy as np
import torch
import torch.nn.functional as F

from pipeline.errors import InputError

#: Window sides (fine pixels, odd) per model and size preset. ``full`` is each
#: reference code's default at 30 m; ``small`` and ``tiny`` trade context for speed.
PRESETS: dict[str, dict[str, dict[str, int]]] = {
    "starfm": {
        "tiny": {"window": 7},
        "small": {"window": 15},
        "full": {"window": 31},
    },
    "estarfm": {
        "tiny": {"window": 7},
        "small": {"window": 15},
        "full": {"window": 51},
    },
    "fitfc": {
        # rm_window in coarse pixels; the residual box follows the coarse ratio
        "tiny": {"rm_window": 3, "sf_window": 7},
        "small": {"rm_window": 3, "sf_window": 13},
        "full": {"rm_window": 3, "sf_window": 21},
    },
}

#: Elements of one unfolded float tensor per row block (~64 MB of float32).
_BLOCK_ELEMENTS = 16_000_000


def preset(model: str, size: str, params: Mapping[str, object]) -> dict[str, int]:
    """Window sides of ``model`` at ``size``, overridden by ``params``, each checked.

    Parameters
    ----------
    model : registry name with an entry in :data:`PRESETS`.
    size : ``"tiny"``, ``"small"`` or ``"full"``.
    params : the model's keyword parameters; keys named in the preset override it.

    Returns
    -------
    ``{name: side}`` with every side a positive odd int (pixels).
    """
    sizes = PRESETS[model]
    if size not in sizes:
        raise InputError(f"{model}: unknown size {size!r}; use one of {', '.join(sizes)}")
    windows = {**sizes[size], **{k: params[k] for k in sizes[size] if k in params}}
    return {name: check_window(model, name, value) for name, value in windows.items()}


def check_window(model: str, name: str, value: object) -> int:
    """``value`` as an int if it is a positive odd window side, else a one-line InputError."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer, float)):
        raise InputError(f"{model}: {name} must be an odd number of pixels, got {value!r}")
    side = int(value)
    if side != value or side < 1 or side % 2 == 0:
        raise InputError(
            f"{model}: {name} must be a positive odd number of pixels (the window is centred "
            f"on its pixel), got {value!r}; use e.g. {max(1, int(value) // 2 * 2 + 1)}"
        )
    return side


def as_tensor(array: np.ndarray, device: str | torch.device = "cpu") -> torch.Tensor:
    """(band, y, x) numpy reflectance -> float32 tensor on ``device``."""
    return torch.as_tensor(np.ascontiguousarray(array), dtype=torch.float32, device=device)


def pad_nan(image: torch.Tensor, radius: int) -> torch.Tensor:
    """Pad (..., y, x) by ``radius`` on both spatial axes with NaN (outside = invalid)."""
    return F.pad(image, (radius, radius, radius, radius), value=float("nan"))


def row_blocks(height: int, width: int, window: int, channels: int) -> Iterator[tuple[int, int]]:
    """Output row ranges ``[y0, y1)`` whose unfolded tensors fit the memory budget.

    Parameters
    ----------
    height, width : output image size in pixels.
    window : window side in pixels.
    channels : channels unfolded at once (bands x images).
    """
    rows = max(1, _BLOCK_ELEMENTS // max(1, width * window * window * channels))
    for y0 in range(0, height, rows):
        yield y0, min(height, y0 + rows)


def unfold_rows(padded: torch.Tensor, y0: int, y1: int, window: int) -> torch.Tensor:
    """Windows of output rows ``[y0, y1)`` from a NaN-padded (band, y, x) image.

    Returns
    -------
    (band, window**2, (y1 - y0) * x) tensor; window index ``k = dy * window + dx``.
    """
    rows = padded[:, y0 : y1 + window - 1, :]
    return F.unfold(rows[:, None], kernel_size=window)


def window_distance(window: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """(window**2, 1) Euclidean distance of each window cell to the centre, in pixels."""
    r = window // 2
    dy, dx = torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")
    dist = torch.sqrt(((dy - r) ** 2 + (dx - r) ** 2).float()).reshape(-1, 1)
    return dist.to(device)


def box_sum(image: torch.Tensor, window: int) -> torch.Tensor:
    """Sum over a ``window x window`` box centred on each pixel (zeros outside), same shape.

    Parameters
    ----------
    image : (channel, y, x) float tensor; NaN must already be replaced (mask it first).
    """
    r = window // 2
    padded = F.pad(image[:, None], (r, r, r, r))
    # Separable sums keep the cost linear in the window side.
    kernel = torch.ones(1, 1, 1, window, dtype=image.dtype, device=image.device)
    rows = F.conv2d(padded, kernel)
    return F.conv2d(rows, kernel.transpose(2, 3))[:, 0]


def box_sum64(image: torch.Tensor, window: int) -> torch.Tensor:
    """:func:`box_sum` in float64 from running sums: O(1) per pixel for any window.

    Parameters
    ----------
    image : (channel, y, x) float tensor, NaN already replaced.

    Returns
    -------
    (channel, y, x) float64 sums (float64 keeps the running sums exact to ~1e-12).
    """
    r = window // 2
    padded = F.pad(image.double(), (r + 1, r, r + 1, r))
    acc = padded.cumsum(1).cumsum(2)
    height, width = image.shape[1:]
    return (
        acc[:, window:, window:]
        - acc[:, :height, window:]
        - acc[:, window:, :width]
        + acc[:, :height, :width]
    )
