"""The world is built in row strips: results do not depend on the plan, memory not on the area."""

from __future__ import annotations

import datetime as dt
import filecmp
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipeline.synth import WorldSpec, build_world, strips
from pipeline.synth.grid import modis_window, world_grid
from pipeline.synth.landscape import make_landscape
from pipeline.synth.modis_psf import ModisStrips
from pipeline.synth.reflectance import day_spectra, truth_day, truth_rows
from pipeline.synth.sensors_sim import landsat_mask_halo, landsat_masks
from pipeline.synth.weather import daily_skies

#: A short season holding one Landsat date (2024-06-08) and two MODIS days.
_SEASON = {"start": dt.date(2024, 6, 8), "end": dt.date(2024, 6, 9), "cloudiness": 0.5}


def _spec(width: int, height: int) -> WorldSpec:
    return WorldSpec(width=width, height=height, seed=3, weather_seed=11, **_SEASON)


def test_layers_and_truth_of_a_strip_equal_the_same_rows_of_the_whole() -> None:
    land = make_landscape(80, 48, np.random.default_rng([5, 0]))
    whole = land.layers(0, 80)
    for name in ("parcel", "texture", "shade"):
        parts = [getattr(land.layers(a, b), name) for a, b in ((0, 7), (7, 50), (50, 80))]
        assert np.array_equal(np.concatenate(parts), getattr(whole, name)), name
    day = dt.date(2024, 6, 20)
    spectra = day_spectra(land, day)
    parts = [truth_rows(land, spectra, a, b) for a, b in ((0, 31), (31, 80))]
    assert np.array_equal(np.concatenate(parts, axis=1), truth_day(land, day))


def test_cloud_masks_of_a_strip_equal_the_same_rows_of_the_whole() -> None:
    days = [dt.date(2024, 6, 1) + dt.timedelta(days=i) for i in range(6)]
    sky = max(daily_skies(7, days, (96, 64), 0.5), key=lambda s: min(s.cover, 1 - s.cover))
    assert 0 < sky.cover < 1
    whole = landsat_masks(sky.field, sky.cover, sky.threshold)
    assert whole.shadow.any() and whole.cloud.any()
    halo = landsat_mask_halo()
    for r0, r1 in ((0, 20), (20, 64), (64, 96)):
        m0, m1 = max(0, r0 - halo), min(96, r1 + halo)
        strip = landsat_masks(sky.rows(m0, m1), sky.cover, sky.threshold).rows(r0 - m0, r1 - m0)
        for name in ("cloud", "cirrus", "dilated", "shadow", "haze", "faint_shadow"):
            assert np.array_equal(getattr(strip, name), getattr(whole, name)[r0:r1]), name


def test_modis_sums_over_strips_equal_the_whole_scene() -> None:
    world = world_grid(_spec(64, 160))
    window = modis_window(world)
    rng = np.random.default_rng(0)
    truth = rng.uniform(0, 0.5, (6, 160, 64)).astype(np.float32)
    cloud = rng.uniform(size=(160, 64)) > 0.7
    whole = ModisStrips(world, window, (-480.0, 240.0))
    whole.add(0, 160, 0, truth, cloud)
    parts = ModisStrips(world, window, (-480.0, 240.0))
    for r0, r1 in ((0, 64), (64, 128), (128, 160)):
        lo, hi = parts.fine_rows(r0, r1)
        parts.add(r0, r1, lo, truth[:, lo:hi], cloud[lo:hi])
    np.testing.assert_allclose(parts.result(), whole.result(), rtol=1e-6, equal_nan=True)
    assert np.isfinite(whole.result()).any()


def _files(root: Path) -> list[str]:
    return sorted(
        str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and p.name != "world.json"
    )


def test_a_world_is_the_same_bytes_whatever_the_strip_height(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = _spec(64, 160)
    one = build_world(tmp_path / "one", spec)  # one strip: the whole world at once
    monkeypatch.setattr(strips, "STRIP_PIXELS", 64 * 64)
    assert len(strips.strip_plan(160, 64)) == 3
    three = build_world(tmp_path / "three", spec)
    names = _files(one.root)
    assert names == _files(three.root) and any(n.endswith("QA_PIXEL.TIF") for n in names)
    # Fields are written in row groups of the parcels each strip completes: same rows,
    # other order. Everything else must be the same bytes.
    data = [n for n in names if not n.startswith("stac") and not n.endswith(".parquet")]
    _, mismatch, errors = filecmp.cmpfiles(one.root, three.root, data, shallow=False)
    assert mismatch == [] and errors == []
    a, b = (f.sort_values("field_id").reset_index(drop=True) for f in (one.fields, three.fields))
    assert a.drop(columns="geometry").equals(b.drop(columns="geometry"))
    assert list(a.geometry.to_wkb()) == list(b.geometry.to_wkb())
    assert a.area.sum() == 64 * 160 * 900.0


#: Run in a fresh interpreter by :func:`_peak_bytes`: argv = root, spec JSON, strip pixels.
_PEAK_SCRIPT = """
import gc, json, sys, tracemalloc
from pathlib import Path
from pipeline.synth import WorldSpec, build_world, strips
root, spec = Path(sys.argv[1]), WorldSpec.from_dict(json.loads(sys.argv[2]))
strips.STRIP_PIXELS = int(sys.argv[3])
build_world(root / "warm-up", spec)
gc.collect()
tracemalloc.start()
build_world(root / "measured", spec)
print(tracemalloc.get_traced_memory()[1])
"""


def _peak_bytes(root: Path, spec: WorldSpec, strip_pixels: int) -> int:
    """Traced peak (B) of building ``spec``, after an untraced build of the same spec.

    Measured in a fresh interpreter: tracemalloc traces every thread of its process, and
    inside the full suite threads that earlier tests left running (event loops, pools)
    allocate while the build is traced (CI traced 1.8 and 2.3 MB there against 1.0 and
    1.1 MB alone). The warm-up build makes every lazy import and first-use cache (GDAL,
    pyproj, pyarrow writers) happen outside the measurement.
    """
    args = [str(root), json.dumps(spec.to_dict()), str(strip_pixels)]
    done = subprocess.run(
        [sys.executable, "-c", _PEAK_SCRIPT, *args], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return int(done.stdout.split()[-1])


def test_build_memory_follows_the_strip_not_the_area(tmp_path: Path) -> None:
    # Strips of 64 rows: a world 4x taller has 4x the strips and must peak no higher.
    small = _peak_bytes(tmp_path / "small", _spec(64, 128), 64 * 64)
    large = _peak_bytes(tmp_path / "large", _spec(64, 512), 64 * 64)
    print(f"tracemalloc peaks: {small} B at 64x128, {large} B at 64x512")
    assert large < 1.25 * small, f"peak {large / small:.2f}x for 4x the area"
