"""Cost model: time and money to fuse one Landsat tile-year, from the measured figures.

Every number that is not measured in the same run is a named assumption
below, printed with the result. GPU throughput without a measured GPU is an
*estimate*: counted FLOPs per pixel against the published dense bf16 peak
times an assumed efficiency; it exists only for the networks, whose work the
FLOP counter sees (matmul, convolution, attention). Classic models (STARFM,
ESTARFM, Fit-FC) are element-wise and are costed on CPU only unless a GPU was
measured.
"""

from __future__ import annotations

from typing import Any

#: One Landsat WRS-2 tile (~185 km x 185 km at 30 m) in pixels, and a year of days.
TILE_PX = 36e6
DAYS = 365
#: Published dense bf16 tensor peak of an H100 SXM; the H200 has the same compute peak.
H100_BF16_PEAK = 989e12
#: Assumed fraction of that peak reached by the networks (the project's goal).
GPU_EFFICIENCY = 0.40
#: Assumed on-demand prices (USD): one H100/H200 GPU-hour, one CPU core-hour.
GPU_HOUR_USD = 3.00
CORE_HOUR_USD = 0.04
#: GPU counts of the multi-GPU rows (linear scaling assumed, see ``assumptions``).
N_GPUS = (8, 64)


def _pixel_days() -> float:
    return TILE_PX * DAYS


def _gpu_rate(
    model: str, cpu_row: dict[str, Any], gpu_rows: list[dict[str, Any]]
) -> tuple[float | None, str]:
    """(pixels/s, "measured"|"estimate") of one GPU, or (None, reason)."""
    measured = [r for r in gpu_rows if r["model"] == model and r["bands"] == cpu_row["bands"]]
    bf16 = [r for r in measured if r["dtype"] == "bf16"]
    if bf16:
        return bf16[0]["mpx_s"] * 1e6, "measured"
    if cpu_row["network"] and cpu_row["flops_px"] > 0:
        return H100_BF16_PEAK * GPU_EFFICIENCY / cpu_row["flops_px"], "estimate"
    return None, "not estimated (element-wise; no GPU measured)"


def model_costs(throughput: dict[str, Any], efficiency: float) -> list[dict[str, Any]]:
    """Per model (6 bands, largest measured size): CPU and GPU hours and cost per tile-year.

    ``efficiency`` (raw forward / distributed time, measured) stretches every time.
    """
    work = _pixel_days()
    rows = []
    for cpu in [r for r in throughput["cpu"] if r["bands"] == 6]:
        core_h = work / (cpu["mpx_s"] * 1e6) / efficiency / 3600
        rate, kind = _gpu_rate(cpu["model"], cpu, throughput.get("gpu", []))
        row: dict[str, Any] = {
            "model": cpu["model"],
            "core_hours": core_h,
            "cpu_usd": core_h * CORE_HOUR_USD,
            "gpu_kind": kind,
        }
        if rate is not None:
            gpu_h = work / rate / efficiency / 3600
            row.update(gpu_hours=gpu_h, gpu_usd=gpu_h * GPU_HOUR_USD)
            row.update({f"wall_h_{n}_gpus": gpu_h / n for n in N_GPUS})
        rows.append(row)
    return rows


def assumptions(efficiency: float, speedup_2: float | None) -> list[str]:
    """The assumptions of :func:`model_costs`, as sentences."""
    scaling = f"{speedup_2:.2f}x measured from 1 to 2 CPU workers" if speedup_2 else "unmeasured"
    return [
        f"work: one tile-year = {TILE_PX / 1e6:.0f} Mpx x {DAYS} days = "
        f"{_pixel_days():.3g} pixel-days, 6 bands",
        f"pipeline efficiency {efficiency:.2f} (measured: raw forward / distributed CPU time, "
        "STARFM) "
        "applied to every model",
        f"GPU estimate = {H100_BF16_PEAK / 1e12:.0f} TFLOP/s dense bf16 (H100/H200 published peak)"
        f" x {GPU_EFFICIENCY:.0%} assumed efficiency / counted FLOPs per pixel",
        f"prices (assumed, on-demand): ${GPU_HOUR_USD:.2f} per GPU-hour, "
        f"${CORE_HOUR_USD:.2f} per CPU core-hour",
        f"N GPUs: tiles and days are independent tasks, so time / N is assumed ({scaling}); "
        "cost is unchanged by N",
        "excluded: STAC search and COG reading (not in the measured path), training, egress",
    ]
