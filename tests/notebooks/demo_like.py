"""``make demo``'s own path on the tiny world: ``stf --log-file ... run`` with the demo's settings.

``make demo`` runs ``stf --log-file demo-out/demo.log demo``: the default 544 px world over 45
days, minutes of CPU, too slow for every test run. This runs the same command line chain
(the CLI, its logging to a file, the stage chain, every product) with the demo's own
settings (:data:`pipeline.report.DEMO_OVERRIDES`: green/red/NIR, STARFM 5 x 5, the
products with the world's field polygons as labels) on the tiny world, from a working
directory of its own with a relative ``output_root``, as a user's shell would.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from pipeline.report import DEMO_OVERRIDES
from pipeline.synth import World

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class DemoRun:
    """A finished demo-like run: its output folder, log file and terminal output."""

    out: Path
    log: Path
    stdout: str
    stderr: str


def demo_like_config(world: World, stac_url: str) -> dict:
    """The demo's settings over the tiny world (its five weeks, 2 x 2 blocks as the demo)."""
    return {
        "region": {"name": "demo", "bbox": list(world.bbox)},
        "time": {"start": "2024-06-01", "end": "2024-07-05", "search_margin_days": 8},
        "stac": {"url": stac_url},
        "bands": list(DEMO_OVERRIDES["bands"]),
        "model": DEMO_OVERRIDES["model"],
        "compute": DEMO_OVERRIDES["compute"],
        "chunks": {"y": 64, "x": 64, "time": 366},  # 2 x 2 blocks, as the demo
        "store": {"path": "fusion.zarr"},
        "products": {
            "ndvi": True,
            "phenology": True,
            "cropmap": True,
            "feeds": True,
            "labels": str(world.truth_dir / "fields.parquet"),
        },
        "output_root": "demo-out",  # relative: under the working directory
    }


def run_demo_like(world: World, stac_url: str, home: Path) -> DemoRun:
    """``stf --log-file demo-out/demo.log run demo.yaml`` in ``home`` (a fresh folder)."""
    (home / "demo.yaml").write_text(yaml.safe_dump(demo_like_config(world, stac_url)))
    env = {**os.environ, "PYTHONPATH": str(REPO), "STF_PROGRESS_INTERVAL": "1"}
    env.pop("PYTHONWARNINGS", None)
    cmd = [sys.executable, "-m", "pipeline", "--log-file", "demo-out/demo.log", "run", "demo.yaml"]
    proc = subprocess.run(cmd, cwd=home, env=env, capture_output=True, text=True, timeout=1200)
    if proc.returncode != 0:
        raise RuntimeError(f"demo-like run failed ({proc.returncode}): {proc.stderr[-3000:]}")
    out = home / "demo-out"
    return DemoRun(out, out / "demo.log", proc.stdout, proc.stderr)
