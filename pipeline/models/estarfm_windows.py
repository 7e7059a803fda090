"""Moving-window helpers shared by the classic models ESTARFM and Fit-FC.

Both methods look at a ``w x w`` window of fine pixels around every pixel.
Unfolding a whole 400 x 400 image with a 31 x 31 window needs ~1 GB per band,
so the window tensors are built for a few output rows at a time
(:func:`row_blocks`), sized to a memory budget. Pixels outside the image are
NaN (invalid), which makes a tile padded by the window radius give exactly the
whole-image result.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F

#: Elements of one unfolded float tensor per row block (~64 MB of float32).
_BLOCK_ELEMENTS = 16_000_000


def as_tensor(array: np.ndarray, device: str | torch.device = "cpu") -> torch.Tensor:
    """(band, y, x) numpy reflectance -> float32 tensor on ``device``."""
    return torch.as_tensor(np.ascontiguousarray(array), dtype=torch.float32, device=device)


def pad_nan(image: torch.Tensor, radius: int) -> torch.Tensor:
    """Pad (band, y, x) by ``radius`` on both spatial axes with NaN (outside = invalid)."""
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


def window_distance(window: int, device: torch.device) -> torch.Tensor:
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
