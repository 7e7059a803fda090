"""``gpu-check.md``: the GPU check's JSON as tables (machine, command and date first)."""

from __future__ import annotations

from typing import Any


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return "" if value is None else str(value)


def _table(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> list[str]:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(_fmt(row.get(c)) for c in columns) + " |")
    return lines


def _section(title: str, value: Any, columns: tuple[str, ...]) -> list[str]:
    lines = ["", f"## {title}", ""]
    if isinstance(value, dict) and "error" in value:
        return [*lines, f"FAILED: {value['error']}"]
    if isinstance(value, dict):
        return [*lines, *(f"- {k}: {_fmt(v)}" for k, v in value.items())]
    return [*lines, *_table(value or [], columns)]


def markdown(result: dict[str, Any]) -> str:
    """The report: machine, command, date, then one table per section and its seconds."""
    m = result["machine"]
    lines = [
        "# GPU check",
        "",
        f"- machine: {m.get('gpu')} (CUDA {m.get('cuda', '-')}), {m.get('cpu')}, "
        f"{m.get('cores')} cores, torch {m.get('torch')}",
        f"- date: {m.get('date_utc')}",
        f"- command: `{result['command']}`",
        f"- plan: {result['plan']}",
        f"- seconds per section: {result.get('seconds')}",
    ]
    peaks = result.get("peaks", {})
    if "error" not in peaks:
        peaks = {k: (v / 1e12 if k != "n" else v) for k, v in peaks.items()}
    lines += _section("Matmul peak (TFLOP/s)", peaks, ())
    lines += _section(
        "CUDA vs CPU (max |diff|, reflectance)",
        result.get("correctness"),
        ("model", "dtype", "device", "max_abs", "rms", "tolerance", "ok", "skipped"),
    )
    lines += _section(
        "Throughput",
        result.get("throughput"),
        ("model", "dtype", "mpx_s", "flops_px", "peak_fraction", "how", "skipped"),
    )
    training = [
        {**r, **{f"{k}": r.get("overall", {}).get(k) for k in ("rmse", "cc", "ssim")}}
        | {"train_s": r.get("seconds", {}).get("train")}
        for r in (result.get("training") if isinstance(result.get("training"), list) else [])
    ]
    lines += _section(
        "Training on the real sets",
        training if isinstance(result.get("training"), list) else result.get("training"),
        ("model", "dataset", "size", "train_s", "rmse", "cc", "ssim", "skipped"),
    )
    lines += _section("End-to-end tile", result.get("end_to_end"), ())
    return "\n".join(lines) + "\n"


#: How to run the check; rendered into ``benchmarks/results.md`` by :mod:`benchmarks.report`.
HOW_TO = """\
`make bench-gpu` (= `python -m benchmarks.gpu_check --out ${OUT:-gpu-check-out}`) does every
GPU measurement in one run of <= 8 minutes on one H100 (budget `--budget-s 420`; a section
that would start after it is recorded as skipped, a failing section records its error and
the others still run) and writes `gpu-check.json` and `gpu-check.md` (machine, command,
date, tables) under `$OUT`:

1. CUDA vs CPU output of every registered model on the same (perturbed) weights: max |diff|
   within 1e-4 reflectance in fp32 (TF32 off), 2e-2 under bf16 autocast; `ganstfm` and
   `stfdiff` draw random numbers on the device, so they are reported, not judged;
2. throughput per model at "full" size, fp32 and bf16, and the fraction of the bf16 / fp32
   matmul peak (8192² matmul) measured in the same run;
3. one 2048² px x 30-day tile end to end (synthetic world built there, STAC API on
   loopback, search -> cubes -> ResStf -> fuse on a LocalCluster worker with `GPU=1` ->
   Zarr), seconds per stage;
4. ResStf and EDCSTFN trained on estarfm-2001 and lgc-2004 on the GPU (train seconds,
   scores, the engine's report).

On the lent device machine (no network there): run it once with a limit that leaves room to
rerun, e.g. `make bench-gpu GPU_PY=python3` with `timeout_s` 540, then copy
`$OUT/gpu-check.md` to `benchmarks/gpu-check.md`: `make bench` renders it below (card, date,
command included). Without CUDA the script runs its CPU dry run (tiny sizes, seconds:
`make bench-gpu` there, tested by `tests/benchmarks/test_gpu_check.py`)."""


def section(results_dir: Any = None) -> list[str]:
    """The results.md section: how to run the check, and its last recorded report if any."""
    from pathlib import Path

    lines = ["## GPU check", "", HOW_TO, ""]
    recorded = Path(results_dir or Path(__file__).parent) / "gpu-check.md"
    if recorded.exists():
        body = recorded.read_text().split("\n", 1)[1].replace("\n## ", "\n### ")
        lines += ["Last recorded run:", body.strip(), ""]
    else:
        lines += [
            "No GPU run recorded yet (no `benchmarks/gpu-check.md`): "
            "the session that wrote the check had no GPU.",
            "",
        ]
    return lines
