"""One writer per store on S3: the lock object is created by a conditional put
(``If-None-Match: *``), so the service itself refuses a second run its lock."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import fsspec
import pytest
import yaml

from pipeline.errors import InputError, StoreError
from pipeline.products.source import open_fused
from pipeline.store.lock import StoreLock
from pipeline.synth import World
from tests.reliability.conftest import run_config


def _put(url: str, owner: dict[str, object]) -> None:
    fs, path = fsspec.core.url_to_fs(url)
    fs.pipe_file(path, json.dumps(owner).encode())


def test_second_writer_is_refused_and_the_lock_released(s3_prefix: str) -> None:
    url = f"{s3_prefix}/fused.zarr"
    with StoreLock(url) as held:
        assert held.path == f"{url}.lock"
        with pytest.raises(StoreError, match=r"locked by pid \d+ on .*fused.zarr.lock"):
            StoreLock(url).acquire()
    fs, path = fsspec.core.url_to_fs(f"{url}.lock")
    assert not fs.exists(path)


def test_the_service_refuses_the_second_create(s3_prefix: str) -> None:
    """The refusal is the conditional put's (HTTP 412), not a listing done beforehand.

    (moto checks ``If-None-Match`` and stores in two steps, so two creates sent at the
    very same moment can both pass on it; on S3 the condition is atomic. What is
    tested here is that the lock relies on the service's condition alone.)
    """
    import boto3
    from botocore.exceptions import ClientError

    url = f"{s3_prefix}/fused.zarr"
    with StoreLock(url):
        bucket, key = url.removeprefix("s3://").split("/", 1)
        with pytest.raises(ClientError, match="PreconditionFailed"):
            boto3.client("s3").put_object(
                Bucket=bucket, Key=f"{key}.lock", Body=b"{}", IfNoneMatch="*"
            )
        fs, path = fsspec.core.url_to_fs(f"{url}.lock")
        assert json.loads(fs.cat_file(path))["pid"] == os.getpid()


def test_stale_lock_of_a_dead_local_run_is_taken_over(s3_prefix: str) -> None:
    url = f"{s3_prefix}/fused.zarr"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    _put(f"{url}.lock", {"host": socket.gethostname(), "pid": dead.pid, "since": "x"})
    with StoreLock(url):
        fs, path = fsspec.core.url_to_fs(f"{url}.lock")
        assert json.loads(fs.cat_file(path))["pid"] == os.getpid()


def test_lock_of_another_host_is_never_broken(s3_prefix: str) -> None:
    url = f"{s3_prefix}/fused.zarr"
    _put(f"{url}.lock", {"host": "elsewhere", "pid": 1, "since": "x"})
    with pytest.raises(StoreError, match=r"on elsewhere .*delete s3://.*fused\.zarr\.lock"):
        StoreLock(url).acquire()


def test_stf_run_on_a_locked_s3_store_exits_4(
    tiny_world: World, stac_url: str, s3_prefix: str, tmp_path: Path
) -> None:
    url = f"{s3_prefix}/fused.zarr"
    cfg = tmp_path / "run.yaml"
    cfg.write_text(yaml.safe_dump(run_config(tiny_world, stac_url, tmp_path, store={"path": url})))
    with StoreLock(url):
        proc = subprocess.run(
            [sys.executable, "-m", "pipeline", "run", str(cfg)],
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert proc.returncode == 4, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1].startswith("stf: error: store s3://")
    fs, path = fsspec.core.url_to_fs(url)
    assert not fs.exists(path)


def test_products_of_a_missing_s3_store_say_so(s3_prefix: str) -> None:
    with pytest.raises(InputError, match="fused store not found: s3://"):
        open_fused(f"{s3_prefix}/none.zarr")
