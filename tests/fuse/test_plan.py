"""The pure plan: blocks, halos, time windows, reference choice, resume from completion."""

from __future__ import annotations

import datetime as dt

import numpy as np

from pipeline.fuse.plan import PlanInputs, choose_refs, make_blocks, plan_tasks, time_windows

D = dt.date(2024, 6, 1)


def day(i: int) -> dt.date:
    return D + dt.timedelta(days=i)


def test_blocks_tile_the_image_and_halos_clip_at_borders() -> None:
    blocks = make_blocks((40, 36), (16, 16), halo=3)
    cover = np.zeros((40, 36), int)
    for b in blocks:
        cover[b.y0 : b.y1, b.x0 : b.x1] += 1
        assert b.py0 == max(0, b.y0 - 3) and b.px1 == min(36, b.x1 + 3)
        ys, xs = b.crop
        assert ys.stop - ys.start == b.y1 - b.y0 and xs.stop - xs.start == b.x1 - b.x0
    assert (cover == 1).all() and len(blocks) == 9


def test_time_windows_follow_zarr_chunks() -> None:
    assert time_windows(0, 10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert time_windows(6, 13, 4) == [(6, 8), (8, 12), (12, 13)]


def test_refs_are_nearest_clear_pairs_each_side() -> None:
    pairs = [day(0), day(5), day(10)]
    refs = choose_refs([day(0), day(3), day(7), day(12)], pairs, np.array([True, False, True]))
    assert [(r.before, r.after) for r in refs] == [
        (day(0), day(0)),  # a clear pair date: that pair alone
        (day(0), day(10)),  # day 5 is cloudy in this block: skipped
        (day(0), day(10)),
        (day(10), None),  # after the last pair: provisional, one side only
    ]
    assert refs[0].days_to() == (0, 0) and refs[3].days_to() == (2, -1)
    assert refs[0].dates == (day(0),) and refs[1].dates == (day(0), day(10))


def _inputs(done: np.ndarray, clear: np.ndarray) -> PlanInputs:
    return PlanInputs(
        days=tuple(day(i) for i in range(6)),
        first_day=day(0),
        time_chunk=4,
        pairs=(day(0), day(5)),
        clear=clear,
        min_clear=0.5,
        fine_days=frozenset({day(0), day(2), day(5)}),
        coarse_days=frozenset(day(i) for i in range(6) if i != 3),
        done=done,
    )


def test_plan_skips_completed_windows_and_uses_per_block_clearness() -> None:
    blocks = make_blocks((32, 16), (16, 16), halo=2)  # two blocks
    clear = np.array([[[0.9], [0.9]], [[0.9], [0.1]]])  # (pair, yblock, xblock)
    done = np.zeros((6, 2, 1), bool)
    done[0:4, 0, 0] = True
    tasks = plan_tasks(_inputs(done, clear), blocks)
    assert [(t.block.by, t.t0, t.t1) for t in tasks] == [(1, 0, 4), (0, 4, 6), (1, 4, 6)]
    first = tasks[0]
    assert first.obs_days == (day(0), day(2)) and day(3) not in first.coarse_days
    assert all(r.after is None or r.after == day(0) for r in first.refs)  # pair 2 cloudy in block 1
    assert tasks[1].ref_dates == (day(0), day(5))
