"""Determinism, idempotence, season extension and the truth/label API of the demo world."""

from __future__ import annotations

import dataclasses
import datetime as dt
import filecmp
from pathlib import Path

import numpy as np
import pytest

from pipeline.config import BANDS
from pipeline.errors import InputError
from pipeline.synth import World, WorldSpec, build_world, open_world
from pipeline.synth.grid import coarse_grid, modis_window
from pipeline.synth.landscape import make_landscape


def _files(root: Path) -> set[Path]:
    return {p.relative_to(root) for p in root.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def extended(tiny_world: World, tmp_path_factory: pytest.TempPathFactory) -> World:
    """The tiny world rebuilt elsewhere with the same seed and a season 8 days longer."""
    spec = dataclasses.replace(tiny_world.spec, end=tiny_world.spec.end + dt.timedelta(days=8))
    return build_world(tmp_path_factory.mktemp("extended") / "w", spec)


def test_same_seed_gives_same_bytes_and_a_longer_season_only_adds(
    tiny_world: World, extended: World
) -> None:
    old, new = _files(tiny_world.root), _files(extended.root)
    data = {p for p in old if p.parts[0] in ("data", "truth")}
    assert data <= new
    _, mismatch, errors = filecmp.cmpfiles(
        tiny_world.root, extended.root, sorted(map(str, data)), shallow=False
    )
    # fields.parquet embeds nothing run-specific, so every generated file must match.
    assert mismatch == [] and errors == []
    assert len(extended.landsat_dates()) > len(tiny_world.landsat_dates())
    assert extended.landsat_dates()[: len(tiny_world.landsat_dates())] == tiny_world.landsat_dates()


def test_different_seed_gives_a_different_landscape() -> None:
    a = make_landscape(64, 64, np.random.default_rng([1, 0]))
    b = make_landscape(64, 64, np.random.default_rng([2, 0]))
    assert not np.array_equal(a.parcel, b.parcel)


def test_complete_world_is_reused_not_rebuilt(tiny_world: World) -> None:
    marker = tiny_world.root / "world.json"
    before = marker.stat().st_mtime_ns
    again = build_world(tiny_world.root, tiny_world.spec)
    assert again == tiny_world and marker.stat().st_mtime_ns == before
    assert not list(tiny_world.root.parent.glob(".*building*"))


def test_open_world_without_marker_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="build-demo"):
        open_world(tmp_path)


def test_spec_refuses_sizes_that_break_the_coarse_grid() -> None:
    with pytest.raises(ValueError, match="multiple of 16"):
        WorldSpec(width=100)


def test_truth_is_regenerated_identically_and_is_plausible(tiny_world: World) -> None:
    day = dt.date(2024, 6, 20)
    truth = tiny_world.truth(day)
    assert truth.shape == (len(BANDS), tiny_world.spec.height, tiny_world.spec.width)
    assert truth.dtype == np.float32 and np.array_equal(truth, tiny_world.truth(day))
    assert truth.min() >= 0.0 and truth.max() <= 1.0


def test_truth_is_never_referenced_by_the_catalog(tiny_world: World) -> None:
    catalog = "".join(p.read_text() for p in tiny_world.stac_dir.rglob("*.json"))
    assert str(tiny_world.truth_dir) not in catalog and "landscape.npz" not in catalog


def test_labels_fields_and_grid(tiny_world: World) -> None:
    labels = tiny_world.labels()
    assert labels.shape == (tiny_world.spec.height, tiny_world.spec.width)
    assert labels.max() < len(tiny_world.class_names)
    fields = tiny_world.fields
    assert fields.crs.to_epsg() == tiny_world.epsg == 32632
    assert set(fields["class_name"]) <= set(tiny_world.class_names)
    assert {"maize", "water"} <= set(fields["class_name"])
    # The polygons tile the world exactly.
    assert fields.area.sum() == pytest.approx(labels.size * 30.0 * 30.0)
    grid = tiny_world.grid
    assert grid.transform.c % 30 == 0 and grid.transform.f % 30 == 0
    assert coarse_grid(grid).transform.a == 480.0
    west, south, east, north = tiny_world.bbox
    assert 9.9 < west < east < 10.1 and 45.0 < south < north < 45.2


def test_modis_window_sits_on_the_global_sinusoidal_lattice(tiny_world: World) -> None:
    window = modis_window(tiny_world.grid)
    t = window.transform
    offset_x = (t.c + 20015109.354) / 463.3127165275
    offset_y = (10007554.677 - t.f) / 463.3127165275
    assert offset_x == pytest.approx(round(offset_x), abs=1e-6)
    assert offset_y == pytest.approx(round(offset_y), abs=1e-6)
