"""PNG figures of the benchmark results (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def throughput_figure(throughput: dict[str, Any], path: Path) -> Path:
    """Bar chart: CPU megapixels/s per core per model, 3 and 6 bands (log scale)."""
    rows = throughput["cpu"]
    models = sorted({r["model"] for r in rows})
    fig, ax = plt.subplots(figsize=(8, 4))
    for k, bands in enumerate((3, 6)):
        rate = {r["model"]: r["mpx_s"] for r in rows if r["bands"] == bands}
        xs = [i + 0.4 * k for i in range(len(models))]
        ax.bar(xs, [rate.get(m, 0) for m in models], width=0.4, label=f"{bands} bands")
    ax.set_xticks([i + 0.2 for i in range(len(models))], models, rotation=30)
    ax.set_yscale("log")
    ax.set_ylabel("Mpx per CPU-second (one thread)")
    ax.set_title(f"Model throughput ({throughput['size']} size)")
    ax.legend()
    return _save(fig, path)


def scaling_figure(pipeline: dict[str, Any], path: Path) -> Path:
    """Time vs pixels and vs days (log-log, dashed = linear from the first point), and memory
    vs pixels with the inputs streamed (after) and persisted over the whole region (before)."""
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    for ax, key, x_key, label in (
        (axes[0], "region", "pixels", "pixels"),
        (axes[1], "season", "days", "days"),
    ):
        rows = pipeline[key]
        xs, ts = [r[x_key] for r in rows], [r["seconds"] for r in rows]
        ax.loglog(xs, ts, "o-", label="measured")
        ax.loglog(xs, [ts[0] * x / xs[0] for x in xs], "--", label="linear")
        ax.set_xlabel(label)
        ax.set_ylabel("seconds (fuse into store)")
        ax.legend()
    for key, label in (("region_whole", "before: whole region persisted"), ("region", "after")):
        rows = pipeline[key]
        xs, rss = [r["pixels"] for r in rows], [r["rss_peak_mib"] for r in rows]
        axes[2].plot(xs, rss, "o-", label=label)
    axes[2].set_xscale("log")
    axes[2].set_ylim(bottom=0)
    axes[2].set_xlabel("pixels")
    axes[2].set_ylabel("peak RSS per worker (MiB)")
    axes[2].legend()
    fig.suptitle("Scaling of the distributed fusion (naive_change, 1 worker)")
    return _save(fig, path)


def _save(fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
