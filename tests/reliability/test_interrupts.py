"""SIGKILL of ``stf run`` at seeded points from search to the last write, then resume.

Each trial starts ``python -m pipeline run CONFIG --scheduler ADDR`` (the
shared test cluster), waits for a stage line on its stdout (or for a number
of committed blocks), sleeps a seeded delay and SIGKILLs it. The killed run
leaves its lock behind (a stale lock: its pid is gone); the resumed run must
take it over and end bit-identical to the clean run. A reader polls the store
through both runs and checks every block it sees committed.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
import yaml

from pipeline.config import parse_config
from pipeline.run import run, store_url
from pipeline.synth import World
from tests.reliability.conftest import assert_identical, quiet, run_config, start_run
from tests.reliability.store_watch import StoreWatch

#: (trigger, delay range s): a stage line of the run's log, or "commits:N" blocks written.
KILL_POINTS: tuple[tuple[str, tuple[float, float]], ...] = (
    ("[search]", (0.0, 0.3)),
    ("[cubes]", (0.0, 0.5)),
    ("[cubes]", (0.5, 2.0)),
    ("[model]", (0.0, 0.5)),
    ("[fuse]", (0.0, 0.5)),
    ("[fuse]", (0.5, 3.0)),
    ("commits:1", (0.0, 0.2)),
    ("commits:3", (0.0, 0.2)),
    ("commits:6", (0.0, 0.2)),
    ("commits:8", (0.0, 0.02)),
)
SEED = 20261121
TIMEOUT_S = 240.0


def _commits(url: str) -> int:
    chunks = Path(url) / "block_done" / "c"
    if not chunks.exists():
        return 0
    return sum(1 for p in chunks.rglob("*") if p.is_file() and ".partial" not in p.name)


def _wait_for(proc: subprocess.Popen[str], trigger: str, url: str) -> None:
    """Block until ``trigger`` happened in ``proc`` (a log line, or N committed blocks)."""
    deadline = time.monotonic() + TIMEOUT_S
    if trigger.startswith("commits:"):
        wanted = int(trigger.split(":")[1])
        while _commits(url) < wanted:
            assert proc.poll() is None and time.monotonic() < deadline, "run ended first"
            time.sleep(0.02)
        return
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith(trigger):
            # keep draining stdout so the run never blocks on a full pipe
            threading.Thread(target=proc.stdout.read, daemon=True).start()
            return
        assert time.monotonic() < deadline
    pytest.fail(f"the run ended before printing {trigger!r}")


@pytest.mark.slow
@pytest.mark.parametrize("trial", range(len(KILL_POINTS)))
def test_sigkill_then_resume_is_bit_identical_and_readers_never_see_torn_blocks(
    trial: int,
    tiny_world: World,
    stac_url: str,
    clean_store: str,
    cluster: str,
    tmp_path: Path,
) -> None:
    trigger, (low, high) = KILL_POINTS[trial]
    delay = random.Random(SEED + trial).uniform(low, high)
    data = run_config(tiny_world, stac_url, tmp_path)
    cfg_path = tmp_path / "run.yaml"
    cfg_path.write_text(yaml.safe_dump(data))
    url = store_url(parse_config(data))
    watch = StoreWatch(url, clean_store, period_s=0.25).start()
    proc = start_run(cfg_path, cluster, stderr=subprocess.DEVNULL)
    try:
        _wait_for(proc, trigger, url)
        time.sleep(delay)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:  # the whole session: nothing of the killed run lingers
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, "the run finished before the kill"
    run(parse_config(data), scheduler=cluster, progress=False, log=quiet)  # resume
    watch.stop()
    assert watch.committed_seen > 0 and not watch.violations, watch.violations[:5]
    assert not Path(url + ".lock").exists()
    assert_identical(url, clean_store)
