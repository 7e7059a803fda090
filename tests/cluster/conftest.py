"""A test cluster of separate hosts on this machine (network + mount namespaces, as root).

Hosts on one bridge (:mod:`tests.cluster.netns`), each with its own address, private
working directory and no view of the client's run directory or of the demo world's files:

========== =========================================================================
assets     the tiny world's COGs over HTTP (Range requests) and its STAC API
           (``rustac serve``, asset hrefs ``http://<assets>:8080/data/...``)
s3         the S3 API of the store (``moto_server``)
scheduler  ``dask scheduler``
worker-*   ``dask worker`` (one thread, no nanny: the host's death is the worker's),
           made fresh for each test by :func:`workers`
========== =========================================================================

The client is the test process itself, in the machine's namespace, on the lan's ``.1``.
Without root or ``ip`` every test here is skipped with the reason.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
from distributed import Client

from pipeline.synth import World
from tests.cluster.netns import Host, Lan, unavailable_reason
from tests.reliability.conftest import http_catalog

BUCKET = "stf-cluster"
REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
ASSET_PORT, STAC_PORT, S3_PORT, SCHEDULER_PORT = 8080, 8081, 9000, 8786


@dataclass
class TestCluster:
    """Addresses of the cluster's services and what a test needs to add hosts to it.

    Attributes
    ----------
    lan : the bridge and its hosts.
    stac_url : the asset host's STAC API.
    s3_endpoint : the S3 host's endpoint URL.
    scheduler : ``tcp://<scheduler>:8786``.
    env : the environment of every host and of the client's ``stf run`` (AWS_* for the S3
        host, PYTHONPATH for this checkout, one thread per library).
    hidden : directories no host but the asset host may see.
    logs : folder of the hosts' logs (on the client).
    """

    __test__ = False  # not a test class, despite the name

    lan: Lan
    stac_url: str
    s3_endpoint: str
    scheduler: str
    env: dict[str, str]
    hidden: tuple[Path, ...]
    logs: Path

    def add_worker(self, name: str) -> Host:
        """Start a ``dask worker`` host ``name``; return it once the scheduler sees it."""
        host = self.lan.add_host(name, self.logs.parent / "hosts" / name, self.hidden)
        argv = [str(BIN / "dask"), "worker", self.scheduler, "--host", host.address]
        argv += ["--name", name, "--nthreads", "1", "--no-nanny", "--no-dashboard"]
        argv += ["--local-directory", str(host.workdir), "--preload", "tests.cluster.load_count"]
        host.start(argv, self.env, self.logs / f"{name}.log")
        return host


def _wait_http(
    url: str, what: str, proc: subprocess.Popen[bytes], log: Path, timeout_s: float = 120
) -> None:
    """Poll ``url`` until it answers (any HTTP status); fail naming the host's log."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{what} exited ({proc.returncode}) at start: {tail}")
        try:
            urllib.request.urlopen(url, timeout=5).close()
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"{what} did not answer at {url} within {timeout_s:.0f} s; see {log}")


def _host_env(s3_endpoint: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env.update(
        PYTHONPATH=str(REPO),
        PYTHONUNBUFFERED="1",
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        AWS_ENDPOINT_URL=s3_endpoint,
        AWS_ACCESS_KEY_ID="stf-test",
        AWS_SECRET_ACCESS_KEY="stf-test-secret",
        AWS_DEFAULT_REGION="us-east-1",
    )
    return env


def _on_term(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through the fixtures' ``finally``: teardown runs


def _start_assets(lan: Lan, world: World, base: Path, env: dict[str, str], logs: Path) -> str:
    """The asset host: COGs on :data:`ASSET_PORT`, the STAC API on :data:`STAC_PORT`."""
    host = lan.add_host("assets", base / "hosts" / "assets", hidden=())
    assets = f"http://{host.address}:{ASSET_PORT}"
    stac_dir = http_catalog(world, assets, base / "stac")
    argv = [sys.executable, "-m", "tests.cluster.asset_server", str(world.root), host.address]
    files = host.start([*argv, str(ASSET_PORT)], env, logs / "assets-files.log")
    from pipeline.catalog.server import catalog_hrefs, rustac_executable

    hrefs = [str(stac_dir / h) for h in catalog_hrefs(stac_dir)]
    argv = [rustac_executable(), "serve", "--addr", f"{host.address}:{STAC_PORT}", *hrefs]
    api = host.start(argv, env, logs / "assets-stac.log")
    _wait_http(f"{assets}/nothing", "asset file server", files, logs / "assets-files.log")
    stac_url = f"http://{host.address}:{STAC_PORT}"
    _wait_http(stac_url, "STAC API", api, logs / "assets-stac.log")
    return stac_url


def _start_s3(lan: Lan, base: Path, hidden: tuple[Path, ...], logs: Path) -> str:
    host = lan.add_host("s3", base / "hosts" / "s3", hidden)
    endpoint = f"http://{host.address}:{S3_PORT}"
    argv = [str(BIN / "moto_server"), "-H", host.address, "-p", str(S3_PORT)]
    proc = host.start(argv, _host_env(endpoint), logs / "s3.log")
    _wait_http(f"{endpoint}/moto-api/", "moto_server", proc, logs / "s3.log")
    return endpoint


def _start_scheduler(lan: Lan, base: Path, cluster: TestCluster) -> None:
    host = lan.add_host("scheduler", base / "hosts" / "scheduler", cluster.hidden)
    argv = [str(BIN / "dask"), "scheduler", "--host", host.address, "--port", str(SCHEDULER_PORT)]
    host.start([*argv, "--no-dashboard"], cluster.env, cluster.logs / "scheduler.log")
    cluster.scheduler = f"tcp://{host.address}:{SCHEDULER_PORT}"
    with Client(cluster.scheduler, timeout="120s"):
        pass


@pytest.fixture(scope="module")
def test_cluster(
    tiny_world: World, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestCluster]:
    """Assets, S3 and scheduler hosts on a fresh lan (torn down at the end, also on SIGTERM)."""
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    import boto3

    base = tmp_path_factory.mktemp("cluster")
    clients = tmp_path_factory.getbasetemp() / "clients"  # every test's run directory
    clients.mkdir(exist_ok=True)
    logs = base / "logs"
    logs.mkdir()
    (base / "stac").mkdir()
    hidden = (clients, tiny_world.root.resolve(), base / "stac")
    previous = signal.signal(signal.SIGTERM, _on_term)
    lan = Lan()
    try:
        s3 = _start_s3(lan, base, hidden, logs)
        env = _host_env(s3)
        stac_url = _start_assets(lan, tiny_world, base, env, logs)
        cluster = TestCluster(lan, stac_url, s3, "", env, hidden, logs)
        _start_scheduler(lan, base, cluster)
        boto3.client("s3", endpoint_url=s3, **_credentials(env)).create_bucket(Bucket=BUCKET)
        yield cluster
    finally:
        lan.close()
        signal.signal(signal.SIGTERM, previous)


def _credentials(env: dict[str, str]) -> dict[str, Any]:
    return {
        "aws_access_key_id": env["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": env["AWS_SECRET_ACCESS_KEY"],
        "region_name": env["AWS_DEFAULT_REGION"],
    }


@pytest.fixture
def client_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The client's run directory of one test (hidden from every host)."""
    clients = tmp_path_factory.getbasetemp() / "clients"
    clients.mkdir(exist_ok=True)
    path = clients / uuid.uuid4().hex[:8]
    path.mkdir()
    return path


@pytest.fixture
def workers(test_cluster: TestCluster) -> Iterator[Callable[[], list[Host]]]:
    """Two fresh worker hosts for one test (killed at its end): call to start them."""
    tag = uuid.uuid4().hex[:4]
    hosts: list[Host] = []

    def start() -> list[Host]:
        hosts.extend(test_cluster.add_worker(f"worker-{c}-{tag}") for c in "ab")
        with Client(test_cluster.scheduler, timeout="60s") as client:
            client.wait_for_workers(len(hosts), timeout=180)
        return hosts

    yield start
    for host in hosts:
        host.kill()
    with Client(test_cluster.scheduler, timeout="60s") as client:
        deadline = time.monotonic() + 60  # the scheduler forgets the dead workers
        while client.scheduler_info()["workers"] and time.monotonic() < deadline:
            time.sleep(0.5)
