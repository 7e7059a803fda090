"""Distributed fusion on a real 2-process LocalCluster into real Zarr stores."""

from __future__ import annotations

import datetime as dt
import os
import signal
import threading
from pathlib import Path

import numpy as np
import pytest
from distributed import Client

from pipeline.errors import InputError
from pipeline.fuse.dispatch import Sources
from pipeline.fuse.engine import FuseRequest, fuse_into_store
from pipeline.fuse.tiles import fuse_tiled
from pipeline.fuse.worker import ModelPayload
from pipeline.models.base import FusionInput, Scene
from pipeline.models.registry import create_model
from pipeline.store.write import open_store
from tests.fuse.conftest import DAY0, grid, make_sources

BANDS = ("green", "red", "nir")
DAYS = tuple(DAY0 + dt.timedelta(days=i) for i in range(8))
FINE_DAYS = (0, 4, 7)  # pairs on the first and last day: every day gets an after-pair


def _payload(tmp_path: Path, name: str = "starfm", **params: object) -> ModelPayload:
    model = create_model(name, BANDS, size="tiny", device="cpu", **params)
    model.save(tmp_path / name)
    return ModelPayload.from_dir(tmp_path / name)


def _request(url: Path, chunks: tuple[int, int, int] = (8, 16, 24), **kw: object) -> FuseRequest:
    return FuseRequest(
        url=str(url), region="synthetic", days=DAYS, bands=BANDS, chunks=chunks, batch_days=4, **kw
    )


def _fuse(client: Client, sources: Sources, payload: ModelPayload, request: FuseRequest):
    prov = {"config": {"test": True}, "fine_items": ["f1"], "coarse_items": ["c1"]}
    return fuse_into_store(client, sources, grid(), payload, request, prov, progress=False)


def _values(url: Path) -> dict[str, np.ndarray]:
    ds = open_store(str(url)).load()
    return {name: ds[name].values for name in ds.data_vars if name != "block_done"}


def test_tiled_equals_whole_image_in_memory() -> None:
    src = make_sources(cloud=True)
    fine = src.fine.values
    coarse = src.coarse.values.repeat(4, -2).repeat(4, -1)
    refs = (Scene(DAYS[0], coarse[0], fine[0]), Scene(DAYS[5], coarse[5], fine[1]))
    inputs = FusionInput(refs, Scene(DAYS[3], coarse[3]), BANDS)
    model = create_model("starfm", BANDS, size="tiny", device="cpu")
    whole, tiled = model.predict(inputs), fuse_tiled(model, inputs, (20, 16))
    assert np.nanmax(np.abs(whole.fine - tiled.fine)) < 1e-4
    assert np.array_equal(np.isnan(whole.fine), np.isnan(tiled.fine))


def test_store_tiled_equals_whole_and_resume_skips(client: Client, tmp_path: Path) -> None:
    src = make_sources(n_days=8, fine_days=FINE_DAYS, cloud=False)
    payload = _payload(tmp_path)
    tiled = _fuse(client, src, payload, _request(tmp_path / "tiled.zarr"))
    assert tiled.tasks == 6 and tiled.pixel_days == 8 * 40 * 36
    _fuse(client, src, payload, _request(tmp_path / "whole.zarr", chunks=(8, 40, 36)))
    a, b = _values(tmp_path / "tiled.zarr"), _values(tmp_path / "whole.zarr")
    for name in a:
        np.testing.assert_allclose(
            a[name].astype(float), b[name].astype(float), atol=1e-4, err_msg=name
        )
    again = _fuse(client, src, payload, _request(tmp_path / "tiled.zarr"))
    assert again.tasks == 0 and again.tasks_skipped == 6  # every day has an after-pair: final
    ds = open_store(str(tmp_path / "tiled.zarr"))
    assert set(np.unique(ds["quality"].values)) <= {1, 2, 6}
    assert int(ds["ref_before_days"][3, 0, 0]) == 3 and int(ds["ref_after_days"][3, 0, 0]) == 1


def test_no_pair_is_an_input_error(client: Client, tmp_path: Path) -> None:
    src = make_sources()
    src = Sources(src.fine, src.coarse, src.factor, pairs=())
    with pytest.raises(InputError, match="no clear fine/coarse pair"):
        _fuse(client, src, _payload(tmp_path, "naive_change"), _request(tmp_path / "s.zarr"))
    assert not (tmp_path / "s.zarr").exists()


@pytest.mark.slow
def test_killing_a_worker_mid_run_gives_the_same_store(client: Client, tmp_path: Path) -> None:
    src = make_sources(n_days=8, fine_days=FINE_DAYS)
    payload = _payload(tmp_path)
    chunks = (4, 16, 24)  # 2 windows x 6 blocks = 12 tasks
    _fuse(client, src, payload, _request(tmp_path / "calm.zarr", chunks=chunks))
    pids = client.run(os.getpid)
    victim = next(iter(pids.values()))
    done_dir = tmp_path / "storm.zarr" / "block_done" / "c"

    def kill_when_started() -> None:
        while not (done_dir.exists() and any(done_dir.rglob("*"))):
            threading.Event().wait(0.05)
        os.kill(victim, signal.SIGKILL)

    killer = threading.Thread(target=kill_when_started, daemon=True)
    killer.start()
    _fuse(client, src, payload, _request(tmp_path / "storm.zarr", chunks=chunks))
    killer.join(timeout=5)
    assert victim not in client.run(os.getpid).values()  # it really died (the nanny restarted it)
    a, b = _values(tmp_path / "calm.zarr"), _values(tmp_path / "storm.zarr")
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_gpu_resource_route_on_a_local_cluster(tmp_path: Path) -> None:
    """With ``gpu`` the LocalCluster advertises GPU=1 and model tasks ask for it (CPU here)."""
    from pipeline.config import ComputeSpec
    from pipeline.fuse.cluster import open_client

    lines: list[str] = []
    with open_client(ComputeSpec(n_workers=1, gpu=True), log=lines.append) as gpu_client:
        assert lines[0].startswith("Dask dashboard: http://")
        workers = gpu_client.scheduler_info(n_workers=-1)["workers"].values()
        assert [w["resources"] for w in workers] == [{"GPU": 1}]
        src = make_sources(n_days=8, fine_days=FINE_DAYS)
        out = _fuse(gpu_client, src, _payload(tmp_path), _request(tmp_path / "g.zarr", gpu=True))
    assert out.tasks == 6
