"""``pipeline.run`` / ``stf run`` end to end on the tiny demo world served by a real STAC API."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from pipeline.cli import main
from pipeline.config import RunConfig, parse_config
from pipeline.run import RunSummary, run, store_url
from pipeline.store.write import open_store


def tiny_config(world: Any, stac_url: str, root: Path, **changes: Any) -> dict[str, Any]:
    """A run config over the tiny world: 10 days, 3 bands, STARFM 7x7, 3 x 3 blocks."""
    data: dict[str, Any] = {
        "region": {"name": "tiny", "bbox": list(world.bbox)},
        "time": {"start": "2024-06-08", "end": "2024-06-17", "search_margin_days": 8},
        "stac": {"url": stac_url},
        "bands": ["green", "red", "nir"],
        "chunks": {"y": 48, "x": 48, "time": 8},
        "model": {"name": "starfm", "size": "tiny"},
        "compute": {"n_workers": 2, "threads_per_worker": 1, "batch_days": 4},
        "output_root": str(root),
    }
    return {**data, **changes}


@pytest.fixture(scope="module")
def tiny_run(
    tiny_world: Any, stac_url: str, cluster: str, tmp_path_factory: pytest.TempPathFactory
) -> tuple[RunConfig, RunSummary]:
    """The tiny run, fused on the session's cluster (a run's own LocalCluster is exercised
    by the killed run below, the flows and the worker-side kill trials)."""
    root = tmp_path_factory.mktemp("run")
    cfg = parse_config(tiny_config(tiny_world, stac_url, root))
    return cfg, run(cfg, scheduler=cluster, progress=False, log=lambda _m: None)


def _values(url: str) -> dict[str, np.ndarray]:
    ds = open_store(url).load()
    return {n: ds[n].values for n in ds.data_vars}


@pytest.mark.slow
def test_run_writes_the_contract_store(tiny_run: tuple[RunConfig, RunSummary]) -> None:
    _cfg, summary = tiny_run
    assert summary.days == 10 and summary.tasks == 2 * 9 and summary.pixel_days > 0
    ds = open_store(summary.store)
    assert set(ds.data_vars) >= {"green", "red", "nir", "ndvi", "uncertainty", "quality"}
    assert ds.sizes["time"] == 10 and (ds["block_done"].values > 0).all()
    quality = ds["quality"].values
    assert (quality & (1 | 2 | 8 | 16 | 32)).all()  # every pixel-day decided
    fused = quality & 2 > 0
    assert np.isfinite(ds["red"].values[fused]).all()
    prov = json.loads(ds.attrs["stf_provenance"])
    assert prov["model"]["name"] == "starfm" and len(prov["model"]["weights_sha256"]) == 64
    assert prov["stac_items"]["fine"] and prov["config"]["region"]["name"] == "tiny"
    assert "numpy" in prov["software"] and prov["pair_choice"]["usable_pairs_per_block"]


@pytest.mark.slow
def test_sigkill_mid_run_then_rerun_is_bit_identical(
    tiny_run: tuple[RunConfig, RunSummary],
    tiny_world: Any,
    stac_url: str,
    cluster: str,
    tmp_path: Path,
) -> None:
    cfg_path = tmp_path / "run.yaml"
    cfg_path.write_text(yaml.safe_dump(tiny_config(tiny_world, stac_url, tmp_path)))
    url = store_url(parse_config(yaml.safe_load(cfg_path.read_text())))
    cmd = [sys.executable, "-m", "pipeline", "run", str(cfg_path)]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    done = Path(url) / "block_done" / "c"
    deadline = time.monotonic() + 240
    while not (done.exists() and any(p.is_file() for p in done.rglob("*"))):
        assert proc.poll() is None and time.monotonic() < deadline, "run ended before any block"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the run and its LocalCluster workers, mid-write
    proc.wait()
    assert (open_store(url)["block_done"].values == 0).any()  # really interrupted
    # the killed run's own LocalCluster died with it; the rerun resumes on the session's
    rerun = subprocess.run(
        [*cmd, "--scheduler", cluster], capture_output=True, text=True, timeout=300
    )
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    expected, got = _values(tiny_run[1].store), _values(url)
    for name in expected:
        np.testing.assert_array_equal(expected[name], got[name], err_msg=name)


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(args)
    err = capsys.readouterr().err.strip().splitlines()
    return code, err[-1] if err else ""


def _write_cfg(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


def test_bad_config_inputs_exit_2(
    tiny_world: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = tiny_config(tiny_world, "http://127.0.0.1:9", tmp_path)
    bad_model = _write_cfg(tmp_path / "m.yaml", {**base, "model": {"name": "nope"}})
    code, line = _cli(["run", str(bad_model)], capsys)
    assert code == 2 and "unknown model 'nope'" in line
    empty = _write_cfg(
        tmp_path / "t.yaml", {**base, "time": {"start": "2024-06-10", "end": "2024-06-01"}}
    )
    code, line = _cli(["run", str(empty)], capsys)
    assert code == 2 and "before start" in line


def test_store_problems_exit_4_and_touch_nothing(
    tiny_world: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pipeline.store.lock import StoreLock

    base = tiny_config(tiny_world, "http://127.0.0.1:9", tmp_path)  # never reached
    cfg_path = _write_cfg(tmp_path / "c.yaml", base)
    url = store_url(parse_config(base))
    with StoreLock(url):
        code, line = _cli(["run", str(cfg_path)], capsys)
    assert code == 4 and "locked by pid" in line
    blocker = tmp_path / "file"
    blocker.write_text("")
    unwritable = _write_cfg(tmp_path / "u.yaml", {**base, "output_root": str(blocker)})
    code, line = _cli(["run", str(unwritable)], capsys)
    assert code == 4 and "writable" in line
    assert not Path(url).exists()


@pytest.mark.slow
def test_store_of_another_region_is_refused(
    tiny_run: tuple[RunConfig, RunSummary],
    tiny_world: Any,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    cfg, summary = tiny_run
    data = tiny_config(tiny_world, "http://127.0.0.1:9", cfg.output_root)
    data["region"] = {"name": "elsewhere", "bbox": list(tiny_world.bbox)}
    stamp = Path(summary.store, "zarr.json").stat().st_mtime_ns
    code, line = _cli(["run", str(_write_cfg(tmp_path / "o.yaml", data))], capsys)
    assert code == 4 and "holds region 'tiny'" in line
    assert Path(summary.store, "zarr.json").stat().st_mtime_ns == stamp
