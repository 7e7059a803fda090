"""GAN-STFM (Tan et al. 2021): one fine reference of any date + the target coarse image.

Training (overrides :meth:`TorchFusionModel.training_step`, keeps the shared
engine for sampling, validation, early stopping and checkpoints): a
least-squares GAN with the multi-scale spectral-norm discriminator of
:mod:`pipeline.models.ganstfm_net`, conditioned on the target coarse image.
Generator loss = masked MSE (content) + spectral-angle term ``1 - cos`` +
``1 - MS-SSIM`` + ``adv_weight`` x LSGAN. Unlike the paper, the generator
predicts a correction of the target coarse image (zero-initialised output),
which converges in a CPU-sized budget. The paper's "feature" term uses a
pre-trained autoencoder we do not ship; the pixel content term replaces it.

Uncertainty: *ensemble spread* over flip test-time augmentations (``tta``
views) combined with the two-reference disagreement when two pairs are given.

Halo: 8 px covers every convolution; the instance/layer statistics of the
switchable normalisation are per tile, so tiles differ slightly from the whole
image (use large tiles; the fuse engine's default 256 px tiles are fine).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor

from pipeline.models._torch import TorchFusionModel, autocast
from pipeline.models.base import FusionInput, Prediction, Scene
from pipeline.models.ganstfm_net import Generator, MultiScaleDiscriminator
from pipeline.models.losses import masked_mse, ms_ssim_loss
from pipeline.models.patches import Batch

#: Flip axes of the test-time views of (band, y, x) arrays.
_VIEWS: tuple[tuple[int, ...], ...] = ((), (2,), (1,), (1, 2))


def spectral_angle_loss(pred: Tensor, truth: Tensor, valid: Tensor) -> Tensor:
    """Mean ``1 - cos`` of the angle between predicted and true spectra over valid pixels."""
    cos = torch.nn.functional.cosine_similarity(pred, truth, dim=1, eps=1e-6)[:, None]
    return ((1.0 - cos) * valid).sum() / valid.sum().clamp_min(1.0)


def _flip_scene(scene: Scene, axes: tuple[int, ...]) -> Scene:
    fine = None if scene.fine is None else np.flip(scene.fine, axes).copy()
    return Scene(scene.date, np.flip(scene.coarse, axes).copy(), fine)


def tta_predict(model: TorchFusionModel, inputs: FusionInput, views: int) -> Prediction:
    """Mean over flip views of the engine's prediction; sigma = view spread (+ ref spread).

    Parameters
    ----------
    model : a trained torch fusion model.
    inputs : the fusion request.
    views : number of flip views (1..4); 1 gives the reference spread only.
    """
    fines, spreads = [], []
    for axes in _VIEWS[: max(1, min(views, len(_VIEWS)))]:
        flipped = FusionInput(
            tuple(_flip_scene(r, axes) for r in inputs.refs),
            _flip_scene(inputs.target, axes),
            inputs.bands,
        )
        out = TorchFusionModel.predict(model, flipped)
        fines.append(np.flip(out.fine, axes))
        if out.uncertainty is not None:
            spreads.append(np.flip(out.uncertainty, axes) ** 2)
    stack = np.stack(fines)
    fine = stack.mean(0)
    var = stack.var(0) + (np.mean(spreads, 0) if spreads else 0.0)
    return Prediction(fine.astype(np.float32), np.sqrt(var).astype(np.float32))


class GanStfm(TorchFusionModel):
    """GAN-STFM behind the common interface; see the module docstring."""

    name: ClassVar[str] = "ganstfm"
    n_refs: ClassVar[tuple[int, ...]] = (1, 2)
    train_refs: ClassVar[int] = 1
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {"widths": [4, 8], "disc_widths": [8, 8, 16], "epochs": 2, "steps_per_epoch": 2,
                 "batch_size": 2, "patch": 16, "tta": 2},
        "small": {"widths": [16, 32, 64, 128], "disc_widths": [16, 32, 64, 128], "patch": 48,
                  "tta": 4},
        "full": {"widths": [16, 32, 64, 128], "disc_widths": [32, 64, 128, 256], "patch": 64,
                 "tta": 4, "lr": 2e-4},
    }  # fmt: skip
    adv_weight: ClassVar[float] = 1e-2

    def __init__(self, bands: tuple[str, ...], size: str = "full", **params: Any) -> None:
        super().__init__(bands, size, **params)
        widths = tuple(self.params["disc_widths"])
        self.disc = MultiScaleDiscriminator(len(self.bands), widths).to(self.device)
        self._disc_opt: torch.optim.Optimizer | None = None

    def build(self, n_bands: int) -> torch.nn.Module:
        return Generator(n_bands, tuple(self.params["widths"]))

    @property
    def halo(self) -> int:
        return 2 * len(self.params["widths"])

    def forward(self, refs_coarse: Tensor, refs_fine: Tensor, tgt_coarse: Tensor,
                days: Tensor) -> Tensor:  # fmt: skip
        """(N, 1, B, h, w) fine reference + (N, B, h, w) target coarse -> (N, B, h, w).

        The generator's output is added to the target coarse image (zero-initialised
        head): a CPU-sized training budget then starts from the coarse image, not noise.
        """
        return tgt_coarse + self.net(refs_fine[:, 0], tgt_coarse)

    def training_step(self, batch: Batch, optimizer: torch.optim.Optimizer) -> float:
        """One discriminator then one generator LSGAN step; returns the generator loss."""
        if self._disc_opt is None:
            self._disc_opt = torch.optim.Adam(self.disc.parameters(), lr=float(self.params["lr"]),
                                              betas=(0.5, 0.999))  # fmt: skip
        self.disc.train()
        valid, coarse = batch.valid, batch.tgt_coarse
        with autocast(self.device, self.params["amp"]):
            pred = self.forward(batch.refs_coarse, batch.refs_fine, coarse, batch.days).float()  # type: ignore[arg-type]
            real = torch.where(valid > 0, batch.tgt_fine, pred.detach())  # type: ignore[arg-type,operator]
            d_real = self.disc(torch.cat([real, coarse], 1))  # type: ignore[list-item]
            d_fake = self.disc(torch.cat([pred.detach(), coarse], 1))  # type: ignore[list-item]
            d_loss = 0.5 * ((d_real - 1) ** 2).mean() + 0.5 * (d_fake**2).mean()
        self._disc_opt.zero_grad(set_to_none=True)
        d_loss.float().backward()
        self._disc_opt.step()
        optimizer.zero_grad(set_to_none=True)
        with autocast(self.device, self.params["amp"]):
            adv = 0.5 * ((self.disc(torch.cat([pred, coarse], 1)) - 1) ** 2).mean()  # type: ignore[list-item]
        truth = batch.tgt_fine
        loss = (masked_mse(pred, truth, valid) + spectral_angle_loss(pred, truth, valid)  # type: ignore[arg-type]
                + ms_ssim_loss(pred, truth, valid) + self.adv_weight * adv.float())  # type: ignore[arg-type]  # fmt: skip
        loss.backward()
        optimizer.step()
        return float(loss.detach())

    def predict(self, inputs: FusionInput) -> Prediction:
        """Engine prediction averaged over flip views; sigma from their spread (see module doc)."""
        return tta_predict(self, inputs, int(self.params["tta"]))
