"""Shared pieces of the benchmark suite: machine facts, load, timing, synthetic inputs.

Every figure is stored next to the 1-minute load average taken when it was
measured: on a shared machine absolute times move with the load, ratios taken
within one run much less.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.models.base import FusionInput, Scene

ROOT = Path(__file__).resolve().parents[1]
BANDS = {3: ("green", "red", "nir"), 6: ("blue", "green", "red", "nir", "swir1", "swir2")}


def load() -> float:
    """The 1-minute load average (runnable processes; compare with the core count)."""
    return round(os.getloadavg()[0], 2)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> dict[str, Any]:
    """CPU model, cores, RAM, library versions and the GPU (or "none")."""
    import dask
    import distributed
    import psutil
    import torch
    import xarray
    import zarr

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "ram_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "dask": dask.__version__,
        "distributed": distributed.__version__,
        "xarray": xarray.__version__,
        "zarr": zarr.__version__,
        "gpu": gpu,
        "date_utc": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def best_time(
    fn: Callable[[], object], repeats: int = 2, clock: Callable[[], float] = time.perf_counter
) -> float:
    """Fastest of ``repeats`` calls in seconds of ``clock`` (after one untimed warm-up call).

    ``time.process_time`` gives CPU seconds: on a shared machine the per-core
    rate of single-threaded work, independent of how many others run.
    """
    fn()
    times = []
    for _ in range(repeats):
        start = clock()
        fn()
        times.append(clock() - start)
    return min(times)


def smooth_field(rng: np.random.Generator, shape: tuple[int, ...], cell: int = 8) -> np.ndarray:
    """A float32 field in ~[0.05, 0.45]: random cells of ``cell`` px, like fields on a map."""
    *lead, ny, nx = shape
    small = rng.random((*lead, -(-ny // cell), -(-nx // cell)), dtype=np.float32)
    big = small.repeat(cell, -2).repeat(cell, -1)[..., :ny, :nx]
    noise = 0.01 * rng.standard_normal(shape, dtype=np.float32)
    return (0.05 + 0.4 * big + noise).astype(np.float32)


def fusion_input(n_bands: int, size: int, seed: int = 0) -> FusionInput:
    """Two reference pairs and a target on a ``size`` x ``size`` tile (float32 reflectance)."""
    rng = np.random.default_rng(seed)
    fine = smooth_field(rng, (2, n_bands, size, size))
    coarse = block_mean(fine, 4)
    target = block_mean(fine.mean(0) + 0.02, 4)
    d0 = dt.date(2024, 6, 1)
    refs = tuple(Scene(d0 + dt.timedelta(days=16 * i), coarse[i], fine[i]) for i in range(2))
    return FusionInput(refs, Scene(d0 + dt.timedelta(days=8), target), BANDS[n_bands])


def block_mean(image: np.ndarray, factor: int) -> np.ndarray:
    """Block means of ``factor`` px replicated back onto the fine grid (a coarse image)."""
    *lead, ny, nx = image.shape
    cut = image[..., : ny - ny % factor, : nx - nx % factor]
    means = cut.reshape(*lead, ny // factor, factor, nx // factor, factor).mean(axis=(-3, -1))
    out = means.repeat(factor, -2).repeat(factor, -1)
    return np.pad(out, [(0, 0)] * len(lead) + [(0, ny % factor), (0, nx % factor)], mode="edge")
