"""The output refuses the write: a full disk (a tiny tmpfs), a second run on a locked store.

Unwritable paths (below a regular file) and a live lock held in-process are
covered by ``tests/test_run.py::test_store_problems_exit_4_and_touch_nothing``
and ``tests/store/test_store.py``; here the disk really fills up and the lock
holder is another ``stf run`` process.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from pipeline.cli import main
from pipeline.config import parse_config
from pipeline.run import store_url
from pipeline.synth import World
from tests.reliability.conftest import assert_identical, run_config, start_run


def _mount_tmpfs(path: Path, size_kib: int) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    cmd = ["mount", "-t", "tmpfs", "-o", f"size={size_kib}k", "tmpfs", str(path)]
    return subprocess.run(cmd, capture_output=True, check=False).returncode == 0


@pytest.fixture
def small_disk(tmp_path: Path, clean_store: str) -> Iterator[Path]:
    """A tmpfs holding a copy of the clean store plus ~96 KiB: too small for another run."""
    used = sum(p.stat().st_size for p in Path(clean_store).rglob("*") if p.is_file())
    files = sum(1 for _ in Path(clean_store).rglob("*"))
    root = tmp_path / "disk"
    if not _mount_tmpfs(root, (used + 4096 * files) // 1024 + 96):
        pytest.skip("mounting a tmpfs needs root (CAP_SYS_ADMIN)")
    try:
        yield root
    finally:
        subprocess.run(["umount", "-l", str(root)], check=False)


@pytest.mark.slow
def test_disk_full_is_one_line_exit_4_and_the_existing_store_is_intact(
    tiny_world: World,
    stac_url: str,
    clean_store: str,
    cluster: str,
    small_disk: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    existing = small_disk / "existing.zarr"
    shutil.copytree(clean_store, existing)
    stamp = (existing / "zarr.json").read_bytes()
    data = run_config(tiny_world, stac_url, small_disk, store={"path": "new.zarr"})
    cfg_path = tmp_path / "run.yaml"
    cfg_path.write_text(yaml.safe_dump(data))
    code = main(["run", str(cfg_path), "--scheduler", cluster])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 4, lines[-5:]
    assert lines[-1].startswith("stf: error:") and "space" in lines[-1], lines[-1]
    assert_identical(str(existing), clean_store)
    assert (existing / "zarr.json").read_bytes() == stamp


@pytest.mark.slow
def test_second_run_on_a_store_refuses_then_a_stale_lock_is_recovered(
    tiny_world: World, stac_url: str, clean_store: str, cluster: str, tmp_path: Path
) -> None:
    data = run_config(tiny_world, stac_url, tmp_path)
    cfg_path = tmp_path / "run.yaml"
    cfg_path.write_text(yaml.safe_dump(data))
    url = store_url(parse_config(data))
    first = start_run(cfg_path, cluster)
    lock = Path(url + ".lock")
    deadline = time.monotonic() + 120
    while not lock.exists():
        assert first.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    second = subprocess.run(
        [sys.executable, "-m", "pipeline", "run", str(cfg_path), "--scheduler", cluster],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert second.returncode == 4
    assert second.stderr.strip().splitlines()[-1].startswith("stf: error: store")
    assert "locked by pid" in second.stderr
    os.killpg(first.pid, signal.SIGKILL)  # the holder dies: its lock is now stale
    first.communicate(timeout=30)
    assert lock.exists()
    third = subprocess.run(
        [sys.executable, "-m", "pipeline", "run", str(cfg_path), "--scheduler", cluster],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert third.returncode == 0, third.stderr[-2000:]
    assert not lock.exists()
    assert_identical(url, clean_store)
