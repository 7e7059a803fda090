"""A small temporal convolutional network (1-D CNN over time) for crop-type classification.

Input rows follow the feature layout of :mod:`pipeline.products.features`: the first
``n_channels * n_steps`` values are the (channel, step) composites, channel-major,
then ``n_static`` per-pixel metrics (phenology). This is the only module importing torch.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


class TemporalCNN(nn.Module):
    """Two 1-D conv blocks over time, global mean+max pooling, then an MLP with the static features.

    About 10 k parameters at the defaults (4 channels, width 32): small enough to train
    on CPU in seconds on a few thousand pixels.
    """

    def __init__(self, n_channels: int, n_static: int, n_classes: int, width: int = 32) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv1d(n_channels, width, kernel_size=3, padding=1),
            nn.BatchNorm1d(width),
            nn.ReLU(),
            nn.Conv1d(width, width, kernel_size=3, padding=1),
            nn.BatchNorm1d(width),
            nn.ReLU(),
        )
        self.head = nn.Sequential(
            nn.Linear(2 * width + n_static, width), nn.ReLU(), nn.Linear(width, n_classes)
        )

    def forward(self, seq: torch.Tensor, static: torch.Tensor) -> torch.Tensor:
        """``seq`` (batch, channel, step), ``static`` (batch, n_static) -> logits (batch, class)."""
        h = self.conv(seq)
        pooled = torch.cat([h.mean(dim=2), h.amax(dim=2), static], dim=1)
        return self.head(pooled)


class TemporalNetClassifier:
    """scikit-learn-style wrapper: ``fit``, ``predict_proba``, ``predict``, ``classes_``.

    Features are standardised with the training mean/std; NaN becomes 0 after that
    (the training mean).

    Parameters
    ----------
    layout : (n_channels, n_steps, n_static) of the feature rows.
    epochs, batch_size, lr : Adam training schedule; ``seed`` makes it deterministic on CPU.
    """

    def __init__(
        self,
        layout: tuple[int, int, int],
        epochs: int = 60,
        batch_size: int = 256,
        lr: float = 3e-3,
        seed: int = 0,
    ) -> None:
        self.layout = layout
        self.epochs, self.batch_size, self.lr, self.seed = epochs, batch_size, lr, seed

    def _tensors(self, x: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        n_ch, n_steps, _ = self.layout
        z = np.nan_to_num((x - self.mean_) / self.std_, nan=0.0).astype(np.float32)
        k = n_ch * n_steps
        seq = torch.from_numpy(z[:, :k].reshape(-1, n_ch, n_steps).copy())
        return seq, torch.from_numpy(z[:, k:].copy())

    def fit(self, x: np.ndarray, y: np.ndarray) -> TemporalNetClassifier:
        """Train on rows ``x`` (n, feature) float32 and labels ``y`` (n,) int."""
        torch.manual_seed(self.seed)
        self.classes_, y_idx = np.unique(y, return_inverse=True)
        self.mean_ = np.nanmean(x, axis=0)
        self.std_ = np.nanstd(x, axis=0) + 1e-6
        self.mean_ = np.nan_to_num(self.mean_)
        seq, static = self._tensors(x)
        target = torch.from_numpy(y_idx.astype(np.int64))
        self.net_ = TemporalCNN(self.layout[0], self.layout[2], len(self.classes_))
        opt = torch.optim.Adam(self.net_.parameters(), lr=self.lr)
        gen = torch.Generator().manual_seed(self.seed)
        self.net_.train()
        for _ in range(self.epochs):
            for idx in torch.randperm(len(target), generator=gen).split(self.batch_size):
                if len(idx) < 2:  # BatchNorm needs two samples
                    continue
                opt.zero_grad()
                loss = nn.functional.cross_entropy(self.net_(seq[idx], static[idx]), target[idx])
                loss.backward()
                opt.step()
        self.net_.eval()
        return self

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """(n, class) float32 probabilities, columns in the order of ``classes_``."""
        seq, static = self._tensors(x)
        with torch.inference_mode():
            out = [
                torch.softmax(self.net_(s, t), dim=1)
                for s, t in zip(seq.split(8192), static.split(8192), strict=True)
            ]
        return torch.cat(out).numpy().astype(np.float32)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """(n,) class labels."""
        return self.classes_[self.predict_proba(x).argmax(axis=1)]
