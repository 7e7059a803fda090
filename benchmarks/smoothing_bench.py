"""Smoother throughput: per-pixel loop (before) vs vectorised over the pixels of a chunk (after).

``python -m benchmarks.smoothing_bench [--pixels N] [--days N] [--out FILE]`` times the
weighted Whittaker (lambda 400, order 2) and Savitzky-Golay (31 days, order 2) on
``--days``-day series with 30 % of the days observed, single-threaded (BLAS threads 1),
and writes a Markdown row per smoother with the machine, command and date. "before" is
the per-pixel reference loop (what ``_smooth_block`` ran until this change), timed on
a subset of the pixels; "after" is :func:`whittaker_pixels` / :func:`savgol_pixels` on
all of them. The largest absolute difference between the two is reported too.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

from pipeline.products.smoothing import (  # noqa: E402
    savgol,
    savgol_pixels,
    whittaker,
    whittaker_pixels,
)


def _series(days: int, pixels: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """NDVI-like (days, pixels) float64 series with ~30 % observed days and noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(days, dtype=float)[:, None]
    peak = rng.uniform(120, 240, pixels)[None, :]
    y = 0.2 + 0.5 * np.exp(-(((t - peak) / 45.0) ** 2)) + rng.normal(0, 0.03, (days, pixels))
    w = (rng.random((days, pixels)) < 0.3).astype(float)
    return np.where(w > 0, y, np.nan), w


def _rate(fn, pixels: int, repeat: int = 2) -> float:
    best = min(_timed(fn) for _ in range(repeat))
    return pixels / best


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pixels", type=int, default=256 * 256)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--loop-pixels", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/smoothing.md"))
    args = parser.parse_args(argv)
    y, w = (a.T.copy() for a in _series(args.days, args.pixels))  # (pixel, day)
    sub = slice(0, min(args.loop_pixels, args.pixels))
    rows = []
    for name, one, many in (
        ("whittaker (lambda 400)", whittaker, whittaker_pixels),
        ("savgol (31 days)", savgol, savgol_pixels),
    ):
        ys, ws = y[sub], w[sub]
        ref = np.stack([one(ys[i], ws[i]) for i in range(ys.shape[0])])
        diff = float(np.nanmax(np.abs(many(ys, ws) - ref)))
        before = _rate(
            lambda ys=ys, ws=ws, one=one: [one(ys[i], ws[i]) for i in range(ys.shape[0])],
            ys.shape[0],
        )
        after = _rate(lambda many=many: many(y, w), args.pixels)
        rows.append(
            f"| {name} | {args.days} | {before:,.0f} | {after:,.0f} | {after / before:.1f}x "
            f"| {diff:.1e} |"
        )
    cpu = platform.processor() or platform.machine()
    text = "\n".join(
        [
            "# Smoothing throughput (one core)",
            "",
            f"Machine: {platform.node()} ({cpu}, {os.cpu_count()} cores, one thread used); "
            f"Python {platform.python_version()}, numpy {np.__version__}; load average "
            f"{os.getloadavg()[0]:.1f} when it ended (a shared machine: compare the columns "
            "of one row, which ran under the same load, more than rows of different runs).",
            f"Command: `python -m benchmarks.smoothing_bench {' '.join(argv or sys.argv[1:])}`",
            f"Date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC. {args.pixels} pixels "
            f"(the per-pixel loop timed on {sub.stop}).",
            "",
            "| smoother | days | before: px/s (pixel loop) | after: px/s (vectorised) "
            "| speed-up | max abs diff |",
            "|---|---|---|---|---|---|",
            *rows,
            "",
        ]
    )
    args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
