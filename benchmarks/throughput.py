"""Model throughput: fused megapixels per second per model, CPU per core and GPU fp32/bf16.

FLOPs per pixel come from ``torch.utils.flop_counter.FlopCounterMode`` around one
``predict`` (it counts matmul, convolution and attention; element-wise work such
as STARFM's weighting is not counted, so those models show 0). The hardware
peak is measured in the same run with a large matmul: fp32 on one CPU thread,
bf16 on the GPU.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from benchmarks.common import BANDS, best_time, fusion_input, load
from pipeline.models.base import FusionModel
from pipeline.models.registry import available_models, create_model

#: Models left out: the naive baselines are listed once as the floor (``naive_change``).
SKIP = ("naive_fine", "naive_coarse")
#: Smaller images for the models too slow for a 48² image on one shared CPU thread
#: (STFDiff "full" runs 4 samples x 10 DDIM steps of its U-Net per prediction).
SLOW_TILES = {"stfdiff": 16, "swinstfm": 32}


def matmul_peak(device: str, dtype: torch.dtype, n: int = 2048) -> float:
    """Achieved FLOP/s of an ``n`` x ``n`` matmul (the practical peak of the device)."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)

    def step() -> None:
        torch.mm(a, b)
        if device == "cuda":
            torch.cuda.synchronize()

    reps = 20 if device == "cuda" else 2
    clock = time.perf_counter if device == "cuda" else time.process_time
    seconds = best_time(lambda: [step() for _ in range(reps)], clock=clock) / reps
    return 2.0 * n**3 / seconds


def timed_predict(model: FusionModel, n_bands: int, tile: int) -> tuple[float, float, float]:
    """Wall and CPU seconds of one ``predict`` on a ``tile``² image, and its FLOPs per pixel.

    A warm-up call on a small image runs first; the timed call runs inside
    ``FlopCounterMode`` (its bookkeeping is per operator, small next to the work).
    """
    from torch.utils.flop_counter import FlopCounterMode

    model.predict(fusion_input(n_bands, 8))
    inputs = fusion_input(n_bands, tile)
    with FlopCounterMode(display=False) as counter:
        start, cpu = time.perf_counter(), time.process_time()
        model.predict(inputs)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    return seconds, cpu, counter.get_total_flops() / tile**2


def _cpu_row(name: str, n_bands: int, size: str, tile: int) -> dict[str, Any]:
    model = create_model(name, BANDS[n_bands], size=size, device="cpu")
    tile = min(tile, SLOW_TILES.get(name, tile))
    seconds, cpu, flops = timed_predict(model, n_bands, tile)
    return {
        "model": name,
        "bands": n_bands,
        "size": size,
        "tile": tile,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "mpx_s": tile**2 / max(cpu, 1e-9) / 1e6,
        "flops_px": flops,
        "network": hasattr(model, "net"),
        "load": load(),
    }


def forward_rate(
    model: Any, n_bands: int, tile: int, batch: int, bf16: bool, device: str = "cuda"
) -> tuple[float, float]:
    """(pixels/s, counted FLOPs per pixel) of one network forward on ``batch`` tiles at once.

    One forward is one stream: ``predict`` runs one per stream, so these FLOPs
    can be below ``predict``'s. Torch models only.
    """
    from torch.utils.flop_counter import FlopCounterMode

    n = model.train_refs
    shape = (batch, n, n_bands, tile, tile)
    rc, rf = torch.rand(shape, device=device), torch.rand(shape, device=device)
    tc = torch.rand((batch, n_bands, tile, tile), device=device)
    days = torch.full((batch, n), 8.0, device=device)
    model.net.eval()

    def step() -> None:
        with torch.no_grad(), torch.autocast(device, torch.bfloat16, enabled=bf16):
            model.forward(rc, rf, tc, days)
        if device == "cuda":
            torch.cuda.synchronize()

    with FlopCounterMode(display=False) as counter:
        step()
    pixels = batch * tile**2
    return pixels / best_time(step, repeats=3), counter.get_total_flops() / pixels


def _predict_rate(model: FusionModel, n_bands: int, tile: int) -> float:
    """Pixels/s of ``predict`` on one ``tile``² image."""
    inputs = fusion_input(n_bands, tile)
    return tile**2 / best_time(lambda: model.predict(inputs), repeats=2)


def _gpu_rows(name: str, n_bands: int, size: str, peak: float) -> list[dict[str, Any]]:
    model = create_model(name, BANDS[n_bands], size=size, device="cuda")
    rows = []
    for bf16 in (False, True):
        if hasattr(model, "forward") and hasattr(model, "net"):
            rate, flops = forward_rate(model, n_bands, tile=256, batch=16, bf16=bf16)
            how = "forward, 16 tiles of 256² per batch"
        else:
            rate, flops = _predict_rate(model, n_bands, 1024), 0.0
            how = "predict on one 1024² image"
        rows.append(
            {
                "model": name,
                "bands": n_bands,
                "dtype": "bf16" if bf16 else "fp32",
                "mpx_s": rate / 1e6,
                "flops_px": flops,
                "peak_fraction": flops * rate / peak,
                "how": how,
                "load": load(),
            }
        )
    return rows


def models(quick: bool) -> list[str]:
    """Registered models measured here."""
    names = [n for n in available_models() if n not in SKIP]
    return ["naive_change", "starfm"] if quick else names


def run(quick: bool = False) -> dict[str, Any]:
    """Every model at its published size ("full"; "tiny" with ``quick``), 3 and 6 bands."""
    torch.set_num_threads(1)
    size, tile = ("tiny", 32) if quick else ("full", 48)
    start = time.perf_counter()
    cpu_peak = matmul_peak("cpu", torch.float32, 512 if quick else 2048)
    cpu = [_cpu_row(m, b, size, tile) for m in models(quick) for b in BANDS]
    for row in cpu:
        row["peak_fraction"] = row["flops_px"] * row["mpx_s"] * 1e6 / cpu_peak
    out: dict[str, Any] = {"cpu": cpu, "cpu_peak_flops": cpu_peak, "size": size, "tile": tile}
    if torch.cuda.is_available():
        gpu_peak = matmul_peak("cuda", torch.bfloat16, 8192)
        gpu = [r for m in models(quick) for b in BANDS for r in _gpu_rows(m, b, size, gpu_peak)]
        out.update(gpu=gpu, gpu_peak_flops=gpu_peak)
    out["wall_s"] = time.perf_counter() - start
    return out
