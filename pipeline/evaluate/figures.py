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
