"""``stf run --scheduler`` on a cluster of separate hosts equals the local run, bit for bit.

The cluster (``conftest.py``): an asset host (COGs + STAC API over HTTP), an S3 host
(moto), a scheduler host and two worker hosts, each in its own network namespace with
its own address and private disk, none of which can see the client's run directory or
the world's files. The client runs ``stf run CONFIG --scheduler tcp://<scheduler>:8786``
with the store on the S3 host. What is checked:

- the store equals the client's local run (its own LocalCluster, same catalog): every
  array byte for byte and every attribute but the few that name the run itself (when,
  where the store and the run directory are, which scheduler);
- the workers read the scenes from the asset host (its request log names them);
- every worker built the run's model exactly once, from the bytes the run shipped (the
  key of the client's saved model), and no worker can see the client's run directory
  (where the model was saved): nothing reaches a worker through a shared disk;
- a worker host killed during the fuse stage (its processes killed, its namespace
  deleted) leaves the result unchanged.

The fault-trial configuration of ``tests/reliability`` (tiny world, 9 days, red + nir,
STARFM) keeps it small. The cost is in process starts and Dask overhead, not pixels:
the cluster start, the local reference and one cluster run took 3 min 35 s of CPU
(14.5 min wall at a load average of 34 on 2 shared cores, 2026-11-28); the run of
both tests: ``tests/cluster/RESULTS.md``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fsspec
import pytest
import yaml
import zarr
from distributed import Client

from pipeline.fuse.worker import ModelPayload
from pipeline.synth import World
from tests.cluster.conftest import BUCKET, TestCluster, _credentials
from tests.cluster.load_count import builds
from tests.cluster.netns import Host
from tests.reliability.conftest import assert_identical, run_config, start_run

#: Attributes that name the run rather than its result (may differ between two runs).
RUN_ONLY = ("created",)
RUN_ONLY_CONFIG = (("output_root",), ("store", "path"), ("compute", "scheduler"))
RUN_TIMEOUT_S = 1200


def _write_config(cluster: TestCluster, world: World, root: Path, store: str) -> Path:
    data = run_config(world, cluster.stac_url, root, store={"path": store})
    path = root / "run.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _finish(proc: subprocess.Popen[str]) -> str:
    """Wait for ``stf run``; return its output (assert it succeeded)."""
    try:
        out, err = proc.communicate(timeout=RUN_TIMEOUT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, (err or "")[-3000:]
    return out


@pytest.fixture(scope="module")
def local_store(
    test_cluster: TestCluster, tiny_world: World, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The client's local run (its own LocalCluster, local store) on the same catalog."""
    root = tmp_path_factory.getbasetemp() / "clients" / "local"
    root.mkdir(parents=True)
    cfg = _write_config(test_cluster, tiny_world, root, "fusion.zarr")
    _finish(start_run(cfg, None, env=test_cluster.env))
    return root / "fusion.zarr"


def _download(cluster: TestCluster, url: str, dest: Path) -> Path:
    """A local copy of the S3 store ``url`` (a fresh S3 client: no cached endpoint)."""
    fs = fsspec.filesystem(
        "s3",
        endpoint_url=cluster.s3_endpoint,
        key=cluster.env["AWS_ACCESS_KEY_ID"],
        secret=cluster.env["AWS_SECRET_ACCESS_KEY"],
        client_kwargs={"region_name": _credentials(cluster.env)["region_name"]},
        skip_instance_cache=True,
    )
    fs.get(url.removeprefix("s3://"), str(dest), recursive=True)
    return dest


def _result_attrs(store: Path) -> dict[str, Any]:
    """The store's attributes without those that name the run (:data:`RUN_ONLY`...)."""
    attrs = dict(zarr.open_group(store, mode="r").attrs)
    attrs.pop("date_created")
    provenance = json.loads(attrs.pop("stf_provenance"))
    for key in RUN_ONLY:
        provenance.pop(key)
    for path in RUN_ONLY_CONFIG:
        parent = provenance["config"]
        for key in path[:-1]:
            parent = parent[key]
        parent.pop(path[-1])
    return {**attrs, "stf_provenance": provenance}


def _assert_same_result(store: Path, reference: Path) -> None:
    assert_identical(str(store), str(reference))
    assert _result_attrs(store) == _result_attrs(reference)


def _model_key(client_dir: Path) -> str:
    """Key of the model the client saved (``<output_root>/models/<name>-<key>/``)."""
    (model_dir,) = (client_dir / "models").iterdir()
    return ModelPayload.from_dir(model_dir).key


def _worker_builds(cluster: TestCluster, hosts: list[Host]) -> dict[str, list[str]]:
    """The model builds of each live worker host, by host name."""
    with Client(cluster.scheduler, timeout="60s") as client:
        by_address = client.run(builds)
    return {h.name: by_address[a] for h in hosts for a in by_address if h.address in a}


def _sees(cluster: TestCluster, path: Path) -> dict[str, bool]:
    with Client(cluster.scheduler, timeout="60s") as client:
        return dict(client.run(os.path.exists, str(path)))


@pytest.mark.slow
@pytest.mark.timeout(1800)  # cluster start, the local reference and the cluster run (shared CPUs)
def test_cluster_run_equals_local_run_and_ships_the_model(
    test_cluster: TestCluster,
    tiny_world: World,
    local_store: Path,
    workers: Callable[[], list[Host]],
    client_dir: Path,
) -> None:
    hosts = workers()
    url = f"s3://{BUCKET}/{uuid.uuid4().hex[:12]}/fused.zarr"
    cfg = _write_config(test_cluster, tiny_world, client_dir, url)
    _finish(start_run(cfg, test_cluster.scheduler, env=test_cluster.env))

    _assert_same_result(_download(test_cluster, url, client_dir / "copy.zarr"), local_store)
    readers = {line.split()[0] for line in (test_cluster.logs / "assets-files.log").open()}
    assert {h.address for h in hosts} <= readers  # the workers read the scenes over HTTP
    key = _model_key(client_dir)
    assert _worker_builds(test_cluster, hosts) == {h.name: [key] for h in hosts}
    # the model was saved where no worker looks: it can only have come with the run
    assert not any(_sees(test_cluster, cfg).values())
    assert cfg.exists()


def _wait_for_line(proc: subprocess.Popen[str], marker: str) -> None:
    """Read the run's stdout until a line starts with ``marker`` (fail if it ends first)."""
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith(marker):
            return
    raise AssertionError(f"the run ended before {marker!r}: {proc.wait()} {proc.stderr!r}")


def _wait_for_model(cluster: TestCluster, host: Host, timeout_s: float = 300) -> None:
    """Until ``host``'s worker has built the run's model (the fuse stage reached it)."""
    deadline = time.monotonic() + timeout_s
    while not _worker_builds(cluster, [host]).get(host.name):
        assert time.monotonic() < deadline, f"{host.name} never received the model"
        time.sleep(0.2)


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_a_worker_host_killed_mid_run_leaves_the_result_unchanged(
    test_cluster: TestCluster,
    tiny_world: World,
    local_store: Path,
    workers: Callable[[], list[Host]],
    client_dir: Path,
) -> None:
    survivor, victim = workers()
    url = f"s3://{BUCKET}/{uuid.uuid4().hex[:12]}/fused.zarr"
    cfg = _write_config(test_cluster, tiny_world, client_dir, url)
    proc = start_run(cfg, test_cluster.scheduler, env=test_cluster.env)
    try:
        _wait_for_line(proc, "[fuse] ...")
        _wait_for_model(test_cluster, victim)
        assert proc.poll() is None, "the run ended before the worker host could be killed"
        victim.kill()
    except BaseException:
        proc.kill()
        raise
    _finish(proc)

    _assert_same_result(_download(test_cluster, url, client_dir / "copy.zarr"), local_store)
    assert list(_worker_builds(test_cluster, [survivor, victim])) == [survivor.name]


if __name__ == "__main__":  # pragma: no cover - for a manual run on a root shell
    sys.exit(pytest.main([__file__, "-x", "-q"]))
