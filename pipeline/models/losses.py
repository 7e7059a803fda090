"""Masked losses: invalid pixels (``valid == 0``) contribute nothing.

``valid`` is (N, 1, h, w) float (1 valid, 0 invalid), broadcast over bands.
"""

from __future__ import annotations

import torch
from torch import Tensor


def masked_mse(pred: Tensor, truth: Tensor, valid: Tensor) -> Tensor:
    """Mean squared error over valid pixels (all bands)."""
    weight = valid.expand_as(pred)
    return ((pred - truth) ** 2 * weight).sum() / weight.sum().clamp(min=1.0)


def _ms_ssim_fits(side: int, kernel: int, scales: int) -> bool:
    """Both size checks of torchmetrics (incl. ``side // (scales - 1)^2 > kernel - 1``)."""
    return side > (kernel - 1) * 2 ** (scales - 1) and side // max(1, scales - 1) ** 2 > kernel - 1


def ms_ssim_loss(pred: Tensor, truth: Tensor, valid: Tensor) -> Tensor:
    """``1 - MS-SSIM`` (torchmetrics, data_range 1) adapted to small patches.

    MS-SSIM needs ``min(h, w) > (kernel - 1) * 2^(scales - 1)``; the kernel
    (11, 7, then 5, 3) and the number of scales (5 down to 1) shrink until the
    patch is large enough, and the standard betas are renormalised. Invalid
    label pixels are set to the prediction so they add no dissimilarity.
    """
    from torchmetrics.functional.image import multiscale_structural_similarity_index_measure

    side = min(pred.shape[-2:])
    betas = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
    for kernel in (11, 7, 5, 3):
        scales = 5
        while scales > 1 and not _ms_ssim_fits(side, kernel, scales):
            scales -= 1
        if _ms_ssim_fits(side, kernel, scales):
            break
    use = torch.tensor(betas[:scales])
    truth = torch.where(valid.expand_as(truth) > 0, truth, pred.detach())
    score = multiscale_structural_similarity_index_measure(
        pred.float(),
        truth.float(),
        data_range=1.0,
        kernel_size=kernel,
        betas=tuple((use / use.sum()).tolist()),
        normalize="relu",
    )
    return 1.0 - score
