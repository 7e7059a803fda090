"""``stf run`` on a real S3 API (moto, loopback): products beside the store, a SIGKILLed run
resumed bit-identical, a later run extending the time axis."""

from __future__ import annotations

import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fsspec
import pytest
import yaml

from pipeline.cli import main
from pipeline.config import parse_config
from pipeline.run import run, store_url
from pipeline.store.faults import ENV
from pipeline.store.read import open_store
from pipeline.synth import World
from tests.reliability.conftest import assert_identical, quiet, run_config, start_run
from tests.reliability.store_watch import StoreWatch


@dataclass(frozen=True)
class S3Run:
    """The fault-trial run (``tests/reliability``) with its store on S3 under a fresh prefix."""

    prefix: str  #: the test's own ``s3://`` prefix
    url: str  #: the store, ``<prefix>/fused.zarr``
    data: dict[str, Any]  #: the run configuration
    path: Path  #: ``data`` as a YAML file for ``stf run``

    def with_changes(self, name: str, **changes: Any) -> Path:
        """``data`` with top-level ``changes``, written to ``<name>.yaml`` beside ``path``."""
        path = self.path.with_name(f"{name}.yaml")
        path.write_text(yaml.safe_dump({**self.data, **changes}))
        return path


@pytest.fixture
def s3_run(tiny_world: World, stac_url: str, s3_prefix: str, tmp_path: Path) -> S3Run:
    """The trial run's config over ``tiny_world`` writing ``fused.zarr`` under ``s3_prefix``."""
    url = f"{s3_prefix}/fused.zarr"
    data = run_config(tiny_world, stac_url, tmp_path, store={"path": url})
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(data))
    return S3Run(s3_prefix, url, data, path)


def _listing(prefix: str) -> list[str]:
    fs, path = fsspec.core.url_to_fs(prefix)
    fs.invalidate_cache()
    return sorted(p.removeprefix(path + "/") for p in fs.find(path))


@pytest.mark.slow
@pytest.mark.timeout(1800)  # a whole run + every product, and the clean reference run
def test_stf_run_writes_store_and_products_on_s3(
    s3_run: S3Run,
    s3_cluster: str,
    clean_store: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # the 9-day trial run is shorter than one 10-day composite: cropmap and feeds need a
    # season (every product on S3: tests/objstore/test_s3_products.py)
    cfg = s3_run.with_changes("products", products={"ndvi": True})
    code = main(["run", str(cfg), "--scheduler", s3_cluster])
    assert code == 0, capsys.readouterr().err[-2000:]
    url = s3_run.url
    assert_identical(url, clean_store)
    assert open_store(url)["red"].dtype == "float32"
    files = _listing(s3_run.prefix)
    runs = {f.split("/")[1] for f in files if f.startswith("products/")}
    assert len(runs) == 1, files
    run_id = runs.pop()
    for name in ("manifest.json", "stac/collection.json", "indices.zarr/zarr.json"):
        assert f"products/{run_id}/{name}" in files, name
    assert "fused.zarr.lock" not in files  # released
    assert not (tmp_path / "products").exists()  # nothing went to the local output_root


@pytest.mark.slow
@pytest.mark.timeout(1800)  # a killed run and its resume, on a loopback S3 API
def test_sigkilled_run_on_s3_resumes_bit_identical(
    s3_run: S3Run, s3_cluster: str, clean_store: str
) -> None:
    url = s3_run.url
    watch = StoreWatch(url, clean_store, period_s=0.5).start()
    # killed between a block's quality flags and its commit, workers and all
    proc = start_run(s3_run.path, None, subprocess.DEVNULL, {ENV: "block-quality:1"})
    proc.communicate(timeout=600)
    assert proc.returncode == -signal.SIGKILL
    assert "fused.zarr.lock" in _listing(s3_run.prefix)  # stale: its pid is gone
    run(parse_config(s3_run.data), scheduler=s3_cluster, progress=False, log=quiet)
    watch.stop()
    assert watch.committed_seen > 0 and not watch.violations, watch.violations[:5]
    assert "fused.zarr.lock" not in _listing(s3_run.prefix)
    assert_identical(url, clean_store)


@pytest.mark.slow
@pytest.mark.timeout(1800)  # two runs on a loopback S3 API
def test_later_run_extends_the_time_axis_on_s3(
    s3_run: S3Run, s3_cluster: str, clean_store: str
) -> None:
    url, full = s3_run.url, parse_config(s3_run.data)
    short = {**s3_run.data, "time": {**s3_run.data["time"], "end": "2024-06-12"}}
    run(parse_config(short), scheduler=s3_cluster, progress=False, log=quiet)
    assert open_store(url).sizes["time"] == 5
    summary = run(full, scheduler=s3_cluster, progress=False, log=quiet)
    assert summary.store == store_url(full) and summary.tasks > 0
    assert summary.store_bytes > 0  # measured on the object store, not only on local disks
    assert open_store(url).sizes["time"] == 9
    # the provisional days of the short run were re-fused with the later pair
    assert_identical(url, clean_store)
