"""A real S3 API on 127.0.0.1 (moto's server) for the object-store tests.

The pipeline gets nothing but the standard environment: ``AWS_ENDPOINT_URL``
(botocore, and through it s3fs, read it), ``AWS_ACCESS_KEY_ID`` /
``AWS_SECRET_ACCESS_KEY`` and ``AWS_DEFAULT_REGION``. They are set for the
session before any Dask worker or ``stf run`` subprocess starts, so every
process of a run reaches the same loopback service, and restored afterwards.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator

import pytest
from distributed import LocalCluster

from pipeline.config import parse_config
from pipeline.run import run, store_url
from pipeline.synth import World
from tests.reliability.conftest import quiet, run_config

BUCKET = "stf-test"


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """URL of a moto S3 server on a free loopback port, with a bucket :data:`BUCKET`."""
    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    env = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "stf-test",
        "AWS_SECRET_ACCESS_KEY": "stf-test-secret",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        yield endpoint
    finally:
        server.stop()
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
    """A 2-process LocalCluster started after the S3 environment is set (its workers see it)."""
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as cl:
        yield cl.scheduler_address


@pytest.fixture(scope="session")
def clean_local(
    tiny_world: World, stac_url: str, s3_cluster: str, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """The local store of an undisturbed fault-trial run: what every S3 run must equal."""
    cfg = parse_config(run_config(tiny_world, stac_url, tmp_path_factory.mktemp("clean-local")))
    run(cfg, scheduler=s3_cluster, progress=False, log=quiet)
    return store_url(cfg)
