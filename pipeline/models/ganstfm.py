"""GAN-STFM (Tan et al. 2021): one fine reference of any date + the target coarse image.

Its selling point, kept: no pair on the target's side of the reference and no
coarse reference image are needed -- the generator sees only the fine
reference (of any date) and the target coarse image. What follows the
reference code (theonegis/ganstfm) and what deviates (named):

* **Generator** (:class:`~pipeline.models.ganstfm_net.Generator`): two-stream
  switchable-norm residual encoder, residual decoder, reading only the fine
  reference and the target coarse image (standardised per band, the engine's
  recipe). Deviation: the engine's residual head -- its output (band-std units,
  zero at initialisation) is added to a base over ``change_window`` px (chosen
  among ``change_windows`` on the training dates by the baselines' rule):

  - ``base = "change"`` (default): ``fine ref + box(coarse target - coarse ref)``,
    the smoothed change every other model starts from; it reads the reference
    date's coarse image, which every clear pair has;
  - ``base = "one_pair"``: ``fine ref + box(coarse target - fine ref)``, built
    from the generator's two images only (the published model's input set: no
    coarse image at the reference date). Measured on the synthetic season at
    its start: RMSE 0.0108 against 0.0076 for the smoothed change, because the
    coarse sensor's level differs from the fine one's; hence not the default.
* **Linear path** (deviation, the engine's): a zero-initialised ``linear_kernel`` px
  convolution from :meth:`~pipeline.models._torch.TorchFusionModel.pair_features`
  of the base's two images beside the generator (``linear_kernel = 0`` leaves it
  out), so the unmixing-like linear correction a CPU budget can find need not emerge
  from the generator; the engine starts it at its closed-form least-squares fit
  (:mod:`pipeline.models.linear_fit`). ``small``/``full`` train on the reference-pair
  rule's tasks, the two streams scored blended (``train_blend``), and validate across
  the dates with only two (:data:`RECIPE`).
* **Discriminator** as published: three spectral-norm residual discriminators
  at scales 1, 1/2, 1/4 conditioned on the target coarse image (widths
  ``disc_widths``: the published (32, 32, 64, 64, 128, 128, 256, 256) at full size,
  the same pattern narrower and one pair shorter at ``small``). LSGAN objective.
  The ``small`` generator is narrower too (8, 16, 16, 32: 44 k parameters against
  0.58 M; the full-resolution decoder's 3x3 convolutions at 256 channels cost ~10 s
  per step of four 96-px patches on a loaded 2-core CPU).
* **Loss** as published: ``feature MSE + (1 - feature cosine) + (1 - MS-SSIM) +
  adv_weight (1e-3) x adversarial``, the features from the encoder of an
  autoencoder the project trains on the region's fine images before the GAN
  (``ae_steps`` Adam steps; the reference ships one pre-trained on its own
  data) and then freezes. Each term's share at the first and last epoch is in
  ``FitReport.notes`` (``loss_share_start``/``loss_share_end``), with the
  autoencoder's reconstruction MSE and seconds. Measured on the synthetic season
  (benchmarks/model-zoo.md): cosine ~55 %, MS-SSIM ~43 %, feature ~2 %,
  adversarial ~0.6 % -- the published loss does not weigh reflectance much.
  ``pixel_weight > 0`` is the named *reflectance-dominant variant*: it adds
  ``pixel_weight`` x the squared error in band-std units. It is the default
  (``pixel_weight = 10``); ``pixel_weight = 0`` is the published loss. Why: on the
  synthetic season after 150 steps (small preset, patch 48, one run each) the
  published loss ended 2.3 % *worse* than its start on the target although its
  held-back date improved 10 %, the variant 2.1 % better.

Uncertainty: *test-time augmentation* -- the spread over flip views
(``tta``) combined with the two-reference disagreement when two pairs are
given and the start's error model (:mod:`pipeline.models.error_model`; a kept
start's flip views agree exactly, so without it its sigma would rank nothing),
scaled on the held-back date so that 68 % of its errors fall within one sigma
(:func:`calibrate_tta`, ``sigma_scale``); without a held-back date the fuse stage's
per-run calibration sets the scale.

Halo: the generator's convolutions or half the largest change window; the
switchable normalisation's instance/layer statistics are per tile, so tiles
differ slightly from the whole image (use large tiles; 256 px is fine).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from pipeline.errors import InputError
from pipeline.models import streams
from pipeline.models._torch import TorchFusionModel, smoothed_change
from pipeline.models.base import FusionInput, Prediction, Scene
from pipeline.models.blend import START_BLENDS
from pipeline.models.error_model import error_sigma, fit_error_model
from pipeline.models.ganstfm_net import Generator, MultiScaleDiscriminator, train_autoencoder
from pipeline.models.losses import masked_mse, ms_ssim_loss
from pipeline.models.patches import Batch

#: Flip axes of the test-time views of (band, y, x) arrays.
_VIEWS: tuple[tuple[int, ...], ...] = ((), (2,), (1,), (1, 2))
_COMMON: dict[str, Any] = {"val_split": "date", "date_fallback": "rows", "adv_weight": 1e-3,
                           "base": "change", "pixel_weight": 10.0}  # fmt: skip
#: What the ``small``/``full`` presets of GAN-STFM, SwinSTFM and STFDiff take from
#: resstf_prior's recipe. ``date_fallback = "reverse"``: with two training dates (no
#: date to hold back) each direction is trained and validated on the other's held-back
#: blocks, and only the share of the correction that transfers is kept (none: the start,
#: the best naive baseline; :mod:`pipeline.models.few_dates`). Before, on estarfm-2001,
#: 150 steps validated on held-back rows of the only 80-day task ended 3-13 % worse than
#: that start on the target (benchmarks/model-zoo.md): held-back rows of two dates
#: cannot tell learning that date pair from learning fusion. ``FitReport.task`` and
#: ``--json`` say what was kept. ``train_blend``: tasks, and the
#: held-back date, as a fused day has them (the reference-pair rule's pairs, the
#: streams scored blended; :mod:`pipeline.models.streams`); measured lever per model in
#: benchmarks/model-zoo.md.
RECIPE: dict[str, Any] = {"date_fallback": "reverse", "train_blend": True}
#: Fraction of a normal error within one sigma: the target of :func:`calibrate_tta`.
_ONE_SIGMA = 0.6827


def loss_shares(log: list[dict[str, float]], per_epoch: int) -> dict[str, Any]:
    """Each loss term's share of the summed total over the first and the last epoch."""
    if not log:
        return {}

    def shares(part: list[dict[str, float]]) -> dict[str, float]:
        sums = {k: sum(abs(step[k]) for step in part) for k in part[0]}
        total = sum(sums.values()) or 1.0
        return {k: v / total for k, v in sums.items()}

    return {"loss_share_start": shares(log[:per_epoch]), "loss_share_end": shares(log[-per_epoch:])}


def _flip_scene(scene: Scene, axes: tuple[int, ...]) -> Scene:
    fine = None if scene.fine is None else np.flip(scene.fine, axes).copy()
    return Scene(scene.date, np.flip(scene.coarse, axes).copy(), fine)


def tta_predict(model: TorchFusionModel, inputs: FusionInput, views: int) -> Prediction:
    """Mean over flip views of the engine's prediction; sigma = view spread (+ ref spread)
    (+ the start's error model, :mod:`pipeline.models.error_model`, where fitted).

    The sigma is multiplied by ``model.params["sigma_scale"]`` (1 unless
    :func:`calibrate_tta` fitted it on a held-back date).

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
    errors = model.params.get("error_model")
    if errors is not None:  # the start's error model: a kept start's views agree exactly
        window = int(model.params["change_window"])
        var = var + error_sigma(errors, inputs.refs, inputs.target, window) ** 2
    sigma = np.sqrt(var) * float(model.params.get("sigma_scale", 1.0))
    return Prediction(fine.astype(np.float32), sigma.astype(np.float32))


def calibrate_tta(model: TorchFusionModel, held: Sequence[Scene], pairs: Sequence[Scene]) -> None:
    """Fit ``sigma_scale`` so that ``|error| <= sigma`` on 68.27 % of held-back pixels.

    Each held-back date is predicted from ``pairs`` by the shared reference-pair
    rule; without a held-back date the scale stays 1 and the fuse stage's
    per-run calibration (:mod:`pipeline.fuse.calibrate`) sets it.
    """
    from pipeline.models.pairs import choose_scenes

    ratios = []
    model.params["sigma_scale"] = 1.0
    for target in held:
        if target.fine is None or len(pairs) < min(model.n_refs):
            continue
        refs = choose_scenes(pairs, target.date, model.n_refs)
        out = model.predict(FusionInput(refs, Scene(target.date, target.coarse), model.bands))
        assert out.uncertainty is not None
        ok = np.isfinite(target.fine) & (out.uncertainty > 0)
        ratios.append(np.abs(out.fine - target.fine)[ok] / out.uncertainty[ok])
    if ratios and np.concatenate(ratios).size:
        model.params["sigma_scale"] = float(np.quantile(np.concatenate(ratios), _ONE_SIGMA))


class GanStfm(TorchFusionModel):
    """GAN-STFM behind the common interface; see the module docstring."""

    name: ClassVar[str] = "ganstfm"
    n_refs: ClassVar[tuple[int, ...]] = (1, 2)
    train_refs: ClassVar[int] = 1
    outer_amp: ClassVar[bool] = False
    linear_path: ClassVar[bool] = True
    start_blends: ClassVar[tuple[str, ...]] = START_BLENDS  # per-pixel change blend too
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {**_COMMON, "widths": [4, 8], "disc_widths": [8, 8, 16], "ae_widths": [4, 8, 8, 8],
                 "ae_steps": 5, "epochs": 2, "steps_per_epoch": 2, "batch_size": 2, "patch": 16,
                 "tta": 2, "change_window": 3, "change_windows": [1, 3]},
        "small": {**_COMMON, **RECIPE, "widths": [8, 16, 16, 32],
                  "disc_widths": [8, 8, 16, 16, 32, 32],
                  "ae_widths": [16, 32, 64, 128], "ae_steps": 100, "patch": 64, "batch_size": 4,
                  "tta": 4, "lr": 5e-4, "epochs": 30, "steps_per_epoch": 20, "patience": 6,
                  "budget_s": 300, "budget_s_gpu": 1800,
                  "change_window": 17, "change_windows": [1, 9, 17, 33]},
        "full": {**_COMMON, **RECIPE, "widths": [16, 32, 64, 128],
                 "disc_widths": [32, 32, 64, 64, 128, 128, 256, 256],
                 "ae_widths": [16, 32, 64, 128], "ae_steps": 1000, "patch": 128, "batch_size": 4,
                 "tta": 4, "lr": 2e-4, "epochs": 30, "steps_per_epoch": 20, "patience": 6,
                 "budget_s": 600, "budget_s_gpu": 1800,
                 "change_window": 33, "change_windows": [1, 9, 17, 33, 65]},
    }  # fmt: skip

    def __init__(self, bands: tuple[str, ...], size: str = "full", **params: Any) -> None:
        super().__init__(bands, size, **params)
        widths = tuple(self.params["disc_widths"])
        self.disc = MultiScaleDiscriminator(len(self.bands), widths).to(self.device)
        self._disc_opt: torch.optim.Optimizer | None = None
        self._fit_pairs: list[Scene] = []
        self.autoencoder: torch.nn.Module | None = None
        self.loss_log: list[dict[str, float]] = []
        self._ae_notes: dict[str, float] = {}

    def build(self, n_bands: int) -> torch.nn.Module:
        if self.params["base"] not in ("change", "one_pair"):
            raise InputError(
                f"model ganstfm: base must be 'change' or 'one_pair', got {self.params['base']!r}"
            )
        return Generator(n_bands, tuple(self.params["widths"]))

    @property
    def halo(self) -> int:
        return max(2 * len(self.params["widths"]), self.linear_reach())

    # --- fit preparation: the region's autoencoder and the base's window -------------
    def set_band_stats(self, pairs: Sequence[Scene]) -> None:
        """Band statistics (engine) and the fine images the autoencoder trains on."""
        super().set_band_stats(pairs)
        self._fit_pairs = list(pairs)

    def select_start(self, pairs: Sequence[Scene]) -> None:
        """Pick ``change_window`` by the start rule, then train the autoencoder."""
        super().select_start(pairs)  # change_window (the start rule)
        if not self._fit_pairs:
            return
        self.params["error_model"] = fit_error_model(
            self._fit_pairs, int(self.params["change_window"]), self.blend_name()
        )
        began = time.perf_counter()
        fine = torch.as_tensor(np.stack([s.fine for s in self._fit_pairs]))  # type: ignore[misc]
        images = torch.nan_to_num(self.standardise(fine))
        p = self.params
        ae, mse = train_autoencoder(
            images, tuple(p["ae_widths"]), int(p["ae_steps"]), 64, int(p["seed"])
        )
        self.autoencoder = ae.to(self.device)
        self._ae_notes = {"autoencoder_mse": mse, "autoencoder_s": time.perf_counter() - began}

    # --- network and loss ------------------------------------------------------------
    def forward(self, refs_coarse: Tensor, refs_fine: Tensor, tgt_coarse: Tensor,
                days: Tensor) -> Tensor:  # fmt: skip
        """(N, 1, B, h, w) fine reference + (N, B, h, w) target coarse -> (N, B, h, w).

        The generator never reads the coarse reference; the base does unless
        ``base = "one_pair"`` (module doc).
        """
        ref_f, tgt_c = refs_fine[:, 0].float(), tgt_coarse.float()
        residual = self.trunk(self.net, self.standardise(ref_f), self.standardise(tgt_c))
        level = ref_f if self.params["base"] == "one_pair" else refs_coarse[:, 0].float()
        window = int(self.params["change_window"])
        if getattr(self.net, "linear_path", None) is None:
            return ref_f + smoothed_change(tgt_c, level, window) + self.unscale(residual)
        features, base = self.pair_features(level, ref_f, tgt_c, window)
        return base + self.unscale(residual + self.linear_term(features))

    def _critic(self, image: Tensor, coarse: Tensor) -> Tensor:
        """Discriminator score (N,) of a fine image conditioned on the target coarse one."""
        joint = torch.cat([self.standardise(image), self.standardise(coarse)], 1)
        return self.trunk(self.disc, joint)

    def _generator_terms(self, pred: Tensor, truth: Tensor, valid: Tensor) -> dict[str, Tensor]:
        """The published reconstruction loss: feature MSE, feature cosine, MS-SSIM."""
        filled = torch.where(valid.expand_as(truth) > 0, truth, pred.detach())
        terms = {"ssim": ms_ssim_loss(pred, truth, valid)}
        if float(self.params["pixel_weight"]) > 0:  # the reflectance-dominant variant
            std = self._stats(pred)[1]
            terms["reflectance"] = float(self.params["pixel_weight"]) * masked_mse(
                pred / std, truth / std, valid
            )
        if self.autoencoder is not None:
            f_pred = self.autoencoder.features(self.standardise(pred))  # type: ignore[operator]
            with torch.no_grad():
                f_true = self.autoencoder.features(self.standardise(filled))  # type: ignore[operator]
            terms["feature"] = F.mse_loss(f_pred, f_true)
            terms["cosine"] = 1.0 - F.cosine_similarity(f_pred, f_true, dim=1).mean()
        return terms

    def training_step(self, batch: Batch, optimizer: torch.optim.Optimizer) -> float:
        """One discriminator then one generator LSGAN step; returns the generator loss."""
        if self._disc_opt is None:
            self._disc_opt = torch.optim.Adam(self.disc.parameters(), lr=float(self.params["lr"]),
                                              betas=(0.5, 0.999))  # fmt: skip
        self.disc.train()
        valid, coarse, truth = batch.valid, batch.tgt_coarse, batch.tgt_fine
        # the streams blended as predict blends them when the batch has both references
        # (train_blend), else the one stream
        pred = streams.forward(self, batch.refs_coarse, batch.refs_fine, coarse, batch.days)  # type: ignore[arg-type]
        real = torch.where(valid > 0, truth, pred.detach())  # type: ignore[arg-type,operator]
        d_loss = 0.5 * ((self._critic(real, coarse) - 1) ** 2).mean()  # type: ignore[arg-type]
        d_loss = d_loss + 0.5 * (self._critic(pred.detach(), coarse) ** 2).mean()  # type: ignore[arg-type]
        self._disc_opt.zero_grad(set_to_none=True)
        d_loss.backward()
        self._disc_opt.step()
        optimizer.zero_grad(set_to_none=True)
        terms = self._generator_terms(pred, truth, valid)  # type: ignore[arg-type]
        adv = 0.5 * ((self._critic(pred, coarse) - 1) ** 2).mean()  # type: ignore[arg-type]
        terms["adversarial"] = float(self.params["adv_weight"]) * adv
        loss = sum(terms.values())
        loss.backward()  # type: ignore[union-attr]
        optimizer.step()
        self.loss_log.append({k: float(v.detach()) for k, v in terms.items()})
        return float(loss.detach())  # type: ignore[union-attr]

    def fit_notes(self) -> dict[str, Any]:
        """Loss-term shares at the first and last epoch and the autoencoder's figures."""
        return {**loss_shares(self.loss_log, int(self.params["steps_per_epoch"])),
                **self._ae_notes}  # fmt: skip

    def select_after(self, held: Sequence[Scene], pairs: Sequence[Scene]) -> None:
        """Calibrate the test-time-augmentation sigma on the held-back date (if any)."""
        calibrate_tta(self, held, pairs)

    def predict(self, inputs: FusionInput) -> Prediction:
        """Engine prediction averaged over flip views; sigma from their spread (see module doc)."""
        return tta_predict(self, inputs, int(self.params["tta"]))
