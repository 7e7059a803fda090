"""A real S3 API on 127.0.0.1 (moto's server) for the object-store tests.

The pipeline gets nothing but the standard environment: ``AWS_ENDPOINT_URL``
(botocore, and through it s3fs, read it), ``AWS_ACCESS_KEY_ID`` /
``AWS_SECRET_ACCESS_KEY`` and ``AWS_DEFAULT_REGION``. They are set for the
session before any Dask worker or ``stf run`` subprocess starts, so every
process of a run reaches the same loopback service, and restored afterwards.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from distributed import LocalCluster

BUCKET = "stf-test"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_up(endpoint: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, "moto_server exited at start"
        try:
            urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2).close()
            return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"moto_server did not answer on {endpoint}")


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """URL of a moto S3 server on a loopback port, with a bucket :data:`BUCKET`.

    The server is a process of its own (``moto_server``), so a busy test process
    (an in-process run computing) never stalls the workers' requests.
    """
    import boto3

    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    env = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "stf-test",
        "AWS_SECRET_ACCESS_KEY": "stf-test-secret",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        _wait_until_up(endpoint, server)
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        yield endpoint
    finally:
        server.terminate()
        server.wait(timeout=30)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture
def s3_prefix(s3_endpoint: str) -> str:
    """A fresh ``s3://`` prefix for one test."""
    return f"s3://{BUCKET}/{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def s3_cluster(s3_endpoint: str) -> Iterator[str]:
    """A 2-process LocalCluster started after the S3 environment is set (its workers see it).

    The session's shared ``cluster`` may have started before the S3 environment was set
    (its workers would not see the loopback endpoint), hence a cluster of its own. The
    runs on S3 are compared with the session's ``clean_store`` (a local run: where the
    reference was fused does not matter, its bytes do).
    """
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as cl:
        yield cl.scheduler_address
