"""Fixtures of the fault tests: one small run on the tiny world, its clean result, a cluster.

Every trial runs the same small configuration (9 days, red + nir, 2 x 2 blocks
x 2 time windows = 8 write tasks) against the tiny demo world, on the session's shared
2-process Dask cluster (``cluster`` in ``tests/conftest.py``) so trials do not each pay a
cluster start; the clean run they are compared with is ``clean_store`` there. "Identical"
means bit-identical: every Zarr array of the store (values, flags, completion
record, coordinates) has the same stored bytes as the clean run's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from pipeline.synth import World


def start_run(
    cfg_path: Path,
    cluster: str | None,
    stderr: int = subprocess.PIPE,
    env: dict[str, str] | None = None,
) -> subprocess.Popen[str]:
    """``stf run CFG --scheduler CLUSTER`` in its own process session (killable as a group).

    stdout is piped unbuffered, so a test can follow the run's stage lines as they come.
    ``cluster=None`` lets the run start its own LocalCluster, whose workers then
    share its session and environment (``env`` is added to the test's).
    """
    cmd = [sys.executable, "-m", "pipeline", "run", str(cfg_path)]
    cmd += ["--scheduler", cluster] if cluster else []
    return subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        start_new_session=True,
    )


def run_config(world: World, stac_url: str, root: Path, **changes: Any) -> dict[str, Any]:
    """The fault-trial run: 2024-06-08..16 between the pairs of 06-08 and 06-16 (all final)."""
    data: dict[str, Any] = {
        "region": {"name": "tiny", "bbox": list(world.bbox)},
        "time": {"start": "2024-06-08", "end": "2024-06-16", "search_margin_days": 0},
        "stac": {"url": stac_url, "retries": 2, "timeout_s": 10},
        "bands": ["red", "nir"],
        "chunks": {"y": 48, "x": 48, "time": 5},
        "model": {"name": "starfm", "size": "tiny"},
        "compute": {"n_workers": 2, "threads_per_worker": 1, "batch_days": 5},
        "output_root": str(root),
    }
    return {**data, **changes}


def quiet(_msg: str) -> None:
    """A run log that drops its lines."""


def store_arrays(url: str) -> dict[str, np.ndarray]:
    """Every array of a store as stored (raw integers, no decoding), by name."""
    group = zarr.open_group(url, mode="r")
    return {name: np.asarray(group[name][...]) for name in sorted(group.array_keys())}


def assert_identical(url: str, reference: str) -> None:
    """``url`` holds exactly the arrays of ``reference``, byte for byte."""
    got, want = store_arrays(url), store_arrays(reference)
    assert sorted(got) == sorted(want)
    for name, values in want.items():
        assert got[name].dtype == values.dtype, name
        assert got[name].tobytes() == values.tobytes(), f"{name} differs from the clean run"


def http_catalog(world: World, asset_base: str, dest: Path) -> Path:
    """A copy of ``world``'s STAC catalog whose asset hrefs point at ``asset_base``/data/..."""
    local = f"file://{world.root.resolve()}"
    for collection in world.stac_dir.iterdir():
        if not collection.is_dir():
            continue
        out = dest / collection.name
        out.mkdir(parents=True, exist_ok=True)
        for name in ("collection.json", "items.json"):
            src = collection / name
            if src.exists():
                (out / name).write_text(src.read_text().replace(local, asset_base))
    return dest


def provenance(url: str) -> dict[str, Any]:
    """The store's ``stf_provenance`` record."""
    return dict(json.loads(zarr.open_group(url, mode="r").attrs["stf_provenance"]))
