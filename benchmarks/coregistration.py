"""Co-registration on the real sets: the estimate, and what it does to the baselines and STARFM.

``python -m benchmarks.coregistration`` writes ``benchmarks/coregistration.md``:

- the shift estimated from all pairs of each set, from each pair, and per quadrant
  (estarfm-2001: a rigid offset should give the same shift everywhere);
- the same-date residual RMSE(fine - coarse) per date, unshifted and shifted (what a
  residual-learning model has to learn);
- ``stf evaluate`` of ``naive_fine``, ``naive_coarse``, ``naive_change`` and ``starfm``
  with ``--coregister off`` and ``auto``, scored on all pixels and on the interior
  (a :data:`BORDER`-px frame left out: there the shifted coarse image is extrapolated).
"""

from __future__ import annotations

import datetime as dt
import sys
from typing import Any

import numpy as np

from benchmarks.common import ROOT, machine
from pipeline.coregister import cells_from_fine_grid, estimate_shift, shift_image
from pipeline.evaluate.manifest import load_manifest
from pipeline.evaluate.rasters import load_dataset
from pipeline.evaluate.runner import evaluate
from pipeline.metrics import score

SETS = ("estarfm-2001", "lgc-2004")
MODELS = ("naive_fine", "naive_coarse", "naive_change", "starfm")
#: Frame (fine px) left out of the interior scores: two coarse pixels.
BORDER = 32


def _pairs(name: str, window: tuple[slice, slice] | None = None) -> list:
    ds = load_dataset(load_manifest(ROOT / "manifests" / f"{name}.yaml"))
    ys, xs = window or (slice(None), slice(None))
    return [
        (s.date.isoformat(), s.fine[:, ys, xs], cells_from_fine_grid(s.coarse[:, ys, xs], 16))
        for s in ds.scenes
        if s.fine is not None
    ]


def estimates() -> list[str]:
    """Markdown rows: the shift of each set (all pairs, each pair) and per quadrant."""
    lines = ["| set | part | shift (dy, dx) fine px | r unshifted | r at peak | reliable |"]
    lines.append("|---|---|---|---|---|---|")
    for name in SETS:
        est = estimate_shift(_pairs(name), 16)
        lines.append(_row(name, "all pairs", est))
        for p in est.pairs:
            lines.append(f"| {name} | pair {p.label} | {p.shift} | | {p.peak:.3f} | |")
        half = 200 if name == "estarfm-2001" else 240
        for qy, qx in ((0, 0), (0, 1), (1, 0), (1, 1)):
            window = (slice(qy * half, (qy + 1) * half), slice(qx * half, (qx + 1) * half))
            lines.append(_row(name, f"quadrant {qy}{qx}", estimate_shift(_pairs(name, window), 16)))
    return lines


def _row(name: str, part: str, est: Any) -> str:
    ok = "yes" if est.reliable else f"no ({est.reason})"
    return f"| {name} | {part} | {est.shift} | {est.at_zero:.3f} | {est.peak:.3f} | {ok} |"


def residuals() -> list[str]:
    """Markdown rows: same-date RMSE(fine - coarse) per date and band mean, interior."""
    lines = ["| set | date | RMSE(fine - coarse) unshifted | shifted |", "|---|---|---|---|"]
    for name in SETS:
        ds = load_dataset(load_manifest(ROOT / "manifests" / f"{name}.yaml"))
        est = estimate_shift(_pairs(name), 16)
        inner = np.s_[:, BORDER:-BORDER, BORDER:-BORDER]
        for s in ds.scenes:
            if s.fine is None:
                continue
            before = _rmse(s.fine[inner], s.coarse[inner])
            after = _rmse(s.fine[inner], shift_image(s.coarse, est.shift)[inner])
            lines.append(f"| {name} | {s.date} | {before:.5f} | {after:.5f} |")
    return lines


def _rmse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.nanmean((a - b) ** 2, axis=(1, 2))).mean())


def scores() -> list[str]:
    """Markdown rows: each model with ``coregister`` off and auto, all pixels and interior."""
    lines = [
        "| set | model | coregister | applied (dy, dx) | RMSE | CC | RMSE interior | CC interior |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in SETS:
        manifest = ROOT / "manifests" / f"{name}.yaml"
        for model in MODELS:
            for mode in ("off", "auto"):
                ev = evaluate(manifest, model, coregister=mode)
                inner = np.s_[:, BORDER:-BORDER, BORDER:-BORDER]
                part = score(ev.truth[inner], ev.prediction.fine[inner], ev.bands, ratio=1 / 16)
                o, applied = ev.result["overall"], ev.result["coregistration"]["applied"]
                lines.append(
                    f"| {name} | {model} | {mode} | {tuple(applied)} | {o['rmse']:.5f} | "
                    f"{o['cc']:.4f} | {part.overall['rmse']:.5f} | {part.overall['cc']:.4f} |"
                )
    return lines


def main() -> int:
    m = machine()
    text = [
        "# Coarse-fine co-registration on the real sets",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores (shared), no GPU. Date: {m['date_utc']}.",
        "Command: `python -m benchmarks.coregistration` (writes this file).",
        "Shift convention: the coarse image shows at p + (dy, dx) what the fine image shows",
        "at p (fine pixels of 30 m); r = mean Pearson r over bands of 480 m cells.",
        "",
        "## Estimates",
        "",
        *estimates(),
        "",
        "## Same-date residual (interior, band mean)",
        "",
        *residuals(),
        "",
        f"## Models with and without co-registration (predict date; interior = {BORDER} px in)",
        "",
        "The shift is estimated without the predicted date's fine image.",
        "",
        *scores(),
        "",
    ]
    out = ROOT / "benchmarks" / "coregistration.md"
    out.write_text("\n".join(text))
    print(f"wrote {out} ({dt.datetime.now(dt.UTC):%H:%M} UTC)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
