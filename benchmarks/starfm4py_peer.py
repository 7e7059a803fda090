"""STARFM against the public peer starfm4py (nmileva/starfm4py) on real data.

The case of the scale issue: REAL estarfm-2001 red band, one pair 2001-05-24 ->
2001-07-11, 31 x 31 window, both implementations on this machine in one run
(the 1-minute load average is recorded: on a shared machine absolute seconds
move with it, the ratio much less). The peer's code is not part of this
repository: pass the path of a local checkout (``git clone
https://github.com/nmileva/starfm4py``) with ``--peer`` or ``$STF_STARFM4PY``;
without one the peer row is skipped with the reason.

The peer runs as its own ``Tests/test.py`` does (``partition`` writes every
window of each image to Zarr, ``da_stack`` reads them back, ``starfm`` per
slice of rows), with its window set to 31 and, for a like-for-like RMSE, the
sensor uncertainties set to ours (0.002). Its time includes the partition
step, which is part of its algorithm (it materialises the windows on disk).

Usage::

    python -m benchmarks.starfm4py_peer --peer ~/src/starfm4py [--out results.json]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import ROOT, best_time, load, machine

MANIFEST = ROOT / "manifests" / "estarfm-2001.yaml"
PAIR, TARGET, BAND = dt.date(2001, 5, 24), dt.date(2001, 7, 11), "red"
WINDOW, SIGMA = 31, 0.002


def red_case() -> dict[str, np.ndarray]:
    """Fine/coarse 05-24, coarse and truth 07-11 of the red band: (y, x) float32 reflectance."""
    from pipeline.evaluate.manifest import load_manifest
    from pipeline.evaluate.rasters import load_dataset, scene_on

    manifest = load_manifest(MANIFEST)
    band = manifest.bands.index(BAND)
    data = load_dataset(manifest)
    ref, tgt = scene_on(data, PAIR), scene_on(data, TARGET)
    assert ref.fine is not None and tgt.fine is not None
    return {
        "fine": ref.fine[band],
        "coarse": ref.coarse[band],
        "target": tgt.coarse[band],
        "truth": tgt.fine[band],
    }


def rmse(pred: np.ndarray, truth: np.ndarray) -> float:
    """Root-mean-square error over pixels valid in both, reflectance."""
    return float(np.sqrt(np.nanmean((pred.astype(np.float64) - truth) ** 2)))


def run_ours(case: dict[str, np.ndarray], threads: int = 2) -> dict[str, Any]:
    """Our STARFM (compiled CPU kernel) on the case: best of 3 after a warm-up call."""
    import torch

    from pipeline.models.starfm import starfm

    torch.set_num_threads(threads)
    args = (case["fine"][None, None], case["coarse"][None, None], case["target"][None])
    kw = {"window": WINDOW, "sigma_fine": SIGMA, "sigma_coarse": SIGMA, "device": "cpu"}
    starfm(*(a[..., :48, :48] for a in args), **kw)  # compile once (cached on disk after)
    pred: list[np.ndarray] = []
    seconds = best_time(lambda: pred.append(starfm(*args, **kw)[0]), repeats=3)
    return {"seconds": seconds, "rmse": rmse(pred[-1][0], case["truth"])}


@contextlib.contextmanager
def _peer_modules(checkout: Path) -> Iterator[tuple[Any, Any]]:
    """The peer's ``parameters`` and ``starfm4py`` modules, imported from ``checkout/src``."""
    sys.path.insert(0, str(checkout / "src"))
    try:
        params = importlib.import_module("parameters")
        yield params, importlib.import_module("starfm4py")
    finally:
        sys.path.remove(str(checkout / "src"))
        for name in ("parameters", "starfm4py"):
            sys.modules.pop(name, None)


def run_peer(case: dict[str, np.ndarray], checkout: Path | None, rows: int = 100) -> dict[str, Any]:
    """The peer on the case, timed end to end; ``{"skipped": reason}`` without a checkout."""
    if checkout is None:
        return {"skipped": "no starfm4py checkout given (--peer PATH or $STF_STARFM4PY)"}
    if not (checkout / "src" / "starfm4py.py").is_file():
        return {"skipped": f"{checkout} has no src/starfm4py.py (not a starfm4py checkout)"}
    height, width = case["fine"].shape
    if height % rows:
        return {"skipped": f"image height {height} is not a multiple of the slice {rows}"}
    cwd = Path.cwd()
    with tempfile.TemporaryDirectory() as tmp, _peer_modules(checkout) as (params, peer):
        os.chdir(tmp)
        try:
            if params.windowSize != WINDOW:
                return {"skipped": f"peer windowSize is {params.windowSize}, not {WINDOW}"}
            # like-for-like sensor uncertainties (module globals read at call time)
            peer.specUncertainty = float(np.hypot(SIGMA, SIGMA))
            peer.tempUncertainty = float(np.sqrt(2.0) * SIGMA)
            start = time.perf_counter()
            images = {k: case[k].astype(np.float64) for k in ("fine", "coarse", "target")}
            for key, image in images.items():
                peer.partition(image, f"Temporary/{key}/")
            stacks = {k: peer.da_stack(f"Temporary/{k}/", (height, width)) for k in images}
            out = []
            for i in range(0, height * width, rows * width):
                part = [stacks[k][i : i + rows * width] for k in ("fine", "coarse", "target")]
                out.append(peer.starfm(*part, None, (rows, width)))
            seconds = time.perf_counter() - start
        finally:
            os.chdir(cwd)
    pred = np.concatenate(out, axis=0)
    return {"seconds": seconds, "rmse": rmse(pred, case["truth"])}


def run(peer: Path | None = None) -> dict[str, Any]:
    """Both implementations on the case; the speed ratio when the peer ran."""
    case = red_case()
    result: dict[str, Any] = {
        "case": f"estarfm-2001 {BAND}, pair {PAIR} -> {TARGET}, window {WINDOW}",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "load_before": load(),
        "ours": run_ours(case),
    }
    result["peer"] = run_peer(case, peer)
    result["load_after"] = load()
    if "seconds" in result["peer"]:
        result["speedup"] = result["peer"]["seconds"] / result["ours"]["seconds"]
    return result


def main(argv: list[str] | None = None) -> None:
    """Command line: ``--peer PATH`` (or ``$STF_STARFM4PY``), ``--out FILE`` (JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = os.environ.get("STF_STARFM4PY")
    parser.add_argument("--peer", type=Path, default=Path(default) if default else None)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    result = run(args.peer)
    text = json.dumps(result, indent=1, default=str)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
