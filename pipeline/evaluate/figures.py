"""Figures of an evaluation: truth, prediction and error map per band (PNG)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def plot_evaluation(
    truth: np.ndarray, pred: np.ndarray, bands: tuple[str, ...], title: str, path: Path
) -> Path:
    """Write a (bands x 3) grid: truth, prediction, prediction - truth.

    Parameters
    ----------
    truth, pred : (band, y, x) reflectance, NaN = invalid.
    bands : band names (row labels).
    title : figure title.
    path : PNG file to write (parent created).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(bands)
    fig, axes = plt.subplots(n, 3, figsize=(9, 3 * n), squeeze=False)
    for i, band in enumerate(bands):
        lo, hi = np.nanpercentile(truth[i], [2, 98])
        err = pred[i] - truth[i]
        lim = float(np.nanpercentile(np.abs(err), 98)) or 1e-3
        panels = [
            (truth[i], "gray", lo, hi, "truth"),
            (pred[i], "gray", lo, hi, "prediction"),
            (err, "RdBu_r", -lim, lim, "prediction - truth"),
        ]
        for ax, (img, cmap, vmin, vmax, label) in zip(axes[i], panels, strict=True):
            shown = ax.imshow(img, cmap=cmap, vmin=vmin, vmax=vmax)
            ax.set_title(f"{band}: {label}", fontsize=9)
            ax.axis("off")
            fig.colorbar(shown, ax=ax, fraction=0.046)
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def plot_training(history: list[dict[str, float]], title: str, path: Path) -> Path:
    """Write the train/validation loss curve (MSE per epoch, log scale) as a PNG.

    Parameters
    ----------
    history : the engine's history, one {"epoch", "loss", "val_loss"} per epoch;
        epoch 0 is the untrained start (validation only).
    title : figure title.
    path : PNG file to write (parent created).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    fig, ax = plt.subplots(figsize=(6, 4))
    train = [(h["epoch"], h["loss"]) for h in history if np.isfinite(h["loss"])]
    if train:
        ax.plot(*zip(*train, strict=True), "o-", label="training loss")
    ax.plot(epochs, [h["val_loss"] for h in history], "s-", label="held-back MSE")
    ax.axhline(history[0]["val_loss"], color="gray", ls="--", lw=1, label="start (epoch 0)")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("MSE (reflectance²)")
    ax.set_title(title, fontsize=10)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
