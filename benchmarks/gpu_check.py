"""One prepared GPU check: every GPU measurement in one script, within a time budget.

``make bench-gpu`` (``python -m benchmarks.gpu_check --out $OUT``) measures, on the
first CUDA device:

1. **correctness**: every registered model's CUDA output against its CPU output on
   the same weights (perturbed from their start so the network, not only its
   zero-initialised head, is compared), fp32 (TF32 off) and bf16 autocast;
   tolerances :data:`TOL_FP32` and :data:`TOL_BF16` (max |GPU - CPU|, reflectance);
   stochastic models (GAN noise, diffusion sampling) are reported, not judged.
2. **throughput** per model at its published size ("full"), fp32 and bf16, with the
   fraction of a bf16 / fp32 matmul peak measured in the same run.
3. **one tile end to end**: a synthetic world of ``--tile`` px × ``--days`` days built
   on the fly, served as a STAC API on loopback, then search -> cubes -> model ->
   fuse on a LocalCluster whose worker advertises ``GPU=1`` -> Zarr store; seconds
   per stage (:mod:`benchmarks.gpu_tile`).
4. **training** of ResStf and EDCSTFN on the real sets (``manifests/``) on the GPU:
   train seconds (to early stop or the epoch budget), scores, the engine's report.

Each section runs only while the budget (``--budget-s``, default 420 s) lasts and
records its own errors, so one failure never loses the other figures. Results:
``OUT/gpu-check.json`` and ``OUT/gpu-check.md`` (machine, command, date, tables).

Without CUDA (or with ``--dry-run``) the same code runs on the CPU at tiny sizes in
seconds (tests/benchmarks/test_gpu_check.py): it checks the plumbing, not the GPU.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.common import BANDS, ROOT, best_time, fusion_input, machine
from pipeline.models.registry import available_models, create_model, model_class

#: Largest |CUDA - CPU| (reflectance) accepted in fp32 (TF32 off) and under bf16 autocast.
TOL_FP32 = 1e-4
TOL_BF16 = 2e-2
#: Models whose prediction draws random numbers (device RNGs differ): reported, not judged.
STOCHASTIC = ("ganstfm", "stfdiff")
#: Models trained on the real sets.
TRAINED = ("resstf", "edcstfn")
MANIFESTS = ("estarfm-2001", "lgc-2004")


@dataclass(frozen=True)
class Plan:
    """Sizes of one check: the GPU run, or the CPU dry run (tiny, seconds)."""

    device: str
    models: tuple[str, ...]  # registered models measured
    manifests: tuple[str, ...]  # real sets the CNNs are trained on
    size: str  # model preset
    tile: int  # correctness / throughput tile (px)
    batch: int  # tiles per forward in throughput
    peak_n: int  # matmul size for the peak
    world: int  # end-to-end tile (px)
    days: int  # end-to-end days
    epochs: int | None  # training epochs (None: the engine's default budget)
    budget_s: float

    @classmethod
    def gpu(
        cls, models: tuple[str, ...], budget_s: float, world: int, days: int, epochs: int | None
    ) -> Plan:
        return cls("cuda", models, MANIFESTS, "full", 256, 16, 8192, world, days, epochs, budget_s)

    @classmethod
    def dry(cls, models: tuple[str, ...], budget_s: float) -> Plan:
        return cls("cpu", models, MANIFESTS[1:], "tiny", 16, 2, 256, 96, 16, 1, budget_s)

    @property
    def dtypes(self) -> tuple[tuple[str, bool], ...]:
        """(name, bf16 autocast) measured; CPU bf16 autocast is emulated, so only fp32 there."""
        return (("fp32", False), ("bf16", True)) if self.device == "cuda" else (("fp32", False),)


class Budget:
    """Seconds left of the check's budget; sections ask before starting a unit of work."""

    def __init__(self, seconds: float) -> None:
        self.end = time.perf_counter() + seconds

    def left(self) -> float:
        return self.end - time.perf_counter()


def _section(name: str, fn: Callable[[], Any], out: dict[str, Any]) -> None:
    """Run one section; its result or its error (one line + traceback tail) goes in ``out``."""
    start = time.perf_counter()
    try:
        out[name] = fn()
    except Exception as exc:  # one failing section must not lose the others' figures
        out[name] = {"error": f"{type(exc).__name__}: {exc}".splitlines()[0]}
        out[name]["traceback"] = traceback.format_exc().splitlines()[-6:]
    out.setdefault("seconds", {})[name] = round(time.perf_counter() - start, 2)
    print(f"gpu_check: {name} done in {out['seconds'][name]:.1f} s", file=sys.stderr, flush=True)


def matmul_peaks(plan: Plan) -> dict[str, float]:
    """Achieved FLOP/s of a square matmul, bf16 and fp32 (TF32 off), on the plan's device."""
    from benchmarks.throughput import matmul_peak

    torch.backends.cuda.matmul.allow_tf32 = False
    return {
        "bf16": matmul_peak(plan.device, torch.bfloat16, plan.peak_n),
        "fp32": matmul_peak(plan.device, torch.float32, plan.peak_n),
        "n": plan.peak_n,
    }


def _build(name: str, size: str, device: str, amp: bool) -> Any:
    """A model on ``device``: torch nets with bf16 autocast ``amp``, classic models on
    ``device`` (their torch kernels), the naive baselines (numpy) where they are."""
    from pipeline.models._torch import TorchFusionModel

    bands = BANDS[3]
    if issubclass(model_class(name), TorchFusionModel):
        return create_model(name, bands, size=size, device=device, amp=amp)
    if name.startswith("naive_"):
        return create_model(name, bands, size=size)
    return create_model(name, bands, size=size, device=device)


def _perturbed(model: Any) -> dict[str, torch.Tensor] | None:
    """Weights of ``model`` moved off their start (seeded), or None for a model without a net."""
    net = getattr(model, "net", None)
    if net is None:
        return None
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.02 * torch.randn(p.shape, generator=gen).to(p.device))
    return {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}


def _predict(model: Any, tile: int, seed: int = 0) -> np.ndarray:
    torch.manual_seed(seed)
    return np.asarray(model.predict(fusion_input(3, tile)).fine, np.float64)


def correctness(plan: Plan, budget: Budget) -> list[dict[str, Any]]:
    """Max |device - CPU| of every model's prediction, fp32 and bf16 (see module doc)."""
    rows = []
    for name in plan.models:
        if budget.left() < 0:
            rows.append({"model": name, "skipped": "budget"})
            continue
        cpu = _build(name, plan.size, "cpu", amp=False)
        weights = _perturbed(cpu)
        reference = _predict(cpu, plan.tile)
        for dtype, amp, tol in (("fp32", False, TOL_FP32), ("bf16", True, TOL_BF16)):
            dev = _build(name, plan.size, plan.device, amp=amp)
            if weights is not None:
                dev.net.load_state_dict(weights)
            diff = np.abs(_predict(dev, plan.tile) - reference)
            worst = float(np.nanmax(diff)) if np.isfinite(diff).any() else float("nan")
            rows.append(
                {
                    "model": name,
                    "dtype": dtype,
                    "device": str(getattr(dev, "device", "cpu (no device option)")),
                    "max_abs": worst,
                    "rms": float(np.sqrt(np.nanmean(diff**2))),
                    "tolerance": tol,
                    "ok": None if name in STOCHASTIC else bool(worst <= tol),
                }
            )
    return rows


def throughput(plan: Plan, peaks: dict[str, float], budget: Budget) -> list[dict[str, Any]]:
    """Pixels/s per model at the plan's size, fp32 and bf16, and the fraction of that peak."""
    from benchmarks.throughput import forward_rate

    rows = []
    for name in plan.models:
        for dtype, amp in plan.dtypes:
            if budget.left() < 0:
                rows.append({"model": name, "dtype": dtype, "skipped": "budget"})
                continue
            model = _build(name, plan.size, plan.device, amp=amp)
            if hasattr(model, "net") and hasattr(model, "forward"):
                rate, flops = forward_rate(
                    model, 3, plan.tile, plan.batch, bf16=amp, device=plan.device
                )
                how = f"forward, {plan.batch} tiles of {plan.tile}² per batch"
            else:
                tile = plan.tile * 4
                inputs = fusion_input(3, tile)
                rate, flops = tile**2 / best_time(lambda m=model, i=inputs: m.predict(i)), 0.0
                how = f"predict on one {tile}² image"
            rows.append(
                {
                    "model": name,
                    "dtype": dtype,
                    "mpx_s": rate / 1e6,
                    "flops_px": flops,
                    "peak_fraction": flops * rate / peaks[dtype],
                    "how": how,
                }
            )
    return rows


def training(plan: Plan, budget: Budget) -> list[dict[str, Any]]:
    """ResStf and EDCSTFN trained and scored on each real set (``stf evaluate``'s protocol)."""
    from pipeline.evaluate.runner import evaluate

    rows = []
    for manifest in plan.manifests:
        for name in TRAINED:
            if budget.left() < 0:
                rows.append({"model": name, "dataset": manifest, "skipped": "budget"})
                continue
            params: dict[str, Any] = {"device": plan.device}
            if plan.epochs is not None:
                params["epochs"] = plan.epochs
            path = ROOT / "manifests" / f"{manifest}.yaml"
            result = evaluate(path, name, size=plan.size, **params).result
            keep = ("model", "dataset", "overall", "seconds", "params", "size")
            rows.append({k: result[k] for k in keep if k in result} | _fit_report(result))
    return rows


def _fit_report(result: dict[str, Any]) -> dict[str, Any]:
    """Whatever the training engine reports (steps, curve, start/end scores), if it does."""
    return {k: result[k] for k in ("training", "fit", "coregistration") if k in result}


def run(plan: Plan, out_dir: Path, command: str) -> dict[str, Any]:
    """Every section within ``plan.budget_s``; writes ``gpu-check.json`` and ``.md`` there."""
    from benchmarks.gpu_tile import end_to_end

    torch.manual_seed(0)
    budget = Budget(plan.budget_s)
    result: dict[str, Any] = {"machine": machine(), "command": command, "plan": plan.__dict__}
    if plan.device == "cuda":
        result["machine"]["cuda"] = torch.version.cuda
    _section("peaks", lambda: matmul_peaks(plan), result)
    peaks = result["peaks"] if "error" not in result["peaks"] else {"bf16": 1.0, "fp32": 1.0}
    _section("correctness", lambda: correctness(plan, budget), result)
    _section("throughput", lambda: throughput(plan, peaks, budget), result)
    # the tile is all-or-nothing: it runs before training, which stops between runs
    _section("end_to_end", lambda: end_to_end(plan, out_dir / "tile", budget.left()), result)
    _section("training", lambda: training(plan, budget), result)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "gpu-check.json").write_text(json.dumps(result, indent=1, default=str))
    from benchmarks.gpu_report import markdown

    (out_dir / "gpu-check.md").write_text(markdown(result))
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "gpu-check-out")))
    parser.add_argument("--dry-run", action="store_true", help="CPU, tiny sizes (seconds)")
    parser.add_argument("--budget-s", type=float, default=420.0)
    parser.add_argument("--tile", type=int, default=2048, help="end-to-end tile (px, ×16)")
    parser.add_argument("--days", type=int, default=30, help="end-to-end days")
    parser.add_argument(
        "--epochs", type=int, default=None, help="training epochs (default: engine)"
    )
    parser.add_argument("--models", default="", help="comma-separated subset (default: all)")
    args = parser.parse_args(argv)
    dry = args.dry_run or not torch.cuda.is_available()
    if dry and not args.dry_run:
        print("gpu_check: no CUDA device: running the CPU dry run", file=sys.stderr)
    models = tuple(m for m in args.models.split(",") if m) or tuple(available_models())
    plan = (
        Plan.dry(models, min(args.budget_s, 120.0))
        if dry
        else Plan.gpu(models, args.budget_s, args.tile, args.days, args.epochs)
    )
    command = "python -m benchmarks.gpu_check " + " ".join(
        argv if argv is not None else sys.argv[1:]
    )
    result = run(plan, args.out, command.strip())
    failed = [name for name, v in result.items() if isinstance(v, dict) and "error" in v]
    print(f"gpu_check: wrote {args.out}/gpu-check.md; sections failed: {failed or 'none'}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
