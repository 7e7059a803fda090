"""SIGKILL of ``stf run`` at named points from search to the last write, then resume.

Each trial kills the run at one deterministic point, whatever the speed of
the machine: on a stage line of its stdout (killed the moment the line is
read), or at a named point of the store writer (``STF_FAULT_KILL``, see
:mod:`pipeline.store.faults`), where the run SIGKILLs its own process group.
Points inside the template and the finalisation run in the ``stf run``
process (on the shared test cluster); points inside a block write run on the
workers, so those trials let the run start its own LocalCluster, whose
workers die with it. The killed run leaves its lock behind (stale: its pid is
gone); the resumed run must take it over and end bit-identical to the clean
run. A reader polls the store through both runs and checks that it sees the
template whole or not at all and every committed block equal to the clean run's.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
import yaml

from pipeline.config import parse_config
from pipeline.run import run, store_url
from pipeline.store.faults import ENV
from pipeline.synth import World
from tests.reliability.conftest import assert_identical, quiet, run_config, start_run
from tests.reliability.store_watch import StoreWatch

#: ("line", stage line) or ("hook", store kill point[:N]): before, during and after the
#: template, between a block's values, its quality flags and its commit, before finalising.
KILL_POINTS: tuple[tuple[str, str], ...] = (
    ("line", "[search]"),
    ("line", "[model]"),
    ("hook", "template-begin"),
    ("hook", "template-arrays"),
    ("hook", "template-done"),
    ("hook", "block-values:1"),
    ("hook", "block-quality:1"),
    ("hook", "block-committed:2"),
    ("hook", "block-values:3"),
    ("hook", "finalize"),
)
TIMEOUT_S = 240.0


def _drain(proc: subprocess.Popen[str]) -> None:
    """Keep reading stdout so the run never blocks on a full pipe."""
    assert proc.stdout is not None
    threading.Thread(target=proc.stdout.read, daemon=True).start()


def _kill_on_line(proc: subprocess.Popen[str], trigger: str) -> None:
    assert proc.stdout is not None
    deadline = time.monotonic() + TIMEOUT_S
    for line in proc.stdout:
        if line.startswith(trigger):
            os.kill(proc.pid, signal.SIGKILL)
            _drain(proc)
            return
        assert time.monotonic() < deadline
    pytest.fail(f"the run ended before printing {trigger!r}")


def _killed_run(kind: str, point: str, cfg_path: Path, cluster: str) -> subprocess.Popen[str]:
    """Start the run, let it die at ``point``; returns the finished process."""
    on_workers = point.startswith("block-")
    env = {ENV: point} if kind == "hook" else None
    proc = start_run(cfg_path, None if on_workers else cluster, subprocess.DEVNULL, env)
    try:
        if kind == "line":
            _kill_on_line(proc, point)
        else:
            _drain(proc)
        proc.wait(timeout=TIMEOUT_S)
    finally:
        if proc.poll() is None:  # the whole session: nothing of the killed run lingers
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    return proc


@pytest.mark.slow
@pytest.mark.parametrize(("kind", "point"), KILL_POINTS, ids=[p for _, p in KILL_POINTS])
def test_sigkill_then_resume_is_bit_identical_and_readers_never_see_torn_blocks(
    kind: str,
    point: str,
    tiny_world: World,
    stac_url: str,
    clean_store: str,
    cluster: str,
    tmp_path: Path,
) -> None:
    data = run_config(tiny_world, stac_url, tmp_path)
    cfg_path = tmp_path / "run.yaml"
    cfg_path.write_text(yaml.safe_dump(data))
    url = store_url(parse_config(data))
    watch = StoreWatch(url, clean_store, period_s=0.25).start()
    proc = _killed_run(kind, point, cfg_path, cluster)
    assert proc.returncode == -signal.SIGKILL, f"the run was not killed at {point}"
    run(parse_config(data), scheduler=cluster, progress=False, log=quiet)  # resume
    watch.stop()
    assert watch.committed_seen > 0 and not watch.violations, watch.violations[:5]
    assert not Path(url + ".lock").exists()
    assert_identical(url, clean_store)
