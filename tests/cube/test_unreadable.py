"""Items with an unreadable asset are left out of the cubes, named, and never read as data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pystac
import pytest
import rasterio

from pipeline.catalog.search import SearchResult
from pipeline.config import RunConfig
from pipeline.cube.cubes import Cubes, load_cubes
from pipeline.cube.load import READ_ATTEMPTS, GeoreferenceError, check_georeferenced
from pipeline.cube.unreadable import SkippedItem, open_error
from pipeline.errors import ServiceError
from pipeline.stages import CubeSet, Items, cubes


@pytest.fixture(scope="module")
def clean(tiny_cfg: RunConfig, tiny_result: SearchResult) -> Cubes:
    return load_cubes(tiny_cfg, tiny_result)


def _lost(item: pystac.Item, key: str, tmp: Path, suffix: str = "-lost") -> pystac.Item:
    """A copy of ``item`` named ``<id><suffix>`` whose asset ``key`` points at no file."""
    copy = item.clone()
    copy.id = f"{item.id}{suffix}"
    copy.assets[key].href = (tmp / f"{copy.id}-{key}.TIF").as_uri()
    return copy


def test_a_lost_same_day_scene_is_skipped_and_the_other_scene_of_that_day_counts(
    tiny_cfg: RunConfig, tiny_result: SearchResult, clean: Cubes, tmp_path: Path
) -> None:
    # a second item on the first fine day (as adjacent rows of one overpass are) has lost
    # its red band: dropped before the same-day merge, the day keeps the readable scene
    twin = _lost(tiny_result.fine[0], "red", tmp_path)
    fine = [tiny_result.fine[0], twin, *tiny_result.fine[1:]]
    result = SearchResult(fine, tiny_result.coarse, tiny_result.url)
    cubes = load_cubes(tiny_cfg, result)
    assert cubes.skipped == (
        SkippedItem(
            twin.id, "landsat-c2-l2", "red", twin.assets["red"].href, cubes.skipped[0].reason
        ),
    )
    assert "No such file" in cubes.skipped[0].reason or "not exist" in cubes.skipped[0].reason
    assert cubes.fine_ids == clean.fine_ids and cubes.pairs == clean.pairs
    np.testing.assert_array_equal(cubes.fine.values, clean.fine.values)
    np.testing.assert_array_equal(cubes.fine_clear.values, clean.fine_clear.values)


def test_a_lost_coarse_day_is_left_out_not_zero(
    tiny_cfg: RunConfig, tiny_result: SearchResult, clean: Cubes, tmp_path: Path
) -> None:
    coarse = list(tiny_result.coarse)
    fine_days = {it.datetime.date() for it in tiny_result.fine if it.datetime}
    i = next(
        i for i, it in enumerate(coarse) if it.datetime and it.datetime.date() not in fine_days
    )
    gone = coarse[i]
    coarse[i] = _lost(gone, "Nadir_Reflectance_Band2", tmp_path, suffix="")
    cubes = load_cubes(tiny_cfg, SearchResult(tiny_result.fine, coarse, tiny_result.url))
    assert [(s.item, s.asset) for s in cubes.skipped] == [(gone.id, "Nadir_Reflectance_Band2")]
    assert gone.id not in cubes.coarse_ids and len(cubes.coarse_ids) == len(coarse) - 1
    lost_day = np.datetime64(gone.datetime.date(), "ns") if gone.datetime else None
    kept = [t for t in clean.coarse.time.values if t != lost_day]
    assert len(kept) == clean.coarse.sizes["time"] - 1
    np.testing.assert_array_equal(cubes.coarse.time.values, kept)
    np.testing.assert_array_equal(cubes.coarse.values, clean.coarse.sel(time=kept).values)
    assert cubes.pairs == clean.pairs  # the lost day was not a pair day


def test_losing_every_pair_refuses_with_exit_3(
    tiny_cfg: RunConfig, tiny_result: SearchResult, tmp_path: Path
) -> None:
    # the coarse scenes of both Landsat days are lost: no pair is left, so the run must
    # not go on (exit 3, one line naming an asset), however many scenes remain readable
    fine_days = {it.datetime.date() for it in tiny_result.fine if it.datetime}
    coarse = [
        _lost(it, "Nadir_Reflectance_Band1", tmp_path, suffix="")
        if it.datetime.date() in fine_days
        else it
        for it in tiny_result.coarse
        if it.datetime
    ]
    with pytest.raises(ServiceError, match="no clear fine/coarse pair is left") as info:
        load_cubes(tiny_cfg, SearchResult(tiny_result.fine, coarse, tiny_result.url))
    assert str(info.value).startswith("cannot read asset file://") and "\n" not in str(info.value)


def test_an_asset_without_georeferencing_is_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "plain.tif"
    profile = {"driver": "GTiff", "width": 4, "height": 4, "count": 1, "dtype": "uint16"}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(np.ones((1, 4, 4), dtype="uint16"))
    with (
        pytest.warns(rasterio.errors.NotGeoreferencedWarning),
        rasterio.open(path) as ds,
        pytest.raises(GeoreferenceError, match="no georeferencing"),
    ):
        check_georeferenced(ds)
    with pytest.warns(rasterio.errors.NotGeoreferencedWarning):
        assert "no georeferencing" in (open_error(str(path), attempts=READ_ATTEMPTS) or "")


def test_the_cubes_step_names_the_skipped_item_and_later_steps_skip_the_same(
    tiny_cfg: RunConfig, tiny_result: SearchResult, tmp_path: Path
) -> None:
    # the model and fuse stages reload the cubes from items.json: the same item is dropped
    lost = _lost(tiny_result.fine[1], "qa_pixel", tmp_path, suffix="")
    fine = [tiny_result.fine[0], lost]
    items = tmp_path / "items.json"
    items.write_text(
        json.dumps(
            {
                "url": tiny_result.url,
                "fine": [it.to_dict() for it in fine],
                "coarse": [it.to_dict() for it in tiny_result.coarse],
            }
        )
    )
    summary = cubes(tiny_cfg, Items.load(items)).save(tmp_path)
    written = json.loads(summary.read_text())
    assert [(s["item"], s["asset"]) for s in written["skipped"]] == [(lost.id, "qa_pixel")]
    assert written["fine_ids"] == [tiny_result.fine[0].id]
    again = CubeSet.load(summary, tiny_cfg).cubes
    assert again.fine_ids == (tiny_result.fine[0].id,) and again.skipped[0].item == lost.id
