"""Coarse-fine co-registration: known shifts found, unreliable estimates refused, cubes shifted."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import dask.array as da
import numpy as np
import pytest
import xarray as xr
from scipy import ndimage

from pipeline.coregister import (
    Coregistration,
    cells_from_fine_grid,
    decide,
    estimate_shift,
    shift_image,
)
from pipeline.cube.coregister_cubes import coregister, shift_coarse_cube
from pipeline.cube.pairs import Pair
from pipeline.errors import InputError

FACTOR = 16


def _ground(seed: int, size: int = 320, bands: int = 3) -> np.ndarray:
    """(band, y, x) float64 reflectance-like texture: fields at several scales, 0.02..0.5."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(bands):
        img = sum(
            ndimage.gaussian_filter(rng.normal(size=(size, size)), sigma) * sigma
            for sigma in (3, 12, 40)
        )
        img = (img - img.min()) / (img.max() - img.min())
        out.append(0.02 + 0.48 * img)
    return np.stack(out)


def _pair(
    seed: int, shift: tuple[float, float], noise: float = 0.0
) -> tuple[str, np.ndarray, np.ndarray]:
    """A fine image and coarse cells showing at ``p + shift`` what the fine image shows at ``p``."""
    ground = _ground(seed)
    # the coarse sensor sees the ground moved by +shift: its pixel p shows ground at p - shift
    moved = ndimage.shift(ground, (0, *shift), order=3, mode="reflect")
    cells = moved.reshape(3, 20, FACTOR, 20, FACTOR).mean(axis=(2, 4))
    cells += np.random.default_rng(seed + 100).normal(scale=noise, size=cells.shape)
    return f"pair{seed}", ground, cells


@pytest.mark.parametrize("shift", [(-8.0, -16.0), (3.3, -5.7), (0.0, 0.0), (11.6, 20.25)])
def test_known_shift_is_recovered_within_a_fraction_of_a_fine_pixel(
    shift: tuple[float, float],
) -> None:
    est = estimate_shift([_pair(1, shift), _pair(2, shift)], FACTOR)
    assert est.reliable, est.reason
    assert np.hypot(*np.subtract(est.shift, shift)) < 0.35
    assert est.peak > 0.95
    assert len(est.pairs) == 2


def test_shift_recovered_with_clouds_and_sensor_noise() -> None:
    label, fine, cells = _pair(3, (-6.5, 9.25), noise=0.005)
    fine = fine.copy()
    fine[:, 40:120, 60:200] = np.nan  # a cloud on the fine image
    cells[:, 2:4, 10:12] = np.nan  # and one on the coarse
    est = estimate_shift([(label, fine, cells), _pair(4, (-6.5, 9.25), noise=0.005)], FACTOR)
    assert est.reliable, est.reason
    assert np.hypot(est.shift[0] + 6.5, est.shift[1] - 9.25) < 0.5


def test_pairs_that_disagree_are_unreliable_and_auto_warns_in_one_line() -> None:
    est = estimate_shift([_pair(1, (0.0, 0.0)), _pair(2, (10.0, -10.0))], FACTOR)
    assert not est.reliable
    assert "disagree" in est.reason
    record = decide("auto", est, FACTOR)
    assert record.applied == (0.0, 0.0) and not record.is_applied
    assert record.warning and "\n" not in record.warning and "coregister: off" in record.warning
    with pytest.raises(InputError, match=r"unreliable.*refused"):
        decide("require", est, FACTOR)


def test_unrelated_images_give_a_weak_peak() -> None:
    _, fine, _ = _pair(5, (0.0, 0.0))
    _, _, cells = _pair(6, (0.0, 0.0))
    est = estimate_shift([("noise", fine, cells)], FACTOR)
    assert not est.reliable
    assert "weak" in est.reason or "border" in est.reason


def test_too_few_clear_cells_is_unreliable() -> None:
    label, fine, cells = _pair(7, (2.0, 2.0))
    cells[:] = np.nan
    est = estimate_shift([(label, fine, cells)], FACTOR)
    assert not est.reliable and "cells" in est.reason


def test_small_shifts_are_recorded_not_applied() -> None:
    est = estimate_shift([_pair(1, (0.2, -0.1))], FACTOR)
    record = decide("auto", est, FACTOR)
    assert record.estimate is est and not record.is_applied and record.warning is None


def test_shift_image_undoes_the_displacement() -> None:
    ground = _ground(8)[:1]
    moved = ndimage.shift(ground, (0, 5, -7), order=1, mode="nearest")
    back = shift_image(moved.astype(np.float32), (5.0, -7.0))
    assert back.dtype == np.float32
    np.testing.assert_allclose(back[:, 20:-20, 20:-20], ground[:, 20:-20, 20:-20], atol=1e-5)


def test_cells_from_fine_grid_inverts_block_replication() -> None:
    cells = _ground(9, size=20)
    on_fine = cells.repeat(FACTOR, 1).repeat(FACTOR, 2)
    np.testing.assert_allclose(cells_from_fine_grid(on_fine, FACTOR), cells)


def test_record_round_trips_through_json_dict() -> None:
    import json

    record = decide("auto", estimate_shift([_pair(1, (-8.0, -16.0))], FACTOR), FACTOR)
    back = Coregistration.from_dict(json.loads(json.dumps(record.to_dict())))
    assert back == record
    assert "applied" in back.describe(30.0) and " m " in back.describe(30.0)
    assert Coregistration.from_dict(None) is None


def _cubes(shift: tuple[float, float]) -> tuple[xr.DataArray, xr.DataArray, list[Pair]]:
    days = [dt.date(2024, 6, 1), dt.date(2024, 6, 9)]
    pairs = [_pair(10 + i, shift) for i in range(2)]
    fine = np.stack([p[1] for p in pairs]).astype(np.float32)
    coarse = np.stack([p[2] for p in pairs]).astype(np.float32)
    time = np.array(days, dtype="datetime64[ns]")
    dims = ("time", "band", "y", "x")
    fine_da = xr.DataArray(da.from_array(fine, chunks=(1, 3, 64, 64)), dims=dims)
    coarse_da = xr.DataArray(da.from_array(coarse, chunks=(1, 3, 4, 4)), dims=dims)
    fine_da, coarse_da = fine_da.assign_coords(time=time), coarse_da.assign_coords(time=time)
    return fine_da, coarse_da, [Pair(d, 1.0, 1.0, d) for d in days]


def test_cube_coregistration_estimates_applies_and_keeps_chunks() -> None:
    fine, coarse, pairs = _cubes((-8.0, -16.0))
    moved, record = coregister(fine, coarse, pairs, FACTOR, "auto")
    assert record.is_applied
    assert np.hypot(record.applied[0] + 8, record.applied[1] + 16) < 0.35
    assert moved.chunks == coarse.chunks and moved.dtype == np.float32
    # the corrected cells now match the unshifted aggregate of the fine images
    truth = fine.values.reshape(2, 3, 20, FACTOR, 20, FACTOR).mean(axis=(3, 5))
    inner = np.s_[..., 2:-2, 2:-2]
    before = np.abs(coarse.values - truth)[inner].mean()
    after = np.abs(moved.values - truth)[inner].mean()
    assert after < 0.5 * before
    # an earlier record (the run's cubes.json) is reused as is; off leaves the cube alone
    again, same = coregister(fine, coarse, pairs, FACTOR, "auto", known=record)
    assert same is record
    np.testing.assert_array_equal(again.values, moved.values)
    off, none = coregister(fine, coarse, pairs, FACTOR, "off")
    assert off is coarse and none.estimate is None


def test_shift_coarse_cube_matches_whole_image_shift() -> None:
    _, coarse, _ = _cubes((0.0, 0.0))
    moved = shift_coarse_cube(coarse, (-8.0, 24.0), FACTOR)
    expected = shift_image(coarse.values, (-0.5, 1.5))
    np.testing.assert_allclose(moved.values, expected, atol=1e-6)


def test_run_cubes_record_the_shift_and_reuse_it_from_their_facts(
    tiny_cfg: Any, tiny_result: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pipeline.cube.coregister_cubes as module
    from pipeline.cube.cubes import CubeFacts, load_cubes
    from pipeline.store.provenance import run_record

    cubes = load_cubes(tiny_cfg, tiny_result)
    record = cubes.coregistration
    assert record is not None and record.mode == "auto" and record.estimate is not None
    assert len(record.estimate.pairs) == len(cubes.pairs)
    # coarse_on_fine is the shifted coarse cube, block-replicated
    first = cubes.coarse.isel(time=0).values
    np.testing.assert_array_equal(
        cubes.coarse_on_fine.isel(time=0).values[..., ::FACTOR, ::FACTOR], first
    )
    facts = CubeFacts.from_dict(json.loads(json.dumps(CubeFacts.of(cubes).to_dict())))
    assert facts.coregistration == record

    def no_estimate(*args: object, **kwargs: object) -> None:
        raise AssertionError("a run step re-estimated the shift its cubes.json holds")

    monkeypatch.setattr(module, "estimate_cube_shift", no_estimate)
    again = load_cubes(tiny_cfg, tiny_result, facts=facts)
    assert again.coregistration == record
    np.testing.assert_array_equal(again.coarse.isel(time=0).values, first)
    prov = run_record(
        config={},
        fine_items=[],
        coarse_items=[],
        model={},
        pair_choice={},
        days=(dt.date(2024, 6, 6), dt.date(2024, 6, 17)),
        coregistration=record.to_dict(),
    )
    assert tuple(prov["coregistration"]["applied"]) == record.applied


def test_run_cubes_with_coregister_off_are_left_alone(tiny_cfg: Any, tiny_result: Any) -> None:
    from pipeline.cube.cubes import load_cubes

    cfg = tiny_cfg.model_copy(
        update={"grid": tiny_cfg.grid.model_copy(update={"coregister": "off"})}
    )
    cubes = load_cubes(cfg, tiny_result)
    assert cubes.coregistration is not None and cubes.coregistration.estimate is None
    assert not cubes.coregistration.is_applied


def test_nothing_to_correlate_gives_a_json_safe_unreliable_record() -> None:
    label, fine, cells = _pair(7, (0.0, 0.0))
    cells[:] = np.nan
    record = decide("auto", estimate_shift([(label, fine, cells)], FACTOR), FACTOR)
    text = json.dumps(record.to_dict(), allow_nan=False)  # strict JSON for stf cube --json
    assert Coregistration.from_dict(json.loads(text)) == record
    assert "not estimated" in record.describe() and record.warning
