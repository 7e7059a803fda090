"""Streamed inputs: groups bounded by the budget, and a run holding at most two groups' chunks."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import numpy as np
from distributed import Client

from pipeline.fuse.dispatch import Sources
from pipeline.fuse.engine import FuseRequest, fuse_into_store
from pipeline.fuse.plan import PlanInputs, make_blocks, plan_tasks
from pipeline.fuse.stream import RESIDENT_GROUPS, CubeChunks, plan_groups, task_chunks
from pipeline.fuse.worker import ModelPayload
from pipeline.models.registry import create_model
from pipeline.store.write import open_store
from tests.fuse.conftest import DAY0, FACTOR, SHAPE, grid, make_sources

BANDS = ("green", "red", "nir")
DAYS = tuple(DAY0 + dt.timedelta(days=i) for i in range(8))
FINE_DAYS = (0, 4, 7)


def _sources() -> Sources:
    """The test cubes in chunks of one 8 x 8 block (2 x 2 coarse pixels): 5 x 5 chunks."""
    src = make_sources(n_days=8, fine_days=FINE_DAYS)
    return Sources(
        src.fine.chunk({"y": 8, "x": 8}),
        src.coarse.chunk({"y": 8 // FACTOR, "x": 8 // FACTOR}),
        src.factor,
        src.pairs,
    )


def _tasks(src: Sources, chunk: tuple[int, int], halo: int, time_chunk: int = 4) -> list:
    blocks = make_blocks(SHAPE, chunk, halo)
    nby, nbx = blocks[-1].by + 1, blocks[-1].bx + 1
    inputs = PlanInputs(
        days=DAYS,
        first_day=DAY0,
        time_chunk=time_chunk,
        pairs=src.pairs,
        clear=np.ones((len(src.pairs), nby, nbx)),
        min_clear=0.5,
        fine_days=frozenset(src.dates("fine")),
        coarse_days=frozenset(src.dates("coarse")),
        done=np.zeros((len(DAYS), nby, nbx), bool),
    )
    return plan_tasks(inputs, blocks)


def test_groups_cover_every_task_once_within_the_budget() -> None:
    src = _sources()
    fine, coarse = CubeChunks("fine", src.fine), CubeChunks("coarse", src.coarse)
    tasks = _tasks(src, (8, 8), halo=3)
    one_block = max(
        sum(fine.nbytes(k) if k[0] == "fine" else coarse.nbytes(k) for k in keys)
        for keys in (task_chunks(t, fine, coarse, FACTOR) for t in tasks)
    )
    whole = plan_groups(tasks, fine, coarse, FACTOR, budget=2**40)
    assert len(whole) == 2  # one group per store time window: the whole region
    for budget in (one_block, 2 * one_block):
        groups = plan_groups(tasks, fine, coarse, FACTOR, budget)
        firsts = [(g.tasks[0].t0, g.tasks[0].block.by, g.tasks[0].block.bx) for g in groups]
        assert firsts == sorted(firsts)  # time windows in order, squares row-major
        assert sorted(id(t) for g in groups for t in g.tasks) == sorted(id(t) for t in tasks)
        assert all(g.nbytes <= budget for g in groups)
        assert all(len({t.t0 for t in g.tasks}) == 1 for g in groups)
        assert len(whole) < len(groups) <= len(tasks)
    tiny = plan_groups(tasks, fine, coarse, FACTOR, budget=1)
    assert len(tiny) == len(tasks)  # the floor: one block per group


def _payload(tmp_path: Path) -> ModelPayload:
    model = create_model("starfm", BANDS, size="tiny", device="cpu")
    model.save(tmp_path / "m")
    return ModelPayload.from_dir(tmp_path / "m")


def _resident_source_bytes(client: Client, names: set[str], stop: threading.Event) -> list[int]:
    """Bytes of source-cube chunks in memory on the cluster, sampled until ``stop``."""

    def held(dask_scheduler, names=tuple(names)) -> int:
        return sum(
            ts.nbytes
            for ts in dask_scheduler.tasks.values()
            if ts.state == "memory" and isinstance(ts.key, tuple) and ts.key[0] in names
        )

    samples = [0]
    while not stop.is_set():
        samples.append(client.run_on_scheduler(held))
        stop.wait(0.02)
    return samples


def test_a_run_holds_at_most_two_groups_and_equals_the_whole_region_run(
    client: Client, tmp_path: Path
) -> None:
    src = _sources()
    payload = _payload(tmp_path)
    prov = {"config": {}, "fine_items": [], "coarse_items": []}

    def fuse(name: str, window_mib: float):
        request = FuseRequest(
            url=str(tmp_path / name),
            region="synthetic",
            days=DAYS,
            bands=BANDS,
            chunks=(8, 8, 8),
            batch_days=4,
            window_mib=window_mib,
        )
        return fuse_into_store(client, src, grid(), payload, request, prov, progress=False)

    whole = fuse("whole.zarr", window_mib=1e6)
    stop = threading.Event()
    samples: list[int] = []
    names = {src.fine.data.name, src.coarse.data.name}
    sampler = threading.Thread(
        target=lambda: samples.extend(_resident_source_bytes(client, names, stop)), daemon=True
    )
    sampler.start()
    budget_mib = 2e-3  # ~2 KiB per worker: one block per group
    streamed = fuse("streamed.zarr", window_mib=budget_mib)
    stop.set()
    sampler.join()
    assert whole.groups == 1 and streamed.groups == streamed.tasks == 5 * 5
    fine, coarse = CubeChunks("fine", src.fine), CubeChunks("coarse", src.coarse)
    halo = create_model("starfm", BANDS, size="tiny").halo
    tasks = _tasks(src, (8, 8), halo, time_chunk=8)
    largest = max(g.nbytes for g in plan_groups(tasks, fine, coarse, FACTOR, budget=1))
    assert 0 < streamed.peak_window_bytes <= RESIDENT_GROUPS * largest
    assert streamed.peak_window_bytes < whole.peak_window_bytes
    assert max(samples) <= RESIDENT_GROUPS * largest
    a, b = open_store(str(tmp_path / "whole.zarr")), open_store(str(tmp_path / "streamed.zarr"))
    for name in a.data_vars:
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)


def test_a_small_coarse_cube_is_read_once_and_held_a_large_one_streamed(client: Client) -> None:
    from distributed import Future

    from pipeline.fuse.engine import COARSE_HOLD_SHARE, hold_coarse

    src = _sources()
    nbytes = src.coarse.nbytes
    held = hold_coarse(client, src, budget=int(nbytes / COARSE_HOLD_SHARE))
    graph = dict(held.coarse.data.__dask_graph__())
    # every chunk is a future on the cluster: calibration and groups read no asset again
    assert len(graph) == src.coarse.data.npartitions
    assert all(isinstance(v, Future) for v in graph.values())
    values = client.compute(held.coarse.data).result()
    np.testing.assert_array_equal(values, src.coarse.values)
    assert held.fine is src.fine and held.pairs == src.pairs
    streamed = hold_coarse(client, src, budget=int(nbytes / COARSE_HOLD_SHARE) - 1)
    assert streamed is src
